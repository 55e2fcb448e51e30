//! The admin API end to end through the router, against SQLite in a temporary directory.

#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::write::REVISION_HEADER;
use super::{AppState, Limits, router};
use crate::hub::SnapshotHub;
use crate::service::ConfigService;
use crate::store::test_support::{TestDb, sqlite};

pub(super) struct Api {
    pub router: Router,
    pub hub: SnapshotHub,
    pub db: TestDb,
}

pub(super) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }

    pub fn revision(&self) -> Option<i64> {
        self.headers
            .get(REVISION_HEADER)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

/// The control plane's default `--config-body-limit`.
const CONFIG_BODY_LIMIT: usize = 64 * 1024 * 1024;

pub(super) async fn api() -> Api {
    api_with(Limits::new(CONFIG_BODY_LIMIT)).await
}

async fn api_with(limits: Limits) -> Api {
    let db = sqlite().await;
    let latest = db.store.latest_config().await.unwrap();
    let hub = SnapshotHub::new(latest.into());
    let state = AppState {
        service: ConfigService::new(db.store.clone(), hub.clone()),
        metrics: crate::metrics::Metrics::new(),
        tokens: crate::tokens::Tokens::load(db.store.clone()).await.unwrap(),
        open_endpoints: super::OpenEndpoints::default(),
    };
    let router = router(state, limits);
    Api { router, hub, db }
}

impl Api {
    pub async fn call(&self, method: Method, uri: &str, body: Option<&str>) -> Reply {
        self.call_with(method, uri, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
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
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None).await
    }

    pub async fn post(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::POST, uri, Some(body)).await
    }

    pub async fn put(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::PUT, uri, Some(body)).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.call(Method::DELETE, uri, None).await
    }

    pub async fn revisions(&self) -> i64 {
        self.db.store.head_revision().await.unwrap()
    }

    /// Sends a write that must be refused, and checks that it stored nothing.
    pub async fn refused(&self, method: Method, uri: &str, body: &str) -> Reply {
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
    assert_eq!(api.hub.current().state.to_config().routes.len(), 1);

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
    assert_eq!(
        in_use.body["error"]["details"][0]["field"], "backends[0].upstream",
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

const DOC: &str = r#"{"upstreams": [{"name": "api", "targets": [{"address": "127.0.0.1:9000"}]},
                                    {"name": "web", "targets": [{"address": "127.0.0.1:9001"}]}],
                     "routes": [{"name": "r1", "backends": [{"upstream": "api"}]}]}"#;

#[tokio::test]
async fn declarative_apply_export_and_dry_run() {
    let api = api().await;
    let preview = api.put("/v1/config?dry_run=true", DOC).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["dry_run"], true);
    assert_eq!(preview.body["revision"], 0);
    assert_eq!(preview.body["changed"], true);
    assert_eq!(preview.body["changes"].as_array().unwrap().len(), 3);
    assert_eq!(api.revisions().await, 0);

    let applied = api
        .call_with(
            Method::PUT,
            "/v1/config",
            Some(DOC),
            &[("x-gateway-message", "bootstrap")],
        )
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(applied.body["revision"], 1);
    assert_eq!(applied.revision(), Some(1));
    assert_eq!(applied.body["changes"][0]["op"], "create");
    assert_eq!(api.hub.current().revision, 1);
    let log = api.get("/v1/revisions").await;
    assert_eq!(log.body["items"][0]["message"], "bootstrap");

    // The same state again, in YAML with server-set keys: no change, no revision.
    let yaml = "upstreams:\n- name: api\n  revision: 9\n  targets: [{address: '127.0.0.1:9000'}]\n\
                - name: web\n  targets: [{address: '127.0.0.1:9001'}]\n\
                routes:\n- name: r1\n  created_at: x\n  backends: [{upstream: api}]\n";
    let same = api.put("/v1/config", yaml).await;
    assert_eq!(
        same.body,
        json!({"revision": 1, "changed": false, "changes": []})
    );
    assert_eq!(api.revisions().await, 1);

    let exported = api.get("/v1/config").await;
    assert_eq!(exported.headers["etag"], "\"1\"");
    assert_eq!(exported.revision(), Some(1));
    assert_eq!(exported.body["upstreams"][1]["name"], "web");
    assert!(exported.body["routes"][0].get("created_at").is_none());
    let as_yaml = api.get("/v1/config?format=yaml").await;
    assert!(
        as_yaml.body.as_str().unwrap().contains("name: r1"),
        "{}",
        as_yaml.body
    );

    // Every error of a bad document is listed, and nothing is stored.
    let bad = r#"{"upstreams": [{"name": "x", "targets": [{"address": "nope"}]},
                                {"name": "y", "targets": [], "colour": 1}],
                  "routes": [{"name": "r9", "backends": [{"upstream": "ghost"}]}]}"#;
    let refused = api.refused(Method::PUT, "/v1/config", bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.code(), "invalid_field");
    let details = refused.body["error"]["details"].as_array().unwrap();
    let fields: Vec<_> = details
        .iter()
        .map(|d| format!("{} {} {}", d["kind"], d["name"], d["field"]).replace('"', ""))
        .collect();
    assert_eq!(
        fields,
        [
            "upstream y colour",
            "upstream x targets[0].address",
            "route r9 backends[0].upstream"
        ]
    );
    let malformed = api
        .refused(Method::PUT, "/v1/config", "{\"upstreams\": [")
        .await;
    assert_eq!(malformed.code(), "malformed_json");

    // An empty document removes everything as one revision.
    let cleared = api.put("/v1/config", "{}").await;
    assert_eq!(cleared.body["revision"], 2);
    assert_eq!(cleared.body["changes"].as_array().unwrap().len(), 3);
    assert_eq!(cleared.body["changes"][2]["op"], "delete");
}

