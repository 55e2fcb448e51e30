//! Configs far past gRPC's default 4 MiB message size reach a worker that starts after they were
//! applied: the worker gets the whole config in one full push, reports the control plane's
//! revision and digest, keeps it in its cache file, and serves the last routes of it.
//!
//! The config is hundreds of routes with 32 KiB fixed responses, applied with a few declarative
//! writes of growing documents: a control plane rereads its whole config on every write, so
//! building it one route at a time would take minutes. Each document is YAML in which the
//! responses are written once and referenced (anchors and aliases), so that it stays far below
//! the admin API's body limit; should the control plane ever refuse that, the same config goes
//! as plain JSON, which fits once the body limit allows configs of this size.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use gateway_tests::database::TestDatabase;
use gateway_tests::eventually;
use gateway_tests::http::{Admin, client, send};
use gateway_tests::topology::{ControlPlane, Worker};
use gateway_tests::upstream::EchoServer;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
/// Half the largest fixed response the model accepts, a size real error pages and stub
/// documents reach.
const BODY_BYTES: usize = 32 * 1024;
/// Distinct fixed responses; route `i` answers with response `i % BODIES`.
const BODIES: usize = 24;
/// How long a fresh worker may take to receive, check, compile and serve the whole config.
const RECEIVED: Duration = Duration::from_secs(60);

