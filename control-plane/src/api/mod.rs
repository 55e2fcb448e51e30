//! The admin API: JSON over HTTP for entities, revisions and worker status.

mod body;
mod collections;
mod config;
mod document;
mod endpoints;
mod entities;
mod error;
mod health;
mod metrics;
mod nodes;
mod openapi;
mod revisions;
mod schema;
mod state;
mod write;

use axum::Router;

pub use state::AppState;

/// The whole admin API.
pub fn router(state: AppState) -> Router {
    let (router, _) = endpoints::documented_routes().split_for_parts();
    router
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .with_state(state)
}

#[cfg(test)]
mod tests;
