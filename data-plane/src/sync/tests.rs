//! The sync client against fake control planes (tonic servers in the test): a scripted
//! conversation (first contact, ACK, NACK that keeps the served config, a delta, a reconnect that
//! resumes from the applied revision), a cluster token that is required, rotation past a dead
//! control plane, the cache written after an ACK, and mTLS with a throwaway CA.

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

use crate::served::Source;
use crate::served::{NodeIdentity, State};
use crate::sync::persist::CacheWriter;
use crate::sync::{Cache, ClientSecurity, SyncSettings, run};

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
    let settings = SyncSettings::new(
        &[format!("http://{addr}")],
        "test-build",
        &ClientSecurity::default(),
    )
    .unwrap();
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
    assert_eq!(current.config.to_config(), config("127.0.0.1:3"));

    worker.abort();
}

/// Pushes revision 1 in full on every stream and keeps it open; reports each worker message.
struct SimpleControlPlane {
    seen: mpsc::UnboundedSender<Message>,
}

#[tonic::async_trait]
impl ConfigSync for SimpleControlPlane {
    type StreamStream = ReceiverStream<Result<v1::ConfigPush, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<v1::WorkerMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let seen = self.seen.clone();
        tokio::spawn(async move {
            let _ = tx.send(Ok(full(1, &config("127.0.0.1:1")))).await;
            while let Ok(Some(message)) = inbound.message().await {
                if let Some(message) = message.message {
                    let _ = seen.send(message);
                }
            }
            drop(tx);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn worker_state(urls: &[String]) -> Arc<State> {
    Arc::new(State::with_control_planes(
        NodeIdentity {
            id: "w".into(),
            group: "g".into(),
        },
        urls.to_vec(),
    ))
}

/// Polls `condition` until it holds, failing the test after a deadline.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn require_token(request: Request<()>) -> Result<Request<()>, Status> {
    match request.metadata().get("authorization") {
        Some(value) if value == "Bearer s3cret" => Ok(request),
        _ => Err(Status::unauthenticated("missing or wrong cluster token")),
    }
}

#[tokio::test]
async fn token_is_required_dead_control_planes_are_skipped_and_the_cache_is_written() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let good = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ConfigSyncServer::with_interceptor(
                SimpleControlPlane { seen: seen_tx },
                require_token,
            ))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    // Nothing listens there.
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };

    // Without the token the worker is refused and serves nothing.
    let urls = vec![good.clone()];
    let refused = worker_state(&urls);
    let settings = SyncSettings::new(&urls, "b", &ClientSecurity::default()).unwrap();
    let refused_task = tokio::spawn(run(refused.clone(), settings));
    eventually("the refusal is recorded", || {
        refused
            .last_error()
            .is_some_and(|e| e.contains("cluster token"))
    })
    .await;
    assert!(refused.current().is_none());
    refused_task.abort();

    // With the token, past a dead control plane, into the cache.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("g.pb"));
    let urls = vec![dead, good.clone()];
    let state = worker_state(&urls);
    let security = ClientSecurity {
        token: Some("s3cret".into()),
        ..ClientSecurity::default()
    };
    let settings = SyncSettings::new(&urls, "b", &security)
        .unwrap()
        .with_cache(Some(CacheWriter::start(cache.clone(), state.clone()).0));
    let worker = tokio::spawn(run(state.clone(), settings));
    let first = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, Message::Hello(_)), "{first:?}");
    let ack = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack, Message::Ack(v1::Ack { revision: 1 }));
    assert_eq!(state.connected_to(), Some(good));
    assert_eq!(state.source(), Some(Source::ControlPlane));
    eventually("the cache holds revision 1", || {
        cache
            .load(&Arc::default())
            .ok()
            .flatten()
            .is_some_and(|c| c.revision == 1)
    })
    .await;
    assert!(
        state
            .metrics()
            .render()
            .contains("gateway_config_applies_total 1")
    );
    worker.abort();
}

/// Pushes one given config in full on every stream; reports each worker message and the
/// encodings the worker accepts.
struct OnePushControlPlane {
    push: v1::ConfigPush,
    seen: mpsc::UnboundedSender<Message>,
    accepts: Arc<std::sync::Mutex<Option<String>>>,
}

