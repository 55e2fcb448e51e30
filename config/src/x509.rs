//! Reading the PEM of certificate entities: certificate chains, private keys, and the facts about
//! a certificate that people look at instead of its base64 (names, issuer, validity, key type,
//! fingerprint). A leaf of the crate, so that the model can describe a certificate when it is
//! shown and validation can check one with the same parsing.

use rustls::crypto::ring::sign::any_supported_type;
use rustls::sign::SigningKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// What a certificate says about itself, shown wherever a certificate entity is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificateInfo {
    /// `rsa-2048`, `ecdsa-p256`, `ecdsa-p384`, `ed25519`, ...: the type of the certificate's
    /// public key, and so of the private key that belongs to it.
    pub key_type: String,
    /// SHA-256 of the leaf certificate's DER, hex.
    pub fingerprint_sha256: String,
    pub subject: String,
    pub issuer: String,
    /// DNS names (and IP addresses) of the leaf's subjectAltName extension.
    pub sans: Vec<String>,
    /// RFC 3339, UTC.
    pub not_before: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// `not_after` as Unix seconds, for scripts that compute what is left.
    pub not_after_unix: i64,
}

/// One certificate of a chain, parsed enough to check it.
#[derive(Debug, Clone)]
pub struct ParsedCertificate {
    pub der: CertificateDer<'static>,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub dns_names: Vec<String>,
    pub is_ca: bool,
    pub not_before: i64,
    pub not_after: i64,
    pub spki: Vec<u8>,
    pub info: CertificateInfo,
}

/// The DER of every `CERTIFICATE` block of `pem`, in order; an error when there is none or a
/// block is damaged.
pub fn certificate_ders(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut ders = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        ders.push(item.map_err(|e| format!("is not valid PEM: {e}"))?);
    }
    if ders.is_empty() {
        return Err("holds no `-----BEGIN CERTIFICATE-----` block".into());
    }
    Ok(ders)
}

/// Parses one certificate.
pub fn parse_certificate(der: CertificateDer<'static>) -> Result<ParsedCertificate, String> {
    let (rest, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| format!("is not a valid X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("has bytes after the certificate".into());
    }
    let mut dns_names = Vec::new();
    let mut sans = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    dns_names.push(dns.to_ascii_lowercase());
                    sans.push(dns.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_text(bytes) {
                        sans.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    let info = CertificateInfo {
        key_type: key_type(&cert),
        fingerprint_sha256: hex::encode(Sha256::digest(der.as_ref())),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        not_after_unix: not_after,
    };
    Ok(ParsedCertificate {
        subject: cert.subject().as_raw().to_vec(),
        issuer: cert.issuer().as_raw().to_vec(),
        dns_names,
        is_ca: cert.is_ca(),
        not_before,
        not_after,
        spki: cert.public_key().raw.to_vec(),
        info,
        der,
    })
}

/// Whether `issuer` signed `child`: None when the signature algorithm cannot be checked here
/// (the chain is then judged by its names alone).
pub fn signed_by(child: &ParsedCertificate, issuer: &ParsedCertificate) -> Option<bool> {
    let (_, child) = X509Certificate::from_der(child.der.as_ref()).ok()?;
    let (_, issuer) = X509Certificate::from_der(issuer.der.as_ref()).ok()?;
    match child.verify_signature(Some(issuer.public_key())) {
        Ok(()) => Some(true),
        Err(x509_parser::error::X509Error::SignatureVerificationError) => Some(false),
        Err(_) => None,
    }
}

/// The info of the first certificate of `pem`, None when it does not parse.
pub fn leaf_info(pem: &str) -> Option<CertificateInfo> {
    let leaf = certificate_ders(pem).ok()?.into_iter().next()?;
    parse_certificate(leaf).ok().map(|parsed| parsed.info)
}

/// The DNS names of the first certificate of `pem`; empty when it does not parse.
pub fn leaf_dns_names(pem: &str) -> Vec<String> {
    certificate_ders(pem)
        .ok()
        .and_then(|ders| ders.into_iter().next())
        .and_then(|leaf| parse_certificate(leaf).ok())
        .map(|parsed| parsed.dns_names)
        .unwrap_or_default()
}

/// The one private key of `pem`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub fn private_key_der(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    if pem.contains("ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(
            "is encrypted; give the key without a passphrase (for example the output \
                    of `openssl pkey -in key.pem`)"
                .into(),
        );
    }
    let mut keys = Vec::new();
    for item in PrivateKeyDer::pem_slice_iter(pem.as_bytes()) {
        keys.push(item.map_err(|e| format!("is not valid PEM: {e}"))?);
    }
    match keys.len() {
        0 => Err(
            "holds no private key block (`-----BEGIN PRIVATE KEY-----`, \
                  `-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN EC PRIVATE KEY-----`)"
                .into(),
        ),
        1 => Ok(keys.remove(0)),
        n => Err(format!("holds {n} private keys; give exactly one")),
    }
}

