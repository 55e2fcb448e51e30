//! The admin API end to end through the router, against SQLite in a temporary directory.

#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{AppState, REVISION_HEADER, router};
use crate::snapshot::SnapshotHub;
use crate::store::test_support::{TestDb, sqlite};

struct Api {
    router: Router,
    hub: SnapshotHub,
    db: TestDb,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }

    fn revision(&self) -> Option<i64> {
        self.headers
            .get(REVISION_HEADER)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

async fn api() -> Api {
    let db = sqlite().await;
    let latest = db.store.latest_config().await.unwrap();
    let hub = SnapshotHub::new(latest.into());
    let router = router(AppState {
        store: db.store.clone(),
        hub: hub.clone(),
    });
    Api { router, hub, db }
}

impl Api {
    async fn call(&self, method: Method, uri: &str, body: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            // Deliberately not JSON: the API must parse the body whatever the type says.
            request = request.header("content-type", "text/plain");
        }
        let request = request
            .header("x-gateway-actor", "alice")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None).await
    }

    async fn post(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::POST, uri, Some(body)).await
    }

    async fn put(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::PUT, uri, Some(body)).await
    }

    async fn delete(&self, uri: &str) -> Reply {
        self.call(Method::DELETE, uri, None).await
    }

    async fn revisions(&self) -> i64 {
        self.db.store.head_revision().await.unwrap()
    }

    /// Sends a write that must be refused, and checks that it stored nothing.
    async fn refused(&self, method: Method, uri: &str, body: &str) -> Reply {
        let before = self.revisions().await;
        let reply = self.call(method, uri, Some(body)).await;
        assert!(
            reply.status.is_client_error(),
            "{uri} {body}: {}",
            reply.body
        );
        assert_eq!(reply.revision(), None);
        assert_eq!(
            self.revisions().await,
            before,
            "a refused write made a revision"
        );
        reply
    }
}

const API: &str =
    r#"{"name": "api", "tags": ["blue"], "targets": [{"address": "127.0.0.1:9000"}]}"#;
const ROUTE: &str =
    r#"{"name": "r1", "paths": [{"prefix": "/api"}], "backends": [{"upstream": "api"}]}"#;

