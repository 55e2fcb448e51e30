//! Commands run against a small in-process imitation of the admin API on 127.0.0.1:0, covering
//! the whole path: flags → request body → HTTP → response → printed output and exit code.
//!
//! The configuration endpoints (`/v1/config`, `/v1/revisions/...`) keep a real history of
//! `gateway_config::Config`s and follow the admin API contract: one revision per write that
//! changes something, `If-Match`, `?dry_run=true`, `x-gateway-message`, every validation error in
//! `details`.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use gateway_config::{Config, ErrorKind};
use serde_json::{Value, json};

use super::{CommandError, Outcome, exit, run};
use crate::cli::Cli;

const TOKEN: &str = "s3cret";

fn error(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> Response {
    let details = match field {
        Some(field) => {
            json!([{"kind": "upstream", "name": "api", "field": field, "message": message}])
        }
        None => json!([]),
    };
    let body =
        json!({"error": {"code": code, "message": message, "field": field, "details": details}});
    (status, axum::Json(body)).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"))
}

async fn create_upstream(headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing token",
            None,
        );
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "malformed_json", "not JSON", None);
    };
    let name = value["name"].as_str().unwrap_or_default().to_owned();
    if name == "api" {
        return error(
            StatusCode::CONFLICT,
            "already_exists",
            "upstream `api` already exists",
            Some("name"),
        );
    }
    value["created_at"] = json!("2025-01-01T00:00:00.000Z");
    value["updated_at"] = json!("2025-01-01T00:00:00.000Z");
    value["revision"] = json!(3);
    (
        StatusCode::CREATED,
        [
            ("x-gateway-revision", "3".to_owned()),
            ("location", format!("/v1/upstreams/{name}")),
        ],
        axum::Json(value),
    )
        .into_response()
}

/// Two pages, so that the client has to follow `next_cursor`.
async fn list_upstreams(RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let item = |name: &str| {
        json!({"name": name, "targets": [{"address": format!("{name}:80"), "weight": 1}],
               "balance": "round_robin", "revision": 1,
               "created_at": "2025-01-01T00:00:00.000Z", "updated_at": "2025-01-01T00:00:00.000Z"})
    };
    let body = if query.contains("cursor=page2") {
        json!({"items": [item("c")], "next_cursor": null})
    } else {
        json!({"items": [item("a"), item("b")], "next_cursor": "page2"})
    };
    axum::Json(body).into_response()
}

async fn delete_upstream(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = precondition(&headers, 8) {
        return response;
    }
    if name == "api" {
        (StatusCode::NO_CONTENT, [("x-gateway-revision", "9")]).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("upstream `{name}` not found"),
            None,
        )
    }
}

