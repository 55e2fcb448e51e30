//! `gatewayctl certificate ...`: list, get, create, replace and delete the TLS certificates the
//! workers serve, from PEM files given by flags.
//!
//! The request body is built here rather than from the shared model's `Certificate`, because the
//! model never serializes the private key and a write must carry it. The PEM files are read with
//! the admin API's size limits and checked for the PEM blocks each flag takes, so that swapped or
//! wrong files are named before anything is sent; whether the chain, key and names fit together
//! is the admin API's to judge. Nothing printed comes from the key: answers never hold it.

use std::path::Path;

use gateway_config::limits::{MAX_CA_PEM_LEN, MAX_CERT_PEM_LEN, MAX_KEY_PEM_LEN};
use gateway_config::{ClientAuth, ClientAuthMode, Kind, PrivateKey, x509};
use serde::{Serialize, Serializer};

use super::context::{Context, write_options};
use super::exit::CommandError;
use crate::cli::{CertificateCommand, CertificateSpecArgs};
use crate::input::{self, InputError};
use crate::output::{self, Action, Format};

pub async fn run(ctx: &mut Context<'_>, command: CertificateCommand) -> Result<(), CommandError> {
    match command {
        CertificateCommand::List(args) => {
            let items = ctx
                .client
                .list(Kind::Certificate, args.tag.as_deref())
                .await?;
            let now = x509::unix_now();
            let warnings = output::expiry_warnings(&items, now);
            match ctx.format {
                Format::Table => {
                    let text = output::certificates_table(&items, now)?;
                    ctx.print(&text)?;
                }
                _ => ctx.print_document(&serde_json::Value::Array(items))?,
            }
            ctx.warn(&warnings);
            Ok(())
        }
        CertificateCommand::Get(args) => {
            let item = ctx.client.get(Kind::Certificate, &args.name).await?;
            let now = x509::unix_now();
            match ctx.format {
                Format::Table => {
                    let text = output::certificate_details(&item, now)?;
                    ctx.print(&text)?;
                }
                _ => ctx.print_document(&item)?,
            }
            ctx.warn(&output::expiry_warnings(std::slice::from_ref(&item), now));
            Ok(())
        }
        CertificateCommand::Create(args) => {
            let options = write_options(&args.write, false);
            let body = CertificateBody::read(args.name, &args.cert, Some(&args.key), args.spec)?;
            let written = ctx
                .client
                .create(Kind::Certificate, &body, &options)
                .await?;
            ctx.print_written(Kind::Certificate, &body.name, Action::Created, &written)
        }
        CertificateCommand::Replace(args) => {
            let options = write_options(&args.write, false);
            let body =
                CertificateBody::read(args.name, &args.cert, args.key.as_deref(), args.spec)?;
            let written = ctx
                .client
                .replace(Kind::Certificate, &body.name, &body, &options)
                .await?;
            let action = if written.created {
                Action::Created
            } else {
                Action::Replaced
            };
            ctx.print_written(Kind::Certificate, &body.name, action, &written)
        }
        CertificateCommand::Delete(args) => {
            let options = write_options(&args.write, false);
            let written = ctx
                .client
                .delete(Kind::Certificate, &args.name, &options)
                .await?;
            ctx.print_written(Kind::Certificate, &args.name, Action::Deleted, &written)
        }
    }
}

/// The request body of `certificate create` and `replace`, in the admin API's field names.
/// Its `Debug` shows no byte of the key ([`PrivateKey`] hides it).
#[derive(Debug, Serialize)]
pub struct CertificateBody {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub cert: String,
    /// Left out, the admin API keeps the key stored for the same leaf certificate.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_key"
    )]
    pub key: Option<PrivateKey>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snis: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
}

impl CertificateBody {
    /// Reads the files the flags name into a body.
    pub fn read(
        name: String,
        cert: &Path,
        key: Option<&Path>,
        spec: CertificateSpecArgs,
    ) -> Result<CertificateBody, InputError> {
        let cert = read_chain("--cert", cert, MAX_CERT_PEM_LEN, "a certificate chain")?;
        let key = key.map(read_key).transpose()?;
        let client_auth = match spec.client_ca {
            Some(ca) => Some(ClientAuth {
                ca: read_chain("--client-ca", &ca, MAX_CA_PEM_LEN, "client CA certificates")?,
                mode: spec
                    .client_auth
                    .map_or_else(ClientAuthMode::default, ClientAuthMode::from),
                subject_header: spec.client_subject_header,
                fingerprint_header: spec.client_fingerprint_header,
            }),
            // clap refuses the other client flags without --client-ca.
            None => None,
        };
        Ok(CertificateBody {
            name,
            tags: spec.tags,
            cert,
            key,
            snis: spec.snis,
            client_auth,
        })
    }
}

fn serialize_key<S: Serializer>(
    key: &Option<PrivateKey>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match key {
        Some(key) => serializer.serialize_str(key.pem()),
        None => serializer.serialize_none(),
    }
}

/// A PEM file of one or more certificates.
fn read_chain(
    flag: &'static str,
    path: &Path,
    max_len: usize,
    what: &str,
) -> Result<String, InputError> {
    let pem = input::read_pem(flag, path, max_len, what)?;
    x509::certificate_ders(&pem).map_err(|message| pem_error(flag, path, message))?;
    Ok(pem)
}

