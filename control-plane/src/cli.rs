//! Command-line flags (each with a `GATEWAY_*` environment twin) and their checks.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The gateway control plane: admin API, config revisions and the ConfigSync server.
#[derive(Debug, Clone, Parser)]
#[command(name = "control-plane", version, about)]
pub struct Cli {
    /// Database URL: `postgres://user@host/db` or `sqlite://path?mode=rwc`.
    #[arg(
        long,
        env = "GATEWAY_DATABASE_URL",
        default_value = "sqlite://gateway.db?mode=rwc"
    )]
    pub database_url: String,

    /// Address of the admin API. Off loopback it needs TLS (--admin-tls-cert/--admin-tls-key)
    /// and an admin token (--admin-token-file, or one created before).
    #[arg(long, env = "GATEWAY_ADMIN_LISTEN", default_value = "127.0.0.1:8001")]
    pub admin_listen: SocketAddr,

    /// A file holding the first admin token (at least 32 characters, e.g. `openssl rand -hex
    /// 32`). Stored, as its hash, under the name `bootstrap` while no admin token exists;
    /// ignored once one does.
    #[arg(long, env = "GATEWAY_ADMIN_TOKEN_FILE", conflicts_with = "admin_token")]
    pub admin_token_file: Option<PathBuf>,

    /// The first admin token itself, as for --admin-token-file (which keeps it out of the
    /// process list).
    #[arg(long, env = "GATEWAY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// PEM certificate chain served on the admin API listener (TLS).
    #[arg(long, env = "GATEWAY_ADMIN_TLS_CERT", requires = "admin_tls_key")]
    pub admin_tls_cert: Option<PathBuf>,

    /// PEM private key of `--admin-tls-cert`.
    #[arg(long, env = "GATEWAY_ADMIN_TLS_KEY", requires = "admin_tls_cert")]
    pub admin_tls_key: Option<PathBuf>,

    /// Once tokens exist, also require one (any role) for /metrics and /openapi.json; without
    /// this they stay open, like /healthz and /readyz.
    #[arg(long, env = "GATEWAY_ADMIN_PROTECT_METRICS")]
    pub admin_protect_metrics: bool,

    /// Address of the ConfigSync gRPC server that workers connect to.
    #[arg(long, env = "GATEWAY_SYNC_LISTEN", default_value = "127.0.0.1:8005")]
    pub sync_listen: SocketAddr,

    /// How many of the newest revisions are kept; older ones are pruned.
    #[arg(long, env = "GATEWAY_REVISION_RETENTION", default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..))]
    pub revision_retention: i64,

    /// PEM certificate chain served on the ConfigSync listener (TLS).
    #[arg(long, env = "GATEWAY_SYNC_TLS_CERT", requires = "sync_tls_key")]
    pub sync_tls_cert: Option<PathBuf>,

    /// PEM private key of `--sync-tls-cert`.
    #[arg(long, env = "GATEWAY_SYNC_TLS_KEY", requires = "sync_tls_cert")]
    pub sync_tls_key: Option<PathBuf>,

    /// PEM CA that worker client certificates must be signed by (mutual TLS).
    #[arg(long, env = "GATEWAY_SYNC_CLIENT_CA", requires = "sync_tls_cert")]
    pub sync_client_ca: Option<PathBuf>,

    /// Shared secret workers must send as `authorization: Bearer <token>`.
    #[arg(long, env = "GATEWAY_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,

    /// The largest body `PUT /v1/config` takes: bytes, or a number with KiB, MiB or GiB. The
    /// default takes the export of 100,000 routes (31 MB as compact JSON, as gatewayctl sends
    /// it; 57 MB pretty-printed) with room for richer routes. YAML aliases may not make a
    /// document larger than this either. Entity bodies take at most 2 MiB.
    #[arg(
        long,
        env = "GATEWAY_CONFIG_BODY_LIMIT",
        default_value = "64MiB",
        value_parser = parse_body_limit
    )]
    pub config_body_limit: usize,

    /// Key-encryption keys that seal the private keys of certificates in the database: a file of
    /// 64-hex-digit keys, one per line, the first sealing and every one opening (put a new key
    /// first to rotate). Required on PostgreSQL to store certificates (every replica needs the
    /// same file); on SQLite, a file beside the database (`<database>.kek`) is generated at
    /// the first start when none is given.
    #[arg(long, env = "GATEWAY_KEY_ENCRYPTION_KEY_FILE")]
    pub key_encryption_key_file: Option<PathBuf>,

    /// Log line format on stdout.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The smallest and largest `--config-body-limit`: below 1 KiB not even a few routes fit, and
