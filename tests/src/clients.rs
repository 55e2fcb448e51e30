//! Real command-line clients the TLS tests drive: curl, `openssl s_client` and h2load, each run to
//! completion with what it printed kept for the assertion messages.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// What a finished client run printed.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn succeeded(&self) -> bool {
        self.code == 0
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `program args`, giving up after `within` (the run then counts as failed).
pub async fn run(program: &str, args: &[&str], within: Duration) -> Run {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(within, child).await {
        Ok(Ok(output)) => Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
        Ok(Err(error)) => panic!("cannot run {program}: {error}"),
        Err(_) => Run {
            code: -1,
            stdout: String::new(),
            stderr: format!("{program} did not finish within {within:?}"),
        },
    }
}

/// `curl` for one request to `https://<host>:<port><path>` sent to `addr`, trusting `ca`:
/// `-sS`, `--resolve`, a 10 s limit, then `args`. With `-w`, what it writes comes last on
/// stdout.
pub async fn curl_https(addr: SocketAddr, host: &str, path: &str, ca: &Path, args: &[&str]) -> Run {
    let resolve = format!("{host}:{}:{}", addr.port(), addr.ip());
    let url = format!("https://{host}:{}{path}", addr.port());
    let ca = ca.display().to_string();
    let mut all = vec![
        "-sS",
        "--max-time",
        "10",
        "--resolve",
        &resolve,
        "--cacert",
        &ca,
    ];
    all.extend_from_slice(args);
    all.push(&url);
    run("curl", &all, Duration::from_secs(20)).await
}

/// One `openssl s_client` handshake with `addr`, sending `server_name` as SNI (None: none),
/// verifying against `ca`; `args` add options (a protocol version, a client certificate).
pub async fn s_client(
    addr: SocketAddr,
    server_name: Option<&str>,
    ca: &Path,
    args: &[&str],
) -> Handshake {
    let connect = addr.to_string();
    let ca = ca.display().to_string();
    let mut all = vec!["s_client", "-connect", &connect, "-CAfile", &ca];
    match server_name {
        Some(name) => all.extend(["-servername", name]),
        None => all.push("-noservername"),
    }
    all.extend_from_slice(args);
    Handshake {
        run: run("openssl", &all, Duration::from_secs(20)).await,
    }
}

/// What `openssl s_client` saw of a handshake.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub run: Run,
}

impl Handshake {
    /// The common name of the certificate the server presented, if one was.
    pub fn subject_common_name(&self) -> Option<String> {
        let line = self
            .run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("subject="))?;
        line.split(',')
            .find_map(|part| {
                part.trim()
                    .strip_prefix("CN = ")
                    .or(part.trim().strip_prefix("CN="))
            })
            .map(str::to_owned)
    }

    /// The protocol version agreed (`TLSv1.3`), if the handshake finished.
    pub fn protocol(&self) -> Option<String> {
        self.run.stdout.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("New, ")?;
            Some(rest.split(',').next()?.trim().to_owned())
        })
    }

    /// Whether the presented chain verified against the CA.
    pub fn verified(&self) -> bool {
        self.run.stdout.contains("Verify return code: 0 (ok)")
    }

    /// The protocol ALPN agreed, if any.
    pub fn alpn(&self) -> Option<String> {
        self.run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("ALPN protocol: "))
            .map(str::to_owned)
    }
}

/// What h2load reported of a run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub run: Run,
    pub succeeded: u64,
    pub failed: u64,
    pub errored: u64,
    pub status_2xx: u64,
}

/// Runs h2load with `args` and reads its summary.
pub async fn h2load(args: &[&str]) -> LoadReport {
    let run = run("h2load", args, Duration::from_secs(120)).await;
    let number_before = |text: &str, word: &str| -> u64 {
        text.split(',')
            .find_map(|part| {
                let part = part.trim();
                let (number, rest) = part.split_once(' ')?;
                (rest.trim() == word).then(|| number.parse().ok()).flatten()
            })
            .unwrap_or(0)
    };
    let requests = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("requests: "))
        .unwrap_or("")
        .to_owned();
    let codes = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("status codes: "))
        .unwrap_or("")
        .to_owned();
    LoadReport {
        succeeded: number_before(&requests, "succeeded"),
        failed: number_before(&requests, "failed"),
        errored: number_before(&requests, "errored"),
        status_2xx: number_before(&codes, "2xx"),
        run,
    }
}
