//! Commands run against a small in-process imitation of the admin API on 127.0.0.1:0, covering
//! the whole path: flags → request body → HTTP → response → printed output and exit code.
//!
//! The configuration endpoints (`/v1/config`, `/v1/revisions/...`) keep a real history of
//! `gateway_config::Config`s and follow the admin API contract: one revision per write that
//! changes something, `If-Match`, `?dry_run=true`, `x-gateway-message`, every validation error in
//! `details`. The certificate endpoints read bodies into the shared model and answer with the
//! model's own rendering (`info` computed from the chain, no key), as the admin API does.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use gateway_config::{Certificate, Config, ErrorKind, PrivateKey, x509};
use serde_json::{Value, json};

use super::fake_certificates::{DAY, certificate, private_key};
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
    let (result, out, _warnings) = gatewayctl_with_warnings(addr, args).await;
    (result, out)
}

/// [`gatewayctl`], also returning what went to stderr.
async fn gatewayctl_with_warnings(
    addr: SocketAddr,
    args: &[&str],
) -> (Result<Outcome, CommandError>, String, String) {
    let url = format!("http://{addr}");
    let cli = Cli::try_parse_from(
        ["gatewayctl", "--admin-url", url.as_str(), "--token", TOKEN]
            .into_iter()
            .chain(args.iter().copied()),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let result = run(cli, &mut out, &mut err).await;
    (
        result,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
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

/// The certificate endpoints of the fake: entities as the shared model reads them, shown as the
/// model shows them (with the `info` it computes from the chain, never the key), and every
/// request body as it was sent.
#[derive(Default)]
struct CertificateStore {
    stored: BTreeMap<String, (Certificate, u64)>,
    revision: u64,
    bodies: Vec<Value>,
    /// As a control plane started without a key-encryption key: a write with a key is a 503.
    no_keyring: bool,
}

type Certificates = Arc<Mutex<CertificateStore>>;

fn certificate_resource(certificate: &Certificate, revision: u64) -> Value {
    let mut value = serde_json::to_value(certificate).unwrap();
    value["created_at"] = json!("2025-01-01T00:00:00.000Z");
    value["updated_at"] = json!("2025-01-01T00:00:00.000Z");
    value["revision"] = json!(revision);
    value
}

/// A refusal about one certificate, with its details as the admin API lists them.
fn certificate_refusal(
    status: StatusCode,
    code: &str,
    message: &str,
    field: Option<&str>,
    details: Value,
) -> Response {
    let body =
        json!({"error": {"code": code, "message": message, "field": field, "details": details}});
    (status, axum::Json(body)).into_response()
}

fn no_certificate(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("certificate `{name}` does not exist"),
        None,
    )
}

async fn list_certificates(State(store): State<Certificates>) -> Response {
    let store = store.lock().unwrap();
    let items: Vec<Value> = store
        .stored
        .values()
        .map(|(certificate, revision)| certificate_resource(certificate, *revision))
        .collect();
    axum::Json(json!({"items": items, "next_cursor": null})).into_response()
}

async fn get_certificate(State(store): State<Certificates>, Path(name): Path<String>) -> Response {
    let store = store.lock().unwrap();
    match store.stored.get(&name) {
        Some((certificate, revision)) => {
            axum::Json(certificate_resource(certificate, *revision)).into_response()
        }
        None => no_certificate(&name),
    }
}

async fn create_certificate(
    State(store): State<Certificates>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_certificate(&store, &headers, &body, None)
}

async fn put_certificate(
    State(store): State<Certificates>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_certificate(&store, &headers, &body, Some(&name))
}

/// POST (`path_name` None) or PUT, in the admin API's order of checks.
fn write_certificate(
    store: &Certificates,
    headers: &HeaderMap,
    body: &[u8],
    path_name: Option<&str>,
) -> Response {
    let mut store = store.lock().unwrap();
    if let Some(response) = precondition(headers, store.revision) {
        return response;
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "malformed_json", "not JSON", None);
    };
    store.bodies.push(value.clone());
    if let (Some(path_name), Some(map)) = (path_name, value.as_object_mut()) {
        let named = map.entry("name").or_insert_with(|| json!(path_name));
        if named != path_name {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "name_mismatch",
                "the body and the path name different certificates",
                Some("name"),
            );
        }
    }
    let mut certificate: Certificate = match serde_path_to_error::deserialize(value) {
        Ok(certificate) => certificate,
        Err(e) => {
            let field = e.path().to_string();
            let message = e.into_inner().to_string();
            return certificate_refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                &message,
                Some(&field),
                json!([]),
            );
        }
    };
    let name = certificate.name.clone();
    let existing = store.stored.get(&name).map(|(stored, _)| stored.clone());
    if path_name.is_none() && existing.is_some() {
        return certificate_refusal(
            StatusCode::CONFLICT,
            "already_exists",
            &format!("certificate `{name}` already exists"),
            Some("name"),
            json!([]),
        );
    }
    if certificate.key.is_none() {
        certificate.key = existing
            .filter(|stored| stored.cert == certificate.cert)
            .and_then(|stored| stored.key);
    }
    if certificate.key.is_none() {
        return certificate_refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "key: is required",
            Some("key"),
            json!([{"kind": "certificate", "name": name, "field": "key", "message": "is required"}]),
        );
    }
    let conflicts = gateway_config::server_name_conflicts_with(
        &certificate,
        store.stored.values().map(|(stored, _)| stored),
    );
    if let Some(first) = conflicts.first() {
        return certificate_refusal(
            StatusCode::CONFLICT,
            "conflict",
            &format!("{}: {}", first.field, first.message),
            Some(&first.field),
            json!(conflicts),
        );
    }
    if store.no_keyring {
        return certificate_refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_key_encryption_key",
            "the control plane has no key-encryption key, so it cannot store or read private \
             keys; start it with --key-encryption-key-file (GATEWAY_KEY_ENCRYPTION_KEY_FILE)",
            Some("key"),
            json!([]),
        );
    }
    store.revision += 1;
    let revision = store.revision;
    let created = !store.stored.contains_key(&name);
    let resource = certificate_resource(&certificate, revision);
    store.stored.insert(name.clone(), (certificate, revision));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        [
            ("x-gateway-revision", revision.to_string()),
            ("location", format!("/v1/certificates/{name}")),
        ],
        axum::Json(resource),
    )
        .into_response()
}

