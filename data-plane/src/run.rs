//! Wiring of a worker process: bind the proxy and status listeners, start the sync client, and
//! stop gracefully on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::Cli;
use crate::listener::{self, ListenerSettings};
use crate::proxy::{Proxy, ProxySettings};
use crate::state::{NodeIdentity, State};
use crate::status;
use crate::sync::{self, SyncSettings, client::SyncError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    ControlPlane(#[from] SyncError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
}

/// Runs the worker until SIGTERM or SIGINT, then drains and returns.
pub async fn run(cli: Cli) -> Result<(), RunError> {
    let sync_settings = SyncSettings::new(&cli.control_plane, env!("CARGO_PKG_VERSION"))?;
    let state = Arc::new(State::new(NodeIdentity {
        id: cli.node_id(),
        group: cli.group.clone(),
    }));
    let proxy_listener = bind("the proxy", cli.listen).await?;
    let status_listener = bind("the status port", cli.status_listen).await?;
    let stop = shutdown_signal()?;

    tracing::info!(
        node_id = %state.node().id,
        group = %state.node().group,
        control_plane = %cli.control_plane,
        "starting data-plane worker"
    );
    log_listening("proxy", &proxy_listener);
    log_listening("status", &status_listener);

    let (stopping_tx, stopping_rx) = watch::channel(false);
    let status_task = tokio::spawn(status::serve(
        status_listener,
        state.clone(),
        stopped(stopping_rx.clone()),
    ));
    let sync_task = tokio::spawn(sync::run(state.clone(), sync_settings));

    let proxy = Arc::new(Proxy::new(
        state,
        ProxySettings {
            trusted_proxies: cli.trusted_proxies.clone(),
            upstream_timeout: Duration::from_secs(cli.upstream_timeout),
            ..ProxySettings::default()
        },
    ));
    let shutdown = async move {
        stop.await;
        tracing::info!("shutdown requested");
        let _ = stopping_tx.send(true);
    };
    listener::serve(proxy_listener, proxy, ListenerSettings::default(), shutdown).await;
    sync_task.abort();
    if let Ok(Err(error)) = status_task.await {
        tracing::warn!(%error, "status port failed");
    }
    tracing::info!("worker stopped");
    Ok(())
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { what, addr, source })
}

fn log_listening(what: &str, listener: &TcpListener) {
    match listener.local_addr() {
        Ok(addr) => tracing::info!("{what} listening on {addr}"),
        Err(error) => tracing::warn!(%error, "{what} listener has no local address"),
    }
}

async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}

/// Completes on the first SIGTERM or SIGINT. Handlers are installed before returning so that a
/// signal arriving during start-up is not lost.
fn shutdown_signal() -> Result<impl Future<Output = ()>, RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