#[tonic::async_trait]
impl ConfigSync for OnePushControlPlane {
    type StreamStream = ReceiverStream<Result<v1::ConfigPush, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<v1::WorkerMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        *self.accepts.lock().unwrap() = request
            .metadata()
            .get("grpc-accept-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(1);
        let (push, seen) = (self.push.clone(), self.seen.clone());
        tokio::spawn(async move {
            let _ = tx.send(Ok(push)).await;
            while let Ok(Some(message)) = inbound.message().await {
                if let Some(message) = message.message {
                    let _ = seen.send(message);
                }
            }
            drop(tx);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Also checks that the worker asks for compressed pushes, which the server then sends.
#[tokio::test]
async fn a_push_far_over_grpcs_default_message_limit_is_received() {
    use prost::Message as _;

    let mut big = config("127.0.0.1:1");
    for i in 0..200 {
        let name = format!("fixed-{i:03}");
        let route = gateway_config::Route {
            name: name.clone(),
            paths: vec![gateway_config::PathMatch::Exact(format!("/fixed/{i}"))],
            direct_response: Some(gateway_config::DirectResponse {
                status: 200,
                body: format!("{i:03}").repeat(32 * 1024 / 3),
                content_type: None,
            }),
            ..Default::default()
        };
        big.routes.insert(name, route);
    }
    let push = full(1, &big);
    let size = push.encoded_len();
    assert!(size > 6 * 1024 * 1024, "{size} bytes");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let accepts = Arc::new(std::sync::Mutex::new(None));
    let service = ConfigSyncServer::new(OnePushControlPlane {
        push,
        seen: seen_tx,
        accepts: accepts.clone(),
    })
    .max_encoding_message_size(gateway_proto::MAX_CONFIG_PUSH_BYTES)
    .send_compressed(gateway_proto::PUSH_COMPRESSION);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let urls = vec![url];
    let state = worker_state(&urls);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("g.pb"));
    let settings = SyncSettings::new(&urls, "b", &ClientSecurity::default())
        .unwrap()
        .with_cache(Some(CacheWriter::start(cache.clone(), state.clone()).0));
    let worker = tokio::spawn(run(state.clone(), settings));
    let mut acked = false;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(30), seen.recv()).await {
        if message == Message::Ack(v1::Ack { revision: 1 }) {
            acked = true;
            break;
        }
    }
    assert!(acked, "no ACK: {:?}", state.last_error());
    assert_eq!(state.current().unwrap().config.route_count(), 201);
    let accepts = accepts.lock().unwrap().clone().unwrap_or_default();
    assert!(accepts.split(',').any(|e| e.trim() == "zstd"), "{accepts}");
    eventually("the cache holds the whole config", || {
        cache
            .read()
            .ok()
            .flatten()
            .is_some_and(|p| p.upserts.len() == 202)
    })
    .await;
    worker.abort();

    // A worker told to accept less refuses it, and says why.
    let small = worker_state(&urls);
    let settings = SyncSettings::new(&urls, "b", &ClientSecurity::default())
        .unwrap()
        .with_max_push_bytes(4 * 1024 * 1024);
    let refused = tokio::spawn(run(small.clone(), settings));
    eventually("the refusal is recorded", || {
        small
            .last_error()
            // Over the limit once decompressed.
            .is_some_and(|e| e.contains("size limit") && e.contains("exceeded"))
    })
    .await;
    assert!(small.current().is_none());
    refused.abort();
}

mod tls {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};

    use super::*;

    struct Pki {
        ca: String,
        server: (String, String),
        client: (String, String),
    }

    fn leaf(
        names: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
        issuer: &Issuer<'_, &KeyPair>,
    ) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "worker-1");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pki() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "throwaway test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(params, &ca_key);
        Pki {
            ca: ca.pem(),
            server: leaf(
                vec!["127.0.0.1".into()],
                ExtendedKeyUsagePurpose::ServerAuth,
                &issuer,
            ),
            client: leaf(vec![], ExtendedKeyUsagePurpose::ClientAuth, &issuer),
        }
    }

    #[tokio::test]
    async fn mutual_tls_with_a_throwaway_ca() {
        // tonic's TLS server takes rustls's process default, as the worker's client does.
        crate::crypto::install_process_default();
        let pki = pki();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
            .client_ca_root(Certificate::from_pem(&pki.ca));
        tokio::spawn(
            tonic::transport::Server::builder()
                .tls_config(tls)
                .unwrap()
                .add_service(ConfigSyncServer::new(SimpleControlPlane { seen: seen_tx }))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let urls = vec![url.clone()];

        // Without a client certificate the handshake fails.
        let anonymous = worker_state(&urls);
        let security = ClientSecurity {
            ca: Some(Certificate::from_pem(&pki.ca)),
            ..ClientSecurity::default()
        };
        let task = tokio::spawn(run(
            anonymous.clone(),
            SyncSettings::new(&urls, "b", &security).unwrap(),
        ));
        eventually("the anonymous worker fails", || {
            anonymous.last_error().is_some()
        })
        .await;
        assert!(anonymous.current().is_none());
        task.abort();

        // With one, the push arrives and is ACKed.
        let state = worker_state(&urls);
        let security = ClientSecurity {
            identity: Some(Identity::from_pem(&pki.client.0, &pki.client.1)),
            ..security
        };
        let worker = tokio::spawn(run(
            state.clone(),
            SyncSettings::new(&urls, "b", &security).unwrap(),
        ));
        let mut acked = false;
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(10), seen.recv()).await
        {
            if message == Message::Ack(v1::Ack { revision: 1 }) {
                acked = true;
                break;
            }
        }
        assert!(acked, "no ACK over mTLS");
        assert_eq!(state.current().unwrap().revision, 1);
        assert_eq!(state.connected_to(), Some(url));
        worker.abort();
    }
}
