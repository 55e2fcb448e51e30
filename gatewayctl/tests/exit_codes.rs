//! Runs the built binary to check the exit codes scripts rely on, and that failures go to stderr
//! while stdout stays empty.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output, Stdio};

use axum::Router;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::routing::put;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

fn gatewayctl(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_gatewayctl"))
        .args(args)
        .env_remove("GATEWAYCTL_ADMIN_URL")
        .env_remove("GATEWAYCTL_TOKEN")
        .env_remove("GATEWAYCTL_OUTPUT")
        .output()
    {
        Ok(output) => output,
        Err(error) => panic!("cannot run gatewayctl: {error}"),
    }
}

/// An admin URL where nothing listens: a port that was free a moment ago.
fn closed_url() -> String {
    let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(error) => panic!("cannot bind: {error}"),
    };
    format!("http://127.0.0.1:{port}")
}

#[test]
fn help_documents_the_exit_codes() {
    let output = gatewayctl(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("Exit codes:"), "{help}");
    assert!(
        help.contains("3  the admin API could not be reached"),
        "{help}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["upstream", "create", "api", "-f", "up.yaml"][..],
        &["upstream", "create", "api", "--target", "no-port"],
        &["route", "create", "web"],
        &["-o", "xml", "status"],
        &["upstream", "create", "-f", "/nonexistent/up.yaml"],
        &["certificate", "create", "api", "--cert", "c.pem"],
        &[
            "certificate",
            "create",
            "api",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--client-auth",
            "optional",
        ],
        &[
            "certificate",
            "create",
            "api",
            "--cert",
            "/nonexistent/c.pem",
            "--key",
            "/nonexistent/k.pem",
        ],
    ] {
        let output = gatewayctl(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn unreachable_api_exits_3_and_names_the_url() {
    let url = closed_url();
    let output = gatewayctl(&["--admin-url", &url, "status"]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: could not reach the admin API at {url}/v1/nodes: "
        )),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn diff_help_documents_its_own_exit_codes() {
    let output = gatewayctl(&["diff", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("1  applying the file would change something"),
        "{help}"
    );
    assert!(help.contains("2  any error"), "{help}");
    let help = String::from_utf8_lossy(&gatewayctl(&["--help"]).stdout).into_owned();
    for command in ["apply", "diff", "export", "rollback", "revisions"] {
        assert!(help.contains(command), "{command}: {help}");
    }
}

#[test]
fn every_diff_failure_exits_2() {
    let url = closed_url();
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("cannot make a directory: {error}"),
    };
    let file = dir.path().join("gw.yaml");
    if let Err(error) = std::fs::write(&file, "upstreams: []\n") {
        panic!("cannot write {}: {error}", file.display());
    }
    let file = file.to_string_lossy().into_owned();
    for args in [
        &["--admin-url", &url, "diff", "-f", &file][..],
        &["diff", "-f", "/nonexistent/gw.yaml"],
        &["diff"],
    ] {
        let output = gatewayctl(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

/// A `PUT /v1/config` that reports one change when the body has any route, none otherwise.
async fn config_api() -> SocketAddr {
    async fn put_config(RawQuery(query): RawQuery, body: Bytes) -> axum::Json<Value> {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let routes = body["routes"].as_array().map_or(0, Vec::len);
        let changes: Vec<Value> = (0..routes.min(1))
            .map(|_| {
                json!({"kind": "route", "name": "web", "op": "create", "before": null,
                            "after": body["routes"][0]})
            })
            .collect();
        let dry_run = query.as_deref() == Some("dry_run=true");
        let revision = if dry_run || changes.is_empty() { 4 } else { 5 };
        axum::Json(json!({"dry_run": dry_run, "revision": revision,
                          "changed": !changes.is_empty(), "changes": changes}))
    }
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => panic!("cannot bind: {error}"),
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => panic!("no local address: {error}"),
    };
    let app = Router::new().route("/v1/config", put(put_config));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Runs gatewayctl with `stdin` as its standard input.
async fn gatewayctl_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = match tokio::process::Command::new(env!("CARGO_BIN_EXE_gatewayctl"))
        .args(args)
        .env_remove("GATEWAYCTL_TOKEN")
        .env_remove("GATEWAYCTL_OUTPUT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => panic!("cannot run gatewayctl: {error}"),
    };
    // The pipe closes when `input` goes out of scope, which ends gatewayctl's input.
    if let Some(mut input) = child.stdin.take()
        && let Err(error) = input.write_all(stdin.as_bytes()).await
    {
        panic!("cannot write to gatewayctl: {error}");
    }
    match child.wait_with_output().await {
        Ok(output) => output,
        Err(error) => panic!("gatewayctl did not finish: {error}"),
    }
}

#[tokio::test]
async fn diff_and_apply_read_standard_input() {
    let url = format!("http://{}", config_api().await);
    let with_route = "routes: [{name: web, backends: [{upstream: api}]}]\n";

    let output = gatewayctl_with_stdin(&["--admin-url", &url, "diff", "-f", "-"], with_route).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "+ route \"web\"\n");

    let output =
        gatewayctl_with_stdin(&["--admin-url", &url, "diff", "-f", "-"], "routes: []\n").await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "no changes\n");

    let output =
        gatewayctl_with_stdin(&["--admin-url", &url, "apply", "-f", "-"], with_route).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "+ route \"web\"\napplied: revision 5\n"
    );
}

/// A `GET /v1/certificates` answering one expired certificate, described as the admin API does.
async fn certificate_api() -> SocketAddr {
    async fn list() -> axum::Json<Value> {
        axum::Json(json!({"items": [{
            "name": "old", "cert": "-----BEGIN CERTIFICATE-----\n", "snis": ["old.test"],
            "info": {"key_type": "rsa-2048", "fingerprint_sha256": "00", "subject": "CN=old.test",
                     "issuer": "CN=old.test", "sans": ["old.test"],
                     "not_before": "2001-01-01T00:00:00Z", "not_after": "2002-01-01T00:00:00Z",
                     "not_after_unix": 1_009_843_200},
            "revision": 1}], "next_cursor": null}))
    }
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => panic!("cannot bind: {error}"),
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => panic!("no local address: {error}"),
    };
    let app = Router::new().route("/v1/certificates", axum::routing::get(list));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn expiry_warnings_go_to_stderr_and_leave_the_exit_code_alone() {
    let url = format!("http://{}", certificate_api().await);
    for format in ["table", "json"] {
        let output = gatewayctl_with_stdin(
            &["--admin-url", &url, "-o", format, "certificate", "list"],
            "",
        )
        .await;
        assert_eq!(output.status.code(), Some(0), "{format}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("warning"), "{format}: {stdout}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "warning: certificate \"old\" has expired (not after 2002-01-01T00:00:00Z)\n",
            "{format}"
        );
        if format == "table" {
            assert!(
                stdout
                    .lines()
                    .nth(1)
                    .is_some_and(|row| row.ends_with("expired")),
                "{stdout}"
            );
        }
    }
}
