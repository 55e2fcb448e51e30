//! The tonic service: accepts a worker's stream and hands it to its own session task. Its message
//! limits are the protocol's: pushes up to [`MAX_CONFIG_PUSH_BYTES`] go out, compressed with
//! [`PUSH_COMPRESSION`] for workers that accept it, and worker messages up to
//! [`MAX_WORKER_MESSAGE_BYTES`] come in.

use std::sync::Arc;

use gateway_proto::v1::config_sync_server::{ConfigSync, ConfigSyncServer};
use gateway_proto::v1::{ConfigPush, WorkerMessage};
use gateway_proto::{MAX_CONFIG_PUSH_BYTES, MAX_WORKER_MESSAGE_BYTES, PUSH_COMPRESSION};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::answers::AnswerRecorder;
use super::auth::{Peer, SyncAuth, subject_of};
use super::session::Session;
use crate::hub::SnapshotHub;
use crate::metrics::Metrics;
use crate::store::Store;

/// Pushes waiting to be written to one worker; a small buffer is enough because at most one push
/// is unacknowledged at a time.
const OUTBOUND_BUFFER: usize = 4;

#[derive(Clone, Debug)]
pub struct SyncService {
    store: Store,
    hub: SnapshotHub,
    answers: AnswerRecorder,
    /// Random id of this control-plane process, recorded with each worker it serves.
    replica: Arc<str>,
    shutdown: watch::Receiver<bool>,
    metrics: Metrics,
    auth: Arc<SyncAuth>,
    /// Whether streams come over TLS: private keys travel only over TLS or loopback.
    encrypted: bool,
}

impl SyncService {
    pub fn new(
        store: Store,
        hub: SnapshotHub,
        replica: impl Into<Arc<str>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        SyncService {
            answers: AnswerRecorder::start(store.clone()),
            store,
            hub,
            replica: replica.into(),
            shutdown,
            metrics: Metrics::new(),
            auth: Arc::new(SyncAuth::default()),
            encrypted: false,
        }
    }

    /// Says whether the streams come over TLS.
    pub fn over_tls(mut self, encrypted: bool) -> Self {
        self.encrypted = encrypted;
        self
    }

    /// Records push and ACK metrics into `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Refuses streams that do not satisfy `auth`.
    pub fn with_auth(mut self, auth: SyncAuth) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    pub fn into_server(self) -> ConfigSyncServer<SyncService> {
        ConfigSyncServer::new(self)
            // Writes that would make a larger push are refused before they commit; this keeps a
            // push that got past that from reaching workers that cannot decode it.
            .max_encoding_message_size(MAX_CONFIG_PUSH_BYTES)
            .max_decoding_message_size(MAX_WORKER_MESSAGE_BYTES)
            // Only for workers whose stream says they accept it.
            .send_compressed(PUSH_COMPRESSION)
            .accept_compressed(PUSH_COMPRESSION)
    }
}

/// Whether a stream may carry private keys: over TLS, or from a loopback peer (the key then never
/// leaves the machine). A peer whose address is unknown counts as remote.
pub(super) fn keys_may_travel(encrypted: bool, peer: Option<std::net::SocketAddr>) -> bool {
    encrypted || peer.is_some_and(|addr| addr.ip().is_loopback())
}

#[tonic::async_trait]
impl ConfigSync for SyncService {
    type StreamStream = ReceiverStream<Result<ConfigPush, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let certs = request.peer_certs();
        let first_cert = certs.as_ref().and_then(|certs| certs.first());
        let peer = Peer {
            addr: request.remote_addr(),
            subject: first_cert.and_then(|der| subject_of(der)),
            has_cert: first_cert.is_some(),
        };
        self.auth.check(request.metadata(), &peer)?;
        let keys_allowed = keys_may_travel(self.encrypted, peer.addr);
        let (outbound, receiver) = mpsc::channel(OUTBOUND_BUFFER);
        let session = Session {
            store: self.store.clone(),
            answers: self.answers.clone(),
            hub: self.hub.clone(),
            metrics: self.metrics.clone(),
            snapshots: self.hub.subscribe(),
            replica: self.replica.clone(),
            stream_id: uuid::Uuid::new_v4().to_string(),
            shutdown: self.shutdown.clone(),
            keys_allowed,
        };
        tokio::spawn(session.run(request.into_inner(), outbound));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
