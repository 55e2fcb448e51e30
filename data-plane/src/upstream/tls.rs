//! TLS towards upstream targets: a rustls client configuration (with the worker's crypto
//! provider) per upstream, with its roots (the upstream's `ca`, or the system's, loaded once per
//! registry), its SNI, its ALPN for the upstream's protocol, and `verify: false` that still
//! checks signatures.

use std::sync::{Arc, OnceLock};

use gateway_config::{Protocol, UpstreamTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("tls.ca: {0}")]
    Ca(String),
    #[error("tls: {0}")]
    Config(String),
}

/// How an upstream's connections are secured: `None` for plain TCP, else the connector and
/// the fixed SNI (`None`: each target's host name).
pub type Tls = Option<(TlsConnector, Option<ServerName<'static>>)>;

/// The system's trusted roots, loaded on first use: reading them takes milliseconds, and most
/// workers never need them.
#[derive(Debug, Default)]
pub struct SystemRoots(OnceLock<RootCertStore>);

impl SystemRoots {
    fn get(&self) -> &RootCertStore {
        self.0.get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "cannot load a system root certificate");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, ignored, "system root certificates loaded");
            roots
        })
    }
}

/// The TLS of an upstream with these settings.
pub fn tls_setup(
    tls: Option<&UpstreamTls>,
    protocol: Protocol,
    roots: &SystemRoots,
) -> Result<Tls, TlsSetupError> {
    let Some(settings) = tls.filter(|t| t.enabled) else {
        return Ok(None);
    };
    let config = client_config(settings, protocol, roots)?;
    let sni = match &settings.sni {
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|e| TlsSetupError::Config(format!("sni `{name}`: {e}")))?,
        ),
        None => None,
    };
    Ok(Some((TlsConnector::from(Arc::new(config)), sni)))
}

fn client_config(
    tls: &UpstreamTls,
    protocol: Protocol,
    system: &SystemRoots,
) -> Result<ClientConfig, TlsSetupError> {
    let provider = crate::crypto::provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    let mut config = if !tls.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &tls.ca {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| TlsSetupError::Ca(e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| TlsSetupError::Ca(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(TlsSetupError::Ca("holds no certificate".into()));
                }
                roots
            }
            None => system.get().clone(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = match protocol {
        Protocol::Http2 => vec![b"h2".to_vec()],
        Protocol::Http1 | Protocol::H2c => vec![b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// `verify: false`: any certificate is accepted, but signatures are still checked so that the
/// handshake itself stays sound.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_build_or_explain() {
        let roots = SystemRoots::default();
        let settings = UpstreamTls {
            verify: false,
            ..UpstreamTls::default()
        };
        let config = client_config(&settings, Protocol::Http2, &roots).unwrap();
        assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
        let bad_ca = UpstreamTls {
            ca: Some("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into()),
            ..UpstreamTls::default()
        };
        assert!(client_config(&bad_ca, Protocol::Http1, &roots).is_err());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good_ca = UpstreamTls {
            ca: Some(cert.cert.pem()),
            ..UpstreamTls::default()
        };
        assert!(client_config(&good_ca, Protocol::Http1, &roots).is_ok());
    }
}
