//! Certificates: what the worker presents to TLS clients, for which server names, and whether it
//! asks clients for certificates of their own.
//!
//! The private key is write-only: it is read from input and carried to workers, but never
//! serialized, so that no answer, export, diff or log line built from the model can show it.
//! What is shown instead is `info`, computed from the certificate, which input may carry (an
//! export applied again) and which is then ignored.

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::x509::leaf_info;

/// A certificate chain and its private key, served for the names in `snis`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// Unique among its kind; used in URLs. Letters, digits, `.`, `_` and `-`, starting with a
    /// letter or digit.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$",
            max_length = 128,
            example = "example-com"
        )
    )]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<super::text_schema::Tag>))]
    pub tags: Vec<String>,
    /// PEM: the leaf certificate first, then each intermediate, each issued by the next.
    pub cert: String,
    /// PEM private key of the leaf (PKCS#8, PKCS#1 RSA or SEC1 EC; not encrypted). Write-only:
    /// never shown. Left out, the key already stored for the same certificate is kept, so that
    /// an export applied again changes no key.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(write_only, value_type = Option<String>))]
    pub key: Option<PrivateKey>,
    /// Server names this certificate is served for: exact names and `*.suffix` wildcards, each
    /// covered by the certificate. Empty: the certificate's DNS names.
    #[serde(default)]
    pub snis: Vec<String>,
    /// Ask clients connecting with one of `snis` for a certificate issued by `ca`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Computed from `cert`; ignored on input.
    #[serde(default, skip_serializing)]
    #[cfg_attr(feature = "openapi", schema(read_only, value_type = Option<crate::x509::CertificateInfo>))]
    pub info: Computed,
}

impl Certificate {
    /// The names the certificate is served for: `snis`, or the leaf's DNS names without it.
    /// Lower case.
    pub fn server_names(&self) -> Vec<String> {
        if self.snis.is_empty() {
            crate::x509::leaf_dns_names(&self.cert)
        } else {
            self.snis.iter().map(|s| s.to_ascii_lowercase()).collect()
        }
    }

    /// The fields the config digest covers: everything a worker serves from, except the key,
    /// which the certificate determines (validation refuses a key that does not belong to it).
    pub(crate) fn digest_form(&self) -> impl Serialize + '_ {
        DigestForm {
            name: &self.name,
            tags: &self.tags,
            cert: &self.cert,
            snis: &self.snis,
            client_auth: &self.client_auth,
        }
    }
}

#[derive(Serialize)]
struct DigestForm<'a> {
    name: &'a str,
    tags: &'a [String],
    cert: &'a str,
    snis: &'a [String],
    client_auth: &'a Option<ClientAuth>,
}

impl Serialize for Certificate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let info = leaf_info(&self.cert);
        let mut fields = 2;
        fields += usize::from(!self.tags.is_empty());
        fields += usize::from(!self.snis.is_empty());
        fields += usize::from(self.client_auth.is_some());
        fields += usize::from(info.is_some());
        let mut out = serializer.serialize_struct("Certificate", fields)?;
        out.serialize_field("name", &self.name)?;
        if !self.tags.is_empty() {
            out.serialize_field("tags", &self.tags)?;
        }
        out.serialize_field("cert", &self.cert)?;
        if !self.snis.is_empty() {
            out.serialize_field("snis", &self.snis)?;
        }
        if let Some(client_auth) = &self.client_auth {
            out.serialize_field("client_auth", client_auth)?;
        }
        if let Some(info) = &info {
            out.serialize_field("info", info)?;
        }
        out.end()
    }
}

/// A private key in PEM. Its `Debug` shows no byte of it, and it has no `Serialize`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PrivateKey(String);

impl PrivateKey {
    pub fn new(pem: String) -> Self {
        PrivateKey(pem)
    }

    pub fn pem(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl<'de> Deserialize<'de> for PrivateKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(PrivateKey)
    }
}

/// A field the gateway computes: accepted on input, whatever it holds, and ignored; equal to
/// every other.
#[derive(Debug, Clone, Copy, Default)]
pub struct Computed;

impl PartialEq for Computed {
    fn eq(&self, _: &Computed) -> bool {
        true
    }
}

impl Eq for Computed {}

impl<'de> Deserialize<'de> for Computed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Computed)
    }
}

/// Mutual TLS: clients connecting with one of the certificate's names present a certificate
/// issued by `ca`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// PEM: the CA certificates that client certificates must chain to.
    pub ca: String,
    #[serde(default)]
    pub mode: ClientAuthMode,
    /// Request header that carries the verified client certificate's subject upstream; a
    /// client's own copy is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_header: Option<String>,
    /// Request header that carries the SHA-256 fingerprint (hex) of the verified client
    /// certificate upstream; a client's own copy is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_header: Option<String>,
}

/// Whether a client without a certificate is let in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    /// A client must present a valid certificate, or the handshake fails.
    #[default]
    Required,
    /// A client may present one; if it does, it must be valid.
    Optional,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Config;

    fn issued() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["api.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn the_key_is_read_but_never_written_and_info_is_shown() {
        let (cert, key) = issued();
        let input = serde_json::json!({
            "certificates": [{"name": "api", "cert": cert, "key": key}]
        });
        let config: Config = serde_json::from_value(input).unwrap();
        let certificate = &config.certificates["api"];
        assert_eq!(certificate.key.as_ref().unwrap().pem(), key);
        assert!(!format!("{certificate:?}").contains("PRIVATE"));

        let shown = serde_json::to_string(&config).unwrap();
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        let value: serde_json::Value = serde_json::from_str(&shown).unwrap();
        let info = &value["certificates"][0]["info"];
        assert_eq!(info["sans"][0], "api.test");
        assert_eq!(info["key_type"], "ecdsa-p256");

        // What was shown applies again, `info` and all, without the key.
        let again: Config = serde_json::from_str(&shown).unwrap();
        assert_eq!(again.certificates["api"].key, None);
        assert_eq!(again.certificates["api"].cert, cert);
    }

    #[test]
    fn the_digest_covers_the_certificate_but_not_the_key_and_the_wire_carries_it() {
        let (cert, key) = issued();
        let mut config = Config::default();
        config.certificates.insert(
            "api".into(),
            Certificate {
                name: "api".into(),
                cert: cert.clone(),
                key: Some(PrivateKey::new(key.clone())),
                ..Default::default()
            },
        );
        let with_key = crate::digest(&config);
        assert_ne!(with_key, crate::digest(&Config::default()));
        let mut keyless = config.clone();
        keyless.certificates.get_mut("api").unwrap().key = None;
        assert_eq!(crate::digest(&keyless), with_key);
        keyless.certificates.get_mut("api").unwrap().snis = vec!["api.test".into()];
        assert_ne!(crate::digest(&keyless), with_key);

        let back = crate::config_from_resources(crate::resources_from_config(&config)).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.certificates["api"].key.as_ref().unwrap().pem(), key);
    }
}
