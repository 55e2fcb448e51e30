//! Throwaway certificates for the TLS tests: one CA, a server certificate for 127.0.0.1 and
//! localhost, and client certificates, written as PEM files into a temporary directory; and the
//! key-encryption keyring a control plane needs to store certificates' keys.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// One issued certificate: its PEM texts and the files holding them.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Server,
    Client,
}

pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    ca: Issuer<'static, KeyPair>,
}

impl TestPki {
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("pki directory");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "gateway test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let ca_cert_path = dir.path().join("ca.pem");
        std::fs::write(&ca_cert_path, ca_cert.pem()).expect("write CA");
        let ca = Issuer::new(ca_params, ca_key);
        let mut pki = TestPki {
            ca_cert: ca_cert_path,
            server_cert: PathBuf::new(),
            server_key: PathBuf::new(),
            dir,
            ca,
        };
        let (cert, key) = pki.issue("control-plane", &["localhost", "127.0.0.1"]);
        pki.server_cert = cert;
        pki.server_key = key;
        pki
    }

    /// Issues a certificate signed by the CA; returns the certificate and key file paths.
    pub fn issue(&self, name: &str, subject_alt_names: &[&str]) -> (PathBuf, PathBuf) {
        let issued = self.issue_for(Purpose::Server, name, subject_alt_names);
        (issued.cert, issued.key)
    }

    /// Issues an ECDSA P-256 certificate signed by the CA, with `name` as its common name, for
    /// `purpose`; the files are named after `name`, so a name issued again replaces them.
    pub fn issue_for(&self, purpose: Purpose, name: &str, subject_alt_names: &[&str]) -> Issued {
        let key = KeyPair::generate().expect("key");
        let sans: Vec<String> = subject_alt_names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        if purpose == Purpose::Client {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = params.signed_by(&key, &self.ca).expect("sign certificate");
        let cert_path = self.dir.path().join(format!("{name}.pem"));
        let key_path = self.dir.path().join(format!("{name}-key.pem"));
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: cert_path,
            key: key_path,
        };
        std::fs::write(&issued.cert, &issued.cert_pem).expect("write certificate");
        std::fs::write(&issued.key, &issued.key_pem).expect("write key");
        issued
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca_cert).expect("read CA")
    }
}

/// Writes a key-encryption keyring (one random 256-bit key, hex) into `dir` and returns its
/// path, for `--key-encryption-key-file`.
pub fn keyring_file(dir: &Path) -> PathBuf {
    let path = dir.join("gateway.kek");
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    std::fs::write(&path, format!("{key}\n")).expect("write keyring");
    path
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