async fn start() -> SocketAddr {
    let app = Router::new()
        .route("/v1/upstreams", post(create_upstream).get(list_upstreams))
        .route(
            "/v1/upstreams/{name}",
            axum::routing::delete(delete_upstream),
        )
        .route(
            "/v1/nodes",
            get(|| async { axum::Json(json!({"latest_revision": 4, "items": []})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// One stored revision of the fake: the config and the message it was written with.
struct Revision {
    config: Config,
    message: String,
}

/// Revision n is `history[n]`; revision 0 is the empty config.
type History = Arc<Mutex<Vec<Revision>>>;

fn latest(history: &History) -> (u64, Config) {
    let history = history.lock().unwrap();
    let revision = history.len() as u64 - 1;
    (revision, history[history.len() - 1].config.clone())
}

fn config_at(history: &History, revision: u64) -> Option<Config> {
    let history = history.lock().unwrap();
    usize::try_from(revision)
        .ok()
        .and_then(|i| history.get(i))
        .map(|r| r.config.clone())
}

/// 412 when `If-Match` names another revision than `current`.
fn precondition(headers: &HeaderMap, current: u64) -> Option<Response> {
    let wanted = headers.get(header::IF_MATCH)?.to_str().ok()?;
    let wanted: u64 = wanted.trim().trim_matches('"').parse().ok()?;
    (wanted != current).then(|| {
        error(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            &format!("the latest revision is {current}, not {wanted}"),
            None,
        )
    })
}

fn is_dry_run(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "dry_run=true"))
}

/// Stores `next` as a new revision unless it changes nothing or this is a dry run.
fn commit(
    history: &History,
    headers: &HeaderMap,
    query: Option<&str>,
    next: Config,
    default_message: String,
) -> Response {
    let (current, config) = latest(history);
    if let Some(response) = precondition(headers, current) {
        return response;
    }
    let changes = config.diff(&next);
    let changed = !changes.is_empty();
    if is_dry_run(query) {
        let body =
            json!({"dry_run": true, "revision": current, "changed": changed, "changes": changes});
        return axum::Json(body).into_response();
    }
    if !changed {
        let body = json!({"revision": current, "changed": false, "changes": []});
        return axum::Json(body).into_response();
    }
    let message = headers
        .get("x-gateway-message")
        .and_then(|v| v.to_str().ok())
        .map_or(default_message, str::to_owned);
    let revision = {
        let mut history = history.lock().unwrap();
        history.push(Revision {
            config: next,
            message,
        });
        history.len() as u64 - 1
    };
    (
        [("x-gateway-revision", revision.to_string())],
        axum::Json(json!({"revision": revision, "changed": true, "changes": changes})),
    )
        .into_response()
}

async fn get_config(State(history): State<History>) -> Response {
    let (revision, config) = latest(&history);
    (
        [
            ("x-gateway-revision", revision.to_string()),
            ("etag", format!("\"{revision}\"")),
        ],
        axum::Json(serde_json::to_value(&config).unwrap()),
    )
        .into_response()
}

async fn put_config(
    State(history): State<History>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "malformed_json", "not JSON", None);
    };
    for list in ["upstreams", "routes"] {
        if let Some(Value::Array(items)) = value.get_mut(list) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                for key in ["created_at", "updated_at", "revision"] {
                    item.remove(key);
                }
            }
        }
    }
    let next: Config = match serde_path_to_error::deserialize(value) {
        Ok(next) => next,
        Err(e) => {
            let field = e.path().to_string();
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                &e.into_inner().to_string(),
                Some(&field),
            );
        }
    };
    if let Err(errors) = next.validate() {
        let first = &errors.0[0];
        let code = match first.error {
            ErrorKind::Invalid => "invalid_field",
            ErrorKind::UnknownReference => "unknown_reference",
            ErrorKind::Conflict => "conflict",
        };
        let body = json!({"error": {"code": code, "message": "the configuration is invalid",
            "field": null, "details": errors.0}});
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
    }
    commit(
        &history,
        &headers,
        query.as_deref(),
        next,
        "apply config".into(),
    )
}

fn no_revision(revision: u64) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("revision {revision} does not exist"),
        None,
    )
}

async fn get_revision(State(history): State<History>, Path(revision): Path<u64>) -> Response {
    let record = {
        let history = history.lock().unwrap();
        usize::try_from(revision)
            .ok()
            .and_then(|i| history.get(i))
            .map(|r| (r.config.clone(), r.message.clone()))
    };
    match record {
        Some((config, message)) => axum::Json(json!({
            "revision": revision, "actor": "admin", "message": message,
            "digest": gateway_config::digest(&config), "created_at": "2025-01-01T00:00:00.000Z",
            "config": config,
        }))
        .into_response(),
        None => no_revision(revision),
    }
}

async fn diff_revisions(
    State(history): State<History>,
    Path((from, to)): Path<(u64, u64)>,
) -> Response {
    let (Some(a), Some(b)) = (config_at(&history, from), config_at(&history, to)) else {
        return no_revision(from.max(to));
    };
    axum::Json(json!({"from": from, "to": to, "changes": a.diff(&b)})).into_response()
}

async fn rollback(
    State(history): State<History>,
    Path(revision): Path<u64>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match config_at(&history, revision) {
        Some(config) => commit(
            &history,
            &headers,
            query.as_deref(),
            config,
            format!("rollback to revision {revision}"),
        ),
        None => no_revision(revision),
    }
}

/// The configuration endpoints, starting from revision 0 (empty).
async fn start_config_api() -> (SocketAddr, History) {
    let history: History = Arc::new(Mutex::new(vec![Revision {
        config: Config::default(),
        message: "initial".into(),
    }]));
    let app = Router::new()
        .route("/v1/config", get(get_config).put(put_config))
        .route("/v1/revisions/{n}", get(get_revision))
        .route("/v1/revisions/{a}/diff/{b}", get(diff_revisions))
        .route("/v1/revisions/{n}/rollback", post(rollback))
        .with_state(history.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, history)
}

fn revisions(history: &History) -> usize {
    history.lock().unwrap().len() - 1
}