/// above 1 GiB one apply could hold gigabytes of memory.
const BODY_LIMIT_RANGE: std::ops::RangeInclusive<u64> = 1024..=1024 * 1024 * 1024;

/// `65536`, `512KiB`, `64MiB`, `1GiB`.
fn parse_body_limit(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, unit) = [("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)]
        .into_iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|d| (d.trim_end(), unit)))
        .unwrap_or((text, 1));
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| {
            format!("`{text}` is not a size: use bytes, or a number with KiB, MiB or GiB")
        })?;
    if !BODY_LIMIT_RANGE.contains(&bytes) {
        return Err(format!("`{text}` is outside 1KiB to 1GiB"));
    }
    usize::try_from(bytes).map_err(|_| format!("`{text}` is too large for this machine"))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error(
        "--admin-listen {0}: tokens would travel in plaintext; set --admin-tls-cert and --admin-tls-key, or listen on a loopback address"
    )]
    AdminNeedsTls(SocketAddr),
    #[error(
        "--admin-listen {0}: the admin API has no tokens, so anyone could change the config; give the first one with --admin-token-file, or listen on a loopback address"
    )]
    AdminNeedsToken(SocketAddr),
    #[error("the first admin token {0}")]
    WeakAdminToken(String),
    #[error("--admin-token-file {path}: {message}")]
    AdminTokenFile { path: String, message: String },
    #[error("--database-url: unsupported scheme in `{0}`; use postgres://… or sqlite://…")]
    UnknownScheme(String),
    #[error(
        "--sync-listen {0}: workers' config would travel in plaintext; set --sync-tls-cert and --sync-tls-key, or listen on a loopback address"
    )]
    SyncNeedsTls(SocketAddr),
    #[error("--cluster-token must not be empty")]
    EmptyToken,
}

impl Cli {
    /// Checks what clap cannot: the admin address and the database URL scheme.
    pub(crate) fn check(&self) -> Result<(), SettingsError> {
        if !self.admin_listen.ip().is_loopback() && self.admin_tls_cert.is_none() {
            return Err(SettingsError::AdminNeedsTls(self.admin_listen));
        }
        let url = self.database_url.as_str();
        let known = ["postgres://", "postgresql://", "sqlite:"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        if !known {
            // Only the scheme is echoed: the rest may hold a password.
            let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
            return Err(SettingsError::UnknownScheme(scheme.to_owned()));
        }
        if !self.sync_listen.ip().is_loopback() && self.sync_tls_cert.is_none() {
            return Err(SettingsError::SyncNeedsTls(self.sync_listen));
        }
        if self
            .cluster_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(SettingsError::EmptyToken);
        }
        Ok(())
    }

