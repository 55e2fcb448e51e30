//! The admin API locked down: a control plane started with a first admin token and TLS, tokens
//! of each role made with gatewayctl through a named context, each role allowed and refused as
//! documented, expiry and revocation, the audit log, the database holding no secret, and the
//! settings a public admin address needs.

use std::time::Duration;

use gateway_tests::binaries::binary;
use gateway_tests::certs::TestPki;
use gateway_tests::eventually;
use gateway_tests::http::{Reply, send};
use gateway_tests::process::Process;
use gateway_tests::topology::{ControlPlane, ControlPlaneOptions, gatewayctl_with};
use serde_json::{Value, json};

const FIRST_TOKEN: &str = "first-admin-token-3f1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c";

fn https_client(pki: &TestPki) -> reqwest::Client {
    let pem = std::fs::read(&pki.ca_cert).unwrap();
    let ca = reqwest::Certificate::from_pem(&pem).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .tls_certs_only([ca])
        .build()
        .unwrap()
}

struct Caller<'a> {
    client: &'a reqwest::Client,
    base: String,
}

impl Caller<'_> {
    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_expiry_audit_and_gatewayctl_contexts_over_tls() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("gateway.db");
    let token_file = dir.path().join("first-token");
    std::fs::write(&token_file, format!("{FIRST_TOKEN}\n")).unwrap();
    let mut control_plane = ControlPlane::start_with(ControlPlaneOptions {
        database_url: Some(format!("sqlite://{}?mode=rwc", database.display())),
        cwd: None,
        extra_args: [
            "--admin-token-file",
            token_file.to_str().unwrap(),
            "--admin-tls-cert",
            pki.server_cert.to_str().unwrap(),
            "--admin-tls-key",
            pki.server_key.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec(),
    });
    let url = format!("https://127.0.0.1:{}", control_plane.admin_addr.port());
    let client = https_client(&pki);
    let api = Caller {
        client: &client,
        base: url.clone(),
    };

    // The probes are open; everything else needs a token.
    assert_eq!(api.call(None, "GET", "/healthz", None).await.status, 200);
    let refused = api.call(None, "GET", "/v1/routes", None).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "unauthorized");
    let first = api.call(Some(FIRST_TOKEN), "GET", "/v1/routes", None).await;
    assert_eq!(first.status, 200, "{}", first.text);

    // A context that reads the token from a command, with the CA file.
    let contexts = dir.path().join("gatewayctl.yaml");
    let contexts = contexts.to_str().unwrap();
    let token_command = format!("cat {}", token_file.display());
    let set = gatewayctl_with(&[
        "--config",
        contexts,
        "context",
        "set",
        "e2e",
        "--url",
        &url,
        "--token-command",
        &token_command,
        "--set-ca-file",
        pki.ca_cert.to_str().unwrap(),
    ])
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let listed = gatewayctl_with(&["--config", contexts, "context", "list"]).await;
    assert!(
        listed.stdout.contains("*")
            && listed.stdout.contains("e2e")
            && listed.stdout.contains(&url),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains(FIRST_TOKEN));
    let create = |name: &'static str, role: &'static str, expires: Option<&'static str>| {
        let contexts = contexts.to_owned();
        async move {
            let mut args = vec![
                "--config", &contexts, "-o", "json", "token", "create", "--name", name, "--role",
                role,
            ];
            if let Some(expires) = expires {
                args.extend(["--expires", expires]);
            }
            let created = gatewayctl_with(&args).await;
            assert_eq!(created.code, 0, "{}", created.stderr);
            let created: Value = serde_json::from_str(&created.stdout).unwrap();
            created["token"].as_str().unwrap().to_owned()
        }
    };
    let editor = create("ci", "editor", None).await;
    let viewer = create("dash", "viewer", None).await;
    let brief = create("brief", "viewer", Some("2s")).await;

    // An editor writes, and the revisions name it whatever the actor header says.
    let upstream = json!({"name": "api", "targets": [{"address": "127.0.0.1:9"}]});
    let written = api
        .call(Some(&editor), "POST", "/v1/upstreams", Some(upstream))
        .await;
    assert_eq!(written.status, 201, "{}", written.text);
    let route =
        json!({"name": "r", "paths": [{"prefix": "/r"}], "backends": [{"upstream": "api"}]});
    let request = client
        .post(format!("{url}/v1/routes"))
        .bearer_auth(&editor)
        .header("x-gateway-actor", "someone-else")
        .json(&route);
    assert_eq!(send(request).await.unwrap().status, 201);
    let revisions = api.call(Some(&viewer), "GET", "/v1/revisions", None).await;
    assert_eq!(revisions.status, 200, "{}", revisions.text);
    let actors: Vec<&str> = revisions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["ci", "ci"], "{}", revisions.text);
    control_plane
        .process
        .wait_for("config changed", Duration::from_secs(10));
    let log = control_plane.process.log();
    let audit: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("config changed"))
        .collect();
    assert_eq!(audit.len(), 2, "{log}");
    for line in &audit {
        assert!(
            line.contains("actor=ci") && line.contains("client=127.0.0.1"),
            "{line}"
        );
    }
    assert!(audit[1].contains("created route r"), "{}", audit[1]);

    // A viewer reads and may not write; an editor may not manage tokens.
    let denied = api
        .call(Some(&viewer), "DELETE", "/v1/routes/r", None)
        .await;
    assert_eq!(denied.status, 403, "{}", denied.text);
    assert_eq!(denied.body["error"]["code"], "forbidden");
    let denied = api.call(Some(&editor), "GET", "/v1/tokens", None).await;
    assert_eq!(denied.status, 403, "{}", denied.text);
    let status = gatewayctl_with(&["--config", contexts, "--token", &viewer, "status"]).await;
    assert_eq!(status.code, 0, "{}", status.stderr);

    // The short-lived token stops working by itself.
    eventually("the 2 s token expires", Duration::from_secs(20), || async {
        let reply = api.call(Some(&brief), "GET", "/v1/routes", None).await;
        if reply.status == 401 {
            Ok(reply)
        } else {
            Err(reply.text)
        }
    })
    .await;
    let tokens = gatewayctl_with(&["--config", contexts, "token", "list"]).await;
    assert!(
        tokens.stdout.contains("brief") && tokens.stdout.contains("(expired)"),
        "{}",
        tokens.stdout
    );

    // Revoked: refused from the next request on.
    let revoked = gatewayctl_with(&["--config", contexts, "token", "revoke", "ci"]).await;
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    let gone = api.call(Some(&editor), "GET", "/v1/routes", None).await;
    assert_eq!(gone.status, 401, "{}", gone.text);

    // Guessing, from an address of its own: after 10 failures a minute it is told to wait.
    let guesser_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_cert).unwrap()).unwrap(),
        ])
        .build()
        .unwrap();
    let guesser = Caller {
        client: &guesser_client,
        base: url.clone(),
    };
    let mut statuses = Vec::new();
    for i in 0..12 {
        let guess = format!("gwt_guess{i}");
        statuses.push(guesser.call(Some(&guess), "GET", "/v1/routes", None).await);
    }
    assert!(statuses[..10].iter().all(|r| r.status == 401));
    let limited = &statuses[11];
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_eq!(limited.body["error"]["code"], "too_many_failed_attempts");
    assert!(
        limited.headers.contains_key("retry-after"),
        "{:?}",
        limited.headers
    );
    // A token this replica knows still works from that address.
    assert_eq!(
        guesser
            .call(Some(&viewer), "GET", "/v1/routes", None)
            .await
            .status,
        200
    );
    assert!(
        control_plane
            .process
            .log()
            .contains("admin API authentication failed"),
        "failures are logged"
    );

    // The database holds hashes, never a secret.
    control_plane.process.kill();
    let mut stored = std::fs::read(&database).unwrap();
    for suffix in ["-wal", "-shm"] {
        let side = dir.path().join(format!("gateway.db{suffix}"));
        stored.extend(std::fs::read(side).unwrap_or_default());
    }
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("admin_tokens"));
    for secret in [FIRST_TOKEN, &editor, &viewer, &brief] {
        assert!(!stored.contains(secret), "a secret is stored in plain text");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_admin_address_needs_tls_and_a_token() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let start = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "--database-url",
            &database,
            "--admin-listen",
            "0.0.0.0:0",
            "--sync-listen",
            "127.0.0.1:0",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Process::spawn("control-plane", &binary("control-plane"), &args, None)
    };
    let mut plain = start(&[]);
    let status = plain.exited(Duration::from_secs(30)).await;
    assert!(!status.success());
    assert!(plain.log().contains("--admin-tls-cert"), "{}", plain.log());

    let tls = [
        "--admin-tls-cert",
        pki.server_cert.to_str().unwrap(),
        "--admin-tls-key",
        pki.server_key.to_str().unwrap(),
    ];
    let mut no_token = start(&tls);
    let status = no_token.exited(Duration::from_secs(30)).await;
    assert!(!status.success());
    assert!(
        no_token.log().contains("has no tokens"),
        "{}",
        no_token.log()
    );

    let weak = dir.path().join("weak");
    std::fs::write(&weak, "secret\n").unwrap();
    let mut args = tls.to_vec();
    args.extend(["--admin-token-file", weak.to_str().unwrap()]);
    let mut weak_token = start(&args);
    let status = weak_token.exited(Duration::from_secs(30)).await;
    assert!(!status.success());
    assert!(
        weak_token.log().contains("at least 32"),
        "{}",
        weak_token.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayctl_prints_completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_gatewayctl()"),
        ("zsh", "#compdef gatewayctl"),
        ("fish", "complete -c gatewayctl"),
    ] {
        let script = gatewayctl_with(&["completion", shell]).await;
        assert_eq!(script.code, 0, "{shell}: {}", script.stderr);
        assert!(script.stdout.contains(marker), "{shell}");
        assert!(
            script.stdout.contains("token"),
            "{shell}: the token commands"
        );
    }
    if std::process::Command::new("bash")
        .arg("--version")
        .output()
        .is_ok()
    {
        let script = gatewayctl_with(&["completion", "bash"]).await;
        let checked = std::process::Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(&script.stdout)
            .status()
            .unwrap();
        assert!(
            checked.success(),
            "bash does not parse the completion script"
        );
    }
}
