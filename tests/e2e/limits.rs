//! The limits that protect workers, against a running control plane and worker: a route that
//! expands past the route table's bounds, YAML that expands or nests past the parser's, durations
//! a worker could not honour, `If-Match` values that are not a revision, duplicate keys and
//! over-long strings. Each is refused with its status, code and field; none stores a revision or
//! reaches the worker.

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::http::{Reply, send, worker_revision};
use gateway_tests::upstream::EchoServer;
use serde_json::{Value, json};

fn assert_refused(reply: &Reply, status: u16, code: &str, field: Option<&str>) {
    let error = &reply.body["error"];
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(error["code"], code, "{}", reply.text);
    assert_eq!(
        error["field"].as_str(),
        field,
        "the field of {}",
        reply.text
    );
}

fn route(patch: Value) -> Value {
    let mut route =
        json!({"name": "r", "paths": [{"prefix": "/r"}], "backends": [{"upstream": "api"}]});
    for (key, value) in patch.as_object().expect("an object") {
        route[key] = value.clone();
    }
    route
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_past_a_limit_are_refused_and_change_nothing() {
    let cluster = Cluster::start(1).await;
    let a = EchoServer::start("a").await;
    let admin = &cluster.admin;
    let upstream = json!({"name": "api", "targets": [{"address": a.address()}]});
    assert_eq!(admin.post("/v1/upstreams", &upstream).await.status, 201);
    let served = route(json!({"name": "api", "paths": [{"prefix": "/api"}]}));
    assert_eq!(admin.post("/v1/routes", &served).await.status, 201);
    cluster.wait_served("/api", 200, Some("a"), CONVERGE).await;
    let revisions = admin.revision_count().await;
    let worker = &cluster.workers[0];
    let applied = worker_revision(&cluster.client, worker).await.unwrap();

    // 2,000 hosts × 2,000 paths in 72 KB would be four million route table entries.
    let hosts: Vec<String> = (0..2_000).map(|i| format!("h{i}.a.io")).collect();
    let paths: Vec<Value> = (0..2_000)
        .map(|i| json!({"prefix": format!("/p{i}")}))
        .collect();
    let bomb = route(json!({"hosts": hosts, "paths": paths}));
    let reply = admin.post("/v1/routes", &bomb).await;
    assert_refused(&reply, 422, "invalid_field", Some("hosts"));
    let details: Vec<&str> = reply.body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().unwrap_or_default())
        .collect();
    // Each count, their product, and the config's budget.
    assert_eq!(
        details,
        ["hosts", "paths", "paths", "paths"],
        "{}",
        reply.text
    );
    for said in ["4000000 route table entries", "4000001 route table entries"] {
        assert!(reply.text.contains(said), "{}", reply.text);
    }
    // Within both counts, but not their product.
    let hosts: Vec<String> = (0..101).map(|i| format!("h{i}.a.io")).collect();
    let paths: Vec<Value> = (0..100)
        .map(|i| json!({"prefix": format!("/p{i}")}))
        .collect();
    let reply = admin
        .post(
            "/v1/routes",
            &route(json!({"hosts": hosts, "paths": paths})),
        )
        .await;
    assert_refused(&reply, 422, "invalid_field", Some("paths"));

    // Durations: whole milliseconds, or the worker would see another value.
    let reply = admin
        .post("/v1/routes", &route(json!({"timeout": "1500us"})))
        .await;
    assert_refused(&reply, 422, "invalid_field", Some("timeout"));
    let retries = json!({"retries": {"attempts": 1, "backoff": "1s 1ns"}});
    let reply = admin.post("/v1/routes", &route(retries)).await;
    assert_refused(&reply, 422, "invalid_field", Some("retries.backoff"));

    // Strings with a length limit, and prefixes no request can match.
    let long_check = json!({"name": "checked", "targets": [{"address": a.address()}],
        "health_check": {"active": {"path": format!("/{}", "h".repeat(1024))}}});
    let reply = admin.post("/v1/upstreams", &long_check).await;
    assert_refused(
        &reply,
        422,
        "invalid_field",
        Some("health_check.active.path"),
    );
    let long_name = route(json!({"name": "n".repeat(129)}));
    let reply = admin.post("/v1/routes", &long_name).await;
    assert_refused(&reply, 422, "invalid_field", Some("name"));
    let reply = admin
        .post(
            "/v1/routes",
            &route(json!({"paths": [{"prefix": "/santé"}]})),
        )
        .await;
    assert_refused(&reply, 422, "invalid_field", Some("paths[0].prefix"));

    // Duplicate keys, in JSON and in YAML.
    let twice =
        r#"{"name": "r", "hosts": ["a.io"], "backends": [{"upstream": "api"}], "hosts": ["b.io"]}"#;
    let reply = admin.raw("POST", "/v1/routes", twice.into()).await;
    assert_refused(&reply, 400, "duplicate_key", Some("hosts"));
    let yaml = |document: String| {
        send(
            admin
                .client
                .put(format!("{}/v1/config", admin.url))
                .header("content-type", "application/yaml")
                .body(document),
        )
    };
    let document = "upstreams:\n- name: api\n  targets: [{address: '127.0.0.1:1'}]\nroutes:\n\
                    - name: r1\n  hosts: [a]\n  backends: [{upstream: api}]\n  hosts: [b]\n";
    let reply = yaml(document.into()).await.unwrap();
    assert_refused(&reply, 400, "duplicate_key", Some("routes[0].hosts"));

    // YAML that aliases expand past the size limit, or that nests too deep.
    let hosts: Vec<String> = (0..1_000)
        .map(|i| format!("h-{i:04}.example.com"))
        .collect();
    let mut document = format!(
        "upstreams:\n- name: api\n  targets: [{{address: '127.0.0.1:1'}}]\nroutes:\n\
         - {{name: r0, hosts: &h [{}], backends: [{{upstream: api}}]}}\n",
        hosts.join(", ")
    );
    for i in 1..2_500 {
        document.push_str(&format!(
            "- {{name: r{i}, hosts: *h, backends: [{{upstream: api}}]}}\n"
        ));
    }
    assert!(document.len() < 160 * 1024, "{} bytes", document.len());
    let reply = yaml(document).await.unwrap();
    assert_refused(&reply, 413, "body_too_large", None);
    let reply = yaml(format!("routes: {}", "[".repeat(100_000)))
        .await
        .unwrap();
    // YAML says where by line and column.
    assert_refused(&reply, 400, "too_deep", None);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("deeper than 64 levels (line 1, column"),
        "{message}"
    );
    let json = format!("{{\"routes\": {}", "[".repeat(100_000));
    let reply = admin.raw("PUT", "/v1/config", json).await;
    assert_refused(
        &reply,
        400,
        "too_deep",
        Some(&format!("routes{}", "[0]".repeat(63))),
    );

    // If-Match that is not a revision, plain ASCII or not.
    for value in [&b"seven"[..], b"-1", "7é".as_bytes(), b"\xff"] {
        let request = admin
            .client
            .post(format!("{}/v1/routes", admin.url))
            .header(
                "if-match",
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            )
            .json(&route(json!({})));
        let reply = send(request).await.unwrap();
        assert_refused(&reply, 400, "invalid_header", Some("If-Match"));
    }

    // Nothing was stored, and the worker serves what it served.
    assert_eq!(admin.revision_count().await, revisions);
    assert_eq!(admin.get("/v1/routes/r").await.status, 404);
    let status = send(cluster.client.get(worker.status_url("/status")))
        .await
        .unwrap();
    assert_eq!(status.body["applied_revision"], applied, "{}", status.text);
    assert_eq!(status.body["routes"], 1, "{}", status.text);
    cluster.wait_served("/api", 200, Some("a"), CONVERGE).await;
}