/// Fixed response `i`: printable text that differs from one to the next and does not shrink
/// much under compression on its own.
fn body(i: usize) -> String {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (i as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,\n";
    (0..BODY_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            alphabet[(state % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

fn route_name(i: usize) -> String {
    format!("big-{i:05}")
}

/// The config as YAML, each fixed response written once (an anchor) and referenced after.
fn yaml_document(routes: usize, echo: &str) -> String {
    let mut doc =
        format!("upstreams:\n- name: echo\n  targets:\n  - address: \"{echo}\"\nroutes:\n");
    for i in 0..routes {
        let body = if i < BODIES {
            // A JSON string is a valid YAML double-quoted scalar.
            format!("&b{i} {}", Value::String(body(i)))
        } else {
            format!("*b{}", i % BODIES)
        };
        let _ = write!(
            doc,
            "- name: {}\n  paths:\n  - exact: /big/{i}\n  direct_response:\n    status: 200\n    \
             content_type: text/plain\n    body: {body}\n",
            route_name(i)
        );
    }
    doc.push_str("- name: zz-last\n  paths:\n  - prefix: /last\n  backends:\n  - upstream: echo\n");
    doc
}

/// The same config as JSON.
fn json_document(routes: usize, echo: &str) -> Value {
    let bodies: Vec<String> = (0..BODIES).map(body).collect();
    let mut list: Vec<Value> = (0..routes)
        .map(|i| {
            json!({
                "name": route_name(i),
                "paths": [{"exact": format!("/big/{i}")}],
                "direct_response": {
                    "status": 200, "content_type": "text/plain", "body": bodies[i % BODIES],
                },
            })
        })
        .collect();
    list.push(json!({
        "name": "zz-last", "paths": [{"prefix": "/last"}], "backends": [{"upstream": "echo"}],
    }));
    json!({"upstreams": [{"name": "echo", "targets": [{"address": echo}]}], "routes": list})
}

/// A control plane whose config holds routes with 32 KiB fixed responses and, last by name, a
/// route `/last` to the echo upstream.
struct Built {
    // Field order is drop order: processes go before the database they use.
    control_plane: ControlPlane,
    admin: Admin,
    /// Declarative writes of this size take a debug build seconds.
    writer: reqwest::Client,
    echo: EchoServer,
    _database: TestDatabase,
}

impl Built {
    async fn start() -> Built {
        let database = TestDatabase::create().await;
        let control_plane = ControlPlane::start(Some(&database.url), None);
        let admin = Admin::new(&control_plane.admin_url());
        let writer = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .no_proxy()
            .build()
            .unwrap();
        Built {
            control_plane,
            admin,
            writer,
            echo: EchoServer::start("echo").await,
            _database: database,
        }
    }

    /// Makes the config `routes` fixed-response routes and `/last`. A write the database does
    /// not finish in time (a loaded machine) is refused with 503 and changes nothing, so it is
    /// sent again.
    async fn apply(&self, routes: usize) {
        let put = |content_type: &str, body: String| {
            self.writer
                .put(format!("{}/v1/config", self.admin.url))
                .header("content-type", content_type)
                .body(body)
        };
        let started = Instant::now();
        let yaml = yaml_document(routes, &self.echo.address());
        let mut reply = send(put("application/yaml", yaml.clone())).await.unwrap();
        for _ in 0..3 {
            if reply.status != 503 {
                break;
            }
            println!(
                "retrying a write the database did not finish: {}",
                reply.text
            );
            reply = send(put("application/yaml", yaml.clone())).await.unwrap();
        }
        if reply.status != 200 {
            println!(
                "the YAML document was refused ({} {}); sending plain JSON",
                reply.status, reply.text
            );
            let json = json_document(routes, &self.echo.address()).to_string();
            let json = send(put("application/json", json)).await.unwrap();
            assert_eq!(
                json.status, 200,
                "YAML: {}\nJSON: {}",
                reply.text, json.text
            );
        }
        println!(
            "{routes} routes of {BODY_BYTES} bytes applied in {:?}",
            started.elapsed()
        );
    }
}

/// Starts a worker on `built`'s control plane and checks that it serves the whole config, whose
/// full push is over `at_least` bytes; returns the worker, still running.
async fn fresh_worker_receives_it_whole(built: &Built, at_least: usize, last_big: usize) -> Worker {
    let reply = built.admin.get("/v1/revisions?limit=1").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let latest = &reply.body["items"][0];
    let revision = latest["revision"].as_u64().expect("a revision");
    let digest = latest["digest"].as_str().expect("a digest").to_owned();

    let started = Instant::now();
    let worker = Worker::start(
        &built.control_plane.sync_url(),
        &format!("large-{}", uuid::Uuid::new_v4().simple()),
    );
    let client = client();
    eventually(
        "the worker serves the latest revision",
        RECEIVED,
        || async {
            let reply = send(client.get(worker.status_url("/status"))).await?;
            let served = (
                reply.body["applied_revision"].as_u64(),
                reply.body["applied_digest"].as_str(),
            );
            if served == (Some(revision), Some(digest.as_str())) {
                Ok(())
            } else {
                Err(format!(
                    "serves {served:?}, last error {}",
                    reply.body["last_error"]
                ))
            }
        },
    )
    .await;
    println!(
        "a fresh worker served revision {revision} after {:?}",
        started.elapsed()
    );

    // The cache file holds the full push as it came, so its size is the push's.
    let cached = eventually("the worker cached the config", RECEIVED, || async {
        match std::fs::metadata(&worker.cache_file) {
            Ok(meta) if meta.len() > at_least as u64 => Ok(meta.len()),
            Ok(meta) => Err(format!("{} bytes so far", meta.len())),
            Err(error) => Err(error.to_string()),
        }
    })
    .await;
    println!("the full push is {cached} bytes");

    let reply = send(client.get(worker.url(&format!("/big/{last_big}"))))
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        &reply.text[..reply.text.len().min(200)]
    );
    assert!(
        reply.text == body(last_big % BODIES),
        "the fixed response arrived altered: {} bytes",
        reply.text.len()
    );
    let reply = send(client.get(worker.url("/last/x"))).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.server(), "echo");
    assert_eq!(reply.body["path"], "/last/x");

    // The control plane sees the worker in sync.
    eventually(
        "the control plane records the worker as synced",
        RECEIVED,
        || async {
            let reply = built.admin.try_get("/v1/nodes").await?;
            let node = reply.body["items"]
                .as_array()
                .and_then(|items| items.iter().find(|n| n["id"] == worker.node_id.as_str()))
                .cloned()
                .ok_or_else(|| format!("not listed: {}", reply.text))?;
            if node["status"] == "SYNCED" && node["applied_revision"] == revision {
                Ok(())
            } else {
                Err(node.to_string())
            }
        },
    )
    .await;
    worker
}

/// One control plane for both sizes, grown in steps: the write that makes a 16 MiB config in
/// one go takes a debug build longer than the control plane gives a write. The worker started at
/// 4 MiB follows the growth as deltas of a few MiB each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_over_4_and_16_mib_reach_workers_started_after_them() {
    let built = Built::start().await;
    let over_4_mib = 4 * MIB / BODY_BYTES + 10;
    built.apply(over_4_mib).await;
    let first = fresh_worker_receives_it_whole(&built, 4 * MIB, over_4_mib - 1).await;

    let over_16_mib = 16 * MIB / BODY_BYTES + 10;
    for routes in [250, 370, over_16_mib] {
        built.apply(routes).await;
    }
    let _second = fresh_worker_receives_it_whole(&built, 16 * MIB, over_16_mib - 1).await;

    // The first worker got there too, through the deltas.
    let status = |worker: &Worker| {
        let url = worker.status_url("/status");
        async move {
            let reply = send(client().get(url)).await?;
            Ok::<_, String>((
                reply.body["applied_revision"].as_u64(),
                reply.body["applied_digest"].as_str().map(str::to_owned),
            ))
        }
    };
    let wanted = status(&_second).await.unwrap();
    eventually("the first worker follows the deltas", RECEIVED, || async {
        let served = status(&first).await?;
        if served == wanted {
            Ok(())
        } else {
            Err(format!("serves {served:?}, wanted {wanted:?}"))
        }
    })
    .await;
}
