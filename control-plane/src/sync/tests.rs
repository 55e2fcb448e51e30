//! ConfigSync over a real gRPC connection: push, ACK, NACK, coalescing and status recording.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use gateway_config::{Target, Upstream};
use gateway_proto::v1::config_sync_client::ConfigSyncClient;
use gateway_proto::v1::{
    Ack, ConfigPush, Hello, Nack, Node, WorkerMessage, worker_message::Message,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::Streaming;
use tonic::transport::Channel;

use super::SyncService;
use crate::hub::SnapshotHub;
use crate::nodes::{NodeStatus, derive_status};
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
        ..Default::default()
    }
}

struct Worker {
    outbound: mpsc::Sender<WorkerMessage>,
    inbound: Streaming<ConfigPush>,
}

impl Worker {
    async fn connect(addr: std::net::SocketAddr, first: Message) -> Worker {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Worker::open(channel, first, None).await.unwrap()
    }

    /// Opens a stream on `channel`, sending `token` as the cluster token if given.
    async fn open(
        channel: Channel,
        first: Message,
        token: Option<&str>,
    ) -> Result<Worker, tonic::Status> {
        let mut client = ConfigSyncClient::new(channel);
        let (outbound, receiver) = mpsc::channel(8);
        outbound
            .send(WorkerMessage {
                message: Some(first),
            })
            .await
            .unwrap();
        let mut request = tonic::Request::new(ReceiverStream::new(receiver));
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let inbound = client.stream(request).await?.into_inner();
        Ok(Worker { outbound, inbound })
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
                crate::shutdown::stopping(&mut shutdown).await;
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
    hub.publish(one.latest.unwrap().into());
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

fn hello_at(id: &str, revision: u64, digest: &str) -> Message {
    Message::Hello(Hello {
        node: Some(Node {
            id: id.into(),
            group: "edge".into(),
            build: "test".into(),
            labels: Default::default(),
        }),
        applied_revision: revision,
        applied_digest: digest.into(),
    })
}

/// A ConfigSync server on a loopback port with its own hub over `store`.
struct Server {
    addr: std::net::SocketAddr,
    hub: SnapshotHub,
    stop: watch::Sender<bool>,
}

async fn serve(store: &Store, auth: super::SyncAuth) -> Server {
    let hub = SnapshotHub::new(store.latest_config().await.unwrap().into());
    let (stop, stopped) = watch::channel(false);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = SyncService::new(store.clone(), hub.clone(), "r", stopped.clone())
        .with_auth(auth)
        .into_server();
    let mut shutdown = stopped;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                crate::shutdown::stopping(&mut shutdown).await;
            }),
    );
    Server { addr, hub, stop }
}

async fn commit(store: &Store, hub: &SnapshotHub, name: &str) -> u64 {
    let outcome = store
        .write(Change::Create(upstream(name)), "t")
        .await
        .unwrap();
    let latest = outcome.latest.unwrap();
    let revision = latest.state.revision;
    hub.publish(latest.into());
    u64::try_from(revision).unwrap()
}

