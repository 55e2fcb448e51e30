//! TLS at the worker's front door, with real clients (curl, `openssl s_client`, h2load, tonic,
//! tungstenite over tokio-rustls): certificates chosen by server name (exact, then the longest
//! wildcard suffix; unknown and missing names refused or given the default certificate), ALPN h2
//! and http/1.1 with and without bodies, TLS 1.2 and 1.3 only, session resumption, gRPC and
//! WebSocket over TLS, client certificates required and optional with their headers upstream, and
//! the plain-HTTP redirect and HSTS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gateway_tests::certs::{Issued, Purpose, TestPki, keyring_file};
use gateway_tests::clients::{Run, curl_https, h2load, s_client};
use gateway_tests::cluster::{Cluster, ClusterOptions};
use gateway_tests::http::send;
use gateway_tests::servers::grpc::proto::EchoRequest;
use gateway_tests::servers::grpc::{EchoClient, GrpcEchoServer, check_chat, check_server_stream};
use gateway_tests::servers::websocket::WebSocketEchoServer;
use gateway_tests::topology::gatewayctl;
use gateway_tests::upstream::EchoServer;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A cluster whose workers listen for TLS, with an echo upstream behind every path.
pub struct Tls {
    pub upstream: EchoServer,
    pub cluster: Cluster,
    pub pki: TestPki,
    _keyring: tempfile::TempDir,
}

impl Tls {
    /// One worker per entry of `workers`, each with `--tls-listen` and those arguments.
    pub async fn start(workers: &[&[&str]]) -> Tls {
        let keyring_dir = tempfile::tempdir().unwrap();
        let keyring = keyring_file(keyring_dir.path());
        let cluster = Cluster::start_with(ClusterOptions {
            control_plane_args: vec![
                "--key-encryption-key-file".into(),
                keyring.display().to_string(),
            ],
            workers: workers
                .iter()
                .map(|args| {
                    let mut all = vec!["--tls-listen".to_owned(), "127.0.0.1:0".to_owned()];
                    all.extend(args.iter().map(|a| (*a).to_owned()));
                    all
                })
                .collect(),
        })
        .await;
        Tls {
            upstream: EchoServer::start("echo").await,
            cluster,
            pki: TestPki::new(),
            _keyring: keyring_dir,
        }
    }

    pub fn ca(&self) -> &Path {
        &self.pki.ca_cert
    }

    pub fn tls_addr(&self, worker: usize) -> SocketAddr {
        self.cluster.workers[worker]
            .tls_addr
            .expect("a TLS listener")
    }

    pub fn server(&self, name: &str, sans: &[&str]) -> Issued {
        self.pki.issue_for(Purpose::Server, name, sans)
    }

    /// The echo upstream behind `/`, `extra` upstreams and routes, and `certificates`, applied
    /// and served by every worker.
    pub async fn apply(&self, certificates: Vec<Value>, extra: Value) -> u64 {
        let mut upstreams =
            vec![json!({"name": "u", "targets": [{"address": self.upstream.address()}]})];
        let mut routes =
            vec![json!({"name": "r", "paths": [{"prefix": "/"}], "backends": [{"upstream": "u"}]})];
        upstreams.extend(extra["upstreams"].as_array().cloned().unwrap_or_default());
        routes.extend(extra["routes"].as_array().cloned().unwrap_or_default());
        self.cluster
            .apply(&json!({"upstreams": upstreams, "routes": routes, "certificates": certificates}))
            .await
    }
}

/// A certificate entity of `issued`, for `snis` (none: its SANs).
pub fn certificate(name: &str, issued: &Issued, snis: &[&str]) -> Value {
    let mut certificate = json!({"name": name, "cert": issued.cert_pem, "key": issued.key_pem});
    if !snis.is_empty() {
        certificate["snis"] = json!(snis);
    }
    certificate
}

