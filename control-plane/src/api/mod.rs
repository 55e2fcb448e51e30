//! The admin API: JSON over HTTP for entities, revisions and worker status.

mod body;
mod collections;
mod config;
mod document;
mod entities;
mod error;
mod health;
mod metrics;
mod nodes;
mod openapi;
mod revisions;
mod schema;
mod write;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::metrics::Metrics;
use crate::service::ConfigService;

/// What every handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Every write goes through it; reads use its store and its latest snapshot.
    pub service: ConfigService,
    pub metrics: Metrics,
}

/// Every endpoint, with its description. `routes!` takes each endpoint's method and path from
/// the handler's `#[utoipa::path]`, so what is served and what is described cannot differ;
/// register endpoints here only that way.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::header())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::serve))
        .routes(routes!(
            collections::upstreams::list,
            collections::upstreams::create
        ))
        .routes(routes!(
            collections::upstreams::get,
            collections::upstreams::put,
            collections::upstreams::delete
        ))
        .routes(routes!(
            collections::routes::list,
            collections::routes::create
        ))
        .routes(routes!(
            collections::routes::get,
            collections::routes::put,
            collections::routes::delete
        ))
        .routes(routes!(config::get, config::put))
        .routes(routes!(revisions::list))
        .routes(routes!(revisions::show))
        .routes(routes!(revisions::diff))
        .routes(routes!(revisions::rollback))
        .routes(routes!(nodes::list))
}

/// The whole admin API.
pub fn router(state: AppState) -> Router {
    let (router, _) = documented_routes().split_for_parts();
    router
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .with_state(state)
}

#[cfg(test)]
mod tests;
