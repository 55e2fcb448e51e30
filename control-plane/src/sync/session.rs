//! One worker's stream: waits for its Hello, pushes the latest snapshot whenever the worker does
//! not serve it (as a delta on top of the worker's revision when that revision is known and its
//! digest matches, else in full), tracks ACK/NACK, and records the worker's status in the
//! database.
//!
//! Database errors while recording status are logged and never end the stream: serving config
//! matters more than reporting on it.

use std::sync::Arc;
use std::time::Duration;

use gateway_proto::v1::{self, ConfigPush, WorkerMessage, worker_message::Message};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

use super::answers::AnswerRecorder;
use crate::delta::{self, Delta};
use crate::hub::SnapshotHub;
use crate::metrics::{Metrics, PushKind};
use crate::snapshot::Snapshot;
use crate::store::{HelloRecord, Store, StoreError, now_ms};

/// How often an open stream refreshes the worker's `last_seen`.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A worker that opens a stream but says nothing is dropped after this long.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// A delta base that must come from the database is given up (full push instead) after this.
const BASE_LOAD_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Session {
    pub store: Store,
    /// Where ACKs and NACKs go, to be written without holding up the stream.
    pub answers: AnswerRecorder,
    pub hub: SnapshotHub,
    pub metrics: Metrics,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub replica: Arc<str>,
    pub stream_id: String,
    pub shutdown: watch::Receiver<bool>,
    /// Whether pushes may carry private keys (see [`super::server::keys_may_travel`]).
    pub keys_allowed: bool,
}

/// Whether `push` carries a certificate's private key.
pub(super) fn carries_private_keys(push: &v1::ConfigPush) -> bool {
    push.upserts.iter().any(|resource| {
        matches!(&resource.resource, Some(v1::resource::Resource::Certificate(c)) if !c.key.is_empty())
    })
}

/// What the stream knows about the worker's config.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PushState {
    pub applied_revision: u64,
    pub applied_digest: String,
    /// The push awaiting an answer.
    pub in_flight: Option<InFlight>,
    /// A revision the worker refused in full; it is never sent again.
    pub nacked: Option<u64>,
    /// The worker refused a delta: the next push is a full one.
    pub force_full: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InFlight {
    pub revision: u64,
    pub digest: String,
    pub delta: bool,
    pub committed_at_unix_ms: i64,
}

impl PushState {
    /// Whether `snapshot` should be pushed now.
    pub fn wants(&self, snapshot: &Snapshot) -> bool {
        self.in_flight.is_none()
            && self.nacked != Some(snapshot.revision)
            && (snapshot.revision != self.applied_revision
                || snapshot.digest != self.applied_digest)
    }
}

type Outbound = mpsc::Sender<Result<ConfigPush, Status>>;

impl Session {
    pub async fn run(mut self, mut inbound: Streaming<WorkerMessage>, outbound: Outbound) {
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await;
        let hello = match first {
            Ok(Ok(Some(WorkerMessage {
                message: Some(Message::Hello(hello)),
            }))) => hello,
            Ok(Ok(None)) => return,
            Ok(Err(status)) => {
                tracing::debug!(%status, "config sync stream failed before its Hello");
                return;
            }
            Ok(Ok(Some(_))) => {
                let status = Status::invalid_argument("the first message must be a Hello");
                let _ = outbound.send(Err(status)).await;
                return;
            }
            Err(_) => {
                let status = Status::deadline_exceeded("no Hello received");
                let _ = outbound.send(Err(status)).await;
                return;
            }
        };
        let node = hello.node.unwrap_or_default();
        if node.id.is_empty() {
            let status = Status::invalid_argument("the Hello must carry a node id");
            let _ = outbound.send(Err(status)).await;
            return;
        }
        let record = HelloRecord {
            id: node.id.clone(),
            group: node.group.clone(),
            build: node.build.clone(),
            applied_revision: i64::try_from(hello.applied_revision).unwrap_or(i64::MAX),
            applied_digest: hello.applied_digest.clone(),
        };
        self.log_failure(
            self.store
                .node_connected(&record, &self.replica, &self.stream_id, now_ms())
                .await,
        );
        tracing::info!(
            node = %node.id,
            group = %node.group,
            build = %node.build,
            applied_revision = hello.applied_revision,
            "worker connected"
        );
        let mut state = PushState {
            applied_revision: hello.applied_revision,
            applied_digest: hello.applied_digest,
            ..PushState::default()
        };
        self.metrics.connected_workers.inc();
        let reason = self
            .serve(&node.id, &mut inbound, &outbound, &mut state)
            .await;
        self.metrics.connected_workers.dec();
        self.log_failure(
            self.store
                .node_disconnected(&node.id, &self.stream_id, now_ms())
                .await,
        );
        tracing::info!(node = %node.id, reason, "worker disconnected");
    }

