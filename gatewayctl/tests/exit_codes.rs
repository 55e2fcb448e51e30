//! Runs the built binary to check the exit codes scripts rely on, and that failures go to stderr
//! while stdout stays empty.

use std::net::TcpListener;
use std::process::{Command, Output};

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