#[tokio::test]
async fn deltas_fallbacks_and_quiet_reconnects() {
    let db = sqlite().await;
    let store = db.store.clone();
    let server = serve(&store, super::SyncAuth::default()).await;
    let hub = server.hub.clone();

    let mut worker = Worker::connect(server.addr, hello("w1")).await;
    assert_eq!(worker.next_push().await.revision, 0);
    worker.send(Message::Ack(Ack { revision: 0 })).await;
    commit(&store, &hub, "a").await;
    // Revision 0 is no delta base: the first real config arrives in full.
    let first = worker.next_push().await;
    assert_eq!((first.revision, first.base_revision), (1, 0));
    worker.send(Message::Ack(Ack { revision: 1 })).await;

    commit(&store, &hub, "b").await;
    let delta = worker.next_push().await;
    assert_eq!((delta.revision, delta.base_revision), (2, 1));
    assert_eq!(delta.upserts.len(), 1);
    assert!(delta.removals.is_empty());
    assert_eq!(delta.digest, hub.current().digest);
    // A refused delta is followed by exactly one full push of the same revision.
    worker
        .send(Message::Nack(Nack {
            revision: 2,
            message: "digest mismatch".into(),
            details: vec![],
        }))
        .await;
    let full = worker.next_push().await;
    assert_eq!((full.revision, full.base_revision), (2, 0));
    assert_eq!(full.upserts.len(), 2);
    // Refusing that one too is final: nothing more until a newer revision.
    worker
        .send(Message::Nack(Nack {
            revision: 2,
            message: "still broken".into(),
            details: vec![],
        }))
        .await;
    eventually("full NACK recorded", || async {
        node(&store, "w1").await.filter(|n| n.last_error.is_some())
    })
    .await;

    // A worker already at the latest revision with the right digest gets nothing; its first
    // push is the next revision, as a delta.
    let digest2 = hub.current().digest.clone();
    let mut current = Worker::connect(server.addr, hello_at("w2", 2, &digest2)).await;
    let mut stale_digest = Worker::connect(server.addr, hello_at("w3", 1, "not-the-digest")).await;
    let full_for_w3 = stale_digest.next_push().await;
    assert_eq!((full_for_w3.revision, full_for_w3.base_revision), (2, 0));
    commit(&store, &hub, "c").await;
    let next = current.next_push().await;
    assert_eq!((next.revision, next.base_revision), (3, 2));
    assert_eq!(next.upserts.len(), 1);
    // w1 still sits on revision 1 after its NACKs: its delta spans two revisions.
    let catch_up = worker.next_push().await;
    assert_eq!((catch_up.revision, catch_up.base_revision), (3, 1));
    assert_eq!(catch_up.upserts.len(), 2);

    // A replica that never saw revision 1 in memory loads the base from the database.
    let digest1 = store.config_at(1).await.unwrap().row.digest;
    let other = serve(&store, super::SyncAuth::default()).await;
    assert!(other.hub.recent(1).is_none());
    let mut from_db = Worker::connect(other.addr, hello_at("w4", 1, &digest1)).await;
    let push = from_db.next_push().await;
    assert_eq!((push.revision, push.base_revision), (3, 1));
    assert_eq!(push.upserts.len(), 2);
    let _ = server.stop.send(true);
    let _ = other.stop.send(true);
}

#[tokio::test]
async fn cluster_token_is_required() {
    let db = sqlite().await;
    let auth = super::SyncAuth {
        token: Some("s3cret".into()),
        require_client_cert: false,
    };
    let server = serve(&db.store, auth).await;
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for token in [None, Some("wrong")] {
        let refused = Worker::open(channel.clone(), hello("w"), token).await;
        assert_eq!(
            refused.err().map(|s| s.code()),
            Some(tonic::Code::Unauthenticated)
        );
    }
    let mut accepted = Worker::open(channel, hello("w"), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(accepted.next_push().await.revision, 0);
    let _ = server.stop.send(true);
}

#[tokio::test]
async fn mutual_tls_with_a_throwaway_ca() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gateway test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf = |names: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into()], "control-plane");
    let (client_cert, client_key) = leaf(vec!["worker-1".into()], "worker-1");

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cert_path = write("server.pem", &server_cert);
    let key_path = write("server.key", &server_key);
    let ca_path = write("ca.pem", &ca_cert.pem());
    let config = super::tls::server_config(&cert_path, &key_path, Some(&ca_path)).unwrap();

    let db = sqlite().await;
    let hub = SnapshotHub::new(db.store.latest_config().await.unwrap().into());
    let (stop, stopped) = watch::channel(false);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = super::SyncAuth {
        token: None,
        require_client_cert: true,
    };
    let service = SyncService::new(db.store.clone(), hub, "r", stopped.clone())
        .with_auth(auth)
        .into_server();
    let mut shutdown = stopped.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                super::tls::incoming(listener, config, stopped),
                async move { crate::shutdown::stopping(&mut shutdown).await },
            ),
    );

    let ca = Certificate::from_pem(ca_cert.pem());
    let channel = |identity: Option<Identity>| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(ca.clone())
            .domain_name("localhost");
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        Channel::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
    };
    let with_cert = channel(Some(Identity::from_pem(&client_cert, &client_key)))
        .connect()
        .await
        .unwrap();
    let mut worker = Worker::open(with_cert, hello("w"), None).await.unwrap();
    assert_eq!(worker.next_push().await.revision, 0);

    let without_cert = channel(None).connect().await.unwrap();
    let refused = Worker::open(without_cert, hello("anon"), None).await;
    assert_eq!(
        refused.err().map(|s| s.code()),
        Some(tonic::Code::Unauthenticated)
    );

    // Plaintext to a TLS listener never reaches the service.
    let plain = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        assert!(Worker::open(plain, hello("p"), None).await.is_err());
    }
    let _ = stop.send(true);
}
