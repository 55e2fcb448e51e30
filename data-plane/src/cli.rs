//! Command-line flags of the worker, each with a `GATEWAY_*` environment twin.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use gateway_proto::{MAX_CONFIG_PUSH_BYTES, PROTOBUF_MAX_MESSAGE_BYTES};
use ipnet::IpNet;

/// Gateway data-plane worker: proxies traffic with the configuration pushed by the control plane.
#[derive(Debug, Clone, Parser)]
#[command(name = "data-plane", version, about)]
pub struct Cli {
    /// Address the proxy listens on (HTTP/1.1 and h2c on one port).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: SocketAddr,

    /// Addresses the proxy serves TLS on (comma-separated in the environment; off by default):
    /// HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2 and 1.3, with the certificates of the config
    /// chosen by the server name the client sends.
    #[arg(long, env = "GATEWAY_TLS_LISTEN", value_delimiter = ',')]
    pub tls_listen: Vec<SocketAddr>,

    /// The certificate (by name) served to TLS clients that send no server name or one no
    /// certificate covers; without it, their handshakes are refused.
    #[arg(long, env = "GATEWAY_TLS_DEFAULT_CERTIFICATE")]
    pub tls_default_certificate: Option<String>,

    /// Answer plain-HTTP requests with a permanent redirect (308) to HTTPS on this port (443 is
    /// left out of the URL). ACME HTTP-01 challenges (`/.well-known/acme-challenge/`) are still
    /// proxied.
    #[arg(long, env = "GATEWAY_REDIRECT_TO_HTTPS", value_parser = clap::value_parser!(u16).range(1..))]
    pub redirect_to_https: Option<u16>,

    /// `Strict-Transport-Security` value added to responses over TLS that lack one, e.g.
    /// `max-age=31536000; includeSubDomains`.
    #[arg(long, env = "GATEWAY_HSTS", value_parser = parse_header_value)]
    pub hsts: Option<http::HeaderValue>,

    /// Address of the status port (/healthz, /readyz, /status).
    #[arg(long, env = "GATEWAY_STATUS_LISTEN", default_value = "127.0.0.1:8100")]
    pub status_listen: SocketAddr,