/// The body curl printed and what `-w "\n%{...}"` added after it.
fn split_written(run: &Run) -> (Value, String) {
    let (body, written) = run.stdout.rsplit_once('\n').unwrap_or(("", &run.stdout));
    (
        serde_json::from_str(body).unwrap_or(Value::Null),
        written.to_owned(),
    )
}

fn echoed_header<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
    echo["headers"][name]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A worker metric's value for one label set, e.g. `gateway_tls_handshakes_total{result="full"}`.
async fn metric(tls: &Tls, worker: usize, series: &str) -> f64 {
    let reply = send(
        tls.cluster
            .client
            .get(tls.cluster.workers[worker].status_url("/metrics")),
    )
    .await
    .unwrap();
    reply
        .text
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_names_choose_the_certificate_exact_first_then_the_longest_wildcard() {
    let tls = Tls::start(&[&[], &["--tls-default-certificate", "apex"]]).await;
    let certificates = vec![
        certificate("apex", &tls.server("apex", &["example.test"]), &[]),
        certificate("wild", &tls.server("wild", &["*.example.test"]), &[]),
        certificate(
            "deep",
            &tls.server("deep", &["*.api.example.test", "api.example.test"]),
            &[],
        ),
        certificate("exact", &tls.server("exact", &["v1.api.example.test"]), &[]),
    ];
    tls.apply(certificates, json!({})).await;
    let (refusing, defaulting) = (tls.tls_addr(0), tls.tls_addr(1));

    for (name, expected) in [
        ("example.test", "apex"),
        ("www.example.test", "wild"),
        ("a.b.example.test", "wild"),
        ("api.example.test", "deep"),
        ("v2.api.example.test", "deep"),
        ("v1.api.example.test", "exact"),
        ("V1.API.Example.TEST", "exact"),
    ] {
        for addr in [refusing, defaulting] {
            let handshake = s_client(addr, Some(name), tls.ca(), &[]).await;
            assert_eq!(
                handshake.subject_common_name().as_deref(),
                Some(expected),
                "{name} on {addr}: {}",
                handshake.run
            );
            assert!(handshake.verified(), "{}", handshake.run);
        }
    }

    // A name no certificate covers, and no name at all: refused, or the default certificate.
    for name in [Some("other.test"), Some("example.test.evil"), None] {
        let refused = s_client(refusing, name, tls.ca(), &[]).await;
        assert!(
            !refused.run.succeeded() && refused.subject_common_name().is_none(),
            "{name:?} is refused: {}",
            refused.run
        );
        assert!(
            refused.run.stderr.contains("unrecognized name"),
            "the client is told why: {}",
            refused.run
        );
        let defaulted = s_client(defaulting, name, tls.ca(), &[]).await;
        assert_eq!(
            defaulted.subject_common_name().as_deref(),
            Some("apex"),
            "{name:?} gets the default: {}",
            defaulted.run
        );
    }
    assert!(
        metric(
            &tls,
            0,
            "gateway_tls_handshakes_total{result=\"unknown_server_name\"}"
        )
        .await
            >= 3.0
    );
    // An IP address is no server name (RFC 6066 §3), but clients send them: it counts as none,
    // quietly, however many clients do it.
    for _ in 0..3 {
        let by_address = s_client(defaulting, Some("127.0.0.1"), tls.ca(), &[]).await;
        assert_eq!(
            by_address.subject_common_name().as_deref(),
            Some("apex"),
            "{}",
            by_address.run
        );
    }
    let log = tls.cluster.workers[1].process.log();
    assert!(
        !log.contains("rustls"),
        "handshake details stay out of the log:\n{log}"
    );

    // curl checks the presented certificate against the name it asked for, so a 200 for each
    // name is also a check that the right certificate came back.
    for name in [
        "example.test",
        "www.example.test",
        "api.example.test",
        "v2.api.example.test",
        "v1.api.example.test",
    ] {
        let run = curl_https(
            refusing,
            name,
            "/hello",
            tls.ca(),
            &["-w", "\n%{http_code}"],
        )
        .await;
        let (echo, code) = split_written(&run);
        assert_eq!(code, "200", "{name}: {run}");
        assert_eq!(
            echoed_header(&echo, "x-forwarded-proto"),
            ["https"],
            "{run}"
        );
        assert_eq!(echo["path"], "/hello");
    }

    // The status port lists what each worker loaded.
    for worker in &tls.cluster.workers {
        let status = send(tls.cluster.client.get(worker.status_url("/status")))
            .await
            .unwrap();
        let names: Vec<&str> = status.body["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["apex", "deep", "exact", "wild"], "{}", status.text);
        let fingerprint = status.body["certificates"][0]["fingerprint_sha256"]
            .as_str()
            .unwrap();
        assert_eq!(fingerprint.len(), 64);
    }
    let expiry = metric(
        &tls,
        0,
        "gateway_tls_certificate_expiry_seconds{certificate=\"apex\"}",
    )
    .await;
    assert!(expiry > 86_400.0, "seconds until apex expires: {expiry}");
}

/// A JSON document of about `size` bytes.
fn json_body(size: usize) -> String {
    let items: Vec<Value> = (0..size / 40)
        .map(|i| json!({"id": i, "name": format!("item-{i:08}")}))
        .collect();
    json!({ "items": items }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_http11_are_chosen_by_alpn_with_and_without_bodies() {
    let tls = Tls::start(&[&["--tls-default-certificate", "site"]]).await;
    let site = tls.server("site", &["site.example.test"]);
    tls.apply(vec![certificate("site", &site, &[])], json!({}))
        .await;
    let addr = tls.tls_addr(0);

    let body = json_body(64 * 1024);
    let body_file = tls.pki.dir.path().join("body.json");
    std::fs::write(&body_file, &body).unwrap();
    let data = format!("@{}", body_file.display());
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let get = curl_https(
            addr,
            "site.example.test",
            "/get?x=1",
            tls.ca(),
            &[flag, "-w", "\n%{http_version} %{http_code}"],
        )
        .await;
        let (echo, written) = split_written(&get);
        assert_eq!(written, format!("{version} 200"), "{get}");
        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["path"], "/get?x=1");
        assert_eq!(echoed_header(&echo, "x-forwarded-proto"), ["https"]);

        let post = curl_https(
            addr,
            "site.example.test",
            "/orders",
            tls.ca(),
            &[
                flag,
                "-H",
                "content-type: application/json",
                "--data-binary",
                &data,
                "-w",
                "\n%{http_version} %{http_code}",
            ],
        )
        .await;
        let (echo, written) = split_written(&post);
        assert_eq!(written, format!("{version} 200"), "{post}");
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["body_len"].as_u64(), Some(body.len() as u64));

        // A longer streamed answer arrives whole.
        let streamed = curl_https(
            addr,
            "site.example.test",
            "/stream?chunks=3000&interval_ms=0",
            tls.ca(),
            &[flag],
        )
        .await;
        assert!(streamed.succeeded(), "{streamed}");
        assert_eq!(streamed.stdout.lines().count(), 3000);
        assert_eq!(streamed.stdout.lines().last(), Some("chunk 2999"));
    }

    for alpn in ["h2", "http/1.1"] {
        let handshake = s_client(addr, Some("site.example.test"), tls.ca(), &["-alpn", alpn]).await;
        assert_eq!(handshake.alpn().as_deref(), Some(alpn), "{}", handshake.run);
    }

    // Many requests on a few connections, over HTTP/2 (multiplexed) and HTTP/1.1; h2load sends
    // no server name for an IP address, so these get the default certificate.
    let url = format!("https://{addr}/load");
    for protocol in [&[][..], &["--h1"][..]] {
        let mut args = vec!["-n", "2000", "-c", "4", "-m", "8"];
        args.extend_from_slice(protocol);
        args.push(&url);
        let report = h2load(&args).await;
        assert_eq!(
            (
                report.succeeded,
                report.failed,
                report.errored,
                report.status_2xx
            ),
            (2000, 0, 0, 2000),
            "{}",
            report.run
        );
        let expected = if protocol.is_empty() {
            "h2"
        } else {
            "http/1.1"
        };
        assert!(
            report
                .run
                .stdout
                .contains(&format!("Application protocol: {expected}")),
            "{}",
            report.run
        );
    }
    let mut args = vec!["-n", "300", "-c", "3", "-m", "4", "-d"];
    let path = body_file.display().to_string();
    args.push(&path);
    args.push(&url);
    let report = h2load(&args).await;
    assert_eq!(
        (report.succeeded, report.status_2xx),
        (300, 300),
        "{}",
        report.run
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_tls_1_2_and_1_3_are_spoken_and_sessions_resume() {
    let tls = Tls::start(&[&[]]).await;
    let site = tls.server("site", &["site.example.test"]);
    tls.apply(vec![certificate("site", &site, &[])], json!({}))
        .await;
    let addr = tls.tls_addr(0);
    let name = Some("site.example.test");

    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let handshake = s_client(addr, name, tls.ca(), &[flag]).await;
        assert_eq!(
            handshake.protocol().as_deref(),
            Some(version),
            "{}",
            handshake.run
        );
    }
    // The client offers only an older version (its own floor lowered so that it can): the
    // server ends the handshake with an alert.
    for flag in ["-tls1_1", "-tls1"] {
        let refused = s_client(
            addr,
            name,
            tls.ca(),
            &[flag, "-cipher", "DEFAULT@SECLEVEL=0"],
        )
        .await;
        assert!(!refused.run.succeeded(), "{}", refused.run);
        assert!(
            refused.run.stderr.contains("SSL alert number"),
            "the server refused the version: {}",
            refused.run
        );
        assert!(
            refused.protocol().is_none_or(|p| p == "(NONE)"),
            "{}",
            refused.run
        );
    }

    // TLS 1.2: `-reconnect` makes five more connections with the first one's session.
    let resumed = s_client(addr, name, tls.ca(), &["-tls1_2", "-reconnect"]).await;
    let reused = resumed.run.stdout.matches("Reused, TLSv1.2").count();
    assert!(reused >= 4, "{reused} resumed\n{}", resumed.run);

    // TLS 1.3: a ticket arrives after the handshake, so each connection makes a request and
    // reads the answer; the next one resumes with the ticket.
    let connector = tls_connector(tls.ca(), &[b"http/1.1"], None);
    let mut kinds = Vec::new();
    for _ in 0..4 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = connect_with(&connector, addr, "site.example.test")
            .await
            .unwrap();
        let (_, connection) = stream.get_ref();
        assert_eq!(
            connection.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        kinds.push(connection.handshake_kind());
        stream
            .write_all(b"GET /t HTTP/1.1\r\nhost: site.example.test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    use rustls::HandshakeKind::{Full, Resumed};
    assert_eq!(
        kinds,
        [Some(Full), Some(Resumed), Some(Resumed), Some(Resumed)]
    );
    assert!(metric(&tls, 0, "gateway_tls_handshakes_total{result=\"resumed\"}").await >= 7.0);
}

/// A tonic channel to the worker's TLS listener, asking for `server_name`.
async fn grpc_channel(tls: &Tls, server_name: &str) -> tonic::transport::Channel {
    let ca = tonic::transport::Certificate::from_pem(tls.pki.ca_pem());
    let config = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name(server_name);
    tonic::transport::Channel::from_shared(format!("https://{}", tls.tls_addr(0)))
        .unwrap()
        .tls_config(config)
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap()
}

/// A client trusting `ca`, offering `alpn`, with `client` as its client certificate; it keeps
/// sessions for resumption.
pub fn tls_connector(
    ca: &Path,
    alpn: &[&[u8]],
    client: Option<&Issued>,
) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(issued) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(&issued.cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(&issued.key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `addr` asking for `server_name`, trusting `ca`, offering `alpn`, with
/// `client` as its client certificate.
pub async fn tls_connect(
    addr: SocketAddr,
    server_name: &str,
    ca: &Path,
    alpn: &[&[u8]],
    client: Option<&Issued>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    connect_with(&tls_connector(ca, alpn, client), addr, server_name).await
}

async fn connect_with(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    server_name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    connector.connect(name, tcp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_websocket_sessions_run_over_tls() {
    let tls = Tls::start(&[&[]]).await;
    let grpc = GrpcEchoServer::start().await;
    let websocket = WebSocketEchoServer::start().await;
    let edge = tls.server("edge", &["grpc.example.test", "ws.example.test"]);
    tls.apply(
        vec![certificate("edge", &edge, &[])],
        json!({
            "upstreams": [
                {"name": "grpc", "protocol": "h2c", "targets": [{"address": grpc.address()}]},
                {"name": "ws", "targets": [{"address": websocket.address()}]},
            ],
            "routes": [
                {"name": "grpc", "paths": [{"prefix": "/gateway.test.echo.v1.Echo"}],
                 "backends": [{"upstream": "grpc"}]},
                {"name": "ws", "paths": [{"prefix": "/chat"}], "backends": [{"upstream": "ws"}]},
            ],
        }),
    )
    .await;

    // gRPC: unary, server streaming and bidirectional over HTTP/2 over TLS.
    let mut client = EchoClient::new(grpc_channel(&tls, "grpc.example.test").await);
    let reply = client
        .echo(EchoRequest {
            text: "over TLS".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.text, "over TLS");
    assert_eq!(reply.te, "trailers");
    check_server_stream(&mut client, 500).await;
    check_chat(&mut client, 50).await;

    // WebSocket: the upgrade over HTTP/1.1 over TLS, then messages both ways.
    let stream = tls_connect(
        tls.tls_addr(0),
        "ws.example.test",
        tls.ca(),
        &[b"http/1.1"],
        None,
    )
    .await
    .unwrap();
    let (mut socket, response) =
        tokio_tungstenite::client_async("wss://ws.example.test/chat", stream)
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    let megabyte: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    for message in [
        Message::text("hello over TLS"),
        Message::binary(megabyte),
        Message::text("after the large one"),
    ] {
        socket.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer within 10 s")
            .expect("the socket is open")
            .unwrap();
        assert_eq!(echoed, message);
    }
    socket.close(None).await.unwrap();
}

fn fingerprint_of(cert: &Path) -> String {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(cert).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_or_optional_and_reach_the_upstream_in_headers() {
    let tls = Tls::start(&[&[]]).await;
    let client_auth = |mode: &str| {
        json!({"ca": tls.pki.ca_pem(), "mode": mode,
               "subject_header": "x-client-subject",
               "fingerprint_header": "x-client-fingerprint"})
    };
    let mut strict = certificate("strict", &tls.server("strict", &["mtls.example.test"]), &[]);
    strict["client_auth"] = client_auth("required");
    let mut lenient = certificate(
        "lenient",
        &tls.server("lenient", &["opt.example.test"]),
        &[],
    );
    lenient["client_auth"] = client_auth("optional");
    tls.apply(vec![strict, lenient], json!({})).await;
    let addr = tls.tls_addr(0);

    let alice = tls.pki.issue_for(Purpose::Client, "alice", &[]);
    let stranger_pki = TestPki::new();
    let mallory = stranger_pki.issue_for(Purpose::Client, "mallory", &[]);
    let with = |issued: &Issued| -> Vec<String> {
        vec![
            "--cert".into(),
            issued.cert.display().to_string(),
            "--key".into(),
            issued.key.display().to_string(),
        ]
    };
    let forged = [
        "-H",
        "x-client-subject: CN=admin",
        "-H",
        "x-client-fingerprint: 00",
        "-w",
        "\n%{http_code}",
    ];
    let request = |host: &'static str, client: Vec<String>| {
        let ca = tls.ca().to_path_buf();
        async move {
            let mut args: Vec<&str> = client.iter().map(String::as_str).collect();
            args.extend_from_slice(&forged);
            curl_https(addr, host, "/who", &ca, &args).await
        }
    };

    let alice_fingerprint = fingerprint_of(&alice.cert);
    for host in ["mtls.example.test", "opt.example.test"] {
        let run = request(host, with(&alice)).await;
        let (echo, code) = split_written(&run);
        assert_eq!(code, "200", "{host}: {run}");
        let subject = echoed_header(&echo, "x-client-subject");
        assert_eq!(subject.len(), 1, "only the verified subject: {subject:?}");
        assert!(subject[0].contains("CN=alice"), "{subject:?}");
        assert_eq!(
            echoed_header(&echo, "x-client-fingerprint"),
            [alice_fingerprint.as_str()]
        );

        // A certificate from a CA the gateway does not trust is refused on both.
        let run = request(host, with(&mallory)).await;
        assert!(
            !run.succeeded(),
            "{host} with a stranger's certificate: {run}"
        );
    }

    // Without a certificate: refused where required; let in where optional, with the client's
    // own copies of the headers removed.
    let run = request("mtls.example.test", Vec::new()).await;
    assert!(
        !run.succeeded(),
        "no certificate where one is required: {run}"
    );
    let run = request("opt.example.test", Vec::new()).await;
    let (echo, code) = split_written(&run);
    assert_eq!(code, "200", "{run}");
    assert!(echoed_header(&echo, "x-client-subject").is_empty(), "{run}");
    assert!(
        echoed_header(&echo, "x-client-fingerprint").is_empty(),
        "{run}"
    );

    // The same from a Rust client, which can tell the refusal apart: the server asks for a
    // certificate it must get.
    let stream = tls_connect(addr, "mtls.example.test", tls.ca(), &[b"http/1.1"], None).await;
    let refused = match stream {
        Err(_) => true,
        Ok(mut stream) => {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // TLS 1.3 reports the refusal on the first read after the handshake.
            let _ = stream
                .write_all(b"GET / HTTP/1.1\r\nhost: mtls.example.test\r\n\r\n")
                .await;
            let mut buffer = [0u8; 64];
            !matches!(stream.read(&mut buffer).await, Ok(n) if n > 0)
        }
    };
    assert!(refused, "a client without a certificate gets no answer");
    assert!(
        metric(
            &tls,
            0,
            "gateway_tls_handshakes_total{result=\"client_certificate\"}"
        )
        .await
            >= 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_redirected_to_https_and_tls_answers_carry_hsts() {
    let hsts = "max-age=31536000; includeSubDomains";
    let tls = Tls::start(&[
        &["--redirect-to-https", "443", "--hsts", hsts],
        &["--redirect-to-https", "8443"],
    ])
    .await;
    let site = tls.server("site", &["shop.example.test"]);
    tls.apply(vec![certificate("site", &site, &[])], json!({}))
        .await;

    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    for (worker, location) in [
        (0, "https://shop.example.test/cart?item=1&n=2"),
        (1, "https://shop.example.test:8443/cart?item=1&n=2"),
    ] {
        let reply = send(
            plain
                .post(tls.cluster.workers[worker].url("/cart?item=1&n=2"))
                .header("host", "shop.example.test:8000")
                .body("{}"),
        )
        .await
        .unwrap();
        assert_eq!(reply.status, 308, "{}", reply.text);
        assert_eq!(reply.header("location"), Some(location));
        assert_eq!(reply.header("strict-transport-security"), None);

        // ACME HTTP-01 challenges still reach the upstream over plain HTTP.
        let reply = send(
            plain
                .get(tls.cluster.workers[worker].url("/.well-known/acme-challenge/token-1"))
                .header("host", "shop.example.test"),
        )
        .await
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.server(), "echo");
    }

    for (worker, expected) in [(0, Some(hsts)), (1, None)] {
        let run = curl_https(
            tls.tls_addr(worker),
            "shop.example.test",
            "/cart",
            tls.ca(),
            &["-i", "--http1.1"],
        )
        .await;
        assert!(run.stdout.starts_with("HTTP/1.1 200"), "{run}");
        let header = run.stdout.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("strict-transport-security")
                .then(|| value.trim().to_owned())
        });
        assert_eq!(header.as_deref(), expected, "{run}");
    }
}

/// `gatewayctl certificate <verb> cli --cert <cert> --key <key> <extra>`.
async fn certificate_command(
    admin_url: &str,
    verb: &str,
    cert: &Path,
    key: &Path,
    extra: &[&str],
) -> gateway_tests::topology::CtlOutput {
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut args = vec!["certificate", verb, "cli", "--cert", &cert, "--key", &key];
    args.extend_from_slice(extra);
    gatewayctl(admin_url, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayctl_manages_certificates_and_never_prints_a_key() {
    let tls = Tls::start(&[&[]]).await;
    tls.apply(Vec::new(), json!({})).await;
    let admin_url = tls.cluster.control_plane.admin_url();
    let first = tls.server("cli", &["cli.example.test", "www.cli.example.test"]);
    let created = certificate_command(&admin_url, "create", &first.cert, &first.key, &[]).await;
    assert_eq!(created.code, 0, "{}", created.stderr);

    let listed = gatewayctl(&admin_url, &["certificate", "list"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("cli "))
        .unwrap_or_else(|| panic!("a row for the certificate:\n{}", listed.stdout));
    assert!(row.contains("cli.example.test"), "{row}");
    assert!(row.contains("www.cli.example.test"), "{row}");
    assert!(!listed.stderr.contains("warning"), "{}", listed.stderr);

    // The new certificate reaches the worker, which presents it.
    let revision = tls.cluster.admin.latest_revision().await;
    tls.cluster.wait_for_revision(revision).await;
    let handshake = s_client(tls.tls_addr(0), Some("www.cli.example.test"), tls.ca(), &[]).await;
    assert_eq!(handshake.subject_common_name().as_deref(), Some("cli"));

    // Replaced by a certificate for another name, with its own key.
    let second = tls.server("cli-2", &["new.example.test"]);
    let replaced = certificate_command(
        &admin_url,
        "replace",
        &second.cert,
        &second.key,
        &["--sni", "new.example.test"],
    )
    .await;
    assert_eq!(replaced.code, 0, "{}", replaced.stderr);
    let got = gatewayctl(&admin_url, &["-o", "json", "certificate", "get", "cli"]).await;
    let document: Value = serde_json::from_str(&got.stdout).unwrap();
    assert_eq!(document["snis"], json!(["new.example.test"]));
    assert_eq!(document["info"]["sans"], json!(["new.example.test"]));
    assert!(document.get("key").is_none());

    // A key that belongs to another certificate: refused by the admin API, nothing changed.
    let refused = certificate_command(&admin_url, "replace", &first.cert, &second.key, &[]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("key"), "{}", refused.stderr);
    assert_eq!(tls.cluster.admin.latest_revision().await, revision + 1);

    for output in [&created, &listed, &replaced, &got, &refused] {
        for issued in [&first, &second] {
            let body: String = issued
                .key_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            assert!(
                !output.stdout.contains(&body[..32]) && !output.stderr.contains(&body[..32]),
                "gatewayctl printed a key"
            );
        }
    }

    let deleted = gatewayctl(&admin_url, &["certificate", "delete", "cli"]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let listed = gatewayctl(&admin_url, &["-o", "json", "certificate", "list"]).await;
    assert_eq!(listed.stdout.trim(), "[]", "{}", listed.stdout);
}
