//! Who may open a ConfigSync stream: a client certificate when mTLS is on, and the cluster token
//! when one is set. A refused stream gets `Unauthenticated` and leaves a warning that names the
//! peer, so that a misconfigured worker is easy to find.

use std::net::SocketAddr;

use tonic::Status;
use tonic::metadata::MetadataMap;

/// What a stream must present.
#[derive(Debug, Clone, Default)]
pub struct SyncAuth {
    /// Required as `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// TLS accepts clients without a certificate so that they get a gRPC answer; this refuses
    /// them at the stream instead.
    pub require_client_cert: bool,
}

/// What is known about the peer of a stream.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub addr: Option<SocketAddr>,
    /// Subject of the verified client certificate.
    pub subject: Option<String>,
    pub has_cert: bool,
}

impl SyncAuth {
    /// Ok when the stream may proceed; the refusal is logged here.
    pub fn check(&self, metadata: &MetadataMap, peer: &Peer) -> Result<(), Status> {
        let refusal = if self.require_client_cert && !peer.has_cert {
            Some("a client certificate is required")
        } else if let Some(token) = &self.token {
            let presented = metadata
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            match presented {
                None => Some("a cluster token is required"),
                Some(presented) if !constant_time_eq(presented.as_bytes(), token.as_bytes()) => {
                    Some("the cluster token is wrong")
                }
                Some(_) => None,
            }
        } else {
            None
        };
        match refusal {
            None => Ok(()),
            Some(reason) => {
                tracing::warn!(
                    peer = %peer.addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string()),
                    subject = peer.subject.as_deref().unwrap_or("none"),
                    reason,
                    "refused a config sync stream"
                );
                Err(Status::unauthenticated(reason))
            }
        }
    }
}

/// Compares without an early exit, so the time taken does not reveal how much of a guess was
/// right (the length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The subject of a DER certificate, e.g. `CN=worker-1`.
pub fn subject_of(der: &[u8]) -> Option<String> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, cert)| cert.subject().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn token_and_certificate_rules() {
        let auth = SyncAuth {
            token: Some("s3cret".into()),
            require_client_cert: false,
        };
        let mut metadata = MetadataMap::new();
        let peer = Peer::default();
        assert_eq!(
            auth.check(&metadata, &peer).map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated)
        );
        metadata.insert(
            "authorization",
            tonic::metadata::MetadataValue::from_static("Bearer nope"),
        );
        assert!(auth.check(&metadata, &peer).is_err());
        metadata.insert(
            "authorization",
            tonic::metadata::MetadataValue::from_static("Bearer s3cret"),
        );
        assert!(auth.check(&metadata, &peer).is_ok());
        let mtls = SyncAuth {
            token: None,
            require_client_cert: true,
        };
        assert!(mtls.check(&metadata, &peer).is_err());
        let with_cert = Peer {
            has_cert: true,
            ..Peer::default()
        };
        assert!(mtls.check(&metadata, &with_cert).is_ok());
    }
}