async fn delete_certificate(
    State(store): State<Certificates>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut store = store.lock().unwrap();
    if let Some(response) = precondition(&headers, store.revision) {
        return response;
    }
    if store.stored.remove(&name).is_none() {
        return no_certificate(&name);
    }
    store.revision += 1;
    (
        StatusCode::NO_CONTENT,
        [("x-gateway-revision", store.revision.to_string())],
    )
        .into_response()
}

/// The certificate endpoints, starting with none stored.
async fn start_certificate_api(store: CertificateStore) -> (SocketAddr, Certificates) {
    let store: Certificates = Arc::new(Mutex::new(store));
    let app = Router::new()
        .route(
            "/v1/certificates",
            get(list_certificates).post(create_certificate),
        )
        .route(
            "/v1/certificates/{name}",
            get(get_certificate)
                .put(put_certificate)
                .delete(delete_certificate),
        )
        .with_state(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, store)
}

/// A certificate as stored, with the fake key.
fn stored_certificate(name: &str, dns_names: &[&str], not_after: i64) -> Certificate {
    Certificate {
        name: name.into(),
        cert: certificate(dns_names, x509::unix_now() - DAY, not_after),
        key: Some(PrivateKey::new(private_key())),
        ..Default::default()
    }
}

fn with_certificates(certificates: Vec<Certificate>) -> CertificateStore {
    let mut store = CertificateStore::default();
    for certificate in certificates {
        store.revision += 1;
        store
            .stored
            .insert(certificate.name.clone(), (certificate, store.revision));
    }
    store
}

/// Whether `text` holds any 24-character stretch of the fake key's base64: enough to show key
/// material leaked, however it was cut or wrapped.
fn shows_key_material(text: &str) -> bool {
    let material: String = private_key()
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    text.contains("PRIVATE KEY")
        || (0..material.len() - 24).any(|start| text.contains(&material[start..start + 24]))
}

