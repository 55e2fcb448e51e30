//! The admin API: JSON over HTTP for entities, revisions and worker status.

mod body;
mod entities;
mod error;
mod health;
mod nodes;
mod revisions;

use axum::Router;
use axum::routing::get;
use gateway_config::{Route, Upstream};

use crate::snapshot::SnapshotHub;
use crate::store::{Entity, Store};

pub use entities::{ACTOR_HEADER, REVISION_HEADER};
pub use error::ApiError;

/// What every handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub hub: SnapshotHub,
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
        .route("/v1/revisions", get(revisions::list))
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
