//! Wiring of a worker process: restore the cached config, bind the proxy and status listeners,
//! start the sync client, and drain on SIGTERM or SIGINT (a second signal stops at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::{Cli, Switch};
use crate::drain::{self, Signal, Signals};
use crate::listener::settings::DEFAULT_MAX_CONNECTIONS;
use crate::listener::{self, Listener, ListenerSettings};
use crate::proxy::{Proxy, ProxySettings};
use crate::served::{NodeIdentity, State};
use crate::status;
use crate::sync::persist::CacheWriter;
use crate::sync::{self, Cache, ClientSecurity, SyncSettings, client::SyncError};
use crate::tls::Fallback;

/// How long a stopping worker waits for the cache file to take the revision it served last.
const CACHE_FLUSH_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    ControlPlane(#[from] SyncError),
    #[error("cannot listen for {what} on {addr}: {error}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
}

/// How the worker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Drained after a signal (possibly with some connections cut off at the deadline).
    Drained,
    /// A second signal arrived while draining.
    Forced(Signal),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Drained => 0,
            Exit::Forced(signal) => signal.exit_code(),
        }
    }
}

/// Runs the worker until SIGTERM or SIGINT, then drains and returns.
pub async fn run(cli: Cli) -> Result<Exit, RunError> {
    crate::crypto::install_process_default();
    let security = ClientSecurity::load(
        cli.control_plane_ca.as_deref(),
        cli.sync_client_cert.as_deref(),
        cli.sync_client_key.as_deref(),
        cli.cluster_token.clone(),
    )?;
    let max_push_bytes = cli.max_config_push.0;
    let cache = if cli.no_cache {
        None
    } else {
        let cache = match &cli.cache_file {
            Some(path) => Cache::new(path),
            None => Cache::default_for_group(&cli.group),
        };
        Some(cache.with_max_bytes(max_push_bytes))
    };
    let sync_settings =
        SyncSettings::new(&cli.control_plane, env!("CARGO_PKG_VERSION"), &security)?
            .with_max_push_bytes(max_push_bytes);
    let fallback = match &cli.tls_default_certificate {
        Some(name) => Fallback::Certificate(name.clone()),
        None => Fallback::Refuse,
    };
    let state = Arc::new(
        State::with_control_planes(
            NodeIdentity {
                id: cli.node_id(),
                group: cli.group.clone(),
            },
            sync_settings.urls(),
        )
        .with_tls_fallback(fallback),
    );
    let Signals { first, second } = Signals::install().map_err(RunError::Signal)?;

    tracing::info!(
        node_id = %state.node().id,
        group = %state.node().group,
        control_planes = %sync_settings.urls().join(","),
        cache = %cache.as_ref().map_or_else(|| "disabled".to_owned(), |c| c.path().display().to_string()),
        max_config_push = %cli.max_config_push,
        "starting data-plane worker"
    );
    let open_files = raise_open_file_limit();
    let max_connections = match cli.max_connections {
        0 => open_files.map_or(DEFAULT_MAX_CONNECTIONS, |limit| {
            usize::try_from(limit.saturating_sub(FILE_RESERVE) / 2)
                .unwrap_or(usize::MAX)
                .max(64)
        }),
        given => given,
    };
    tracing::info!(max_connections, "client connection limit");
    // Before listening, so that a restarted worker is ready from its first request.
    if let Some(cache) = &cache {
        cache.restore(&state);
    }
    let (cache_writer, cache_flush) = cache
        .map(|cache| CacheWriter::start(cache, state.clone()))
        .unzip();
    let sync_settings = sync_settings.with_cache(cache_writer);
    let proxy_listener = bind("the proxy", cli.listen).await?;
    let status_listener = bind("the status port", cli.status_listen).await?;
    log_listening("proxy", &proxy_listener);
    let mut listeners = vec![Listener {
        tcp: proxy_listener,
        tls: false,
    }];
    for addr in &cli.tls_listen {
        let tcp = bind("the proxy's TLS", *addr).await?;
        log_listening("proxy TLS", &tcp);
        listeners.push(Listener { tcp, tls: true });
    }
    log_listening("status", &status_listener);

    let (stopped_tx, stopped_rx) = watch::channel(false);
    let status_task = tokio::spawn(status::serve(
        status_listener,
        state.clone(),
        stopped(stopped_rx),
    ));
    let sync_task = tokio::spawn(sync::run(state.clone(), sync_settings));

    let proxy = Arc::new(Proxy::new(
        state.clone(),
        ProxySettings {
            trusted_proxies: cli.trusted_proxies.clone(),
            upstream_timeout: Duration::from_secs(cli.upstream_timeout),
            keep_underscored_headers: cli.keep_underscored_headers,
            body_read_timeout: cli.body_read_timeout,
            body_min_rate: cli.body_min_rate,
            https_redirect: cli.redirect_to_https,
            hsts: cli.hsts.clone(),
        },
    ));
    let requested = async move {
        if let Ok(signal) = first.await {
            tracing::info!(signal = signal.name(), "shutdown requested");
        }
    };
    let settings = ListenerSettings {
        drain_deadline: cli.drain_timeout,
        http1_fast_path: cli.http1_fast_path == Switch::On,
        max_connections,
        idle_timeout: cli.idle_timeout,
        max_requests_per_connection: cli.max_requests_per_connection,
        ..ListenerSettings::default()
    };
    let drain_state = state.clone();
    let serve = listener::serve_all(listeners, proxy, settings, async move {
        drain::stop_accepting(&drain_state, requested, cli.drain_delay).await
    });
    let exit = tokio::select! {
        report = serve => {
            if report.cut_off > 0 {
                tracing::warn!(cut_off = report.cut_off, "drain deadline cut off connections");
            }
            Exit::Drained
        }
        Ok(signal) = second => {
            tracing::warn!(signal = signal.name(), "second signal: stopping at once");
            Exit::Forced(signal)
        }
    };
    sync_task.abort();
    // A stopped worker restarts from the revision it served last, even without a control plane.
    if exit == Exit::Drained
        && let Some(flush) = cache_flush
    {
        flush.finish(CACHE_FLUSH_LIMIT).await;
    }
    let _ = stopped_tx.send(true);
    if exit == Exit::Drained
        && let Ok(Err(error)) = status_task.await
    {
        tracing::warn!(%error, "status port failed");
    }
    tracing::info!("worker stopped");
    Ok(exit)
}

/// Raises the soft limit on open files to the hard one: every client connection, upstream
/// connection and WebSocket tunnel holds descriptors, and a soft limit of 1,024 is reached by a
/// few hundred proxied WebSockets.
/// Returns the limit in force afterwards, when it can be read.
fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::info!(from = soft, to = hard, "raised the open-file limit");
                Some(hard)
            }
            Err(error) => {
                tracing::warn!(%error, soft, hard, "cannot raise the open-file limit");
                Some(soft)
            }
        },
        Ok((soft, _)) => {
            tracing::info!(limit = soft, "open-file limit");
            Some(soft)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit");
            None
        }
    }
}

/// Open files kept for everything but client connections: listeners, the cache, the control
/// plane, health checks, logs.
const FILE_RESERVE: u64 = 256;

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| RunError::Bind { what, addr, error })
}

fn log_listening(what: &str, listener: &TcpListener) {
    match listener.local_addr() {
        Ok(addr) => tracing::info!("{what} listening on {addr}"),
        Err(error) => tracing::warn!(%error, "{what} listener has no local address"),
    }
}

async fn stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stopped| *stopped).await;
}