#[tokio::test]
async fn if_match_and_dry_run_on_entity_writes() {
    let api = api().await;
    assert_eq!(
        api.post("/v1/upstreams", API).await.status,
        StatusCode::CREATED
    );
    let stale = api
        .call_with(
            Method::POST,
            "/v1/routes",
            Some(ROUTE),
            &[("if-match", "\"0\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "precondition_failed");
    assert!(
        stale.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains('1')
    );
    assert_eq!(api.revisions().await, 1);
    let fresh = api
        .call_with(
            Method::POST,
            "/v1/routes",
            Some(ROUTE),
            &[("if-match", "1")],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);

    let dry = api.delete("/v1/routes/r1?dry_run=true").await;
    assert_eq!(dry.status, StatusCode::OK);
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.body["revision"], 2);
    assert_eq!(dry.body["changes"][0]["op"], "delete");
    assert_eq!(api.get("/v1/routes/r1").await.status, StatusCode::OK);
    let same = api.put("/v1/upstreams/api?dry_run=true", API).await;
    assert_eq!(same.body["changed"], false);
    // A dry run gets the error a real write would.
    let dry_conflict = api.delete("/v1/upstreams/api?dry_run=true").await;
    assert_eq!(dry_conflict.code(), "in_use");
    let bad_dry = api.delete("/v1/routes/r1?dry_run=maybe").await;
    assert_eq!(bad_dry.field(), "dry_run");
    let stale_delete = api
        .call_with(Method::DELETE, "/v1/routes/r1", None, &[("if-match", "1")])
        .await;
    assert_eq!(stale_delete.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(api.revisions().await, 2);
}

#[tokio::test]
async fn show_diff_and_rollback() {
    let api = api().await;
    api.post("/v1/upstreams", API).await; // 1
    api.post("/v1/routes", ROUTE).await; // 2
    let edited = API.replace("9000", "9009");
    api.put("/v1/upstreams/api", &edited).await; // 3

    let shown = api.get("/v1/revisions/2").await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["message"], "create route r1");
    assert_eq!(shown.body["config"]["routes"][0]["name"], "r1");
    assert_eq!(
        shown.body["config"]["upstreams"][0]["targets"][0]["address"],
        "127.0.0.1:9000"
    );
    assert!(
        shown.body["config"]["upstreams"][0]
            .get("revision")
            .is_none()
    );
    let missing = api.get("/v1/revisions/42").await;
    assert_eq!(missing.code(), "not_found");
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 3")
    );

    let diff = api.get("/v1/revisions/1/diff/3").await;
    assert_eq!(diff.body["from"], 1);
    assert_eq!(diff.body["to"], 3);
    let ops: Vec<_> = diff.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["op"], c["kind"], c["name"]).replace('"', ""))
        .collect();
    assert_eq!(ops, ["update upstream api", "create route r1"]);

    let preview = api.post("/v1/revisions/1/rollback?dry_run=true", "").await;
    assert_eq!(preview.body["dry_run"], true);
    assert_eq!(api.revisions().await, 3);
    let stale = api
        .call_with(
            Method::POST,
            "/v1/revisions/1/rollback",
            None,
            &[("if-match", "2")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let rolled = api.post("/v1/revisions/1/rollback", "").await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    assert_eq!(rolled.body["revision"], 4);
    assert_eq!(rolled.body["changed"], true);
    assert_eq!(rolled.body["changes"].as_array().unwrap().len(), 2);
    let log = api.get("/v1/revisions?limit=1").await;
    assert_eq!(log.body["items"][0]["message"], "rollback to revision 1");
    assert_eq!(api.hub.current().revision, 4);
    assert!(api.hub.current().state.to_config().routes.is_empty());
    let again = api.post("/v1/revisions/1/rollback", "").await;
    assert_eq!(
        again.body,
        json!({"revision": 4, "changed": false, "changes": []})
    );
    let back = api.get("/v1/revisions/4/diff/1").await;
    assert_eq!(back.body["changes"], json!([]));
}

#[tokio::test]
async fn reads_fall_back_to_memory_when_the_database_is_down() {
    let api = api().await;
    api.post("/v1/upstreams", API).await;
    let before = api.get("/v1/upstreams/api").await;
    let list_before = api.get("/v1/upstreams?tag=blue").await;
    let config_before = api.get("/v1/config").await;
    api.db.store.pool().close().await;

    let after = api.get("/v1/upstreams/api").await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body, before.body);
    assert_eq!(
        api.get("/v1/upstreams?tag=blue").await.body,
        list_before.body
    );
    let config = api.get("/v1/config").await;
    assert_eq!(config.body, config_before.body);
    assert_eq!(config.revision(), Some(1));
    assert_eq!(api.get("/v1/routes/none").await.code(), "not_found");

    let write = api.post("/v1/routes", ROUTE).await;
    assert_eq!(write.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(write.code(), "database_unavailable");
    let metrics = api.get("/metrics").await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("config_latest_revision 1"),
        "{}",
        metrics.body
    );
}

