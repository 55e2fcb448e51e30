//! The admin API: JSON over HTTP for entities, revisions and worker status.

mod auth;
mod body;
mod collections;
mod config;
mod document;
mod endpoints;
mod entities;
mod error;
mod health;
mod limits;
mod metrics;
mod nodes;
mod openapi;
mod revisions;
mod schema;
mod state;
mod strict;
mod tokens;
mod write;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension};

pub use limits::Limits;
pub use state::{AppState, OpenEndpoints};

/// The whole admin API. Entity bodies are read by axum up to [`limits::ENTITY_BODY_LIMIT`];
/// `PUT /v1/config` reads its own, up to `limits`' larger one.
pub fn router(state: AppState, limits: Limits) -> Router {
    let (router, _) = endpoints::documented_routes().split_for_parts();
    router
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(DefaultBodyLimit::max(limits::ENTITY_BODY_LIMIT))
        .layer(Extension(limits))
        .with_state(state)
}

#[cfg(test)]
mod certificate_tests;
#[cfg(test)]
mod tests;