#[tokio::test]
async fn certificate_create_sends_the_chain_the_key_the_names_and_client_auth() {
    let (addr, store) = start_certificate_api(CertificateStore::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let now = x509::unix_now();
    let chain = certificate(&["api.test", "*.api.test"], now - DAY, now + 90 * DAY);
    let ca = certificate(&["Clients CA"], now - DAY, now + 900 * DAY);
    let cert = file(&dir, "api.pem", &chain);
    let key = file(&dir, "api.key", &private_key());
    let client_ca = file(&dir, "ca.pem", &ca);

    let (result, out) = gatewayctl(
        addr,
        &[
            "certificate",
            "create",
            "api",
            "--cert",
            &cert,
            "--key",
            &key,
            "--sni",
            "api.test",
            "--sni",
            "*.api.test",
            "--tag",
            "edge",
            "--client-ca",
            &client_ca,
            "--client-auth",
            "optional",
            "--client-subject-header",
            "x-client-subject",
            "--client-fingerprint-header",
            "x-client-fingerprint",
        ],
    )
    .await;
    result.unwrap();
    assert_eq!(out, "certificate \"api\" created (revision 1)\n");
    {
        let store = store.lock().unwrap();
        assert_eq!(
            store.bodies,
            [json!({
                "name": "api",
                "tags": ["edge"],
                "cert": chain,
                "key": private_key(),
                "snis": ["api.test", "*.api.test"],
                "client_auth": {
                    "ca": ca,
                    "mode": "optional",
                    "subject_header": "x-client-subject",
                    "fingerprint_header": "x-client-fingerprint"
                }
            })]
        );
        assert_eq!(
            store.stored["api"].0.key.as_ref().unwrap().pem(),
            private_key()
        );
    }

    // Without --client-auth the mode is the model's default; without --sni none is sent.
    let other = file(
        &dir,
        "b.pem",
        &certificate(&["b.test"], now - DAY, now + DAY),
    );
    let (result, out) = gatewayctl(
        addr,
        &[
            "-o",
            "json",
            "certificate",
            "create",
            "b",
            "--cert",
            &other,
            "--key",
            &key,
            "--client-ca",
            &client_ca,
        ],
    )
    .await;
    result.unwrap();
    assert!(!shows_key_material(&out), "{out}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["revision"], 2);
    assert_eq!(printed["info"]["sans"], json!(["b.test"]));
    assert!(printed.get("key").is_none());
    let sent = store.lock().unwrap().bodies[1].clone();
    assert_eq!(sent["client_auth"], json!({"ca": ca, "mode": "required"}));
    assert!(sent.get("snis").is_none(), "{sent}");
}

#[tokio::test]
async fn certificate_list_shows_days_left_and_warns_about_expiry() {
    let now = x509::unix_now();
    // An hour past whole days, so that the count cannot change while the test runs.
    let (addr, _store) = start_certificate_api(with_certificates(vec![
        stored_certificate("fresh", &["fresh.test"], now + 200 * DAY + 3600),
        stored_certificate("old", &["old.test"], now - 3 * DAY),
        Certificate {
            snis: vec!["www.soon.test".into()],
            ..stored_certificate(
                "soon",
                &["soon.test", "www.soon.test"],
                now + 10 * DAY + 3600,
            )
        },
    ]))
    .await;
    let not_after = |name: &str, days: i64| {
        let cert = certificate(&[name], now - DAY, now + days * DAY + 3600);
        x509::leaf_info(&cert).unwrap().not_after
    };

    let (result, out, warnings) = gatewayctl_with_warnings(addr, &["certificate", "list"]).await;
    result.unwrap();
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let fresh_after = not_after("fresh.test", 200);
    let soon_after = not_after("soon.test", 10);
    let old_after = x509::leaf_info(&certificate(&["old.test"], now - DAY, now - 3 * DAY))
        .unwrap()
        .not_after;
    assert_eq!(
        rows,
        [
            vec![
                "NAME", "SNIS", "SANS", "KEY", "TYPE", "NOT", "AFTER", "DAYS", "LEFT"
            ],
            vec![
                "fresh",
                "(sans)",
                "fresh.test",
                "ecdsa-p256",
                &fresh_after,
                "200"
            ],
            vec![
                "old",
                "(sans)",
                "old.test",
                "ecdsa-p256",
                &old_after,
                "expired"
            ],
            vec![
                "soon",
                "www.soon.test",
                "soon.test,www.soon.test",
                "ecdsa-p256",
                &soon_after,
                "10"
            ],
        ],
        "{out}"
    );
    assert_eq!(
        warnings,
        format!(
            "warning: certificate \"old\" has expired (not after {old_after})\n\
             warning: certificate \"soon\" expires in 10 days (not after {soon_after})\n"
        )
    );
    assert!(!shows_key_material(&out));

    // Scripts get the API's document on stdout, and the warnings stay on stderr.
    let (result, out, json_warnings) =
        gatewayctl_with_warnings(addr, &["-o", "json", "certificate", "list"]).await;
    result.unwrap();
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed[2]["info"]["not_after"], soon_after.as_str());
    assert_eq!(printed[2]["snis"], json!(["www.soon.test"]));
    assert_eq!(json_warnings, warnings);
    let (result, out, _) =
        gatewayctl_with_warnings(addr, &["-o", "yaml", "certificate", "list"]).await;
    result.unwrap();
    assert!(out.starts_with("- name: fresh\n"), "{out}");
    assert!(!shows_key_material(&out));
}

#[tokio::test]
async fn certificate_get_shows_fingerprint_issuer_and_validity() {
    let now = x509::unix_now();
    let api = stored_certificate("api", &["api.test"], now + 12 * DAY + 3600);
    let info = x509::leaf_info(&api.cert).unwrap();
    let (addr, _store) = start_certificate_api(with_certificates(vec![api])).await;

    let (result, out, warnings) =
        gatewayctl_with_warnings(addr, &["certificate", "get", "api"]).await;
    result.unwrap();
    let field = |name: &str| {
        out.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_owned()
    };
    assert_eq!(field("NAME"), "api");
    assert_eq!(field("SANS"), "api.test");
    assert_eq!(field("ISSUER"), "CN=api.test");
    assert_eq!(field("FINGERPRINT (SHA-256)"), info.fingerprint_sha256);
    assert_eq!(field("NOT BEFORE"), info.not_before);
    assert_eq!(field("NOT AFTER"), info.not_after);
    assert_eq!(field("DAYS LEFT"), "12");
    assert_eq!(field("REVISION"), "1");
    assert_eq!(
        warnings,
        format!(
            "warning: certificate \"api\" expires in 12 days (not after {})\n",
            info.not_after
        )
    );
    assert!(!shows_key_material(&out));

    let (result, out) = gatewayctl(addr, &["-o", "yaml", "certificate", "get", "api"]).await;
    result.unwrap();
    assert!(out.starts_with("name: api\ncert: "), "{out}");
    assert!(
        out.contains(&format!(
            "  fingerprint_sha256: {}\n",
            info.fingerprint_sha256
        )),
        "{out}"
    );

    let (result, out) = gatewayctl(addr, &["certificate", "get", "nope"]).await;
    assert!(out.is_empty());
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(
        err.report(),
        "error: certificate `nope` does not exist (not_found)\n"
    );
}

#[tokio::test]
async fn certificate_replace_is_whole_keeps_the_key_and_honours_if_match() {
    let (addr, store) = start_certificate_api(CertificateStore::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let now = x509::unix_now();
    let chain = certificate(&["api.test", "a.api.test"], now - DAY, now + 90 * DAY);
    let cert = file(&dir, "api.pem", &chain);
    let key = file(&dir, "api.key", &private_key());
    let (result, _) = gatewayctl(
        addr,
        &[
            "certificate",
            "create",
            "api",
            "--cert",
            &cert,
            "--key",
            &key,
            "--tag",
            "edge",
        ],
    )
    .await;
    result.unwrap();

    // Without --key: the stored key stays; the tag left out is gone (a whole replacement).
    let (result, out) = gatewayctl(
        addr,
        &[
            "certificate",
            "replace",
            "api",
            "--cert",
            &cert,
            "--sni",
            "a.api.test",
            "--if-match",
            "1",
        ],
    )
    .await;
    result.unwrap();
    assert_eq!(out, "certificate \"api\" replaced (revision 2)\n");
    {
        let store = store.lock().unwrap();
        assert_eq!(
            store.bodies[1],
            json!({"name": "api", "cert": chain, "snis": ["a.api.test"]})
        );
        let (stored, _) = &store.stored["api"];
        assert_eq!(stored.key.as_ref().unwrap().pem(), private_key());
        assert!(stored.tags.is_empty());
        assert_eq!(stored.snis, ["a.api.test"]);
    }

    // A stale --if-match stores nothing.
    let (result, out) = gatewayctl(
        addr,
        &[
            "certificate",
            "replace",
            "api",
            "--cert",
            &cert,
            "--key",
            &key,
            "--if-match",
            "1",
        ],
    )
    .await;
    assert!(out.is_empty());
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(
        err.report(),
        "error: the latest revision is 2, not 1 (precondition_failed)\n"
    );
    assert_eq!(store.lock().unwrap().stored["api"].1, 2);

    // Replacing what does not exist creates it, and a new certificate needs its key.
    let other = file(
        &dir,
        "web.pem",
        &certificate(&["web.test"], now - DAY, now + DAY),
    );
    let (result, _) = gatewayctl(addr, &["certificate", "replace", "web", "--cert", &other]).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(
        err.report(),
        "error: key: is required (invalid_field, field key)\n\
         \x20 - certificate \"web\": key: is required\n"
    );
    let (result, out) = gatewayctl(
        addr,
        &[
            "certificate",
            "replace",
            "web",
            "--cert",
            &other,
            "--key",
            &key,
        ],
    )
    .await;
    result.unwrap();
    assert_eq!(out, "certificate \"web\" created (revision 3)\n");
}

#[tokio::test]
async fn certificate_delete_and_not_found() {
    let now = x509::unix_now();
    let (addr, store) = start_certificate_api(with_certificates(vec![stored_certificate(
        "api",
        &["api.test"],
        now + 90 * DAY,
    )]))
    .await;
    let (result, _) = gatewayctl(addr, &["certificate", "delete", "api", "--if-match", "0"]).await;
    assert_eq!(
        result.unwrap_err().api_error().unwrap().code,
        "precondition_failed"
    );
    assert!(store.lock().unwrap().stored.contains_key("api"));

    let (result, out) = gatewayctl(addr, &["certificate", "delete", "api"]).await;
    result.unwrap();
    assert_eq!(out, "certificate \"api\" deleted (revision 2)\n");
    assert!(store.lock().unwrap().stored.is_empty());

    let (result, out) = gatewayctl(addr, &["-o", "json", "certificate", "delete", "api"]).await;
    assert!(out.is_empty());
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(
        err.report(),
        "error: certificate `api` does not exist (not_found)\n"
    );
}

#[tokio::test]
async fn certificate_refusals_are_reported_like_every_other() {
    let now = x509::unix_now();
    let (addr, store) = start_certificate_api(with_certificates(vec![stored_certificate(
        "api",
        &["api.test"],
        now + 90 * DAY,
    )]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key = file(&dir, "k.pem", &private_key());
    let same_name = file(
        &dir,
        "other.pem",
        &certificate(&["api.test", "b.test"], now - DAY, now + DAY),
    );

    // 409: a server name another certificate serves.
    let (result, out) = gatewayctl(
        addr,
        &[
            "certificate",
            "create",
            "b",
            "--cert",
            &same_name,
            "--key",
            &key,
        ],
    )
    .await;
    assert!(out.is_empty());
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(err.api_error().unwrap().status, 409);
    assert_eq!(
        err.report(),
        "error: snis: `api.test` is already served by certificate `api` (conflict, field snis)\n\
         \x20 - certificate \"b\": snis: `api.test` is already served by certificate `api`\n"
    );
    // 409: the name is taken.
    let (result, _) = gatewayctl(
        addr,
        &[
            "certificate",
            "create",
            "api",
            "--cert",
            &same_name,
            "--key",
            &key,
        ],
    )
    .await;
    assert_eq!(
        result.unwrap_err().report(),
        "error: certificate `api` already exists (already_exists, field name)\n"
    );

    // A file that is not what its flag takes never reaches the API.
    let sent = store.lock().unwrap().bodies.len();
    let (result, _) = gatewayctl(
        addr,
        &["certificate", "create", "c", "--cert", &key, "--key", &key],
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert_eq!(
        err.report(),
        format!("error: --cert {key} holds no `-----BEGIN CERTIFICATE-----` block\n")
    );
    assert_eq!(store.lock().unwrap().bodies.len(), sent);

    // 503: a control plane without a key-encryption key cannot store keys.
    let (addr, _store) = start_certificate_api(CertificateStore {
        no_keyring: true,
        ..CertificateStore::default()
    })
    .await;
    let fresh = file(
        &dir,
        "c.pem",
        &certificate(&["c.test"], now - DAY, now + DAY),
    );
    let (result, _) = gatewayctl(
        addr,
        &[
            "certificate",
            "create",
            "c",
            "--cert",
            &fresh,
            "--key",
            &key,
        ],
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert_eq!(err.api_error().unwrap().status, 503);
    assert_eq!(
        err.report(),
        "error: the control plane has no key-encryption key, so it cannot store or read private \
         keys; start it with --key-encryption-key-file (GATEWAY_KEY_ENCRYPTION_KEY_FILE) \
         (no_key_encryption_key, field key)\n"
    );
}
