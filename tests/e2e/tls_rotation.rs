//! 50 revisions that replace the certificate in use, add another and remove it again, while
//! clients make new TLS connections and keep old ones alive, over HTTP/1.1 and HTTP/2, on two
//! workers: no handshake or request fails, each worker's next handshake shows each change soon
//! after its revision, and none of the private keys
//! shows up in a log line, a metric, a status page, an admin API answer or a readable cache file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gateway_tests::certs::Issued;
use gateway_tests::cluster::CONVERGE;
use gateway_tests::eventually;
use gateway_tests::http::send;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use tokio::sync::Mutex;

use crate::tls::{Tls, certificate};

const HOST: &str = "rot.example.test";
const ROTATIONS: usize = 50;

/// Requests sent and the first failures seen, shared by the load tasks.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    first_failures: Mutex<Vec<String>>,
}

impl Tally {
    async fn record(&self, what: &str, result: Result<u16, String>) {
        match result {
            Ok(200) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut failures = self.first_failures.lock().await;
                if failures.len() < 10 {
                    failures.push(format!("{what}: {other:?}"));
                }
            }
        }
    }
}

fn https_client(tls: &Tls, addr: SocketAddr, http1: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(tls.pki.ca_pem().as_bytes()).unwrap();
    let builder = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve(HOST, addr)
        .no_proxy()
        .timeout(Duration::from_secs(10));
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> Result<u16, String> {
    let response = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    response.bytes().await.map_err(|e| format!("body: {e:?}"))?;
    Ok(status)
}

/// The leaf certificate a new handshake with `addr` for `server_name` gets.
async fn presented(tls: &Tls, addr: SocketAddr, server_name: &str) -> Result<Vec<u8>, String> {
    let stream = crate::tls::tls_connect(addr, server_name, tls.ca(), &[b"http/1.1"], None)
        .await
        .map_err(|e| e.to_string())?;
    let (_, connection) = stream.get_ref();
    connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.as_ref().to_vec())
        .ok_or_else(|| "no certificate".to_owned())
}

