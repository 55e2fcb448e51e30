//! `GET /metrics`: the control plane's Prometheus metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::state::AppState;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prometheus metrics of the control plane
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "probes",
    operation_id = "metrics",
    responses((status = 200, description = "OpenMetrics text exposition",
               content_type = "application/openmetrics-text", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let latest = i64::try_from(state.service.latest().revision).unwrap_or(i64::MAX);
    state.metrics.latest_revision.set(latest);
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
