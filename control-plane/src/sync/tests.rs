//! ConfigSync over a real gRPC connection: push, ACK, NACK, coalescing and status recording.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use gateway_config::{Balance, Target, Upstream};
use gateway_proto::v1::config_sync_client::ConfigSyncClient;
use gateway_proto::v1::{
    Ack, ConfigPush, Hello, Nack, Node, WorkerMessage, worker_message::Message,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::Streaming;

use super::SyncService;
use crate::nodes::{NodeStatus, derive_status};
use crate::snapshot::SnapshotHub;
use crate::store::test_support::sqlite;
use crate::store::{Change, NodeRow, Store, now_ms};

const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `check` until it returns Some, failing after the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn node(store: &Store, id: &str) -> Option<NodeRow> {
    store
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.id == id)
}

fn upstream(name: &str) -> Upstream {
    Upstream {
        name: name.into(),
        tags: vec![],
        targets: vec![Target {
            address: "127.0.0.1:9".into(),
            weight: 1,
        }],
        balance: Balance::RoundRobin,
    }
}

struct Worker {
    outbound: mpsc::Sender<WorkerMessage>,
    inbound: Streaming<ConfigPush>,
}

impl Worker {
    async fn connect(addr: std::net::SocketAddr, first: Message) -> Worker {
        let mut client = ConfigSyncClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let (outbound, receiver) = mpsc::channel(8);
        outbound
            .send(WorkerMessage {
                message: Some(first),
            })
            .await
            .unwrap();
        let inbound = client
            .stream(ReceiverStream::new(receiver))
            .await
            .unwrap()
            .into_inner();
        Worker { outbound, inbound }
    }

    async fn next_push(&mut self) -> ConfigPush {
        tokio::time::timeout(DEADLINE, self.inbound.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    }

    async fn send(&self, message: Message) {
        self.outbound
            .send(WorkerMessage {
                message: Some(message),
            })
            .await
            .unwrap();
    }
}

fn hello(id: &str) -> Message {
    Message::Hello(Hello {
        node: Some(Node {
            id: id.into(),
            group: "edge".into(),
            build: "test".into(),
            labels: Default::default(),
        }),
        applied_revision: 0,
        applied_digest: String::new(),
    })
}

#[tokio::test]
async fn pushes_acks_nacks_and_status() {
    let db = sqlite().await;
    let store = db.store.clone();
    let hub = SnapshotHub::new(store.latest_config().await.unwrap().into());
    let (stop, stopped) = watch::channel(false);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = SyncService::new(store.clone(), hub.clone(), "replica-1", stopped.clone());
    let mut shutdown = stopped.clone();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                crate::stopping(&mut shutdown).await;
            }),
    );
    let poller = tokio::spawn(hub.clone().poll(store.clone(), stopped.clone()));

    // A fresh worker gets revision 0 so that it can become ready.
    let mut worker = Worker::connect(addr, hello("w1")).await;
    let first = worker.next_push().await;
    assert_eq!(first.revision, 0);
    assert_eq!(first.base_revision, 0);
    assert!(first.upserts.is_empty());
    assert_eq!(first.digest, hub.current().digest);
    worker.send(Message::Ack(Ack { revision: 0 })).await;
    let row = eventually("node acked 0", || async {
        node(&store, "w1")
            .await
            .filter(|n| n.applied_digest == first.digest)
    })
    .await;
    assert!(row.connected);
    assert_eq!(row.group, "edge");
    assert_eq!(row.replica, "replica-1");
    assert_eq!(derive_status(&row, 0, now_ms()), NodeStatus::Synced);

    // A local write is published at once.
    let one = store
        .write(Change::Create(upstream("a")), "t")
        .await
        .unwrap();
    hub.publish(one.latest.into());
    let push = worker.next_push().await;
    assert_eq!(push.revision, 1);
    assert_eq!(push.upserts.len(), 1);
    worker
        .send(Message::Nack(Nack {
            revision: 1,
            message: "cannot compile".into(),
            details: vec![],
        }))
        .await;
    let row = eventually("node nacked", || async {
        node(&store, "w1").await.filter(|n| n.last_error.is_some())
    })
    .await;
    assert_eq!(row.last_error.as_deref(), Some("cannot compile"));
    assert_eq!(derive_status(&row, 1, now_ms()), NodeStatus::Error);

    // A write by another process (a second store on the same file) reaches the worker through the
    // poller, and the NACKed revision is never resent.
    let other = Store::connect(&db.url).await.unwrap();
    other
        .write(Change::Create(upstream("b")), "elsewhere")
        .await
        .unwrap();
    let push = worker.next_push().await;
    assert_eq!(push.revision, 2);
    assert_eq!(push.upserts.len(), 2);
    worker.send(Message::Ack(Ack { revision: 2 })).await;
    let row = eventually("node acked 2", || async {
        node(&store, "w1").await.filter(|n| n.applied_revision == 2)
    })
    .await;
    assert_eq!(row.last_error, None);
    assert_eq!(derive_status(&row, 2, now_ms()), NodeStatus::Synced);

    // Closing the stream marks the worker disconnected.
    drop(worker);
    eventually("node disconnected", || async {
        node(&store, "w1").await.filter(|n| !n.connected)
    })
    .await;

    // A stream that does not start with Hello is refused.
    let mut rude = Worker::connect(addr, Message::Ack(Ack { revision: 1 })).await;
    let refused = tokio::time::timeout(DEADLINE, rude.inbound.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // Shutdown ends open streams, so the server stops.
    let _open = Worker::connect(addr, hello("w2")).await;
    eventually("w2 connected", || async {
        node(&store, "w2").await.filter(|n| n.connected)
    })
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(DEADLINE, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    poller.await.unwrap();
    assert!(!node(&store, "w2").await.unwrap().connected);
}
