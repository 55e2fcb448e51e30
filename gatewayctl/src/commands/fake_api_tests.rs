//! Commands run against a small in-process imitation of the admin API on 127.0.0.1:0, covering
//! the whole path: flags → request body → HTTP → response → printed output and exit code.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use serde_json::{Value, json};

use super::{CommandError, exit, run};
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

async fn delete_upstream(Path(name): Path<String>) -> Response {
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

async fn gatewayctl(addr: SocketAddr, args: &[&str]) -> (Result<(), CommandError>, String) {
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
