//! The gateway control plane: stores the desired configuration as numbered revisions, serves
//! the admin API over it, and pushes every new revision to data-plane workers over ConfigSync.
//!
//! Below this root, modules import one way: `store` (the database) ← `snapshot` (one revision in
//! memory) ← `delta` (what changed between two) ← `hub` (the latest snapshot, shared by every
//! stream) ← `batcher` (runs queued writes in batches and publishes them) ← `service` (the
//! writes callers make) ← `api` (HTTP). `sync` (ConfigSync)
//! stands beside `service` on the hub and the store; `metrics` needs nothing, and `nodes` and
//! `tokens` (who may call the admin API) only the store. Only the flags and [`run`] are public: the binary needs nothing else.

pub(crate) mod api;
pub(crate) mod batcher;
pub mod cli;
pub(crate) mod delta;
pub(crate) mod hub;
pub(crate) mod kek;
pub(crate) mod metrics;
pub(crate) mod nodes;
pub(crate) mod service;
pub(crate) mod shutdown;
pub(crate) mod snapshot;
pub(crate) mod store;
pub(crate) mod sync;
pub(crate) mod tokens;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;

use axum::serve::ListenerExt;

use crate::api::{AppState, OpenEndpoints};
use crate::cli::{Cli, SettingsError};
use crate::hub::SnapshotHub;
use crate::kek::{KekError, Keyring};
use crate::metrics::Metrics;
use crate::service::ConfigService;
use crate::store::{Store, StoreError};
use crate::sync::tls::{TlsError, TlsListener};
use crate::sync::{SyncAuth, SyncService};
use crate::tokens::{Bootstrap, Tokens};

/// How long open connections and streams get to finish after a shutdown signal.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Why the control plane could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("config sync TLS: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error("cannot listen on {addr} for the {what}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what} failed: {message}")]
    Serve { what: &'static str, message: String },
}

/// The keyring given by `--key-encryption-key-file`, or on an embedded SQLite database the one
/// beside it (generated on the first start); None on PostgreSQL without the flag.
fn keyring(cli: &Cli) -> Result<Option<Keyring>, RunError> {
    if let Some(path) = &cli.key_encryption_key_file {
        let keyring = Keyring::load(path)?;
        tracing::info!(
            path = %path.display(),
            sealing_key = keyring.sealing_key_id(),
            "private keys are sealed with the given key-encryption key"
        );
        return Ok(Some(keyring));
    }
    let Some(path) = kek::default_path_for_sqlite(&cli.database_url) else {
        tracing::info!(
            "no key-encryption key (--key-encryption-key-file): certificates with private keys \
             cannot be stored"
        );
        return Ok(None);
    };
    let (keyring, created) = Keyring::load_or_create(&path)?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "generated a key-encryption key for the private keys of certificates; back it up \
             apart from the database: without it no stored private key can be read"
        );
    } else {
        tracing::info!(
            path = %path.display(),
            sealing_key = keyring.sealing_key_id(),
            "private keys are sealed with the key-encryption key beside the database"
        );
    }
    Ok(Some(keyring))
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { what, addr, source })
}

