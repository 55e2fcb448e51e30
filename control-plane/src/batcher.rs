//! The writer of a replica: writes wait in one queue, and a single task takes whatever has
//! queued up as a batch and runs it in one transaction ([`Store::run_batch`]), publishes each
//! revision it made to this replica's workers, then answers each caller.
//!
//! Under concurrent writers, a write then costs its share of one transaction rather than a
//! whole transaction plus the wait for every transaction queued before it, and no waiting
//! writer holds a database connection. Each batch runs in a task of its own, so that whatever
//! happens to one (even a panic) leaves the writer running; and once a batch reaches its commit
//! the commit is awaited to the end, so that a caller is never told "failed" about a write that
//! was stored and published.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::hub::SnapshotHub;
use crate::store::{Ended, Job, Step, Store, StoreError};

/// Writes taken into one batch at most: enough to absorb every concurrent writer of a busy
/// replica, few enough that one batch's rows stay small.
const MAX_BATCH: usize = 64;

/// Writes waiting for the writer at most; past that, a caller waits to queue (within its
/// deadline).
const QUEUE: usize = 1024;

/// A queued write with its caller's deadline and the way back to the caller.
trait Queued: Send {
    fn step(&mut self) -> &mut dyn Step;
    fn whole(&self) -> bool;
    fn deadline(&self) -> Instant;
    fn answer(self: Box<Self>, ended: Result<Ended, StoreError>);
}

struct Waiting<J: Job> {
    job: J,
    deadline: Instant,
    reply: oneshot::Sender<Result<J::Output, StoreError>>,
}

impl<J: Job + 'static> Queued for Waiting<J> {
    fn step(&mut self) -> &mut dyn Step {
        &mut self.job
    }

    fn whole(&self) -> bool {
        self.job.whole()
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn answer(self: Box<Self>, ended: Result<Ended, StoreError>) {
        let Waiting { job, reply, .. } = *self;
        // A caller that stopped waiting misses the answer; the write stands all the same.
        let _ = reply.send(ended.map(|ended| job.outcome(ended)));
    }
}

/// The queue into the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Batcher {
    sender: mpsc::Sender<Box<dyn Queued>>,
}

impl std::fmt::Debug for dyn Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Queued")
    }
}

impl Batcher {
    /// Starts the writer task, which runs until every [`Batcher`] is gone.
    pub fn start(store: Store, hub: SnapshotHub) -> Batcher {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, hub, receiver));
        Batcher { sender }
    }

    /// Queues `job` and waits for its answer. A job that has not been started `limit` after it
    /// was submitted is answered as the database being down, with nothing stored; a started one
    /// gets until then to reach its commit.
    pub async fn submit<J: Job + 'static>(
        &self,
        job: J,
        limit: Duration,
    ) -> Result<J::Output, StoreError> {
        let deadline = Instant::now() + limit;
        let (reply, answer) = oneshot::channel();
        let queued: Box<dyn Queued> = Box::new(Waiting {
            job,
            deadline,
            reply,
        });
        match tokio::time::timeout_at(deadline, self.sender.send(queued)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(stopped()),
            Err(_) => return Err(late()),
        }
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the config writer stopped".into())
}

fn late() -> StoreError {
    StoreError::Unavailable("the database did not answer in time".into())
}

async fn write_batches(
    store: Store,
    hub: SnapshotHub,
    mut receiver: mpsc::Receiver<Box<dyn Queued>>,
) {
    let mut carried: Option<Box<dyn Queued>> = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match receiver.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut batch = vec![first];
        if !batch[0].whole() {
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) if next.whole() => {
                        carried = Some(next);
                        break;
                    }
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        let now = Instant::now();
        let (live, late_ones): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|queued| queued.deadline() > now);
        for queued in late_ones {
            queued.answer(Err(late()));
        }
        if live.is_empty() {
            continue;
        }
        if let Err(error) = tokio::spawn(write_batch(store.clone(), hub.clone(), live)).await {
            // Its callers hear that the writer stopped; the next batch starts afresh.
            tracing::error!(%error, "a batch of config writes failed");
        }
    }
}

async fn write_batch(store: Store, hub: SnapshotHub, mut batch: Vec<Box<dyn Queued>>) {
    let Some(deadline) = batch.iter().map(|queued| queued.deadline()).min() else {
        return;
    };
    let base = hub.current();
    let mut steps: Vec<&mut dyn Step> = batch.iter_mut().map(|queued| queued.step()).collect();
    let ended = store.run_batch(&base.state, &mut steps, deadline).await;
    drop(steps);
    // Published before anyone hears back, and in order, so that the next batch starts from the
    // last of them and a caller's workers have its revision when it is answered.
    for latest in ended
        .iter()
        .flatten()
        .filter_map(|ended| ended.latest.as_ref())
    {
        hub.publish(latest.clone().into());
    }
    for (queued, ended) in batch.into_iter().zip(ended) {
        queued.answer(ended);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gateway_config::{Target, Upstream};

    use super::*;
    use crate::snapshot::Snapshot;
    use crate::store::test_support::sqlite;
    use crate::store::{Change, EntityWrite, WriteOptions};

    fn upstream(name: &str) -> Upstream {
        Upstream {
            name: name.into(),
            targets: vec![Target {
                address: "127.0.0.1:9000".into(),
                weight: 1,
            }],
            ..Default::default()
        }
    }

    /// Many writers at once: each write answered once with its own revision, every revision
    /// stored once, in order, and the last one published.
    #[tokio::test]
    async fn concurrent_writes_are_batched_into_distinct_revisions() {
        let db = sqlite().await;
        let hub = SnapshotHub::new(Snapshot::whole(db.store.latest_config().await.unwrap()));
        let writer = Batcher::start(db.store.clone(), hub.clone());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let write = EntityWrite::new(
                    Change::Create(upstream(&format!("u{i}"))),
                    WriteOptions {
                        actor: format!("writer {i}"),
                        ..WriteOptions::default()
                    },
                );
                writer
                    .submit(write, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .revision
            }));
        }
        let mut revisions = Vec::new();
        for task in tasks {
            revisions.push(task.await.unwrap());
        }
        revisions.sort_unstable();
        assert_eq!(revisions, (1..=200).collect::<Vec<_>>());
        let (rows, _) = db.store.list_revisions(None, 500).await.unwrap();
        assert_eq!(rows.len(), 200);
        let mut actors: Vec<&str> = rows.iter().map(|row| row.actor.as_str()).collect();
        actors.sort_unstable();
        actors.dedup();
        assert_eq!(actors.len(), 200);
        let latest = db.store.latest_config().await.unwrap();
        assert_eq!(hub.current().state, latest);
        assert_eq!(latest.to_config().upstreams.len(), 200);
    }

    /// A write that could not start before its deadline stores nothing.
    #[tokio::test]
    async fn a_write_past_its_deadline_is_not_made() {
        let db = sqlite().await;
        let hub = SnapshotHub::new(Snapshot::whole(db.store.latest_config().await.unwrap()));
        let writer = Batcher::start(db.store.clone(), hub);
        let write = EntityWrite::new(Change::Create(upstream("late")), WriteOptions::default());
        let answer = writer.submit(write, Duration::ZERO).await;
        assert!(matches!(answer, Err(StoreError::Unavailable(_))));
        assert_eq!(db.store.head_revision().await.unwrap(), 0);
    }
}