/// The OpenAPI document, and answers checked against it.
struct Described {
    document: Value,
}

impl Described {
    async fn fetch(api: &Api) -> Described {
        let reply = api.get("/openapi.json").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.is_object(), "{}", reply.body);
        Described {
            document: reply.body,
        }
    }

    /// A validator for `schema`, whose `$ref`s point into the document's components.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.document["components"],
            "allOf": [schema],
        });
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{schema} is not a schema: {e}"))
    }

    fn check(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let validator = self.validator(schema);
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn component(name: &str) -> Value {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// Follows a `$ref` inside the document.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').unwrap();
                self.document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference} does not resolve"))
            }
            None => value,
        }
    }

    /// The path template and operation that describe `method uri`.
    fn operation(&self, method: &Method, uri: &str) -> Option<(String, &Value)> {
        let path = uri.split('?').next().unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        self.document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(template, _)| {
                let parts: Vec<&str> = template.split('/').collect();
                parts.len() == segments.len()
                    && parts
                        .iter()
                        .zip(&segments)
                        .all(|(part, segment)| part.starts_with('{') || part == segment)
            })
            .and_then(|(template, item)| {
                let operation = item.get(method.as_str().to_ascii_lowercase())?;
                Some((template.clone(), operation))
            })
    }

    /// Checks that the answer's status is documented for the operation and that a JSON body
    /// matches the schema documented for that status.
    fn conforms(&self, method: &Method, uri: &str, reply: &Reply) {
        let what = format!("{method} {uri} answered {}: {}", reply.status, reply.body);
        let (_, operation) = self
            .operation(method, uri)
            .unwrap_or_else(|| panic!("{what}: no operation describes it"));
        let response = operation["responses"]
            .get(reply.status.as_str())
            .map(|response| self.resolve(response))
            .unwrap_or_else(|| panic!("{what}: the status is not documented"));
        let content_type = reply
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let Some(content_type) = content_type else {
            assert!(
                response.get("content").is_none(),
                "{what}: no body, but one is documented"
            );
            return;
        };
        let media_type = content_type.split(';').next().unwrap().trim();
        let described = &response["content"][media_type];
        assert!(
            described.is_object(),
            "{what}: {media_type} is not documented"
        );
        if media_type == "application/json"
            && let Err(errors) = self.check(&described["schema"], &reply.body)
        {
            panic!("{what}: does not match its schema: {errors}");
        }
    }
}

impl Api {
    /// A call whose answer must be as the OpenAPI document describes it.
    async fn described(
        &self,
        described: &Described,
        method: Method,
        uri: &str,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let reply = self.call_with(method.clone(), uri, body, extra).await;
        described.conforms(&method, uri, &reply);
        reply
    }
}

