//! `GET /v1/nodes`: every worker with its sync status.

use std::borrow::Cow;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::body::timestamp;
use super::error::ApiError;
use super::openapi::{Internal, Unavailable};
use super::state::AppState;
use crate::nodes::{NodeStatus, derive_status};
use crate::store::now_ms;

/// A data-plane worker and how far it is from the latest config.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeItem {
    /// Unique per worker process.
    pub id: String,
    pub group: String,
    pub build: String,
    /// The revision the worker serves (0: none yet).
    pub applied_revision: i64,
    pub applied_digest: String,
    pub status: NodeStatus,
    /// Why the worker refused its last push, while it keeps serving an older config.
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub last_seen: String,
    pub connected: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeList {
    pub latest_revision: i64,
    pub items: Vec<NodeItem>,
}

const NODE_STATUSES: [NodeStatus; 4] = [
    NodeStatus::Synced,
    NodeStatus::Stale,
    NodeStatus::Error,
    NodeStatus::Disconnected,
];

/// The names come from serializing the values, so they cannot drift from the JSON.
impl PartialSchema for NodeStatus {
    fn schema() -> RefOr<Schema> {
        let names = NODE_STATUSES
            .iter()
            .filter_map(|status| serde_json::to_value(status).ok());
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some(
                "`SYNCED`: serves the latest revision; `STALE`: connected, a push is on its way; \
                 `ERROR`: refused its last push and serves an older config; `DISCONNECTED`: no \
                 open stream.",
            ))
            .into()
    }
}

impl ToSchema for NodeStatus {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NodeStatus")
    }
}

/// List workers and their sync status
#[utoipa::path(
    get,
    path = "/v1/nodes",
    tag = "nodes",
    operation_id = "list_nodes",
    responses(
        (status = 200, description = "Every worker known to the control plane", body = NodeList),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<NodeList>, ApiError> {
    let store = state.service.store();
    let latest_revision = store.head_revision().await?;
    let now = now_ms();
    let items = store
        .list_nodes()
        .await?
        .into_iter()
        .map(|node| {
            let status = derive_status(&node, latest_revision, now);
            NodeItem {
                // A row whose heartbeat stopped is shown as disconnected, whatever it says.
                connected: status != NodeStatus::Disconnected,
                status,
                id: node.id,
                group: node.group,
                build: node.build,
                applied_revision: node.applied_revision,
                applied_digest: node.applied_digest,
                last_error: node.last_error,
                last_seen: timestamp(node.last_seen),
            }
        })
        .collect();
    Ok(Json(NodeList {
        latest_revision,
        items,
    }))
}
