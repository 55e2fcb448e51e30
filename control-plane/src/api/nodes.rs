//! `GET /v1/nodes`: every worker with its sync status.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::body::timestamp;
use super::error::ApiError;
use crate::nodes::{NodeStatus, derive_status};
use crate::store::now_ms;

#[derive(Debug, Serialize)]
pub struct NodeItem {
    pub id: String,
    pub group: String,
    pub build: String,
    pub applied_revision: i64,
    pub applied_digest: String,
    pub status: NodeStatus,
    pub last_error: Option<String>,
    pub last_seen: String,
    pub connected: bool,
}

#[derive(Debug, Serialize)]
pub struct NodeList {
    pub latest_revision: i64,
    pub items: Vec<NodeItem>,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<NodeList>, ApiError> {
    let latest_revision = state.store.head_revision().await?;
    let now = now_ms();
    let items = state
        .store
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
