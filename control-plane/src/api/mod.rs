//! The admin API: JSON over HTTP for entities, revisions and worker status.

mod body;
mod config;
mod document;
mod entities;
mod error;
mod health;
mod metrics;
mod nodes;
mod revisions;
mod write;

use axum::Router;
use axum::routing::{get, post};
use gateway_config::{Route, Upstream};

use crate::metrics::Metrics;
use crate::snapshot::SnapshotHub;
use crate::store::{Entity, Store};

pub use error::ApiError;
pub use write::{ACTOR_HEADER, MESSAGE_HEADER, REVISION_HEADER};

/// What every handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub hub: SnapshotHub,
    pub metrics: Metrics,
}

fn entity_routes<T: Entity>(router: Router<AppState>, plural: &str) -> Router<AppState> {
    router
        .route(
            &format!("/v1/{plural}"),
            get(entities::list::<T>).post(entities::create::<T>),
        )
        .route(
            &format!("/v1/{plural}/{{name}}"),
            get(entities::get::<T>)
                .put(entities::put::<T>)
                .delete(entities::delete::<T>),
        )
}

/// The whole admin API.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/config", get(config::get).put(config::put))
        .route("/v1/revisions", get(revisions::list))
        .route("/v1/revisions/{n}", get(revisions::show))
        .route("/v1/revisions/{a}/diff/{b}", get(revisions::diff))
        .route("/v1/revisions/{n}/rollback", post(revisions::rollback))
        .route("/v1/nodes", get(nodes::list));
    let router = entity_routes::<Upstream>(router, "upstreams");
    let router = entity_routes::<Route>(router, "routes");
    router
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .with_state(state)
}

#[cfg(test)]
mod tests;