    /// The stream's main loop; returns why it ended.
    async fn serve(
        &mut self,
        node: &str,
        inbound: &mut Streaming<WorkerMessage>,
        outbound: &Outbound,
        state: &mut PushState,
    ) -> &'static str {
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        let mut shutdown = self.shutdown.clone();
        loop {
            let snapshot = self.snapshots.borrow_and_update().clone();
            if state.wants(&snapshot) {
                let delta = match state.force_full {
                    true => None,
                    false => self.delta_for(state, &snapshot).await,
                };
                let (push, kind) = match &delta {
                    Some(delta) => (delta.push.clone(), PushKind::delta),
                    None => (
                        v1::ConfigPush::clone(&*snapshot.full_push().await),
                        PushKind::full,
                    ),
                };
                if !self.keys_allowed && carries_private_keys(&push) {
                    tracing::error!(
                        node,
                        revision = snapshot.revision,
                        "not pushing config: it holds private keys and this stream is neither \
                         TLS nor from loopback; give the control plane --sync-tls-cert and \
                         --sync-tls-key"
                    );
                    let status = tonic::Status::failed_precondition(
                        "the config holds private keys, which the control plane sends only over \
                         TLS or to a worker on the same machine; connect over TLS",
                    );
                    let _ = outbound.send(Err(status)).await;
                    return "a private key would have travelled in plaintext";
                }
                let bytes = push.encoded_len();
                if outbound.send(Ok(push)).await.is_err() {
                    return "the worker went away";
                }
                self.metrics.pushed(kind, bytes);
                tracing::debug!(
                    node,
                    revision = snapshot.revision,
                    ?kind,
                    bytes,
                    "pushed config"
                );
                state.force_full = false;
                state.in_flight = Some(InFlight {
                    revision: snapshot.revision,
                    digest: snapshot.digest.clone(),
                    delta: delta.is_some(),
                    committed_at_unix_ms: snapshot.committed_at_unix_ms,
                });
            }
            let idle = state.in_flight.is_none();
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        if let Err(status) = self.handle(node, message, state).await {
                            let _ = outbound.send(Err(status)).await;
                            return "protocol error";
                        }
                    }
                    Ok(None) => return "the worker closed the stream",
                    Err(status) => {
                        tracing::debug!(node, %status, "config sync stream failed");
                        return "the stream failed";
                    }
                },
                changed = self.snapshots.changed(), if idle => {
                    if changed.is_err() {
                        return "the control plane is stopping";
                    }
                }
                _ = heartbeat.tick() => {
                    self.log_failure(self.store.node_seen(node, &self.stream_id, now_ms()).await);
                }
                _ = outbound.closed() => return "the worker went away",
                () = crate::shutdown::stopping(&mut shutdown) => return "the control plane is stopping",
            }
        }
    }

    /// The delta from what the worker serves to `target`, when the worker's revision is kept
    /// and the digest it reported matches that revision's; None means a full push.
    async fn delta_for(&self, state: &PushState, target: &Arc<Snapshot>) -> Option<Arc<Delta>> {
        let base = state.applied_revision;
        if base == 0 || base >= target.revision || state.applied_digest.is_empty() {
            return None;
        }
        let delta = self
            .hub
            .deltas()
            .get_or_build(base, target.revision, || async {
                if let Some(recent) = self.hub.recent(base)
                    && let Some(changed) = self.hub.changed_between(base, target)
                {
                    return Some(delta::build(base, &recent.digest, &changed, target));
                }
                let from = i64::try_from(base).ok()?;
                let to = i64::try_from(target.revision).ok()?;
                let loaded =
                    tokio::time::timeout(BASE_LOAD_TIMEOUT, self.store.changes_between(from, to))
                        .await;
                match loaded {
                    Ok(Ok(Some((base_digest, changed)))) => {
                        Some(delta::build(base, &base_digest, &changed, target))
                    }
                    Ok(Ok(None)) => None,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, base, "no delta base; pushing in full");
                        None
                    }
                    Err(_) => None,
                }
            })
            .await?;
        (delta.base_digest == state.applied_digest).then_some(delta)
    }

    async fn handle(
        &self,
        node: &str,
        message: WorkerMessage,
        state: &mut PushState,
    ) -> Result<(), Status> {
        match message.message {
            Some(Message::Ack(ack)) => match state.in_flight.take() {
                Some(pushed) if pushed.revision == ack.revision => {
                    let revision = pushed.revision;
                    tracing::debug!(node, revision, "worker applied config");
                    if pushed.committed_at_unix_ms > 0 {
                        let elapsed = now_ms().saturating_sub(pushed.committed_at_unix_ms);
                        self.metrics
                            .convergence
                            .observe(elapsed.max(0) as f64 / 1000.0);
                    }
                    state.applied_revision = revision;
                    state.applied_digest = pushed.digest;
                    let revision = i64::try_from(revision).unwrap_or(i64::MAX);
                    self.answers.acked(
                        node,
                        &self.stream_id,
                        revision,
                        &state.applied_digest,
                        now_ms(),
                    );
                    Ok(())
                }
                other => {
                    // A stray answer is logged, not fatal: ending the stream would only make the
                    // worker reconnect and start over.
                    state.in_flight = other;
                    tracing::warn!(node, revision = ack.revision, "unexpected ACK ignored");
                    Ok(())
                }
            },
            Some(Message::Nack(nack)) => match state.in_flight.take() {
                Some(pushed) if pushed.revision == nack.revision && pushed.delta => {
                    // The worker may have drifted from its reported base; the whole config
                    // settles that.
                    self.metrics.nacks.inc();
                    tracing::warn!(
                        node,
                        revision = pushed.revision,
                        error = %nack_text(&nack),
                        "worker refused a delta; sending the full config"
                    );
                    state.force_full = true;
                    Ok(())
                }
                Some(pushed) if pushed.revision == nack.revision => {
                    let revision = pushed.revision;
                    self.metrics.nacks.inc();
                    let error = nack_text(&nack);
                    tracing::warn!(node, revision, error = %error, "worker refused config");
                    state.nacked = Some(revision);
                    self.answers.nacked(node, &self.stream_id, &error, now_ms());
                    Ok(())
                }
                other => {
                    state.in_flight = other;
                    tracing::warn!(node, revision = nack.revision, "unexpected NACK ignored");
                    Ok(())
                }
            },
            Some(Message::Hello(_)) => Err(Status::invalid_argument(
                "Hello may only be the first message of a stream",
            )),
            None => Err(Status::invalid_argument("empty worker message")),
        }
    }

    fn log_failure(&self, result: Result<(), StoreError>) {
        if let Err(error) = result {
            tracing::warn!(%error, "could not record worker status");
        }
    }
}

