//! The certificates of one revision as the TLS listeners use them: for each certificate a
//! ready rustls `ServerConfig` (its chain and key, its client-certificate verifier, ALPN, TLS
//! 1.2 and 1.3, the worker's session cache and ticket keys), and a lookup from the name a
//! client sends (SNI) to one of them: an exact name first, then the longest `*.suffix`, the rule
//! route hosts follow. A table is built off the hot path when a revision arrives and swapped in
//! with it; a handshake takes the table once, so it finishes with the set it started with.

use std::collections::HashMap;
use std::sync::Arc;

use gateway_config::x509::{certificate_ders, leaf_info, private_key_der};
use gateway_config::{Certificate, ClientAuthMode};
use http::{HeaderName, HeaderValue};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls::{ServerConfig, SupportedProtocolVersion};

/// TLS 1.3 and 1.2; nothing older.
pub const VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Sessions kept for resumption by session id (TLS 1.2) and stateful tickets: about 250 bytes
/// each.
const SESSION_CACHE_SIZE: usize = 64 * 1024;

/// What the listeners do when a client names no certificate of the table (or none at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fallback {
    /// Refuse the handshake.
    #[default]
    Refuse,
    /// Serve the certificate of this name.
    Certificate(String),
}

/// Resumption state shared by every table of a worker, so that a new revision does not end the
/// sessions clients hold: one session cache and one set of rotating ticket keys.
#[derive(Clone)]
pub struct Sessions {
    cache: Arc<dyn StoresServerSessions>,
    tickets: Arc<dyn ProducesTickets>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            cache: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
            tickets: crate::crypto::ticketer().unwrap_or_else(|| Arc::new(NoTickets)),
        }
    }
}

/// Issues no tickets: only when the system random source fails at start.
#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// Headers that carry a verified client certificate upstream.
#[derive(Debug, Clone, Default)]
pub struct ClientHeaders {
    pub subject: Option<HeaderName>,
    pub fingerprint: Option<HeaderName>,
}

impl ClientHeaders {
    /// The names to remove from every request on this certificate, whatever the client sent.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.subject.iter().chain(self.fingerprint.iter())
    }
}

/// One certificate, ready for handshakes.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub config: Arc<ServerConfig>,
    pub client_headers: ClientHeaders,
    pub fingerprint: String,
    pub not_after_unix: i64,
    pub server_names: Vec<String>,
    /// What it was built from, to reuse it when a revision leaves it as it was.
    source: Certificate,
}

/// The certificates of one revision.
#[derive(Debug, Default)]
pub struct CertTable {
    exact: HashMap<String, Arc<Entry>>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashMap<String, Arc<Entry>>,
    fallback: Option<Arc<Entry>>,
    /// Every entry by certificate name, in name order.
    entries: Vec<Arc<Entry>>,
    /// The longest wildcard suffix, in labels: how far a lookup walks up.
    deepest_wildcard: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("certificate `{name}`: {message}")]
pub struct TableError {
    pub name: String,
    pub field: &'static str,
    pub message: String,
}

