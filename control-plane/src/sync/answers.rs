//! Recording workers' ACKs and NACKs in the database without holding up their streams. A
//! stream hands each answer over and goes on pushing; one task per replica writes what has
//! gathered in one transaction, keeping only the latest per stream, so 20 or 1,000 workers
//! answering the same revision cost one commit rather than one each, and a stream never waits
//! behind the others' writes (on SQLite they would all queue for its single writer).
//!
//! Answers of one stream are applied in the order they came: an ACK clears the error, a NACK
//! after it sets one, and the rows end as if each had been written on arrival.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::store::{NodeAnswer, Store};

/// The answers not yet written, per (node, stream).
type Gathered = HashMap<(String, String), NodeAnswer>;

/// Hands answers to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct AnswerRecorder {
    gathered: Arc<Mutex<Gathered>>,
    wake: Arc<Notify>,
}

impl AnswerRecorder {
    /// Starts the writer task, which ends when every recorder is gone.
    pub fn start(store: Store) -> AnswerRecorder {
        let recorder = AnswerRecorder {
            gathered: Arc::default(),
            wake: Arc::new(Notify::new()),
        };
        let gathered = Arc::downgrade(&recorder.gathered);
        let wake = recorder.wake.clone();
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                let Some(gathered) = gathered.upgrade() else {
                    return;
                };
                let answers: Gathered =
                    std::mem::take(&mut *gathered.lock().unwrap_or_else(PoisonError::into_inner));
                drop(gathered);
                if answers.is_empty() {
                    continue;
                }
                let answers: Vec<_> = answers.into_iter().collect();
                if let Err(error) = store.nodes_answered(&answers).await {
                    tracing::warn!(%error, workers = answers.len(), "could not record worker status");
                }
            }
        });
        recorder
    }

    /// The worker applied `revision` (with `digest`) at `now`.
    pub fn acked(&self, node: &str, stream: &str, revision: i64, digest: &str, now: i64) {
        self.update(node, stream, |answer| {
            answer.acked = Some((revision, digest.to_owned()));
            answer.error = None;
            answer.at = now;
        });
    }

    /// The worker refused its last push with `error` at `now`.
    pub fn nacked(&self, node: &str, stream: &str, error: &str, now: i64) {
        self.update(node, stream, |answer| {
            answer.error = Some(error.to_owned());
            answer.at = now;
        });
    }

    fn update(&self, node: &str, stream: &str, change: impl FnOnce(&mut NodeAnswer)) {
        let mut gathered = self.gathered.lock().unwrap_or_else(PoisonError::into_inner);
        change(
            gathered
                .entry((node.to_owned(), stream.to_owned()))
                .or_default(),
        );
        drop(gathered);
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::store::HelloRecord;
    use crate::store::test_support::sqlite;

    /// Answers gathered while the writer is busy end as if each had been written on arrival.
    #[tokio::test]
    async fn answers_are_written_in_their_order_and_the_latest_wins() {
        let db = sqlite().await;
        for id in ["w1", "w2", "w3"] {
            let hello = HelloRecord {
                id: id.into(),
                group: "g".into(),
                build: "b".into(),
                applied_revision: 0,
                applied_digest: String::new(),
            };
            db.store
                .node_connected(&hello, "rep", "s", 1_000)
                .await
                .unwrap();
        }
        let recorder = AnswerRecorder::start(db.store.clone());
        recorder.acked("w1", "s", 2, "d2", 2_000);
        recorder.acked("w1", "s", 3, "d3", 2_100);
        recorder.acked("w2", "s", 3, "d3", 2_000);
        recorder.nacked("w2", "s", "broken", 2_200);
        recorder.nacked("w3", "s", "broken", 2_000);
        recorder.acked("w3", "s", 4, "d4", 2_300);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let rows = loop {
            let rows = db.store.list_nodes().await.unwrap();
            // The time of each node's last answer: everything has been written.
            let mut seen: Vec<i64> = rows.iter().map(|row| row.last_seen).collect();
            seen.sort_unstable();
            if seen == [2_100, 2_200, 2_300] {
                break rows;
            }
            assert!(tokio::time::Instant::now() < deadline, "{rows:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let by_id = |id: &str| rows.iter().find(|row| row.id == id).unwrap();
        let w1 = by_id("w1");
        assert_eq!((w1.applied_revision, w1.applied_digest.as_str()), (3, "d3"));
        assert_eq!((w1.last_error.as_deref(), w1.last_seen), (None, 2_100));
        let w2 = by_id("w2");
        assert_eq!(w2.applied_revision, 3);
        assert_eq!(
            (w2.last_error.as_deref(), w2.last_seen),
            (Some("broken"), 2_200)
        );
        let w3 = by_id("w3");
        assert_eq!(w3.applied_revision, 4);
        assert_eq!((w3.last_error.as_deref(), w3.last_seen), (None, 2_300));
    }
}