/// Every `$ref` string in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match inner {
                    Value::String(target) if key == "$ref" => found.push(target.clone()),
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_complete() {
    let api = api().await;
    let described = Described::fetch(&api).await;
    let document = &described.document;

    let text = document.to_string();
    let spec = oas3::from_json(&text).expect("the document parses as OpenAPI 3.1");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!(version.major, 3);

    let mut found = Vec::new();
    references(document, &mut found);
    assert!(!found.is_empty());
    for reference in &found {
        let pointer = reference.strip_prefix('#').expect("references are local");
        assert!(document.pointer(pointer).is_some(), "{reference} dangles");
    }

    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        let id = operation
            .operation_id
            .clone()
            .expect("every operation has an id");
        assert!(operation_ids.insert(id.clone()), "{id} is used twice");
        assert!(!operation.responses(&spec).is_empty(), "{method} {path}");
        let parameters = operation.parameters(&spec).unwrap();
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            assert!(
                parameters
                    .iter()
                    .any(|p| p.name == name && p.location == oas3::spec::ParameterIn::Path),
                "{method} {path}: `{name}` is not described"
            );
        }
    }

    // The entity examples of the other tests are valid documents, and typos are not.
    let valid = [
        ("Upstream", API),
        ("Route", ROUTE),
        ("Config", DOC),
        ("Duration", r#""1m 30s""#),
    ];
    for (schema, example) in valid {
        let example: Value = serde_json::from_str(example).unwrap();
        if let Err(errors) = described.check(&Described::component(schema), &example) {
            panic!("{example} is not a valid {schema}: {errors}");
        }
    }
    let invalid = [
        (
            "Upstream",
            r#"{"name": "x", "targets": [{"address": "h:1"}], "colour": 1}"#,
        ),
        ("Upstream", r#"{"name": "x"}"#),
        ("Upstream", r#"{"name": "x y", "targets": []}"#),
        (
            "Route",
            r#"{"name": "r", "paths": [{"prefix": "/a", "exact": "/b"}]}"#,
        ),
        (
            "Route",
            r#"{"name": "r", "paths": [{"prefix": "/a", "x": 1}]}"#,
        ),
        ("Route", r#"{"name": "r", "timeout": 5}"#),
        ("Config", r#"{"consumers": []}"#),
        ("Duration", r#""soon""#),
    ];
    for (schema, example) in invalid {
        let example: Value = serde_json::from_str(example).unwrap();
        assert!(
            described
                .check(&Described::component(schema), &example)
                .is_err(),
            "{example} passes as a {schema}"
        );
    }
}

/// Every described operation is served, and answers as described: the router registers an
/// endpoint only together with its description (`routes!` reads the method and path from the
/// handler's `#[utoipa::path]`), and this checks the other direction.
#[tokio::test]
async fn every_operation_is_served_as_described() {
    let api = api().await;
    let described = Described::fetch(&api).await;
    let writer = [("x-gateway-message", "described")];

    // Real writes first, so that the reads and dry runs below find something.
    let created = api
        .described(
            &described,
            Method::POST,
            "/v1/upstreams",
            Some(API),
            &writer,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let mut edited = created.body.clone();
    edited["health_check"] = json!({"active": {"interval": "2s"}, "passive": {}});
    edited["tls"] = json!({"sni": "api.internal"});
    edited["hash_on"] = json!({"header": "x-user"});
    edited["balance"] = json!("consistent_hash");
    let replaced = api
        .described(
            &described,
            Method::PUT,
            "/v1/upstreams/api",
            Some(&edited.to_string()),
            &[],
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    let shadow = API.replace("\"api\"", "\"shadow\"");
    let created = api
        .described(
            &described,
            Method::POST,
            "/v1/upstreams",
            Some(&shadow),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let route = json!({
        "name": "r1",
        "hosts": ["*.example.com"],
        "paths": [{"prefix": "/api"}, {"regex": "/v[0-9]+/.*"}],
        "headers": [{"name": "x-canary", "present": true, "invert": true}],
        "backends": [{"upstream": "api", "weight": 3}],
        "request_headers": {"set": {"x-a": "1"}, "remove": ["x-b"]},
        "rewrite": {"prefix": "/"},
        "retries": {"attempts": 2, "on": ["502", "connect_failure"], "per_try_timeout": "1s"},
        "timeout": "5s",
        "mirror": {"upstream": "shadow", "percent": 10},
    });
    let created = api
        .described(
            &described,
            Method::POST,
            "/v1/routes",
            Some(&route.to_string()),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    let operations: Vec<(String, Method)> = described.document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter_map(|method| Method::from_bytes(method.to_uppercase().as_bytes()).ok())
                .map(|method| (path.clone(), method))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(operations.len() >= 20, "{operations:?}");
    for (template, method) in &operations {
        let path = template
            .replace(
                "{name}",
                if template.contains("routes") {
                    "r1"
                } else {
                    "api"
                },
            )
            .replace("{n}", "1")
            .replace("{a}", "1")
            .replace("{b}", "4");
        let (uri, body) = match *method {
            Method::GET => (path, None),
            Method::DELETE => (format!("{path}?dry_run=true"), None),
            _ if template.starts_with("/v1/routes") => {
                (format!("{path}?dry_run=true"), Some(route.to_string()))
            }
            _ if template == "/v1/config" => (format!("{path}?dry_run=true"), Some(DOC.to_owned())),
            _ => (
                format!("{path}?dry_run=true"),
                Some(API.replace("api", "web")),
            ),
        };
        let reply = api
            .described(&described, method.clone(), &uri, body.as_deref(), &[])
            .await;
        assert!(
            reply.status != StatusCode::METHOD_NOT_ALLOWED
                && reply.body["error"]["message"] != "no such path",
            "{method} {uri} is described but not served: {}",
            reply.body
        );
    }

    // Errors answer as described too.
    type Headers = &'static [(&'static str, &'static str)];
    let errors: &[(Method, &str, Option<&str>, Headers)] = &[
        (Method::GET, "/v1/upstreams/ghost", None, &[]),
        (Method::GET, "/v1/routes?limit=0", None, &[]),
        (Method::GET, "/v1/revisions?cursor=zz", None, &[]),
        (Method::GET, "/v1/revisions/99", None, &[]),
        (Method::GET, "/v1/config?format=xml", None, &[]),
        (Method::POST, "/v1/upstreams", Some("{"), &[]),
        (Method::POST, "/v1/upstreams", Some(API), &[]),
        (Method::POST, "/v1/routes", Some(r#"{"name": "r9"}"#), &[]),
        (Method::PUT, "/v1/config", Some("{\"routes\": 1}"), &[]),
        (
            Method::PUT,
            "/v1/config",
            Some("{\"routes\": [], \"routes\": []}"),
            &[],
        ),
        (
            Method::PUT,
            "/v1/config",
            Some(DOC),
            &[("if-match", "seven")],
        ),
        (
            Method::POST,
            "/v1/upstreams",
            Some(API),
            &[("if-match", "-1")],
        ),
        (
            Method::PUT,
            "/v1/upstreams/api",
            Some("{\"tags\": [[[[]]]], \"tags\": 1}"),
            &[],
        ),
        (Method::DELETE, "/v1/upstreams/api", None, &[]),
        (Method::DELETE, "/v1/routes/r1", None, &[("if-match", "1")]),
        (
            Method::POST,
            "/v1/revisions/1/rollback?dry_run=maybe",
            None,
            &[],
        ),
    ];
    for (method, uri, body, extra) in errors {
        let reply = api
            .described(&described, method.clone(), uri, *body, extra)
            .await;
        assert!(
            reply.status.is_client_error(),
            "{method} {uri}: {}",
            reply.body
        );
    }
    let yaml = api
        .described(&described, Method::GET, "/v1/config?format=yaml", None, &[])
        .await;
    assert_eq!(yaml.headers["content-type"], "application/yaml");

    api.db.store.pool().close().await;
    for uri in ["/readyz", "/v1/nodes", "/v1/revisions"] {
        let reply = api.described(&described, Method::GET, uri, None, &[]).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
    }
}

/// Values of `If-Match` that are not a revision, as raw bytes.
const BAD_IF_MATCH: [&[u8]; 10] = [
    "7é".as_bytes(),
    b"\xff",
    b"abc",
    b"-1",
    b"+1",
    b"1.5",
    b"",
    b"\"7",
    b"\"1\", \"2\"",
    b"99999999999999999999",
];

impl Api {
    /// A write with raw header values, which must be refused and store nothing.
    async fn refused_with(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
        headers: &[(&str, &[u8])],
    ) -> Reply {
        let before = self.revisions().await;
        let hub_before = self.hub.current().revision;
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(self.revisions().await, before, "{uri}: {body}");
        assert_eq!(self.hub.current().revision, hub_before, "{uri}: {body}");
        Reply {
            status,
            headers: HeaderMap::new(),
            body,
        }
    }
}

#[tokio::test]
async fn an_if_match_that_is_not_a_revision_is_refused_on_every_write() {
    let api = api().await;
    assert_eq!(api.put("/v1/config", DOC).await.status, StatusCode::OK);
    let new_upstream = API.replace("api", "new");
    let new_route = ROUTE.replace("r1", "r2");
    let writes: [(Method, &str, Option<&str>); 7] = [
        (Method::POST, "/v1/upstreams", Some(&new_upstream)),
        (Method::PUT, "/v1/upstreams/api", Some(API)),
        (Method::DELETE, "/v1/upstreams/web", None),
        (Method::POST, "/v1/routes", Some(&new_route)),
        (Method::DELETE, "/v1/routes/r1", None),
        (Method::PUT, "/v1/config", Some("{}")),
        (Method::POST, "/v1/revisions/1/rollback", None),
    ];
    for (method, uri, body) in &writes {
        for value in BAD_IF_MATCH {
            let reply = api
                .refused_with(method.clone(), uri, *body, &[("if-match", value)])
                .await;
            let what = format!("{method} {uri} If-Match {value:?}: {}", reply.body);
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
            assert_eq!(reply.code(), "invalid_header", "{what}");
            assert_eq!(reply.field(), "If-Match", "{what}");
        }
        let twice = api
            .refused_with(
                method.clone(),
                uri,
                *body,
                &[("if-match", b"1"), ("if-match", b"1")],
            )
            .await;
        assert_eq!(twice.field(), "If-Match", "{method} {uri}: {}", twice.body);
    }
    // The same writes with a good If-Match go through.
    let fine = api
        .call_with(
            Method::PUT,
            "/v1/config",
            Some("{}"),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.body);
    assert_eq!(fine.revision(), Some(2));
}

/// A realistic whole config: `routes` routes, each with a name, a host, a prefix path, a
/// backend, a timeout and retries, over one upstream per hundred routes.
fn big_document(routes: usize) -> String {
    let upstreams = (routes / 100).max(1);
    let upstreams: Vec<Value> = (0..upstreams)
        .map(|u| {
            json!({"name": format!("svc-{u:04}"),
                   "targets": [{"address": format!("10.0.{}.{}:8080", u / 250, u % 250)}]})
        })
        .collect();
    let count = upstreams.len();
    let routes: Vec<Value> = (0..routes)
        .map(|i| {
            json!({"name": format!("route-{i:06}"),
                   "hosts": [format!("svc-{i:06}.example.com")],
                   "paths": [{"prefix": format!("/api/v1/svc-{i:06}")}],
                   "strip_prefix": true,
                   "backends": [{"upstream": format!("svc-{:04}", i % count)}],
                   "timeout": "5s",
                   "retries": {"attempts": 2, "on": ["connect_failure", "503"]}})
        })
        .collect();
    json!({"upstreams": upstreams, "routes": routes}).to_string()
}

#[tokio::test]
async fn documents_larger_than_the_old_two_megabytes_are_taken() {
    let api = api().await;
    // 20,000 routes parsed and validated; a dry run, so that the test does not time the
    // database (the service gives a write 8 seconds, which an unoptimized build of this many
    // rows can miss on a busy machine).
    let document = big_document(20_000);
    assert!(document.len() > 4 * 1024 * 1024, "{}", document.len());
    let preview = api.put("/v1/config?dry_run=true", &document).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["changes"].as_array().unwrap().len(), 20_200);
    // And one stored.
    let document = big_document(10_000);
    assert!(document.len() > 2 * 1024 * 1024, "{}", document.len());
    let applied = api.put("/v1/config", &document).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(applied.revision(), Some(1));
    assert_eq!(api.hub.current().state.to_config().routes.len(), 10_000);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let api = api_with(Limits::new(64 * 1024)).await;
    let document = big_document(1_000);
    assert!(document.len() > 64 * 1024);
    let length = document.len().to_string();
    for headers in [vec![], vec![("content-length", length.as_bytes())]] {
        let reply = api
            .refused_with(Method::PUT, "/v1/config", Some(&document), &headers)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            reply.body
        );
        assert_eq!(reply.code(), "body_too_large");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("65536 bytes"), "{message}");
    }
    let small = big_document(10);
    assert_eq!(api.put("/v1/config", &small).await.status, StatusCode::OK);

    // Entity bodies have their own, smaller limit.
    let tags: Vec<String> = (0..200_000).map(|i| format!("tag-{i}")).collect();
    let upstream = json!({"name": "many", "targets": [], "tags": tags}).to_string();
    assert!(upstream.len() > 2 * 1024 * 1024);
    let reply = api.refused(Method::POST, "/v1/upstreams", &upstream).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "body_too_large");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("2 MiB"), "{message}");
}

/// Sends a document that must be refused quickly, and checks that it stored nothing.
async fn refused_quickly(api: &Api, document: &str) -> Reply {
    let started = std::time::Instant::now();
    let reply = api.refused(Method::PUT, "/v1/config", document).await;
    // Generous for unoptimized builds on a busy machine; what it guards against (expansion or
    // parsing time that grows exponentially or with the square of the input) takes minutes.
    assert!(
        started.elapsed().as_secs() < 30,
        "{:?}: {}",
        started.elapsed(),
        reply.body
    );
    assert!(api.hub.current().state.to_config().routes.is_empty());
    reply
}

#[tokio::test]
async fn yaml_alias_bombs_are_refused_quickly() {
    let api = api().await;
    // A small, valid document whose routes all share the first one's long list of hosts through
    // an alias: once expanded, hundreds of times its size (this one stored 53 MB before).
    let hosts: Vec<String> = (0..1000).map(|i| format!("h-{i:04}.example.com")).collect();
    let mut document = format!(
        "upstreams:\n- name: api\n  targets: [{{address: '127.0.0.1:9000'}}]\nroutes:\n\
         - {{name: r0, hosts: &h [{}], backends: [{{upstream: api}}]}}\n",
        hosts.join(", ")
    );
    for i in 1..2500 {
        document.push_str(&format!(
            "- {{name: r{i}, hosts: *h, backends: [{{upstream: api}}]}}\n"
        ));
    }
    assert!(document.len() < 160 * 1024, "{}", document.len());
    let reply = refused_quickly(&api, &document).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "body_too_large");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("aliases are expanded"),
        "{}",
        reply.body
    );

    // The billion laughs.
    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 9].join(", ");
        laughs.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    let reply = refused_quickly(&api, &laughs).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );

    // Anchors as they are meant to be used are fine: one route's settings shared by others.
    let document = format!(
        "upstreams:\n- name: api\n  targets: [{{address: '127.0.0.1:9000'}}]\nroutes:\n\
         - &d {{name: r0, backends: [{{upstream: api}}], timeout: 5s}}\n{}",
        (1..100)
            .map(|i| format!("- {{<<: *d, name: r{i}}}\n"))
            .collect::<String>()
    );
    let applied = api.put("/v1/config", &document).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(api.hub.current().state.to_config().routes.len(), 100);
}

#[tokio::test]
async fn nesting_bombs_are_refused_quickly() {
    let api = api().await;
    let cases = [
        format!("routes: {}", "[".repeat(1_000_000)),
        format!("routes: {}", "{a: ".repeat(250_000)),
        format!("routes:\n{}", "- ".repeat(500_000)),
        format!("{{\"routes\": {}", "[".repeat(1_000_000)),
        format!("{{\"routes\": [{}", "{\"a\": ".repeat(200_000)),
    ];
    for document in &cases {
        let reply = refused_quickly(&api, document).await;
        let start = &document[..20];
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{start}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "too_deep", "{start}: {}", reply.body);
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("deeper than 64 levels"), "{message}");
    }
    let json = refused_quickly(&api, &cases[3]).await;
    assert!(json.field().starts_with("routes[0][0]"), "{}", json.body);
}

