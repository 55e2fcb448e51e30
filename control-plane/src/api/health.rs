//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::openapi::Unavailable;
use super::state::AppState;

/// The answer of a probe that passes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeAnswer {
    /// `ok` for liveness, `ready` for readiness.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: 200 while the process runs
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    operation_id = "healthz",
    responses((status = 200, description = "The process runs", body = ProbeAnswer))
)]
pub async fn healthz() -> Json<ProbeAnswer> {
    Json(ProbeAnswer { status: "ok" })
}

/// Readiness: 200 when the database answers, else 503
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    operation_id = "readyz",
    responses(
        (status = 200, description = "The database answers", body = ProbeAnswer),
        (status = 503, response = Unavailable),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<ProbeAnswer>, ApiError> {
    state
        .service
        .store()
        .ping()
        .await
        .map_err(|e| ApiError::database_unavailable(e.to_string()))?;
    Ok(Json(ProbeAnswer { status: "ready" }))
}
