//! The worker's status port: liveness, readiness (ready only while a config is served, its
//! certificates loaded with it since they are compiled and swapped in together, and the worker
//! is not draining), Prometheus metrics, and a JSON summary of what the worker serves,
//! where that config came from and how its link to the control plane is doing.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::served::{Source, State};

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct StatusReport {
    pub node_id: String,
    pub group: String,
    pub applied_revision: u64,
    pub applied_digest: String,
    pub serving: bool,
    pub control_plane_connected: bool,
    pub source: Option<Source>,
    /// The revision the cache file holds (written a few seconds after it is applied).
    pub cached_revision: Option<u64>,
    pub control_planes: Vec<String>,
    pub connected_to: Option<String>,
    pub draining: bool,
    pub last_error: Option<String>,
    pub routes: usize,
    pub upstreams: usize,
    /// The certificates loaded for the TLS listeners, in name order.
    pub certificates: Vec<CertificateStatus>,
}

/// One loaded certificate, as the status port shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct CertificateStatus {
    pub name: String,
    pub fingerprint_sha256: String,
    pub server_names: Vec<String>,
    /// Unix seconds.
    pub not_after_unix: i64,
}

impl StatusReport {
    pub fn of(state: &State) -> Self {
        let current = state.current();
        StatusReport {
            node_id: state.node().id.clone(),
            group: state.node().group.clone(),
            applied_revision: current.as_ref().map_or(0, |c| c.revision),
            applied_digest: current
                .as_ref()
                .map_or_else(String::new, |c| c.digest.clone()),
            serving: current.is_some(),
            control_plane_connected: state.is_connected(),
            source: current.as_ref().and(state.source()),
            cached_revision: state.cached_revision(),
            control_planes: state.control_planes().to_vec(),
            connected_to: state.connected_to(),
            draining: state.is_draining(),
            last_error: state.last_error(),
            routes: current.as_ref().map_or(0, |c| c.config.route_count()),
            upstreams: current.as_ref().map_or(0, |c| c.config.upstream_count()),
            certificates: current.as_ref().map_or_else(Vec::new, |c| {
                c.tls
                    .entries()
                    .iter()
                    .map(|entry| CertificateStatus {
                        name: entry.name.clone(),
                        fingerprint_sha256: entry.fingerprint.clone(),
                        server_names: entry.server_names.clone(),
                        not_after_unix: entry.not_after_unix,
                    })
                    .collect()
            }),
        }
    }
}

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(AxumState(state): AxumState<Arc<State>>) -> (StatusCode, &'static str) {
    if state.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n",
        )
    } else if state.load().is_some() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no configuration received yet\n",
        )
    }
}

async fn status(AxumState(state): AxumState<Arc<State>>) -> Json<StatusReport> {
    Json(StatusReport::of(&state))
}

async fn metrics(AxumState(state): AxumState<Arc<State>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().render(),
    )
}

/// Serves the status port until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::Config;

    use super::*;
    use crate::served::Compiled;
    use crate::served::NodeIdentity;

    #[test]
    fn report_follows_the_state() {
        let state = State::new(NodeIdentity {
            id: "node-1".into(),
            group: "edge".into(),
        });
        let empty = StatusReport::of(&state);
        assert!(!empty.serving);
        assert_eq!(empty.applied_revision, 0);
        assert_eq!(empty.applied_digest, "");
        let config = Config::default();
        let digest = gateway_config::digest(&config);
        state.store(Compiled::compile(3, digest.clone(), config).unwrap());
        state.set_connected_to(Some("http://cp:8005".into()));
        let report = StatusReport::of(&state);
        assert!(report.serving && report.control_plane_connected);
        assert_eq!(report.source, Some(Source::ControlPlane));
        assert_eq!(report.connected_to.as_deref(), Some("http://cp:8005"));
        assert_eq!(report.applied_revision, 3);
        assert_eq!(report.applied_digest, digest);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["last_error"], serde_json::Value::Null);
        assert_eq!(json["node_id"], "node-1");
        assert_eq!(json["source"], "control_plane");
        assert_eq!(json["control_planes"], serde_json::json!([]));
        assert_eq!(empty.source, None);
    }
}