#[tokio::test]
async fn duplicate_keys_are_refused_naming_the_key_and_its_path() {
    let api = api().await;
    assert_eq!(
        api.post("/v1/upstreams", API).await.status,
        StatusCode::CREATED
    );
    let route = |name: &str, extra: &str| {
        format!(r#"{{"name": "{name}", "backends": [{{"upstream": "api"}}]{extra}}}"#)
    };
    let with_fourth = |extra: &str| {
        let routes: Vec<String> = (0..3)
            .map(|i| route(&format!("r{i}"), ""))
            .chain([route("r3", extra)])
            .collect();
        format!(
            r#"{{"upstreams": [{API}], "routes": [{}]}}"#,
            routes.join(", ")
        )
    };
    let cases = [
        (
            format!(r#"{{"upstreams": [{API}], "routes": [], "routes": []}}"#),
            "routes",
            "routes",
        ),
        (
            with_fourth(r#", "hosts": ["a"], "hosts": ["b"]"#),
            "hosts",
            "routes[3].hosts",
        ),
        (
            with_fourth(r#", "retries": {"attempts": 1, "attempts": 2}"#),
            "attempts",
            "routes[3].retries.attempts",
        ),
        (
            with_fourth(r#", "request_headers": {"set": {"x-a": "1", "x-a": "2"}}"#),
            "x-a",
            "routes[3].request_headers.set.x-a",
        ),
        (
            r#"{"upstreams": [{"name": "api", "targets": [{"address": "h:1", "address": "h:2"}]}]}"#
                .to_owned(),
            "address",
            "upstreams[0].targets[0].address",
        ),
    ];
    for (json_document, key, field) in &cases {
        // The same document in JSON and in YAML's flow style, and once more in block style.
        let flow = json_document.replace('"', "");
        for document in [json_document.clone(), format!("# flow\n{flow}")] {
            let reply = api.refused(Method::PUT, "/v1/config", &document).await;
            let what = format!("{document}: {}", reply.body);
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
            assert_eq!(reply.code(), "duplicate_key", "{what}");
            assert_eq!(reply.field(), *field, "{what}");
            let message = reply.body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("duplicate key `{key}`")),
                "{what}"
            );
            assert!(message.contains("line "), "{what}");
        }
    }
    let block = "upstreams:\n- name: api\n  targets:\n  - address: 'h:1'\nroutes:\n\
                 - name: r0\n  backends: [{upstream: api}]\n\
                 - name: r1\n  hosts: [a]\n  backends: [{upstream: api}]\n  hosts: [b]\n";
    let reply = api.refused(Method::PUT, "/v1/config", block).await;
    assert_eq!(reply.field(), "routes[1].hosts", "{}", reply.body);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 11"),
        "{}",
        reply.body
    );

    // Entity bodies too.
    let dup_route =
        r#"{"name": "r9", "hosts": [], "backends": [{"upstream": "api"}], "hosts": ["x"]}"#;
    let reply = api.refused(Method::POST, "/v1/routes", dup_route).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "duplicate_key")
    );
    assert_eq!(reply.field(), "hosts");
    let dup_target = r#"{"targets": [{"address": "h:1", "weight": 1, "weight": 2}]}"#;
    let reply = api
        .refused(Method::PUT, "/v1/upstreams/api", dup_target)
        .await;
    assert_eq!(reply.field(), "targets[0].weight", "{}", reply.body);
    let reply = api
        .refused(
            Method::PUT,
            "/v1/routes/r9",
            &route("r9", r#", "name": "r9""#),
        )
        .await;
    assert_eq!(reply.field(), "name", "{}", reply.body);
}

/// A document's parse runs off the threads that answer requests: with the parse held (by a
/// hook on the blocking thread), `/healthz` still answers on this test's single-threaded
/// runtime, where a parse on the request threads would leave nothing to answer it.
#[tokio::test]
async fn healthz_answers_while_a_document_is_parsed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, mpsc};

    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Mutex::new(Some(started_tx));
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let released = Arc::new(AtomicBool::new(false));
    let mut limits = Limits::new(CONFIG_BODY_LIMIT);
    let was_released = Arc::clone(&released);
    limits.on_parse = Some(Arc::new(move || {
        if let Some(tx) = started_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        // Only a failing test waits this long: if the parse held the only request thread,
        // nothing would release it, and the flag tells that apart.
        let rx = release_rx.lock().unwrap();
        if rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok() {
            was_released.store(true, Ordering::SeqCst);
        }
    }));
    let api = api_with(limits).await;
    let yaml = "upstreams:\n- name: api\n  targets: [{address: '127.0.0.1:9000'}]\nroutes: []\n";
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/v1/config")
        .body(Body::from(yaml))
        .unwrap();
    let apply = tokio::spawn(api.router.clone().oneshot(request));
    started_rx.await.unwrap();
    let health = api.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    release_tx.send(()).unwrap();
    let applied = apply.await.unwrap().unwrap();
    assert_eq!(applied.status(), StatusCode::OK);
    assert!(released.load(Ordering::SeqCst), "the parse was not held");
    assert_eq!(api.hub.current().revision, 1);
}

