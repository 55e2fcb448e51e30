//! The sync client against a scripted fake control plane: first contact, ACK, NACK that keeps
//! the served config, a delta, and a reconnect that resumes from the applied revision.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gateway_config::{Config, digest, resources_from_config};
use gateway_proto::v1;
use gateway_proto::v1::config_sync_server::{ConfigSync, ConfigSyncServer};
use gateway_proto::v1::worker_message::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use crate::state::{NodeIdentity, State};
use crate::sync::{SyncSettings, run};

/// Plays a fixed conversation on the first stream and only listens on later ones; every worker
/// message is reported to the test, tagged with the stream number.
struct FakeControlPlane {
    streams: AtomicUsize,
    seen: mpsc::UnboundedSender<(usize, Message)>,
}

fn config(address: &str) -> Config {
    let json = format!(
        r#"{{"upstreams": [{{"name": "api", "targets": [{{"address": "{address}"}}]}}],
            "routes": [{{"name": "r", "backends": [{{"upstream": "api"}}]}}]}}"#
    );
    serde_json::from_str(&json).unwrap()
}

fn full(revision: u64, config: &Config) -> v1::ConfigPush {
    v1::ConfigPush {
        revision,
        digest: digest(config),
        base_revision: 0,
        upserts: resources_from_config(config),
        removals: vec![],
        committed_at_unix_ms: 0,
    }
}

#[tonic::async_trait]
impl ConfigSync for FakeControlPlane {
    type StreamStream = ReceiverStream<Result<v1::ConfigPush, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<v1::WorkerMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let number = self.streams.fetch_add(1, Ordering::SeqCst);
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let seen = self.seen.clone();
        tokio::spawn(async move {
            let next = |message: Option<v1::WorkerMessage>| {
                let message = message.and_then(|m| m.message);
                if let Some(message) = &message {
                    let _ = seen.send((number, message.clone()));
                }
                message
            };
            // Hello first.
            next(inbound.message().await.unwrap_or(None));
            if number > 0 {
                // Keep later streams open until the worker goes away.
                while next(inbound.message().await.unwrap_or(None)).is_some() {}
                drop(tx);
                return;
            }
            let one = config("127.0.0.1:1");
            let pushes = [
                full(1, &one),
                full(2, &config("no port")),
                v1::ConfigPush {
                    base_revision: 1,
                    upserts: vec![resources_from_config(&config("127.0.0.1:3")).remove(0)],
                    ..full(3, &config("127.0.0.1:3"))
                },
            ];
            for push in pushes {
                if tx.send(Ok(push)).await.is_err() {
                    return;
                }
                next(inbound.message().await.unwrap_or(None));
            }
            // Ending the stream makes the worker reconnect.
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn recv(seen: &mut mpsc::UnboundedReceiver<(usize, Message)>) -> (usize, Message) {
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the worker did not answer in time")
        .unwrap()
}

#[tokio::test]
async fn acks_nacks_deltas_and_resumes_after_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let fake = FakeControlPlane {
        streams: AtomicUsize::new(0),
        seen: seen_tx,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ConfigSyncServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let state = Arc::new(State::new(NodeIdentity {
        id: "worker-1".into(),
        group: "edge".into(),
    }));
    let settings = SyncSettings::new(&format!("http://{addr}"), "test-build").unwrap();
    let worker = tokio::spawn(run(state.clone(), settings));

    let (stream, Message::Hello(hello)) = recv(&mut seen).await else {
        panic!("Hello must come first");
    };
    assert_eq!(stream, 0);
    assert_eq!(
        (hello.applied_revision, hello.applied_digest.as_str()),
        (0, "")
    );
    let node = hello.node.unwrap();
    assert_eq!(
        (node.id.as_str(), node.group.as_str()),
        ("worker-1", "edge")
    );
    assert_eq!(node.build, "test-build");

    assert_eq!(
        recv(&mut seen).await.1,
        Message::Ack(v1::Ack { revision: 1 })
    );
    let (_, Message::Nack(nack)) = recv(&mut seen).await else {
        panic!("an invalid push must be NACKed");
    };
    assert_eq!(nack.revision, 2);
    assert_eq!(nack.details[0].field, "targets[0].address");
    assert_eq!(
        recv(&mut seen).await.1,
        Message::Ack(v1::Ack { revision: 3 })
    );

    let (stream, Message::Hello(hello)) = recv(&mut seen).await else {
        panic!("a reconnect starts with Hello");
    };
    assert_eq!(stream, 1);
    assert_eq!(hello.applied_revision, 3);
    assert_eq!(hello.applied_digest, digest(&config("127.0.0.1:3")));
    let current = state.current().unwrap();
    assert_eq!(current.revision, 3);
    assert_eq!(current.config, config("127.0.0.1:3"));

    worker.abort();
}