    /// ConfigSync endpoints of the control planes (comma-separated http:// or https:// URLs),
    /// tried in turn starting from a random one.
    #[arg(
        long,
        env = "GATEWAY_CONTROL_PLANE",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8005"
    )]
    pub control_plane: Vec<String>,

    /// PEM CA bundle that signs the control planes' certificates; required for https:// URLs.
    #[arg(long, env = "GATEWAY_CONTROL_PLANE_CA")]
    pub control_plane_ca: Option<PathBuf>,

    /// PEM client certificate chain presented to the control plane (mTLS).
    #[arg(long, env = "GATEWAY_SYNC_CLIENT_CERT", requires = "sync_client_key")]
    pub sync_client_cert: Option<PathBuf>,

    /// PEM private key of --sync-client-cert.
    #[arg(long, env = "GATEWAY_SYNC_CLIENT_KEY", requires = "sync_client_cert")]
    pub sync_client_key: Option<PathBuf>,

    /// Token sent to the control plane as `authorization: Bearer <token>`.
    #[arg(long, env = "GATEWAY_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,

    /// File that keeps the last applied config for the next start
    /// (default: gateway-cache/<group>.pb under the working directory).
    #[arg(long, env = "GATEWAY_CACHE_FILE")]
    pub cache_file: Option<PathBuf>,

    /// Neither read nor write the config cache.
    #[arg(long, env = "GATEWAY_NO_CACHE", conflicts_with = "cache_file")]
    pub no_cache: bool,

    /// Largest config push accepted from the control plane, and largest cache file read, in
    /// bytes or with a KiB, MiB or GiB suffix. The default is the most a control plane sends;
    /// raise it only for a control plane that allows larger configs.
    #[arg(long, env = "GATEWAY_MAX_CONFIG_PUSH", default_value_t = ByteSize(MAX_CONFIG_PUSH_BYTES), value_parser = parse_push_limit)]
    pub max_config_push: ByteSize,

    /// After SIGTERM, how long to keep accepting connections while reporting not ready, so that
    /// load balancers stop sending new ones (e.g. `5s`, `500ms`; a bare number is seconds).
    #[arg(long, env = "GATEWAY_DRAIN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub drain_delay: Duration,

    /// After accepting stopped, how long in-flight requests may still run.
    #[arg(long, env = "GATEWAY_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Node id reported to the control plane; unique per process (default: <hostname>-<8 hex>).
    #[arg(long, env = "GATEWAY_NODE_ID")]
    pub node_id: Option<String>,

    /// Group of workers that serve the same traffic.
    #[arg(long, env = "GATEWAY_GROUP", default_value = "default")]
    pub group: String,

    /// Peers whose X-Forwarded-* headers are trusted (comma-separated CIDRs).
    #[arg(long, env = "GATEWAY_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// Seconds to wait for an upstream's response headers before answering 504.
    #[arg(long, env = "GATEWAY_UPSTREAM_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_timeout: u64,

    /// How long a client may send nothing of a request body it is sending before it is
    /// answered 408 and its connection closed (and the upstream request abandoned).
    #[arg(long, env = "GATEWAY_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// Bytes a second a request body must average once the worker has waited for it longer
    /// than the body read timeout (time the upstream takes to read it does not count); a
    /// slower client is answered 408 and its connection closed. 0: no minimum.
    #[arg(long, env = "GATEWAY_BODY_MIN_RATE", default_value_t = 500)]
    pub body_min_rate: u64,

    /// How long a kept-alive client connection may have no request in flight before it is
    /// closed (HTTP/2 with GOAWAY). A new connection has the 10 s head timeout to start its
    /// first request; the head timeout runs from a head's first byte.
    #[arg(long, env = "GATEWAY_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Requests served on one client connection before it is closed (HTTP/1 with
    /// `Connection: close` on the last response, HTTP/2 with GOAWAY); 0: no limit.
    #[arg(
        long,
        env = "GATEWAY_MAX_REQUESTS_PER_CONNECTION",
        default_value_t = 1000
    )]
    pub max_requests_per_connection: usize,

    /// Client connections open at once; at the limit the worker stops accepting until one
    /// closes. 0: half the open-file limit, less a reserve (each proxied connection may also
    /// hold one to an upstream).
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Forward request header fields whose names contain `_`. They are dropped by default:
    /// many backends read `X_Forwarded_For` as `X-Forwarded-For`.
    #[arg(long, env = "GATEWAY_KEEP_UNDERSCORED_HEADERS")]
    pub keep_underscored_headers: bool,

    /// Whether requests without a body are served by the worker's own HTTP/1 code (`on`), or
    /// every request by hyper (`off`); both apply the same rules.
    #[arg(long, env = "GATEWAY_HTTP1_FAST_PATH", value_enum, default_value_t = Switch::On)]
    pub http1_fast_path: Switch,

    /// Runtime worker threads (default: one per core); with 1, everything runs on one thread.
    #[arg(long, env = "GATEWAY_WORKER_THREADS")]
    pub worker_threads: Option<NonZeroUsize>,

    /// Log line format.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_header_value(text: &str) -> Result<http::HeaderValue, String> {
    http::HeaderValue::from_str(text.trim())
        .map_err(|_| format!("`{text}` cannot be a header value (control characters)"))
}

/// A size in bytes, written as a bare number or with a binary unit (`512MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match UNITS
            .iter()
            .find(|(_, scale)| self.0 >= *scale && self.0.is_multiple_of(*scale))
        {
            Some((unit, scale)) => write!(f, "{}{unit}", self.0 / scale),
            None => write!(f, "{}", self.0),
        }
    }
}

/// `1048576`, `1024KiB`, `256MiB`, `1GiB`.
pub fn parse_byte_size(text: &str) -> Result<ByteSize, String> {
    let text = text.trim();
    let invalid = || format!("`{text}` is not a size (e.g. 268435456, 512MiB, 1GiB)");
    let (number, scale) = UNITS
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((text, 1));
    let number: usize = number.trim().parse().map_err(|_| invalid())?;
    number.checked_mul(scale).map(ByteSize).ok_or_else(invalid)
}