    /// The first admin token given by flag, environment or file, checked.
    pub(crate) fn admin_token_secret(&self) -> Result<Option<String>, SettingsError> {
        let secret = match (&self.admin_token, &self.admin_token_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    SettingsError::AdminTokenFile {
                        path: path.display().to_string(),
                        message: error.to_string(),
                    }
                })?;
                text.trim_end_matches(['\r', '\n']).to_owned()
            }
            (None, None) => return Ok(None),
        };
        crate::tokens::secret::check_given(&secret).map_err(SettingsError::WeakAdminToken)?;
        Ok(Some(secret))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("control-plane").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_are_local() {
        let cli = parse(&[]);
        assert_eq!(cli.admin_listen.to_string(), "127.0.0.1:8001");
        assert_eq!(cli.sync_listen.to_string(), "127.0.0.1:8005");
        assert!(cli.check().is_ok());
    }

    #[test]
    fn admin_api_off_loopback_needs_tls() {
        let cli = parse(&["--admin-listen", "0.0.0.0:8001"]);
        assert!(matches!(cli.check(), Err(SettingsError::AdminNeedsTls(_))));
        assert!(parse(&["--admin-listen", "[::1]:0"]).check().is_ok());
        let tls = parse(&[
            "--admin-listen",
            "0.0.0.0:8001",
            "--admin-tls-cert",
            "c.pem",
            "--admin-tls-key",
            "k.pem",
        ]);
        assert!(tls.check().is_ok());
    }

    #[test]
    fn the_first_admin_token_must_be_long_and_is_read_from_its_file() {
        assert_eq!(parse(&[]).admin_token_secret().unwrap(), None);
        let weak = parse(&["--admin-token", "secret"]).admin_token_secret();
        assert!(
            matches!(weak, Err(SettingsError::WeakAdminToken(_))),
            "{weak:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{}\n", "t".repeat(40))).unwrap();
        let cli = parse(&["--admin-token-file", path.to_str().unwrap()]);
        assert_eq!(cli.admin_token_secret().unwrap(), Some("t".repeat(40)));
        let missing = parse(&["--admin-token-file", "/nonexistent/token"]).admin_token_secret();
        assert!(matches!(missing, Err(SettingsError::AdminTokenFile { .. })));
    }

    #[test]
    fn unknown_database_schemes_are_refused() {
        let cli = parse(&["--database-url", "mysql://root:secret@db/gw"]);
        assert_eq!(
            cli.check(),
            Err(SettingsError::UnknownScheme("mysql".into()))
        );
        assert!(
            parse(&["--database-url", "postgres://u@h/db"])
                .check()
                .is_ok()
        );
    }

    #[test]
    fn public_sync_listener_needs_tls() {
        let cli = parse(&["--sync-listen", "0.0.0.0:8005"]);
        assert!(matches!(cli.check(), Err(SettingsError::SyncNeedsTls(_))));
        let tls = parse(&[
            "--sync-listen",
            "0.0.0.0:8005",
            "--sync-tls-cert",
            "c.pem",
            "--sync-tls-key",
            "k.pem",
        ]);
        assert!(tls.check().is_ok());
        let args = ["control-plane", "--sync-tls-cert", "c.pem"];
        assert!(Cli::try_parse_from(args).is_err());
        assert_eq!(parse(&[]).revision_retention, 1000);
        let args = ["control-plane", "--revision-retention", "0"];
        assert!(Cli::try_parse_from(args).is_err());
    }

    #[test]
    fn body_limits_take_sizes() {
        assert_eq!(parse(&[]).config_body_limit, 64 * 1024 * 1024);
        let sizes = [
            ("65536", 65536),
            ("512KiB", 512 * 1024),
            ("2 MiB", 2 << 20),
            ("1GiB", 1 << 30),
        ];
        for (text, bytes) in sizes {
            assert_eq!(
                parse(&["--config-body-limit", text]).config_body_limit,
                bytes,
                "{text}"
            );
        }
        for text in [
            "0",
            "1023",
            "2GiB",
            "64MB",
            "-1",
            "lots",
            "99999999999999999999GiB",
        ] {
            let args = ["control-plane", "--config-body-limit", text];
            assert!(Cli::try_parse_from(args).is_err(), "{text}");
        }
    }

    #[test]
    fn bad_addresses_fail_to_parse() {
        let args = ["control-plane", "--sync-listen", "nowhere"];
        assert!(Cli::try_parse_from(args).is_err());
    }
}