fn der_of(issued: &Issued) -> Vec<u8> {
    CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// Stretches of a PEM key's base64 body long enough to be unmistakable, short enough that a
/// key printed in pieces is still found; without those the certificate shows too (an EC key's
/// encoding holds its public key, which the certificate carries).
fn key_fragments(issued: &Issued) -> Vec<String> {
    let certificate = pem_body(&issued.cert_pem);
    let fragments: Vec<String> = pem_body(&issued.key_pem)
        .as_bytes()
        .chunks(24)
        .filter(|c| c.len() == 24)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .filter(|f| !certificate.contains(f.as_str()))
        .collect();
    assert!(fragments.len() >= 2, "the private part is looked for");
    fragments
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificates_replaced_added_and_removed_under_load_fail_nothing_and_leak_no_key() {
    let tls = Arc::new(Tls::start(&[&[], &[]]).await);
    let mut issued = vec![tls.server("site-0", &[HOST])];
    tls.apply(vec![certificate("site", &issued[0], &[])], json!({}))
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut load = Vec::new();
    for worker in 0..tls.cluster.workers.len() {
        let addr = tls.tls_addr(worker);
        let url = format!("https://{HOST}:{}/load", addr.port());
        // A new connection, so a new full handshake, for every request.
        for _ in 0..2 {
            let (tls, stop, tally, url) = (tls.clone(), stop.clone(), tally.clone(), url.clone());
            load.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let client = https_client(&tls, addr, true);
                    tally
                        .record("new connection", get(&client, &url).await)
                        .await;
                }
            }));
        }
        // Connections kept alive across every replacement, over HTTP/1.1 and HTTP/2.
        for http1 in [true, false] {
            let (stop, tally, url) = (stop.clone(), tally.clone(), url.clone());
            let client = https_client(&tls, addr, http1);
            load.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tally.record("kept alive", get(&client, &url).await).await;
                }
            }));
        }
    }

    // Revision by revision: the certificate in use replaced, another one added, the one added
    // before removed; each time until every worker's next handshake shows the change.
    let mut propagation = Vec::new();
    for rotation in 1..=ROTATIONS {
        let started = Instant::now();
        let (reply, name, expected) = match rotation % 3 {
            1 => {
                let next = tls.server(&format!("site-{rotation}"), &[HOST]);
                let reply = tls
                    .cluster
                    .admin
                    .put("/v1/certificates/site", &certificate("site", &next, &[]))
                    .await;
                let expected = Some(der_of(&next));
                issued.push(next);
                (reply, HOST.to_owned(), expected)
            }
            2 => {
                let name = format!("extra-{rotation}.example.test");
                let added = tls.server(&format!("extra-{rotation}"), &[&name]);
                let entity = certificate(&format!("extra-{rotation}"), &added, &[]);
                let reply = tls.cluster.admin.post("/v1/certificates", &entity).await;
                let expected = Some(der_of(&added));
                issued.push(added);
                (reply, name, expected)
            }
            _ => {
                let added = rotation - 1;
                let reply = tls
                    .cluster
                    .admin
                    .delete(&format!("/v1/certificates/extra-{added}"))
                    .await;
                (reply, format!("extra-{added}.example.test"), None)
            }
        };
        assert!(reply.status / 100 == 2, "{}", reply.text);
        for worker in 0..tls.cluster.workers.len() {
            let addr = tls.tls_addr(worker);
            eventually("every worker shows the change", CONVERGE, || async {
                match (presented(&tls, addr, &name).await, &expected) {
                    (Ok(leaf), Some(expected)) if leaf == *expected => Ok(()),
                    (Err(error), None) if error.contains("UnrecognisedName") => Ok(()),
                    (Ok(_), _) => Err(format!("{name}: not the certificate of this revision")),
                    (Err(error), _) => Err(error),
                }
            })
            .await;
        }
        propagation.push(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    propagation.sort();
    println!(
        "{ROTATIONS} revisions (certificates replaced, added, removed): {ok} requests, {failed} \
         failed; from the write to both workers' next handshakes showing it: p50 {:?}, max {:?}",
        propagation[propagation.len() / 2],
        propagation.last().unwrap()
    );
    assert_eq!(
        failed,
        0,
        "failed requests: {:?}",
        tally.first_failures.lock().await
    );
    assert!(ok > (ROTATIONS as u64) * 4, "the load ran: {ok} requests");

    // No key in anything the gateway shows or writes where others may read it.
    let client = &tls.cluster.client;
    let admin = &tls.cluster.admin;
    let mut shown = vec![tls.cluster.control_plane.process.log()];
    for path in [
        "/v1/certificates",
        "/v1/certificates/site",
        "/v1/config",
        "/metrics",
    ] {
        shown.push(admin.get(path).await.text);
    }
    let latest = admin.latest_revision().await;
    shown.push(admin.get(&format!("/v1/revisions/{latest}")).await.text);
    shown.push(
        admin
            .get(&format!("/v1/revisions/1/diff/{latest}"))
            .await
            .text,
    );
    for worker in &tls.cluster.workers {
        shown.push(worker.process.log());
        for path in ["/metrics", "/status"] {
            shown.push(
                send(client.get(worker.status_url(path)))
                    .await
                    .unwrap()
                    .text,
            );
        }
        // The cache file holds the keys (the worker must start from it alone), readable by its
        // owner only.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&worker.cache_file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "cache file mode {mode:o}");
    }
    // In the database, every key only sealed: the stored rows of today and of the history.
    let mut database = tls.cluster.database.connect().await;
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT spec FROM resources WHERE kind = 'certificate' \
         UNION ALL SELECT spec FROM resource_history WHERE kind = 'certificate' AND spec IS NOT NULL",
    )
    .fetch_all(&mut database)
    .await
    .unwrap();
    assert!(
        rows.len() > ROTATIONS / 3,
        "{} certificate rows",
        rows.len()
    );
    for row in &rows {
        let spec: serde_json::Value = serde_json::from_str(row).unwrap();
        let sealed = spec["sealed_key"].as_str().unwrap_or_default();
        assert!(sealed.starts_with("v1:"), "a sealed key in {row}");
        assert!(spec.get("key").is_none(), "no key in the clear: {row}");
    }
    shown.extend(rows);

    for key in &issued {
        for fragment in key_fragments(key) {
            for text in &shown {
                assert!(
                    !text.contains(&fragment),
                    "a private key fragment {fragment:?} was shown in:\n{}",
                    &text[..text.len().min(2000)]
                );
            }
        }
    }
    // The checks above look at real texts.
    assert!(shown.iter().any(|t| t.contains("fingerprint_sha256")));
}
