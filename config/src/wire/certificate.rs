//! Certificates on the wire, their private key included.

use gateway_proto::v1;

use super::WireError;
use crate::Kind;
use crate::model::{Certificate, ClientAuth, ClientAuthMode, Computed, PrivateKey};

impl From<&Certificate> for v1::Certificate {
    fn from(c: &Certificate) -> Self {
        v1::Certificate {
            name: c.name.clone(),
            tags: c.tags.clone(),
            cert: c.cert.clone(),
            key: c
                .key
                .as_ref()
                .map(|k| k.pem().to_owned())
                .unwrap_or_default(),
            snis: c.snis.clone(),
            client_auth: c.client_auth.as_ref().map(|a| v1::ClientAuth {
                ca: a.ca.clone(),
                mode: match a.mode {
                    ClientAuthMode::Required => v1::ClientAuthMode::Required,
                    ClientAuthMode::Optional => v1::ClientAuthMode::Optional,
                }
                .into(),
                subject_header: a.subject_header.clone(),
                fingerprint_header: a.fingerprint_header.clone(),
            }),
        }
    }
}

impl TryFrom<v1::Certificate> for Certificate {
    type Error = WireError;

    fn try_from(c: v1::Certificate) -> Result<Self, WireError> {
        let client_auth = match c.client_auth {
            None => None,
            Some(a) => Some(ClientAuth {
                mode: match v1::ClientAuthMode::try_from(a.mode) {
                    Ok(v1::ClientAuthMode::Required) => ClientAuthMode::Required,
                    Ok(v1::ClientAuthMode::Optional) => ClientAuthMode::Optional,
                    Err(_) => {
                        return Err(WireError::Invalid {
                            kind: Kind::Certificate,
                            name: c.name,
                            field: "client_auth.mode",
                            message: format!("unknown mode {}", a.mode),
                        });
                    }
                },
                ca: a.ca,
                subject_header: a.subject_header,
                fingerprint_header: a.fingerprint_header,
            }),
        };
        Ok(Certificate {
            name: c.name,
            tags: c.tags,
            cert: c.cert,
            key: (!c.key.is_empty()).then(|| PrivateKey::new(c.key)),
            snis: c.snis,
            client_auth,
            info: Computed,
        })
    }
}
