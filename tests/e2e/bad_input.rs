//! Every bad input gets a clear error and changes nothing: no revision, no push to the workers.

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::http::{Reply, worker_revision};
use gateway_tests::upstream::EchoServer;
use serde_json::{Value, json};

fn assert_error(reply: &Reply, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{}", reply.text);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    if let Some(field) = field {
        assert_eq!(error["field"], field, "{}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_error_and_stores_nothing() {
    let cluster = Cluster::start(1).await;
    let a = EchoServer::start("a").await;
    let admin = &cluster.admin;
    let upstream = json!({"name": "api", "targets": [{"address": a.address()}]});
    assert_eq!(admin.post("/v1/upstreams", &upstream).await.status, 201);
    let route =
        json!({"name": "api", "paths": [{"prefix": "/api"}], "backends": [{"upstream": "api"}]});
    assert_eq!(admin.post("/v1/routes", &route).await.status, 201);
    cluster.wait_served("/api", 200, Some("a"), CONVERGE).await;
    let revisions = admin.revision_count().await;
    let worker = &cluster.workers[0];
    let applied = worker_revision(&cluster.client, worker).await.unwrap();

    let route_with = |patch: Value| {
        let mut route =
            json!({"name": "r", "paths": [{"prefix": "/r"}], "backends": [{"upstream": "api"}]});
        for (key, value) in patch.as_object().unwrap() {
            route[key] = value.clone();
        }
        route
    };

    let reply = admin
        .raw("POST", "/v1/routes", "{\"name\": \"r\",".into())
        .await;
    assert_error(&reply, 400, "malformed_json", None);
    let reply = admin.raw("POST", "/v1/upstreams", "not json".into()).await;
    assert_error(&reply, 400, "malformed_json", None);

    let reply = admin
        .post(
            "/v1/routes",
            &route_with(json!({"backends": [{"upstream": "nope"}]})),
        )
        .await;
    assert_error(
        &reply,
        422,
        "unknown_reference",
        Some("backends[0].upstream"),
    );
    assert!(
        reply.text.contains("nope"),
        "the message names the missing upstream: {}",
        reply.text
    );

    let reply = admin.post("/v1/upstreams", &upstream).await;
    assert_error(&reply, 409, "already_exists", None);
    let reply = admin.post("/v1/routes", &route).await;
    assert_error(&reply, 409, "already_exists", None);

    let reply = admin
        .post("/v1/routes", &route_with(json!({"hosts": [""]})))
        .await;
    assert_error(&reply, 422, "invalid_field", Some("hosts[0]"));
    let reply = admin
        .post("/v1/routes", &route_with(json!({"hosts": ["bad host"]})))
        .await;
    assert_error(&reply, 422, "invalid_field", Some("hosts[0]"));
    let reply = admin
        .post(
            "/v1/routes",
            &route_with(json!({"paths": [{"prefix": "no-slash"}]})),
        )
        .await;
    assert_error(&reply, 422, "invalid_field", Some("paths[0].prefix"));
    let reply = admin
        .post(
            "/v1/routes",
            &route_with(json!({"paths": [{"prefix": ""}]})),
        )
        .await;
    assert_error(&reply, 422, "invalid_field", Some("paths[0].prefix"));
    let reply = admin
        .post(
            "/v1/routes",
            &route_with(json!({"backends": [{"upstream": "api", "weight": 0}]})),
        )
        .await;
    assert_error(&reply, 422, "invalid_field", Some("backends"));
    let reply = admin
        .post("/v1/routes", &route_with(json!({"backends": []})))
        .await;
    assert_error(&reply, 422, "invalid_field", Some("backends"));
    let reply = admin
        .post("/v1/routes", &route_with(json!({"pahts": []})))
        .await;
    assert_error(&reply, 422, "invalid_field", None);
    let reply = admin
        .post("/v1/routes", &route_with(json!({"priority": "high"})))
        .await;
    assert_error(&reply, 422, "invalid_field", Some("priority"));

    let no_port = json!({"name": "u2", "targets": [{"address": "10.0.0.1"}]});
    let reply = admin.post("/v1/upstreams", &no_port).await;
    assert_error(&reply, 422, "invalid_field", Some("targets[0].address"));
    let zero = json!({"name": "u2", "targets": [{"address": "10.0.0.1:80", "weight": 0}]});
    assert_error(
        &admin.post("/v1/upstreams", &zero).await,
        422,
        "invalid_field",
        Some("targets"),
    );
    let bad_name = json!({"name": "no/slash", "targets": [{"address": "10.0.0.1:80"}]});
    assert_error(
        &admin.post("/v1/upstreams", &bad_name).await,
        422,
        "invalid_field",
        Some("name"),
    );

    // Replacing a route with a broken one keeps the old one.
    let reply = admin
        .put(
            "/v1/routes/api",
            &route_with(json!({"name": "api", "backends": [{"upstream": "gone"}]})),
        )
        .await;
    assert_error(
        &reply,
        422,
        "unknown_reference",
        Some("backends[0].upstream"),
    );
    let reply = admin
        .put("/v1/routes/api", &route_with(json!({"name": "other"})))
        .await;
    assert_error(&reply, 422, "name_mismatch", Some("name"));

    // An upstream that routes use cannot be deleted; unknown names are 404.
    let reply = admin.delete("/v1/upstreams/api").await;
    assert_error(&reply, 409, "in_use", None);
    assert!(reply.text.contains("api"), "{}", reply.text);
    assert_error(
        &admin.delete("/v1/routes/missing").await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &admin.get("/v1/routes/missing").await,
        404,
        "not_found",
        None,
    );

    // Nothing was stored, no revision was made, and the worker still serves what it served.
    assert_eq!(admin.revision_count().await, revisions);
    assert_eq!(
        worker_revision(&cluster.client, worker).await.unwrap(),
        applied
    );
    let route_now = admin.get("/v1/routes/api").await;
    assert_eq!(route_now.body["backends"][0]["upstream"], "api");
    assert_eq!(admin.get("/v1/routes/r").await.status, 404);
    cluster.wait_served("/api", 200, Some("a"), CONVERGE).await;
}
