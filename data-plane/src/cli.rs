//! Command-line flags of the worker, each with a `GATEWAY_*` environment twin.

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use clap::{Parser, ValueEnum};
use ipnet::IpNet;

/// Gateway data-plane worker: proxies traffic with the configuration pushed by the control plane.
#[derive(Debug, Clone, Parser)]
#[command(name = "data-plane", version, about)]
pub struct Cli {
    /// Address the proxy listens on (HTTP/1.1 and h2c on one port).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: SocketAddr,

    /// Address of the status port (/healthz, /readyz, /status).
    #[arg(long, env = "GATEWAY_STATUS_LISTEN", default_value = "127.0.0.1:8100")]
    pub status_listen: SocketAddr,

    /// ConfigSync endpoint of the control plane.
    #[arg(
        long,
        env = "GATEWAY_CONTROL_PLANE",
        default_value = "http://127.0.0.1:8005"
    )]
    pub control_plane: String,

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

    /// Runtime worker threads (default: one per core).
    #[arg(long, env = "GATEWAY_WORKER_THREADS")]
    pub worker_threads: Option<NonZeroUsize>,

    /// Log line format.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
    }
}
