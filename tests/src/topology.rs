//! The gateway's processes as the tests see them: a control plane and its workers, started from
//! the real binaries on loopback ports the operating system picks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::binaries::binary;
use crate::process::Process;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start a control plane; `Default` is the embedded SQLite default in the current
/// directory.
#[derive(Debug, Clone, Default)]
pub struct ControlPlaneOptions {
    pub database_url: Option<String>,
    pub cwd: Option<PathBuf>,
    pub extra_args: Vec<String>,
}

pub struct ControlPlane {
    pub process: Process,
    pub admin_addr: SocketAddr,
    pub sync_addr: SocketAddr,
    options: ControlPlaneOptions,
}

impl ControlPlane {
    /// Starts a control plane on `database_url` (`None`: its embedded SQLite default, created in
    /// `cwd`).
    pub fn start(database_url: Option<&str>, cwd: Option<&Path>) -> ControlPlane {
        Self::start_with(ControlPlaneOptions {
            database_url: database_url.map(str::to_owned),
            cwd: cwd.map(Path::to_path_buf),
            extra_args: Vec::new(),
        })
    }

    pub fn start_with(options: ControlPlaneOptions) -> ControlPlane {
        Self::start_on(options, "127.0.0.1:0", "127.0.0.1:0")
    }

    fn start_on(options: ControlPlaneOptions, admin: &str, sync: &str) -> ControlPlane {
        let mut args = vec![
            "--admin-listen".to_owned(),
            admin.to_owned(),
            "--sync-listen".to_owned(),
            sync.to_owned(),
        ];
        if let Some(url) = &options.database_url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        args.extend(options.extra_args.iter().cloned());
        let mut process = Process::spawn(
            "control-plane",
            &binary("control-plane"),
            &args,
            options.cwd.as_deref(),
        );
        let admin_addr = parse(&process.wait_for("admin API listening on ", START_TIMEOUT));
        let sync_addr = parse(&process.wait_for("config sync listening on ", START_TIMEOUT));
        ControlPlane {
            process,
            admin_addr,
            sync_addr,
            options,
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
        *self = ControlPlane::start_on(self.options.clone(), &admin, &sync);
    }
}

/// How to start a worker. Every worker gets a config cache file of its own, in a directory that
/// lives as long as the `Worker`, so restarts find it and tests never share one.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub node_id: String,
    pub control_planes: Vec<String>,
    pub extra_args: Vec<String>,
}

impl WorkerOptions {
    pub fn new(node_id: &str, control_plane_url: &str) -> WorkerOptions {
        WorkerOptions {
            node_id: node_id.to_owned(),
            control_planes: vec![control_plane_url.to_owned()],
            extra_args: Vec::new(),
        }
    }
}

pub struct Worker {
    pub process: Process,
    pub node_id: String,
    pub proxy_addr: SocketAddr,
    /// The TLS listener's address, when the worker was started with `--tls-listen`.
    pub tls_addr: Option<SocketAddr>,
    pub status_addr: SocketAddr,
    pub cache_file: PathBuf,
    options: WorkerOptions,
    cache_dir: std::sync::Arc<tempfile::TempDir>,
}

impl Worker {
    pub fn start(control_plane_url: &str, node_id: &str) -> Worker {
        Self::start_with(WorkerOptions::new(node_id, control_plane_url))
    }

    pub fn start_with(options: WorkerOptions) -> Worker {
        let cache_dir = std::sync::Arc::new(tempfile::tempdir().expect("worker cache directory"));
        Self::start_on(options, cache_dir, "127.0.0.1:0", "127.0.0.1:0")
    }

    fn start_on(
        options: WorkerOptions,
        cache_dir: std::sync::Arc<tempfile::TempDir>,
        listen: &str,
        status: &str,
    ) -> Worker {
        let cache_file = cache_dir.path().join("config.pb");
        let mut args = vec![
            "--listen".to_owned(),
            listen.to_owned(),
            "--status-listen".to_owned(),
            status.to_owned(),
            "--control-plane".to_owned(),
            options.control_planes.join(","),
            "--node-id".to_owned(),
            options.node_id.clone(),
            "--worker-threads".to_owned(),
            "2".to_owned(),
            "--cache-file".to_owned(),
            cache_file.display().to_string(),
        ];
        args.extend(options.extra_args.iter().cloned());
        let mut process = Process::spawn(&options.node_id, &binary("data-plane"), &args, None);
        let proxy_addr = parse(&process.wait_for("proxy listening on ", START_TIMEOUT));
        let tls_addr = options
            .extra_args
            .iter()
            .any(|a| a == "--tls-listen")
            .then(|| parse(&process.wait_for("proxy TLS listening on ", START_TIMEOUT)));
        let status_addr = parse(&process.wait_for("status listening on ", START_TIMEOUT));
        Worker {
            process,
            node_id: options.node_id.clone(),
            proxy_addr,
            tls_addr,
            status_addr,
            cache_file,
            options,
            cache_dir,
        }
    }

    /// Kills the worker and starts it again with the same identity, addresses and cache file.
    pub fn restart(&mut self) {
        self.process.kill();
        self.start_again();
    }

    /// Stops the worker as an orchestrator would (SIGTERM, then waits for it to exit by itself)
    /// and starts it again with the same identity, addresses and cache file.
    pub fn stop_and_start(&mut self) {
        self.process.signal(crate::process::Signal::SIGTERM);
        let status = self.process.wait_exit(START_TIMEOUT);
        assert!(status.success(), "{} exited with {status}", self.node_id);
        self.start_again();
    }

    fn start_again(&mut self) {
        let listen = self.proxy_addr.to_string();
        let status = self.status_addr.to_string();
        let mut options = self.options.clone();
        // The TLS listener comes back on its port too, not on a new one.
        if let Some(tls) = self.tls_addr
            && let Some(at) = options.extra_args.iter().position(|a| a == "--tls-listen")
            && let Some(value) = options.extra_args.get_mut(at + 1)
        {
            *value = tls.to_string();
        }
        *self = Worker::start_on(options, self.cache_dir.clone(), &listen, &status);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy_addr, path)
    }

    /// An `https://` URL of the TLS listener for `host` (resolve it to the listener's address).
    pub fn https_url(&self, host: &str, path: &str) -> String {
        let tls = self.tls_addr.expect("the worker has a TLS listener");
        format!("https://{host}:{}{path}", tls.port())
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
    let mut all = vec!["--admin-url", admin_url];
    all.extend_from_slice(args);
    gatewayctl_with(&all).await
}

/// Runs `gatewayctl <args>` to completion, with no admin URL unless `args` give one (and no
/// `GATEWAYCTL_*` settings from the environment).
pub async fn gatewayctl_with(args: &[&str]) -> CtlOutput {
    let mut command = tokio::process::Command::new(binary("gatewayctl"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GATEWAYCTL_") {
            command.env_remove(name);
        }
    }
    let output = command
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