/// Loads a private key for signing handshakes: RSA, ECDSA P-256/P-384 or Ed25519.
pub fn signing_key(der: &PrivateKeyDer<'static>) -> Result<std::sync::Arc<dyn SigningKey>, String> {
    any_supported_type(der).map_err(|_| {
        "is not a supported key (RSA of at least 2048 bits, ECDSA P-256 or P-384, or Ed25519)"
            .to_owned()
    })
}

/// Whether `key` is the private key of the certificate whose SubjectPublicKeyInfo is `spki`.
pub fn key_matches(key: &dyn SigningKey, spki: &[u8]) -> bool {
    key.public_key()
        .is_some_and(|public| public.as_ref() == spki)
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    i64::try_from(UnixTime::now().as_secs()).unwrap_or(i64::MAX)
}

fn key_type(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        return match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("rsa-{}", rsa.key_size()),
            _ => "rsa".into(),
        };
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(oid) if oid == OID_EC_P256 => "ecdsa-p256".into(),
            Some(oid) if oid == OID_NIST_EC_P384 => "ecdsa-p384".into(),
            Some(oid) => format!("ecdsa-{oid}"),
            None => "ecdsa".into(),
        };
    }
    if *algorithm == OID_SIG_ED25519 {
        return "ed25519".into();
    }
    algorithm.to_id_string()
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => {
            let octets: [u8; 4] = bytes.try_into().ok()?;
            Some(std::net::Ipv4Addr::from(octets).to_string())
        }
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(octets).to_string())
        }
        _ => None,
    }
}

fn rfc3339(unix_seconds: i64) -> String {
    let time = u64::try_from(unix_seconds)
        .ok()
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap_or(std::time::UNIX_EPOCH);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn self_signed(alg: &'static rcgen::SignatureAlgorithm, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn describes_a_leaf_and_matches_its_key() {
        let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, &["A.example.com", "b.test"]);
        let der = certificate_ders(&cert).unwrap().remove(0);
        let parsed = parse_certificate(der).unwrap();
        assert_eq!(parsed.info.key_type, "ecdsa-p256");
        assert_eq!(parsed.dns_names, ["a.example.com", "b.test"]);
        assert_eq!(parsed.info.fingerprint_sha256.len(), 64);
        assert!(parsed.info.not_after.ends_with('Z'));
        let signing = signing_key(&private_key_der(&key).unwrap()).unwrap();
        assert!(key_matches(signing.as_ref(), &parsed.spki));

        let (_, other) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, &["a.example.com"]);
        let signing = signing_key(&private_key_der(&other).unwrap()).unwrap();
        assert!(!key_matches(signing.as_ref(), &parsed.spki));
    }

    #[test]
    fn names_key_types() {
        for (alg, name) in [
            (&rcgen::PKCS_ECDSA_P384_SHA384, "ecdsa-p384"),
            (&rcgen::PKCS_ED25519, "ed25519"),
        ] {
            let (cert, _) = self_signed(alg, &["x.test"]);
            assert_eq!(leaf_info(&cert).unwrap().key_type, name);
        }
    }

    #[test]
    fn refuses_encrypted_missing_and_doubled_keys() {
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(
            private_key_der(encrypted)
                .unwrap_err()
                .contains("encrypted")
        );
        assert!(
            private_key_der("nothing here")
                .unwrap_err()
                .contains("no private key")
        );
        let (_, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, &["x.test"]);
        let twice = format!("{key}{key}");
        assert!(
            private_key_der(&twice)
                .unwrap_err()
                .contains("2 private keys")
        );
        assert!(
            certificate_ders(&key)
                .unwrap_err()
                .contains("no `-----BEGIN CERTIFICATE")
        );
    }
}