/// A PEM file of exactly one unencrypted private key.
fn read_key(path: &Path) -> Result<PrivateKey, InputError> {
    const FLAG: &str = "--key";
    let pem = input::read_pem(FLAG, path, MAX_KEY_PEM_LEN, "a private key")?;
    x509::private_key_der(&pem).map_err(|message| pem_error(FLAG, path, message))?;
    Ok(PrivateKey::new(pem))
}

fn pem_error(flag: &'static str, path: &Path, message: String) -> InputError {
    InputError::Pem {
        flag,
        path: path.display().to_string(),
        message,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::commands::fake_certificates::{DAY, certificate, private_key};

    fn files(dir: &tempfile::TempDir, files: &[(&str, &str)]) {
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
    }

    fn create_body(dir: &tempfile::TempDir, args: &[&str]) -> Result<CertificateBody, InputError> {
        let cli = Cli::try_parse_from(
            ["gatewayctl", "certificate", "create"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .unwrap();
        let Command::Certificate(CertificateCommand::Create(args)) = cli.command else {
            panic!("wrong command");
        };
        let path = |p: &Path| dir.path().join(p);
        CertificateBody::read(
            args.name,
            &path(&args.cert),
            Some(&path(&args.key)),
            CertificateSpecArgs {
                client_ca: args.spec.client_ca.as_deref().map(path),
                ..args.spec
            },
        )
    }

    #[test]
    fn body_from_flags_carries_the_key_but_debug_does_not_show_it() {
        let dir = tempfile::tempdir().unwrap();
        let now = x509::unix_now();
        let cert = certificate(&["api.test"], now - DAY, now + 90 * DAY);
        let ca = certificate(&["ca.test"], now - DAY, now + 900 * DAY);
        files(
            &dir,
            &[("c.pem", &cert), ("k.pem", &private_key()), ("ca.pem", &ca)],
        );
        let body = create_body(
            &dir,
            &[
                "api",
                "--cert",
                "c.pem",
                "--key",
                "k.pem",
                "--sni",
                "api.test",
                "--tag",
                "edge",
                "--client-ca",
                "ca.pem",
                "--client-auth",
                "optional",
                "--client-subject-header",
                "x-client-subject",
            ],
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({
                "name": "api",
                "tags": ["edge"],
                "cert": cert,
                "key": private_key(),
                "snis": ["api.test"],
                "client_auth": {"ca": ca, "mode": "optional", "subject_header": "x-client-subject"}
            })
        );
        assert!(!format!("{body:?}").contains("PRIVATE"), "{body:?}");
        // What the model reads back is what was meant, key included.
        let model: gateway_config::Certificate =
            serde_json::from_value(serde_json::to_value(&body).unwrap()).unwrap();
        assert_eq!(model.key.unwrap().pem(), private_key());
        assert_eq!(
            model.client_auth.unwrap().mode,
            gateway_config::ClientAuthMode::Optional
        );
    }

    #[test]
    fn minimal_body_leaves_names_and_client_auth_to_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let now = x509::unix_now();
        files(
            &dir,
            &[
                ("c.pem", &certificate(&["a.test"], now - DAY, now + DAY)),
                ("k.pem", &private_key()),
            ],
        );
        let body = create_body(&dir, &["a", "--cert", "c.pem", "--key", "k.pem"]).unwrap();
        let value = serde_json::to_value(&body).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["name", "cert", "key"]);

        // Without a key (replace), the field is left out rather than sent as null.
        let keyless = CertificateBody { key: None, ..body };
        assert!(serde_json::to_value(&keyless).unwrap().get("key").is_none());
    }

    #[test]
    fn wrong_files_are_named_before_anything_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let now = x509::unix_now();
        let cert = certificate(&["a.test"], now - DAY, now + DAY);
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        files(
            &dir,
            &[
                ("c.pem", &cert),
                ("k.pem", &private_key()),
                ("enc.pem", encrypted),
                ("big.pem", &"A".repeat(MAX_KEY_PEM_LEN + 1)),
            ],
        );
        let message = |args: &[&str]| create_body(&dir, args).unwrap_err().to_string();
        let at = |name: &str| dir.path().join(name).display().to_string();

        // Swapped: the key file is given as the chain.
        assert_eq!(
            message(&["a", "--cert", "k.pem", "--key", "c.pem"]),
            format!(
                "--cert {} holds no `-----BEGIN CERTIFICATE-----` block",
                at("k.pem")
            )
        );
        assert!(
            message(&["a", "--cert", "c.pem", "--key", "c.pem"])
                .starts_with(&format!("--key {} holds no private key block", at("c.pem")))
        );
        assert!(
            message(&["a", "--cert", "c.pem", "--key", "enc.pem"])
                .starts_with(&format!("--key {} is encrypted", at("enc.pem")))
        );
        assert_eq!(
            message(&["a", "--cert", "c.pem", "--key", "big.pem"]),
            format!(
                "--key {} is larger than 16 KiB (16384 bytes), the most the admin API takes for \
                 a private key",
                at("big.pem")
            )
        );
        assert!(
            message(&["a", "--cert", "missing.pem", "--key", "k.pem"])
                .starts_with(&format!("--cert {} cannot be read: ", at("missing.pem")))
        );
        assert!(
            message(&[
                "a",
                "--cert",
                "c.pem",
                "--key",
                "k.pem",
                "--client-ca",
                "k.pem"
            ])
            .starts_with(&format!("--client-ca {} holds no", at("k.pem")))
        );
    }
}