async fn gatewayctl(addr: SocketAddr, args: &[&str]) -> (Result<Outcome, CommandError>, String) {
    let url = format!("http://{addr}");
    let cli = Cli::try_parse_from(
        ["gatewayctl", "--admin-url", url.as_str(), "--token", TOKEN]
            .into_iter()
            .chain(args.iter().copied()),
    )
    .unwrap();
    let mut out = Vec::new();
    let result = run(cli, &mut out).await;
    (result, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn create_prints_the_revision() {
    let addr = start().await;
    let (result, out) = gatewayctl(
        addr,
        &["upstream", "create", "web", "--target", "10.0.0.1:80=2"],
    )
    .await;
    result.unwrap();
    assert_eq!(out, "upstream \"web\" created (revision 3)\n");

    let (result, out) = gatewayctl(
        addr,
        &[
            "-o", "json", "upstream", "create", "web", "--target", "a:80",
        ],
    )
    .await;
    result.unwrap();
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["revision"], 3);
    assert_eq!(
        printed["targets"],
        json!([{"address": "a:80", "weight": 1}])
    );
}

#[tokio::test]
async fn refusal_is_reported_with_exit_code_1() {
    let addr = start().await;
    let (result, out) = gatewayctl(addr, &["upstream", "create", "api", "--target", "a:80"]).await;
    assert!(out.is_empty());
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    let api = err.api_error().unwrap();
    assert_eq!(api.status, 409);
    assert_eq!(api.code, "already_exists");
    assert_eq!(
        err.report(),
        "error: upstream `api` already exists (already_exists, field name)\n\
         \x20 - upstream \"api\": name: upstream `api` already exists\n"
    );
}

#[tokio::test]
async fn list_follows_the_cursor() {
    let addr = start().await;
    let (result, out) = gatewayctl(addr, &["-o", "json", "upstream", "list"]).await;
    result.unwrap();
    let printed: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = printed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[tokio::test]
async fn delete_and_not_found() {
    let addr = start().await;
    let (result, out) = gatewayctl(addr, &["upstream", "delete", "api"]).await;
    result.unwrap();
    assert_eq!(out, "upstream \"api\" deleted (revision 9)\n");

    let (result, _) = gatewayctl(addr, &["upstream", "delete", "nope"]).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(
        err.report(),
        "error: upstream `nope` not found (not_found)\n"
    );
}

#[tokio::test]
async fn status_prints_the_latest_revision() {
    let addr = start().await;
    let (result, out) = gatewayctl(addr, &["status"]).await;
    result.unwrap();
    assert!(out.starts_with("latest revision: 4\nNODE"), "{out:?}");
}

#[tokio::test]
async fn unreachable_api_is_exit_code_3() {
    // A port that was free a moment ago; nothing listens on it once the listener is dropped.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (result, _) = gatewayctl(addr, &["status"]).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::UNREACHABLE);
    let report = err.report();
    assert!(
        report.starts_with(&format!(
            "error: could not reach the admin API at http://{addr}/v1/nodes: "
        )),
        "{report}"
    );
}

const GATEWAY_YAML: &str = "\
upstreams:
  - name: api
    targets:
      - address: 10.0.0.1:80
routes:
  - name: web
    paths: [{prefix: /v1}]
    backends: [{upstream: api}]
";

/// Writes `text` to a file in `dir` and returns its path as a string.
fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn apply_makes_one_revision_and_then_none() {
    let (addr, history) = start_config_api().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = file(&dir, "gw.yaml", GATEWAY_YAML);

    let (result, out) = gatewayctl(addr, &["apply", "-f", &gw]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    assert_eq!(
        out,
        "+ upstream \"api\"\n+ route \"web\"\napplied: revision 1\n"
    );
    assert_eq!(revisions(&history), 1);
    assert_eq!(history.lock().unwrap()[1].message, "apply config");

    let (result, out) = gatewayctl(addr, &["apply", "-f", &gw]).await;
    result.unwrap();
    assert_eq!(out, "no changes\n");
    assert_eq!(revisions(&history), 1);

    // Deleting a route is leaving it out of the file.
    let only_upstream = file(
        &dir,
        "up.yaml",
        "upstreams: [{name: api, targets: [{address: '10.0.0.1:80'}]}]\n",
    );
    let (result, out) = gatewayctl(
        addr,
        &[
            "apply",
            "-f",
            &only_upstream,
            "-m",
            "drop web",
            "-o",
            "json",
        ],
    )
    .await;
    result.unwrap();
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["revision"], 2);
    assert_eq!(printed["changes"][0]["op"], "delete");
    assert_eq!(history.lock().unwrap()[2].message, "drop web");
}

#[tokio::test]
async fn apply_dry_run_and_if_match_store_nothing() {
    let (addr, history) = start_config_api().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = file(&dir, "gw.yaml", GATEWAY_YAML);

    let (result, out) = gatewayctl(addr, &["apply", "-f", &gw, "--dry-run"]).await;
    result.unwrap();
    assert_eq!(
        out,
        "+ upstream \"api\"\n+ route \"web\"\ndry run: 2 changes not stored (latest revision 0)\n"
    );
    assert_eq!(revisions(&history), 0);

    let (result, out) = gatewayctl(addr, &["apply", "-f", &gw, "--if-match", "3"]).await;
    assert!(out.is_empty());
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(err.api_error().unwrap().status, 412);
    assert_eq!(
        err.report(),
        "error: the latest revision is 0, not 3 (precondition_failed)\n"
    );
    assert_eq!(revisions(&history), 0);

    let (result, _) = gatewayctl(addr, &["apply", "-f", &gw, "--if-match", "0"]).await;
    result.unwrap();
    assert_eq!(revisions(&history), 1);
}

#[tokio::test]
async fn apply_refusal_lists_every_problem() {
    let (addr, history) = start_config_api().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = file(
        &dir,
        "bad.yaml",
        "upstreams: [{name: api, targets: [{address: no-port}]}]\n\
         routes: [{name: web, backends: [{upstream: nope}]}]\n",
    );
    let (result, out) = gatewayctl(addr, &["apply", "-f", &bad]).await;
    assert!(out.is_empty());
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    let report = err.report();
    assert!(
        report.starts_with("error: the configuration is invalid"),
        "{report}"
    );
    assert!(
        report.contains("  - upstream \"api\": targets[0].address: "),
        "{report}"
    );
    assert!(
        report
            .contains("  - route \"web\": backends[0].upstream: upstream `nope` does not exist\n"),
        "{report}"
    );
    assert_eq!(revisions(&history), 0);

    // A file that is not YAML never reaches the API.
    let broken = file(&dir, "broken.yaml", "upstreams: [\n");
    let (result, _) = gatewayctl(addr, &["apply", "-f", &broken]).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::USAGE);
}

#[tokio::test]
async fn diff_shows_changed_fields_and_stores_nothing() {
    let (addr, history) = start_config_api().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = file(&dir, "gw.yaml", GATEWAY_YAML);
    gatewayctl(addr, &["apply", "-f", &gw]).await.0.unwrap();

    let (result, out) = gatewayctl(addr, &["diff", "-f", &gw]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    assert_eq!(out, "no changes\n");

    let v2 = file(&dir, "v2.yaml", &GATEWAY_YAML.replace("/v1", "/v2"));
    let (result, out) = gatewayctl(addr, &["diff", "-f", &v2]).await;
    assert_eq!(result.unwrap(), Outcome::Changes);
    assert_eq!(
        out,
        "~ route \"web\": paths: [{\"prefix\":\"/v1\"}] -> [{\"prefix\":\"/v2\"}]\n"
    );
    assert_eq!(revisions(&history), 1);

    let (result, out) = gatewayctl(addr, &["diff", "-f", &v2, "-o", "json"]).await;
    assert_eq!(result.unwrap(), Outcome::Changes);
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["dry_run"], true);

    // Every failure is exit code 2, a refusal included.
    let bad = file(
        &dir,
        "bad.yaml",
        "routes: [{name: web, backends: [{upstream: nope}]}]\n",
    );
    let (result, _) = gatewayctl(addr, &["diff", "-f", &bad]).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::DIFF_FAILED);
    assert_eq!(err.api_error().unwrap().code, "unknown_reference");
    let (result, _) = gatewayctl(addr, &["diff", "-f", "/nonexistent/gw.yaml"]).await;
    assert_eq!(result.unwrap_err().exit_code(), exit::DIFF_FAILED);
}