#[tokio::test]
async fn create_get_list_replace_delete() {
    let api = api().await;
    let created = api.post("/v1/upstreams", API).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.revision(), Some(1));
    assert_eq!(created.headers["location"], "/v1/upstreams/api");
    assert_eq!(created.body["revision"], 1);
    assert_eq!(created.body["targets"][0]["weight"], 1);
    let created_at = created.body["created_at"].as_str().unwrap().to_owned();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
    assert_eq!(api.hub.current().revision, 1);

    let fetched = api.get("/v1/upstreams/api").await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, created.body);

    let route = api.post("/v1/routes", ROUTE).await;
    assert_eq!(route.status, StatusCode::CREATED, "{}", route.body);
    assert_eq!(api.hub.current().config.routes.len(), 1);

    // GET, edit, PUT back: the server-set keys in the body are ignored.
    let mut edited = fetched.body.clone();
    edited["targets"][0]["weight"] = json!(5);
    let replaced = api.put("/v1/upstreams/api", &edited.to_string()).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.revision(), Some(3));
    assert_eq!(replaced.body["targets"][0]["weight"], 5);
    assert_eq!(replaced.body["created_at"], created_at.as_str());

    let put_new = api
        .put(
            "/v1/upstreams/web",
            r#"{"targets": [{"address": "web.internal:80"}]}"#,
        )
        .await;
    assert_eq!(put_new.status, StatusCode::CREATED, "{}", put_new.body);
    assert_eq!(put_new.body["name"], "web");

    let page = api.get("/v1/upstreams?limit=1").await;
    assert_eq!(page.body["items"][0]["name"], "api");
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = api
        .get(&format!("/v1/upstreams?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(next.body["items"][0]["name"], "web");
    assert_eq!(next.body["next_cursor"], Value::Null);
    let tagged = api.get("/v1/upstreams?tag=blue").await;
    assert_eq!(tagged.body["items"].as_array().unwrap().len(), 1);

    let deleted = api.delete("/v1/routes/r1").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.revision(), Some(5));
    assert_eq!(api.get("/v1/routes/r1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.delete("/v1/routes/r1").await.code(), "not_found");

    let revisions = api.get("/v1/revisions?limit=2").await;
    let items = revisions.body["items"].as_array().unwrap();
    assert_eq!(items[0]["revision"], 5);
    assert_eq!(items[0]["actor"], "alice");
    assert_eq!(items[0]["message"], "delete route r1");
    assert!(revisions.body["next_cursor"].is_string());

    let nodes = api.get("/v1/nodes").await;
    assert_eq!(nodes.body, json!({"latest_revision": 5, "items": []}));
}

#[tokio::test]
async fn bad_inputs_are_refused_and_store_nothing() {
    let api = api().await;
    assert_eq!(
        api.post("/v1/upstreams", API).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.post("/v1/routes", ROUTE).await.status,
        StatusCode::CREATED
    );

    let cases: &[(&str, &str, StatusCode, &str, &str)] = &[
        (
            "/v1/upstreams",
            "{\"name\": ",
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "",
        ),
        (
            "/v1/upstreams",
            "",
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "",
        ),
        (
            "/v1/upstreams",
            r#"{"name": "x", "targets": [{"address": "h:1"}], "colour": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "colour",
        ),
        (
            "/v1/upstreams",
            r#"{"name": "x", "targets": [{"address": "h:1", "weight": "heavy"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "targets[0].weight",
        ),
        (
            "/v1/upstreams",
            API,
            StatusCode::CONFLICT,
            "already_exists",
            "name",
        ),
        (
            "/v1/routes",
            r#"{"name": "r2", "backends": [{"upstream": "ghost"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_reference",
            "backends[0].upstream",
        ),
        (
            "/v1/upstreams",
            r#"{"name": "z", "targets": [{"address": "h:1", "weight": 0}, {"address": "h:2", "weight": 0}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "targets",
        ),
        (
            "/v1/upstreams",
            r#"{"name": "z", "targets": [{"address": "backend"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "targets[0].address",
        ),
        (
            "/v1/upstreams",
            r#"{"name": "z", "targets": [{"address": ":80"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "targets[0].address",
        ),
        (
            "/v1/routes",
            r#"{"name": "r3", "hosts": [""], "backends": [{"upstream": "api"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "hosts[0]",
        ),
        (
            "/v1/routes",
            r#"{"name": "r4", "paths": [{"prefix": "api"}], "backends": [{"upstream": "api"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "paths[0].prefix",
        ),
        (
            "/v1/routes",
            r#"{"name": "r5", "backends": [{"upstream": "api", "weight": 0}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "backends",
        ),
    ];
    for (uri, body, status, code, field) in cases {
        let reply = api.refused(Method::POST, uri, body).await;
        assert_eq!(reply.status, *status, "{body}: {}", reply.body);
        assert_eq!(reply.code(), *code, "{body}: {}", reply.body);
        assert_eq!(reply.field(), *field, "{body}: {}", reply.body);
    }

    let unknown = api
        .refused(
            Method::POST,
            "/v1/routes",
            r#"{"name": "r2", "backends": [{"upstream": "ghost"}]}"#,
        )
        .await;
    let details = &unknown.body["error"]["details"][0];
    assert_eq!(details["kind"], "route");
    assert_eq!(details["name"], "r2");

    let mismatch = api.refused(Method::PUT, "/v1/upstreams/other", API).await;
    assert_eq!(mismatch.code(), "name_mismatch");
    assert_eq!(mismatch.field(), "name");

    let before = api.revisions().await;
    let in_use = api.delete("/v1/upstreams/api").await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    assert_eq!(in_use.code(), "in_use");
    assert!(
        in_use.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("r1"),
        "{}",
        in_use.body
    );
    assert_eq!(api.revisions().await, before);
    assert_eq!(api.hub.current().revision, 2);
}

#[tokio::test]
async fn unknown_paths_methods_and_probes() {
    let api = api().await;
    let missing = api.get("/v2/nothing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "not_found");
    let wrong = api.call(Method::PATCH, "/v1/upstreams", None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.code(), "method_not_allowed");
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(api.get("/readyz").await.status, StatusCode::OK);
    let bad_limit = api.get("/v1/routes?limit=0").await;
    assert_eq!(bad_limit.field(), "limit");
    let bad_cursor = api.get("/v1/revisions?cursor=xyz").await;
    assert_eq!(bad_cursor.field(), "cursor");

    api.db.store.pool().close().await;
    let down = api.get("/readyz").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.code(), "database_unavailable");
}