impl CertTable {
    /// Builds the table of `certificates`, reusing every entry of `previous` whose certificate
    /// did not change.
    pub fn build<'a>(
        certificates: impl IntoIterator<Item = &'a Certificate>,
        previous: Option<&CertTable>,
        sessions: &Sessions,
        fallback: &Fallback,
    ) -> Result<CertTable, TableError> {
        let mut table = CertTable::default();
        let reusable: HashMap<&str, &Arc<Entry>> = previous
            .map(|p| p.entries.iter().map(|e| (e.name.as_str(), e)).collect())
            .unwrap_or_default();
        for certificate in certificates {
            let entry = match reusable.get(certificate.name.as_str()) {
                Some(entry) if entry.source == *certificate => Arc::clone(entry),
                _ => Arc::new(entry_for(certificate, sessions)?),
            };
            for name in &entry.server_names {
                match name.strip_prefix("*.") {
                    Some(suffix) => {
                        table.deepest_wildcard =
                            table.deepest_wildcard.max(suffix.split('.').count());
                        table.wildcard.insert(suffix.to_owned(), entry.clone());
                    }
                    None => {
                        table.exact.insert(name.clone(), entry.clone());
                    }
                }
            }
            table.entries.push(entry);
        }
        if let Fallback::Certificate(name) = fallback {
            table.fallback = table.entries.iter().find(|e| e.name == *name).cloned();
            if table.fallback.is_none() && !table.entries.is_empty() {
                tracing::warn!(
                    certificate = %name,
                    "the default TLS certificate is not in the config; clients without a known \
                     server name are refused"
                );
            }
        }
        Ok(table)
    }

    /// The certificate for a client that sent `server_name` (None: no SNI).
    pub fn lookup(&self, server_name: Option<&str>) -> Option<&Arc<Entry>> {
        let Some(name) = server_name else {
            return self.fallback.as_ref();
        };
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        if let Some(entry) = self.exact.get(name) {
            return Some(entry);
        }
        if !self.wildcard.is_empty() {
            // Suffixes from the longest: `a.b.example.com` tries `b.example.com`, then
            // `example.com`, then `com`, skipping those longer than any wildcard.
            let labels = name.split('.').count();
            let mut rest = name;
            let mut remaining = labels;
            while let Some((_, suffix)) = rest.split_once('.') {
                remaining -= 1;
                if remaining <= self.deepest_wildcard
                    && let Some(entry) = self.wildcard.get(suffix)
                {
                    return Some(entry);
                }
                rest = suffix;
            }
        }
        self.fallback.as_ref()
    }

    /// Every certificate, in name order.
    pub fn entries(&self) -> &[Arc<Entry>] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn entry_for(certificate: &Certificate, sessions: &Sessions) -> Result<Entry, TableError> {
    let error = |field: &'static str, message: String| TableError {
        name: certificate.name.clone(),
        field,
        message,
    };
    let chain = certificate_ders(&certificate.cert).map_err(|m| error("cert", m))?;
    let key_pem = certificate
        .key
        .as_ref()
        .ok_or_else(|| error("key", "the push carries no private key".into()))?;
    let key = private_key_der(key_pem.pem()).map_err(|m| error("key", m))?;
    let provider = crate::crypto::provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| error("cert", e.to_string()))?;
    let builder = match &certificate.client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let mut roots = RootCertStore::empty();
            for der in certificate_ders(&auth.ca).map_err(|m| error("client_auth.ca", m))? {
                roots
                    .add(der)
                    .map_err(|e| error("client_auth.ca", e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth.mode {
                ClientAuthMode::Required => verifier,
                ClientAuthMode::Optional => verifier.allow_unauthenticated(),
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| error("client_auth.ca", e.to_string()))?,
            )
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| error("key", e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.session_storage = sessions.cache.clone();
    config.ticketer = sessions.tickets.clone();
    let info =
        leaf_info(&certificate.cert).ok_or_else(|| error("cert", "does not parse".into()))?;
    let header = |field: &'static str, name: &Option<String>| {
        name.as_deref()
            .map(|n| HeaderName::try_from(n).map_err(|e| error(field, e.to_string())))
            .transpose()
    };
    let client_headers = match &certificate.client_auth {
        Some(auth) => ClientHeaders {
            subject: header("client_auth.subject_header", &auth.subject_header)?,
            fingerprint: header("client_auth.fingerprint_header", &auth.fingerprint_header)?,
        },
        None => ClientHeaders::default(),
    };
    Ok(Entry {
        name: certificate.name.clone(),
        config: Arc::new(config),
        client_headers,
        fingerprint: info.fingerprint_sha256,
        not_after_unix: info.not_after_unix,
        server_names: certificate.server_names(),
        source: certificate.clone(),
    })
}

/// A header value for a client certificate's subject: the text, with anything a header cannot
/// carry replaced.
pub fn subject_value(subject: &str) -> HeaderValue {
    HeaderValue::from_str(subject).unwrap_or_else(|_| {
        let cleaned: String = subject
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        HeaderValue::from_str(&cleaned).unwrap_or(HeaderValue::from_static("?"))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use gateway_config::PrivateKey;

    pub(crate) fn certificate(name: &str, sans: &[&str], snis: &[&str]) -> Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap()
                .self_signed(&key)
                .unwrap();
        Certificate {
            name: name.into(),
            cert: cert.pem(),
            key: Some(PrivateKey::new(key.serialize_pem())),
            snis: snis.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn name_of(table: &CertTable, sni: Option<&str>) -> Option<String> {
        table.lookup(sni).map(|e| e.name.clone())
    }

    #[test]
    fn exact_names_win_then_the_longest_wildcard_suffix() {
        let certificates = [
            certificate("apex", &["example.com"], &[]),
            certificate("wild", &["*.example.com"], &[]),
            certificate("deep", &["*.api.example.com", "api.example.com"], &[]),
            certificate("exact", &["v1.api.example.com"], &[]),
        ];
        let sessions = Sessions::default();
        let table = CertTable::build(&certificates, None, &sessions, &Fallback::Refuse).unwrap();
        assert_eq!(
            name_of(&table, Some("example.com")).as_deref(),
            Some("apex")
        );
        assert_eq!(
            name_of(&table, Some("www.example.com")).as_deref(),
            Some("wild")
        );
        assert_eq!(
            name_of(&table, Some("WWW.Example.COM")).as_deref(),
            Some("wild")
        );
        assert_eq!(
            name_of(&table, Some("v2.api.example.com")).as_deref(),
            Some("deep")
        );
        assert_eq!(
            name_of(&table, Some("api.example.com")).as_deref(),
            Some("deep")
        );
        assert_eq!(
            name_of(&table, Some("v1.api.example.com")).as_deref(),
            Some("exact")
        );
        assert_eq!(name_of(&table, Some("other.test")), None);
        assert_eq!(name_of(&table, None), None);

        let with_default = CertTable::build(
            &certificates,
            Some(&table),
            &sessions,
            &Fallback::Certificate("apex".into()),
        )
        .unwrap();
        assert_eq!(name_of(&with_default, None).as_deref(), Some("apex"));
        assert_eq!(
            name_of(&with_default, Some("other.test")).as_deref(),
            Some("apex")
        );
        // Unchanged certificates are reused, not loaded again.
        assert!(Arc::ptr_eq(&table.entries()[0], &with_default.entries()[0]));
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let mut keyless = certificate("c", &["a.test"], &[]);
        keyless.key = None;
        let error = CertTable::build([&keyless], None, &Sessions::default(), &Fallback::Refuse)
            .unwrap_err();
        assert_eq!(error.field, "key");
    }
}