/// A push limit: never below what a control plane may send (the worker would then refuse
/// configs the control plane accepted, and never converge), never above what protobuf can
/// encode.
fn parse_push_limit(text: &str) -> Result<ByteSize, String> {
    let size = parse_byte_size(text)?;
    if size.0 < MAX_CONFIG_PUSH_BYTES {
        return Err(format!(
            "{size} is below the {} a control plane may push; \
             a smaller limit would refuse configs the control plane accepted",
            ByteSize(MAX_CONFIG_PUSH_BYTES)
        ));
    }
    if size.0 > PROTOBUF_MAX_MESSAGE_BYTES {
        return Err(format!(
            "{size} is more than a protobuf message can hold (less than 2GiB)"
        ));
    }
    Ok(size)
}

impl Cli {
    /// The configured node id, or a fresh `<hostname>-<8 hex>` one.
    pub fn node_id(&self) -> String {
        match &self.node_id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => generated_node_id(),
        }
    }
}

/// `1.5`, `30s`, `500ms`, `2m`: a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 500ms, 2m)"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 500ms, 2m)"))
}

fn generated_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_lists() {
        let cli = Cli::try_parse_from([
            "data-plane",
            "--trusted-proxies",
            "10.0.0.0/8,192.168.1.1/32",
        ])
        .unwrap();
        assert_eq!(cli.listen.port(), 8000);
        assert_eq!(cli.trusted_proxies.len(), 2);
        assert_eq!(cli.group, "default");
        let a = cli.node_id();
        assert_ne!(a, cli.node_id(), "generated ids are unique");
        assert!(Cli::try_parse_from(["data-plane", "--trusted-proxies", "nope"]).is_err());
        assert!(Cli::try_parse_from(["data-plane", "--listen", "nope"]).is_err());
        assert_eq!(cli.control_plane, ["http://127.0.0.1:8005"]);
        assert_eq!(cli.drain_delay, Duration::ZERO);
        assert_eq!(cli.drain_timeout, Duration::from_secs(30));
        assert!(!cli.no_cache && cli.cache_file.is_none());
        assert_eq!(cli.http1_fast_path, Switch::On);
        let off = Cli::try_parse_from(["data-plane", "--http1-fast-path", "off"]).unwrap();
        assert_eq!(off.http1_fast_path, Switch::Off);
        assert!(Cli::try_parse_from(["data-plane", "--http1-fast-path", "maybe"]).is_err());
        assert_eq!(cli.max_config_push, ByteSize(MAX_CONFIG_PUSH_BYTES));
    }

    #[test]
    fn push_limit_can_only_be_raised() {
        let parse = |value: &str| {
            Cli::try_parse_from(["data-plane", "--max-config-push", value])
                .map(|cli| cli.max_config_push.0)
        };
        assert_eq!(parse("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse("268435456").unwrap(), MAX_CONFIG_PUSH_BYTES);
        let lower = parse("4MiB").unwrap_err().to_string();
        assert!(lower.contains("below the 256MiB"), "{lower}");
        assert!(parse("2GiB").is_err(), "protobuf cannot hold 2 GiB");
        assert!(parse("lots").is_err());
        assert!(parse("99999999999999999999GiB").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("1024KiB"), Ok(ByteSize(1 << 20)));
        assert_eq!(parse_byte_size(" 7 "), Ok(ByteSize(7)));
        assert_eq!(ByteSize(256 << 20).to_string(), "256MiB");
        assert_eq!(ByteSize(1536).to_string(), "1536");
        assert_eq!(ByteSize(3 << 30).to_string(), "3GiB");
        assert!(parse_byte_size("1.5GiB").is_err());
        assert!(parse_byte_size("-1").is_err());
    }

    #[test]
    fn sync_and_drain_flags() {
        let cli = Cli::try_parse_from([
            "data-plane",
            "--control-plane",
            "https://a:8005,https://b:8005",
            "--control-plane-ca",
            "ca.pem",
            "--sync-client-cert",
            "c.pem",
            "--sync-client-key",
            "k.pem",
            "--drain-delay",
            "500ms",
            "--drain-timeout",
            "2",
            "--no-cache",
        ])
        .unwrap();
        assert_eq!(cli.control_plane, ["https://a:8005", "https://b:8005"]);
        assert_eq!(cli.drain_delay, Duration::from_millis(500));
        assert_eq!(cli.drain_timeout, Duration::from_secs(2));
        assert!(cli.no_cache);
        assert!(
            Cli::try_parse_from(["data-plane", "--sync-client-cert", "c.pem"]).is_err(),
            "a certificate needs its key"
        );
        assert!(Cli::try_parse_from(["data-plane", "--no-cache", "--cache-file", "x"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