/// The NACK's message followed by each detail, as stored in `last_error`.
pub(super) fn nack_text(nack: &v1::Nack) -> String {
    let mut text = nack.message.clone();
    for detail in &nack.details {
        let kind = match v1::Kind::try_from(detail.kind) {
            Ok(v1::Kind::Route) => "route",
            Ok(v1::Kind::Upstream) => "upstream",
            _ => "resource",
        };
        text.push_str(&format!(
            "; {kind} `{}`: {}: {}",
            detail.name, detail.field, detail.message
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use gateway_config::Config;

    use super::*;

    fn snapshot(revision: i64) -> Snapshot {
        Snapshot::of(revision, 1, Config::default())
    }

    #[test]
    fn private_keys_travel_only_over_tls_or_loopback() {
        use super::super::server::keys_may_travel;
        let loopback = Some("127.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!()));
        let v6_loopback = Some("[::1]:5000".parse().unwrap_or_else(|_| unreachable!()));
        let remote = Some("10.0.0.7:5000".parse().unwrap_or_else(|_| unreachable!()));
        assert!(keys_may_travel(false, loopback));
        assert!(keys_may_travel(false, v6_loopback));
        assert!(!keys_may_travel(false, remote));
        assert!(!keys_may_travel(false, None));
        assert!(keys_may_travel(true, remote));
        assert!(keys_may_travel(true, None));

        let certificate = |key: &str| v1::Resource {
            resource: Some(v1::resource::Resource::Certificate(v1::Certificate {
                name: "c".into(),
                key: key.into(),
                ..Default::default()
            })),
        };
        let mut push = v1::ConfigPush::default();
        assert!(!carries_private_keys(&push));
        push.upserts.push(certificate(""));
        assert!(!carries_private_keys(&push));
        push.upserts
            .push(certificate("-----BEGIN PRIVATE KEY-----"));
        assert!(carries_private_keys(&push));
    }

    #[test]
    fn a_fresh_worker_gets_revision_zero() {
        let state = PushState::default();
        assert!(state.wants(&snapshot(0)));
    }

    #[test]
    fn nothing_is_pushed_to_a_synced_worker_or_while_a_push_is_open() {
        let s = snapshot(3);
        let synced = PushState {
            applied_revision: 3,
            applied_digest: s.digest.clone(),
            ..PushState::default()
        };
        assert!(!synced.wants(&s));
        let busy = PushState {
            in_flight: Some(InFlight {
                revision: 2,
                digest: String::new(),
                delta: false,
                committed_at_unix_ms: 0,
            }),
            ..PushState::default()
        };
        assert!(!busy.wants(&s));
    }

    #[test]
    fn a_nacked_revision_is_not_resent_but_a_newer_one_is() {
        let state = PushState {
            applied_revision: 1,
            nacked: Some(3),
            ..PushState::default()
        };
        assert!(!state.wants(&snapshot(3)));
        assert!(state.wants(&snapshot(4)));
    }

    #[test]
    fn nack_text_lists_details() {
        let nack = v1::Nack {
            revision: 2,
            message: "invalid".into(),
            details: vec![v1::ResourceError {
                kind: v1::Kind::Route.into(),
                name: "r".into(),
                field: "paths[0]".into(),
                message: "bad".into(),
            }],
        };
        assert_eq!(nack_text(&nack), "invalid; route `r`: paths[0]: bad");
    }
}