#[tokio::test]
async fn export_round_trips_through_apply() {
    let (addr, history) = start_config_api().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = file(&dir, "gw.yaml", GATEWAY_YAML);
    gatewayctl(addr, &["apply", "-f", &gw]).await.0.unwrap();

    let (result, yaml) = gatewayctl(addr, &["export"]).await;
    result.unwrap();
    assert!(
        yaml.starts_with(
            "# revision 1\nupstreams:\n- name: api\n  targets:\n  - address: 10.0.0.1:80\n"
        ),
        "{yaml}"
    );
    let exported = file(&dir, "exported.yaml", &yaml);
    let (result, out) = gatewayctl(addr, &["diff", "-f", &exported]).await;
    assert_eq!(result.unwrap(), Outcome::Done, "{out}");

    let (result, json) = gatewayctl(addr, &["export", "-o", "json"]).await;
    result.unwrap();
    let printed: Config = serde_json::from_str(&json).unwrap();
    assert_eq!(printed, history.lock().unwrap()[1].config);
}

#[tokio::test]
async fn revisions_show_and_diff() {
    let (addr, _history) = start_config_api().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = file(&dir, "gw.yaml", GATEWAY_YAML);
    let v2 = file(&dir, "v2.yaml", &GATEWAY_YAML.replace("/v1", "/v2"));
    gatewayctl(addr, &["apply", "-f", &gw]).await.0.unwrap();
    gatewayctl(addr, &["apply", "-f", &v2]).await.0.unwrap();

    let (result, out) = gatewayctl(addr, &["revisions", "show", "1"]).await;
    result.unwrap();
    assert!(
        out.starts_with(
            "# revision 1 (2025-01-01T00:00:00.000Z, admin): apply config\nupstreams:\n- name: api\n"
        ),
        "{out}"
    );
    assert!(out.contains("  - prefix: /v1\n"), "{out}");

    let (result, out) = gatewayctl(addr, &["revisions", "show", "2", "-o", "json"]).await;
    result.unwrap();
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["revision"], 2);
    assert_eq!(printed["config"]["routes"][0]["paths"][0]["prefix"], "/v2");

    let (result, out) = gatewayctl(addr, &["revisions", "diff", "1", "2"]).await;
    result.unwrap();
    assert_eq!(
        out,
        "~ route \"web\": paths: [{\"prefix\":\"/v1\"}] -> [{\"prefix\":\"/v2\"}]\n"
    );
    let (result, out) = gatewayctl(addr, &["revisions", "diff", "0", "1"]).await;
    result.unwrap();
    assert_eq!(out, "+ upstream \"api\"\n+ route \"web\"\n");

    let (result, _) = gatewayctl(addr, &["revisions", "show", "99"]).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(err.api_error().unwrap().code, "not_found");
}

