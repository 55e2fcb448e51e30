//! The certificates the TLS benchmark serves: for each key type, a CA of that type and a leaf
//! for [`SERVER_NAME`] signed by it, made with the `openssl` CLI in the benchmark's temporary
//! directory (rcgen built on ring can sign with RSA keys but not make them). The three proxies
//! serve the same leaf and key; the CA lets the handshake check verify what each one serves.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use clap::ValueEnum;

/// The name the certificates are for and the load generators send as SNI.
pub const SERVER_NAME: &str = "bench.example.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    /// ECDSA with the P-256 curve.
    Ecdsa,
    /// RSA with a 2048-bit modulus.
    Rsa,
}

impl KeyType {
    pub fn describe(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ECDSA P-256",
            KeyType::Rsa => "RSA-2048",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
        }
    }

    /// `openssl req -newkey` arguments for a key of this type.
    fn newkey(self) -> &'static [&'static str] {
        match self {
            KeyType::Ecdsa => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::Rsa => &["-newkey", "rsa:2048"],
        }
    }

    /// The leaf's key usage: RSA keys may also encipher (TLS 1.2's RSA key exchange).
    fn key_usage(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "digitalSignature",
            KeyType::Rsa => "digitalSignature, keyEncipherment",
        }
    }
}

/// A leaf certificate and its key, as text and as files, and the CA that signed it.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub key_type: KeyType,
    /// PEM of the leaf alone: what every proxy sends (the clients know the CA).
    pub chain_pem: String,
    /// PEM of the leaf's private key (PKCS#8).
    pub key_pem: String,
    pub chain_path: PathBuf,
    pub key_path: PathBuf,
    /// The leaf and then its key in one file, as HAProxy's `crt` takes them.
    pub combined_path: PathBuf,
    /// PEM of the CA.
    pub ca_path: PathBuf,
}

fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .context("run openssl")?;
    anyhow::ensure!(
        output.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Makes the CA and the leaf of `key_type` in `dir` (files named after the key type).
pub fn generate(dir: &Path, key_type: KeyType) -> anyhow::Result<Certificate> {
    let file = |suffix: &str| dir.join(format!("tls-{}-{suffix}", key_type.slug()));
    let (ca_key, ca_path) = (file("ca.key"), file("ca.pem"));
    let (key_path, csr, chain_path) = (file("leaf.key"), file("leaf.csr"), file("leaf.pem"));
    let (extensions, combined_path) = (file("leaf.ext"), file("combined.pem"));

    let mut ca = vec!["req", "-x509", "-nodes", "-days", "30", "-sha256"];
    ca.extend_from_slice(key_type.newkey());
    ca.extend_from_slice(&[
        "-keyout",
        path_str(&ca_key)?,
        "-out",
        path_str(&ca_path)?,
        "-subj",
        "/CN=gateway-bench CA",
    ]);
    openssl(&ca)?;

    let subject = format!("/CN={SERVER_NAME}");
    let mut request = vec!["req", "-new", "-nodes", "-sha256"];
    request.extend_from_slice(key_type.newkey());
    request.extend_from_slice(&[
        "-keyout",
        path_str(&key_path)?,
        "-out",
        path_str(&csr)?,
        "-subj",
        &subject,
    ]);
    openssl(&request)?;

    // webpki refuses a CA certificate as a server's own, and wants the name in the SAN.
    let text = format!(
        "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, {}\nextendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:{SERVER_NAME}\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
        key_type.key_usage()
    );
    std::fs::write(&extensions, text).with_context(|| format!("write {}", extensions.display()))?;
    openssl(&[
        "x509",
        "-req",
        "-sha256",
        "-days",
        "30",
        "-set_serial",
        "2",
        "-in",
        path_str(&csr)?,
        "-CA",
        path_str(&ca_path)?,
        "-CAkey",
        path_str(&ca_key)?,
        "-extfile",
        path_str(&extensions)?,
        "-out",
        path_str(&chain_path)?,
    ])?;

    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
    };
    let chain_pem = read(&chain_path)?;
    let key_pem = read(&key_path)?;
    std::fs::write(&combined_path, format!("{chain_pem}{key_pem}"))
        .with_context(|| format!("write {}", combined_path.display()))?;
    Ok(Certificate {
        key_type,
        chain_pem,
        key_pem,
        chain_path,
        key_path,
        combined_path,
        ca_path,
    })
}