/// `Authorization: Bearer <secret>`.
fn bearer(secret: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {secret}"))
}

impl Api {
    async fn as_token(&self, secret: &str, method: Method, uri: &str, body: Option<&str>) -> Reply {
        let (name, value) = bearer(secret);
        self.call_with(method, uri, body, &[(name, value.as_str())])
            .await
    }

    async fn create_token(&self, secret: Option<&str>, name: &str, role: &str) -> String {
        let body = json!({"name": name, "role": role}).to_string();
        let reply = match secret {
            Some(secret) => {
                self.as_token(secret, Method::POST, "/v1/tokens", Some(&body))
                    .await
            }
            None => self.post("/v1/tokens", &body).await,
        };
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn tokens_and_roles_decide_who_may_do_what() {
    let api = api().await;
    // Without tokens the API is open; the first token is made that way.
    assert_eq!(api.get("/v1/routes").await.status, StatusCode::OK);
    let admin = api.create_token(None, "root", "admin").await;
    assert!(admin.starts_with("gwt_"), "{admin}");

    // From now on a token is needed, except on the probes, metrics and the schema.
    let missing = api.get("/v1/routes").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{}", missing.body);
    assert_eq!(missing.code(), "unauthorized");
    assert_eq!(
        missing.headers["www-authenticate"],
        "Bearer realm=\"gateway-admin\""
    );
    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(api.get(open).await.status, StatusCode::OK, "{open}");
    }
    let wrong = api
        .as_token("gwt_not-a-token", Method::GET, "/v1/routes", None)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "invalid_token");
    assert_eq!(wrong.body["error"]["field"], "Authorization");
    assert!(
        wrong.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""),
        "{:?}",
        wrong.headers
    );
    let basic = api
        .call_with(
            Method::GET,
            "/v1/routes",
            None,
            &[("authorization", "Basic dXNlcjpwYXNz")],
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);

    let editor = api.create_token(Some(&admin), "ci", "editor").await;
    let viewer = api.create_token(Some(&admin), "dash", "viewer").await;

    // A viewer reads, an editor also writes, only an admin manages tokens.
    let read = api
        .as_token(&viewer, Method::GET, "/v1/upstreams", None)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let refused = api
        .as_token(&viewer, Method::POST, "/v1/upstreams", Some(API))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.code(), "forbidden");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs editor"),
        "{}",
        refused.body
    );
    let revisions = api.revisions().await;
    assert_eq!(revisions, 0, "the refused write stored nothing");
    let written = api
        .as_token(&editor, Method::POST, "/v1/upstreams", Some(API))
        .await;
    assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);
    let tokens = api.as_token(&editor, Method::GET, "/v1/tokens", None).await;
    assert_eq!(tokens.status, StatusCode::FORBIDDEN);
    let tokens = api.as_token(&admin, Method::GET, "/v1/tokens", None).await;
    assert_eq!(tokens.status, StatusCode::OK);
    let names: Vec<&str> = tokens.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "dash", "root"]);
    assert!(
        !tokens.body.to_string().contains(&editor[4..]),
        "a list never shows a secret"
    );
    assert_eq!(tokens.body["items"][0]["created_by"], "root");
    assert_eq!(tokens.body["items"][2]["created_by"], "anonymous");

    // The revision names the token, whatever the actor header says.
    let (rows, _) = api.db.store.list_revisions(None, 10).await.unwrap();
    assert_eq!(rows[0].actor, "ci");

    // Revoked: refused at once; the last admin cannot be revoked.
    let revoke = api
        .as_token(&admin, Method::DELETE, "/v1/tokens/ci", None)
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.body);
    let gone = api.as_token(&editor, Method::GET, "/v1/routes", None).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    let last = api
        .as_token(&admin, Method::DELETE, "/v1/tokens/root", None)
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.body);
    assert_eq!(last.code(), "last_admin_token");
    let unknown = api
        .as_token(&admin, Method::DELETE, "/v1/tokens/nope", None)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Bad token requests are refused with the field named.
    for (body, field) in [
        (r#"{"name": "x", "role": "owner"}"#, "role"),
        (r#"{"name": "no/slash", "role": "viewer"}"#, "name"),
        (
            r#"{"name": "x", "role": "viewer", "expires_in": "10ms"}"#,
            "expires_in",
        ),
        (r#"{"name": "x", "role": "viewer", "secret": "mine"}"#, ""),
    ] {
        let reply = api
            .as_token(&admin, Method::POST, "/v1/tokens", Some(body))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.body
        );
        if !field.is_empty() {
            assert_eq!(
                reply.body["error"]["field"], field,
                "{body}: {}",
                reply.body
            );
        }
    }
    let taken = api
        .as_token(
            &admin,
            Method::POST,
            "/v1/tokens",
            Some(r#"{"name": "dash", "role": "viewer"}"#),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
}
