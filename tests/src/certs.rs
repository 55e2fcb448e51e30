//! Throwaway certificates for the TLS tests: one CA, a server certificate for 127.0.0.1 and
//! localhost, and client certificates, written as PEM files into a temporary directory.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

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
        let key = KeyPair::generate().expect("key");
        let sans: Vec<String> = subject_alt_names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.ca).expect("sign certificate");
        let cert_path = self.dir.path().join(format!("{name}.pem"));
        let key_path = self.dir.path().join(format!("{name}-key.pem"));
        std::fs::write(&cert_path, cert.pem()).expect("write certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
