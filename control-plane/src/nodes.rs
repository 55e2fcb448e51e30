//! How far each worker is from the latest config, derived from its stored row.

use serde::Serialize;

use crate::store::NodeRow;

/// A worker not heard from for this long counts as gone even if its stream was never seen to
/// close (its control-plane replica may have died).
pub const SEEN_TIMEOUT_MS: i64 = 15_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeStatus {
    /// Serves the latest revision.
    Synced,
    /// Connected, but serves an older revision (a push is on its way).
    Stale,
    /// Refused its last push and keeps serving an older config.
    Error,
    /// No open stream.
    Disconnected,
}

/// The status of `node` given the latest revision and the current time (unix ms).
pub fn derive_status(node: &NodeRow, latest_revision: i64, now: i64) -> NodeStatus {
    if !node.connected || now.saturating_sub(node.last_seen) > SEEN_TIMEOUT_MS {
        NodeStatus::Disconnected
    } else if node.last_error.is_some() {
        NodeStatus::Error
    } else if node.applied_revision < latest_revision {
        NodeStatus::Stale
    } else {
        NodeStatus::Synced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeRow {
        NodeRow {
            id: "w1".into(),
            group: "default".into(),
            build: "test".into(),
            applied_revision: 5,
            applied_digest: "d".into(),
            last_error: None,
            connected: true,
            last_seen: 100_000,
            first_seen: 1,
            replica: "r".into(),
        }
    }

    #[test]
    fn synced_when_serving_the_latest() {
        assert_eq!(derive_status(&node(), 5, 100_000), NodeStatus::Synced);
    }

    #[test]
    fn stale_when_behind() {
        assert_eq!(derive_status(&node(), 6, 100_000), NodeStatus::Stale);
    }

    #[test]
    fn error_after_a_nack_wins_over_stale() {
        let mut n = node();
        n.last_error = Some("bad".into());
        assert_eq!(derive_status(&n, 6, 100_000), NodeStatus::Error);
    }

    #[test]
    fn disconnected_when_closed_or_silent() {
        let mut n = node();
        n.connected = false;
        assert_eq!(derive_status(&n, 5, 100_000), NodeStatus::Disconnected);
        let n = node();
        assert_eq!(
            derive_status(&n, 5, 100_000 + SEEN_TIMEOUT_MS),
            NodeStatus::Synced
        );
        assert_eq!(
            derive_status(&n, 5, 100_001 + SEEN_TIMEOUT_MS),
            NodeStatus::Disconnected
        );
    }

    #[test]
    fn serializes_in_upper_case() {
        assert_eq!(
            serde_json::to_string(&NodeStatus::Disconnected).ok(),
            Some("\"DISCONNECTED\"".to_owned())
        );
    }
}