#[tokio::test]
async fn rollback_makes_one_new_revision() {
    let (addr, history) = start_config_api().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = file(&dir, "gw.yaml", GATEWAY_YAML);
    let v2 = file(&dir, "v2.yaml", &GATEWAY_YAML.replace("/v1", "/v2"));
    gatewayctl(addr, &["apply", "-f", &gw]).await.0.unwrap();
    gatewayctl(addr, &["apply", "-f", &v2]).await.0.unwrap();

    let (result, out) = gatewayctl(addr, &["rollback", "1", "--dry-run"]).await;
    result.unwrap();
    assert_eq!(
        out,
        "~ route \"web\"\ndry run: 1 change not stored (latest revision 2)\n"
    );
    assert_eq!(revisions(&history), 2);

    let (result, _) = gatewayctl(addr, &["rollback", "1", "--if-match", "1"]).await;
    assert_eq!(result.unwrap_err().api_error().unwrap().status, 412);

    let (result, out) = gatewayctl(addr, &["rollback", "1"]).await;
    result.unwrap();
    assert_eq!(
        out,
        "~ route \"web\"\napplied: revision 3 (rollback to revision 1)\n"
    );
    {
        let history = history.lock().unwrap();
        assert_eq!(history[3].config, history[1].config);
        assert_eq!(history[3].message, "rollback to revision 1");
    }

    let (result, out) = gatewayctl(addr, &["rollback", "1"]).await;
    result.unwrap();
    assert_eq!(out, "no changes\n");
    assert_eq!(revisions(&history), 3);
}

#[tokio::test]
async fn delete_honours_if_match() {
    let addr = start().await;
    let (result, _) = gatewayctl(addr, &["upstream", "delete", "api", "--if-match", "7"]).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(err.api_error().unwrap().code, "precondition_failed");

    let (result, out) = gatewayctl(addr, &["upstream", "delete", "api", "--if-match", "8"]).await;
    result.unwrap();
    assert_eq!(out, "upstream \"api\" deleted (revision 9)\n");
}
