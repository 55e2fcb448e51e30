//! The gateway's processes as the tests see them: a control plane and its workers, started from
//! the real binaries on loopback ports the operating system picks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::binaries::binary;
use crate::process::Process;

const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ControlPlane {
    pub process: Process,
    pub admin_addr: SocketAddr,
    pub sync_addr: SocketAddr,
    database_url: Option<String>,
    cwd: Option<PathBuf>,
}

impl ControlPlane {
    /// Starts a control plane on `database_url` (`None`: its embedded SQLite default, created in
    /// `cwd`).
    pub fn start(database_url: Option<&str>, cwd: Option<&Path>) -> ControlPlane {
        Self::start_on(database_url, cwd, "127.0.0.1:0", "127.0.0.1:0")
    }

    fn start_on(
        database_url: Option<&str>,
        cwd: Option<&Path>,
        admin: &str,
        sync: &str,
    ) -> ControlPlane {
        let mut args = vec![
            "--admin-listen".to_owned(),
            admin.to_owned(),
            "--sync-listen".to_owned(),
            sync.to_owned(),
        ];
        if let Some(url) = database_url {
            args.extend(["--database-url".to_owned(), url.to_owned()]);
        }
        let mut process = Process::spawn("control-plane", &binary("control-plane"), &args, cwd);
        let admin_addr = parse(&process.wait_for("admin API listening on ", START_TIMEOUT));
        let sync_addr = parse(&process.wait_for("config sync listening on ", START_TIMEOUT));
        ControlPlane {
            process,
            admin_addr,
            sync_addr,
            database_url: database_url.map(str::to_owned),
            cwd: cwd.map(Path::to_path_buf),
        }
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    pub fn sync_url(&self) -> String {
        format!("http://{}", self.sync_addr)
    }

    /// Kills the process without warning (SIGKILL).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the control plane again on the same addresses and database.
    pub fn restart(&mut self) {
        self.process.kill();
        let admin = self.admin_addr.to_string();
        let sync = self.sync_addr.to_string();
        let next = ControlPlane::start_on(
            self.database_url.as_deref(),
            self.cwd.as_deref(),
            &admin,
            &sync,
        );
        *self = next;
    }
}

pub struct Worker {
    pub process: Process,
    pub node_id: String,
    pub proxy_addr: SocketAddr,
    pub status_addr: SocketAddr,
}

impl Worker {
    pub fn start(control_plane_url: &str, node_id: &str) -> Worker {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--status-listen",
            "127.0.0.1:0",
            "--control-plane",
            control_plane_url,
            "--node-id",
            node_id,
            "--worker-threads",
            "2",
        ]
        .map(str::to_owned);
        let mut process = Process::spawn(node_id, &binary("data-plane"), &args, None);
        let proxy_addr = parse(&process.wait_for("proxy listening on ", START_TIMEOUT));
        let status_addr = parse(&process.wait_for("status listening on ", START_TIMEOUT));
        Worker {
            process,
            node_id: node_id.to_owned(),
            proxy_addr,
            status_addr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy_addr, path)
    }

    pub fn status_url(&self, path: &str) -> String {
        format!("http://{}{}", self.status_addr, path)
    }
}

fn parse(address: &str) -> SocketAddr {
    address
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|e| panic!("bad listen address {address:?} in log: {e}"))
}

/// What a finished `gatewayctl` run printed.
#[derive(Debug)]
pub struct CtlOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `gatewayctl --admin-url <admin_url> <args>` to completion.
pub async fn gatewayctl(admin_url: &str, args: &[&str]) -> CtlOutput {
    let output = tokio::process::Command::new(binary("gatewayctl"))
        .arg("--admin-url")
        .arg(admin_url)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run gatewayctl");
    let result = CtlOutput {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    println!(
        "$ gatewayctl {}\n{}{}exit {}",
        args.join(" "),
        result.stdout,
        result.stderr,
        result.code
    );
    result
}
