//! Control plane ↔ worker authentication: TLS with a cluster token, mutual TLS, and refusal of
//! plaintext off loopback.

use std::time::Duration;

use gateway_tests::binaries::binary;
use gateway_tests::certs::TestPki;
use gateway_tests::cluster::CONVERGE;
use gateway_tests::database::TestDatabase;
use gateway_tests::eventually;
use gateway_tests::http::{client, send};
use gateway_tests::process::Process;
use gateway_tests::topology::{ControlPlane, ControlPlaneOptions, Worker, WorkerOptions};

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

async fn wait_ready(client: &reqwest::Client, worker: &Worker) {
    eventually(&format!("{} ready", worker.node_id), CONVERGE, || async {
        let reply = send(client.get(worker.status_url("/readyz"))).await?;
        if reply.status == 200 {
            Ok(())
        } else {
            Err(reply.text)
        }
    })
    .await;
}

/// Waits until the control plane has logged a refusal, then checks the worker still has no config.
async fn wait_refused(client: &reqwest::Client, control_plane: &ControlPlane, worker: &Worker) {
    eventually(
        "the control plane logs the refused worker",
        CONVERGE,
        || async {
            let log = control_plane.process.log().to_lowercase();
            let refused = log.lines().any(|l| {
                l.contains("warn") && (l.contains("refus") || l.contains("unauthenticated"))
            });
            if refused {
                Ok(())
            } else {
                Err("no refusal logged yet".into())
            }
        },
    )
    .await;
    let ready = send(client.get(worker.status_url("/readyz")))
        .await
        .unwrap();
    assert_eq!(
        ready.status, 503,
        "a refused worker gets no config: {}",
        ready.text
    );
    let status = send(client.get(worker.status_url("/status")))
        .await
        .unwrap();
    assert_eq!(status.body["applied_revision"], 0, "{}", status.text);
}

fn tls_url(control_plane: &ControlPlane) -> String {
    format!("https://localhost:{}", control_plane.sync_addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_cluster_token() {
    let pki = TestPki::new();
    let database = TestDatabase::create().await;
    let control_plane = ControlPlane::start_with(ControlPlaneOptions {
        database_url: Some(database.url.clone()),
        cwd: None,
        extra_args: vec![
            "--sync-tls-cert".into(),
            path(&pki.server_cert),
            "--sync-tls-key".into(),
            path(&pki.server_key),
            "--cluster-token".into(),
            "s3cret-token".into(),
        ],
    });
    let client = client();
    let with_token = |id: &str, token: &str| {
        let mut options = WorkerOptions::new(id, &tls_url(&control_plane));
        options.extra_args = vec![
            "--control-plane-ca".into(),
            path(&pki.ca_cert),
            "--cluster-token".into(),
            token.into(),
        ];
        Worker::start_with(options)
    };
    let good = with_token("token-good", "s3cret-token");
    wait_ready(&client, &good).await;
    let bad = with_token("token-bad", "wrong-token");
    wait_refused(&client, &control_plane, &bad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls() {
    let pki = TestPki::new();
    let database = TestDatabase::create().await;
    let control_plane = ControlPlane::start_with(ControlPlaneOptions {
        database_url: Some(database.url.clone()),
        cwd: None,
        extra_args: vec![
            "--sync-tls-cert".into(),
            path(&pki.server_cert),
            "--sync-tls-key".into(),
            path(&pki.server_key),
            "--sync-client-ca".into(),
            path(&pki.ca_cert),
        ],
    });
    let client = client();
    let (cert, key) = pki.issue("worker-1", &["worker-1"]);
    let mut options = WorkerOptions::new("mtls-good", &tls_url(&control_plane));
    options.extra_args = vec![
        "--control-plane-ca".into(),
        path(&pki.ca_cert),
        "--sync-client-cert".into(),
        path(&cert),
        "--sync-client-key".into(),
        path(&key),
    ];
    let good = Worker::start_with(options);
    wait_ready(&client, &good).await;

    let mut options = WorkerOptions::new("mtls-no-cert", &tls_url(&control_plane));
    options.extra_args = vec!["--control-plane-ca".into(), path(&pki.ca_cert)];
    let anonymous = Worker::start_with(options);
    eventually(
        "the worker without a certificate stays unready",
        Duration::from_secs(3),
        || async {
            let status = send(client.get(anonymous.status_url("/status"))).await?;
            if status.body["last_error"].is_string() {
                Ok(())
            } else {
                Err(status.text)
            }
        },
    )
    .await;
    let ready = send(client.get(anonymous.status_url("/readyz")))
        .await
        .unwrap();
    assert_eq!(ready.status, 503, "{}", ready.text);
}

#[test]
fn plaintext_sync_off_loopback_is_refused() {
    let args = [
        "--admin-listen",
        "127.0.0.1:0",
        "--sync-listen",
        "0.0.0.0:0",
        "--database-url",
        "sqlite::memory:",
    ]
    .map(str::to_owned);
    let mut process = Process::spawn("control-plane", &binary("control-plane"), &args, None);
    let status = process.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "{}", process.log());
    assert!(
        process.log().to_lowercase().contains("tls"),
        "the error says TLS is needed: {}",
        process.log()
    );
}