/// Runs both servers until `signal` completes, then stops them gracefully.
pub async fn run(cli: Cli, signal: impl Future<Output = ()>) -> Result<(), RunError> {
    cli.check()?;
    let tls = match (&cli.sync_tls_cert, &cli.sync_tls_key) {
        (Some(cert), Some(key)) => Some(sync::tls::server_config(
            cert,
            key,
            cli.sync_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let mut store = Store::connect(&cli.database_url)
        .await?
        .with_retention(cli.revision_retention);
    if let Some(keyring) = keyring(&cli)? {
        store = store.with_keyring(Arc::new(keyring));
        let resealed = store.reseal_stale_keys().await?;
        if resealed > 0 {
            tracing::info!(
                rows = resealed,
                "sealed stored private keys again with the first key-encryption key"
            );
        }
    }
    let latest = store.latest_config().await?;
    tracing::info!(revision = latest.revision, "loaded the latest config");
    let hub = SnapshotHub::new(latest.into());
    let tokens = admin_tokens(&cli, &store).await?;

    let admin = bind(cli.admin_listen, "admin API").await?;
    let admin_addr = admin.local_addr().map_err(|source| RunError::Bind {
        what: "admin API",
        addr: cli.admin_listen,
        source,
    })?;
    let sync = bind(cli.sync_listen, "config sync").await?;
    let sync_addr = sync.local_addr().map_err(|source| RunError::Bind {
        what: "config sync",
        addr: cli.sync_listen,
        source,
    })?;
    let admin_tls = match (&cli.admin_tls_cert, &cli.admin_tls_key) {
        (Some(cert), Some(key)) => Some(sync::tls::admin_config(cert, key)?),
        _ => None,
    };
    tracing::info!("admin API listening on {admin_addr}");
    tracing::info!(
        tls = admin_tls.is_some(),
        tokens = tokens.required(),
        "admin API security"
    );
    tracing::info!("config sync listening on {sync_addr}");

    let (stop, stopped) = watch::channel(false);
    let replica = store.replica().clone();
    tracing::info!(replica = %replica, "control plane started");

    let poller = tokio::spawn(hub.clone().poll(store.clone(), stopped.clone()));
    let listener = store.postgres_url().map(|url| {
        let listening = hub
            .clone()
            .listen(url.to_owned(), replica.clone(), stopped.clone());
        tokio::spawn(listening)
    });
    let metrics = Metrics::new();
    let refresher = tokio::spawn(tokens.clone().keep_fresh(stopped.clone()));
    let open_endpoints = if cli.admin_protect_metrics {
        OpenEndpoints::Probes
    } else {
        OpenEndpoints::ProbesMetricsAndSchema
    };
    let router = api::router(
        AppState {
            service: ConfigService::new(store.clone(), hub.clone()),
            metrics: metrics.clone(),
            tokens,
            open_endpoints,
        },
        api::Limits::new(cli.config_body_limit),
    );
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let admin_stopped = stopped.clone();
    let admin_server = async move {
        match admin_tls {
            Some(config) => {
                let listener = TlsListener::new(admin, config, admin_stopped.clone(), "admin API")?;
                // tap_io: axum gives connect info to any listener it wraps.
                axum::serve(listener.tap_io(|_| ()), app)
                    .with_graceful_shutdown(wait(admin_stopped))
                    .await
            }
            None => {
                axum::serve(admin, app)
                    .with_graceful_shutdown(wait(admin_stopped))
                    .await
            }
        }
    };
    let auth = SyncAuth {
        token: cli.cluster_token.clone(),
        require_client_cert: cli.sync_client_ca.is_some(),
    };
    if tls.is_none() && auth.token.is_some() {
        tracing::warn!("the cluster token travels in plaintext: config sync has no TLS");
    }
    let service = SyncService::new(store, hub, replica, stopped.clone())
        .with_metrics(metrics)
        .with_auth(auth)
        .over_tls(tls.is_some())
        .into_server();
    let sync_server = async {
        let builder = tonic::transport::Server::builder().add_service(service);
        match tls {
            Some(config) => {
                builder
                    .serve_with_incoming_shutdown(
                        sync::tls::incoming(sync, config, stopped.clone()),
                        wait(stopped.clone()),
                    )
                    .await
            }
            None => {
                builder
                    .serve_with_incoming_shutdown(
                        TcpListenerStream::new(sync),
                        wait(stopped.clone()),
                    )
                    .await
            }
        }
    };

    let servers = async {
        tokio::try_join!(
            async {
                admin_server.await.map_err(|e| RunError::Serve {
                    what: "admin API",
                    message: e.to_string(),
                })
            },
            async {
                sync_server.await.map_err(|e| RunError::Serve {
                    what: "config sync",
                    message: e.to_string(),
                })
            },
        )
    };
    tokio::pin!(servers);
    let result = tokio::select! {
        result = &mut servers => result.map(|_| ()),
        () = signal => {
            tracing::info!("shutting down");
            let _ = stop.send(true);
            match tokio::time::timeout(SHUTDOWN_DEADLINE, &mut servers).await {
                Ok(result) => result.map(|_| ()),
                Err(_) => {
                    tracing::warn!("connections still open at the shutdown deadline; closing them");
                    Ok(())
                }
            }
        }
    };
    let _ = stop.send(true);
    let _ = poller.await;
    let _ = refresher.await;
    if let Some(listener) = listener {
        let _ = listener.await;
    }
    result
}

/// The admin API's tokens, with the first admin token stored if one was given and none exists.
/// Off loopback, the admin API does not start without a token.
async fn admin_tokens(cli: &Cli, store: &Store) -> Result<Tokens, RunError> {
    let tokens = Tokens::load(store.clone()).await?;
    if let Some(secret) = cli.admin_token_secret()? {
        match tokens.bootstrap(&secret).await? {
            Bootstrap::Stored => {
                tracing::info!("stored the first admin token as `bootstrap`");
            }
            Bootstrap::AdminExists => tracing::info!(
                "an admin token exists; the first admin token given at start was not stored"
            ),
        }
    }
    if !tokens.required() {
        if !cli.admin_listen.ip().is_loopback() {
            return Err(SettingsError::AdminNeedsToken(cli.admin_listen).into());
        }
        tracing::warn!(
            "the admin API has no tokens: any process on this machine may change the config; \
             give one with --admin-token-file or create one with `gatewayctl token create`"
        );
    }
    Ok(tokens)
}

async fn wait(mut stopped: watch::Receiver<bool>) {
    shutdown::stopping(&mut stopped).await;
}
