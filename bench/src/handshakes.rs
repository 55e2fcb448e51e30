//! TLS handshakes per second: a load generator that keeps N connections busy, each opening a
//! TCP connection, completing a TLS handshake, sending one small GET, reading the answer and
//! closing, over and over for a fixed time; either with no session kept (every handshake in
//! full) or with one config whose tickets all connections share (every handshake resumed after
//! the first ones). The GET is there so that TLS 1.3's tickets, which arrive after the
//! handshake, are read before the connection closes.
//!
//! The generator runs in a process of its own (this binary's hidden `handshake-load`
//! subcommand) under `taskset`, on the load core as wrk is; it says when its warm-up is over
//! (the proxy's CPU time counts from then on) and prints what it counted as one JSON line,
//! which [`run`] reads. [`check`] makes sure beforehand that a
//! proxy serves the benchmark's certificate and resumes sessions.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::certs::{Certificate, SERVER_NAME};
use crate::procfs;
use crate::report::{Run, Unit};
use crate::tls_client::{self, Sessions, TlsClient, Trust};

/// Which handshakes the generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// No session remembered: a full handshake every time.
    Full,
    /// Sessions resumed from TLS 1.3 tickets.
    Resumed,
}

impl Mode {
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Full => "full handshakes (no session kept by the client)",
            Mode::Resumed => "resumed handshakes (TLS 1.3 session tickets)",
        }
    }

    fn unit(self) -> Unit {
        match self {
            Mode::Full => Unit::FullHandshake,
            Mode::Resumed => Unit::ResumedHandshake,
        }
    }
}

/// The request each connection sends once.
const REQUEST: &[u8] = b"GET /bench/hello HTTP/1.1\r\nhost: bench.example.test\r\n\r\n";

/// Handshakes before the measured time: they fill the ticket pool and the proxies' upstream
/// pools, and are not counted.
const WARM_UP: Duration = Duration::from_secs(1);

/// One attempt that takes longer has failed: a connection stuck on a dead proxy must not hold
/// its loop past the end of the run.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The hidden subcommand's arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// `host:port` of the proxy's TLS listener.
    #[arg(long)]
    address: SocketAddr,
    /// Connections kept busy at once.
    #[arg(long)]
    connections: usize,
    /// Seconds of measured load, after one second of warm-up.
    #[arg(long)]
    duration: u64,
    #[arg(long, value_enum)]
    mode: Mode,
}

/// What the generator counted, as it prints it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counts {
    handshakes: u64,
    resumed: u64,
    failures: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
    first_failure: Option<String>,
}

/// What the generator prints when its warm-up is over and the measured time begins.
const MEASURING: &str = "measuring";

/// What a run of the generator measured.
pub struct Measured {
    pub run: Run,
    /// CPU time the processes `cpu_pids` spent from the end of the warm-up on.
    pub cpu_ticks: u64,
    pub first_failure: Option<String>,
}

/// A run of the generator against `address`, pinned to `cpu`, and the CPU time the proxy's
/// processes `cpu_pids` spent in the measured part of it.
pub fn run(
    address: SocketAddr,
    connections: u32,
    duration: Duration,
    cpu: usize,
    mode: Mode,
    cpu_pids: &[u32],
) -> anyhow::Result<Measured> {
    // This very executable, even if a build has replaced the file since it started (the
    // harness builds the workspace's binaries first, which can relink this one); by its pid,
    // since `/proc/self` would be taskset's.
    let exe = std::path::PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    anyhow::ensure!(
        exe.exists(),
        "cannot find this executable at {}",
        exe.display()
    );
    let mode_arg = match mode {
        Mode::Full => "full",
        Mode::Resumed => "resumed",
    };
    // Its errors go straight to the benchmark's stderr.
    let mut child = Command::new("taskset")
        .args(["-c", &cpu.to_string()])
        .arg(exe)
        .args([
            "handshake-load",
            "--address",
            &address.to_string(),
            "--connections",
            &connections.to_string(),
            "--duration",
            &duration.as_secs().to_string(),
            "--mode",
            mode_arg,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .context("start the handshake load generator")?;
    let stdout = child.stdout.take().context("the generator's output")?;
    let mut cpu_before = None;
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("read the generator's output")?;
        if line == MEASURING {
            cpu_before = Some(procfs::cpu_ticks(cpu_pids)?);
        } else {
            printed.push(line);
        }
    }
    let cpu_after = procfs::cpu_ticks(cpu_pids)?;
    let status = child
        .wait()
        .context("wait for the handshake load generator")?;
    let printed = printed.join("\n");
    anyhow::ensure!(
        status.success(),
        "the handshake load generator failed ({status}): {printed}"
    );
    let cpu_before =
        cpu_before.with_context(|| format!("the generator never said {MEASURING:?}: {printed}"))?;
    let counts: Counts = printed
        .lines()
        .last()
        .context("no output")
        .and_then(|line| serde_json::from_str(line).context("not JSON"))
        .with_context(|| format!("unexpected handshake load output: {printed}"))?;
    let run = Run {
        unit: mode.unit(),
        requests: counts.handshakes,
        requests_per_second: counts.handshakes as f64 / counts.seconds.max(f64::MIN_POSITIVE),
        p50: Duration::from_micros(counts.p50_us),
        p99: Duration::from_micros(counts.p99_us),
        errors: counts.failures,
        not_resumed: match mode {
            Mode::Full => 0,
            Mode::Resumed => counts.handshakes - counts.resumed,
        },
    };
    Ok(Measured {
        run,
        cpu_ticks: cpu_after.saturating_sub(cpu_before),
        first_failure: counts.first_failure,
    })
}

/// What a handshake agreed on, for the output.
pub struct Agreed {
    pub protocol: String,
    pub cipher_suite: String,
    pub group: String,
}

/// Verifies the certificate `address` serves for [`SERVER_NAME`] against `cert`'s CA, checks
/// that a second connection resumes the first one's session and that a client keeping no
/// session makes a full handshake, and says what the first handshake agreed on.
pub async fn check(address: SocketAddr, cert: &Certificate) -> anyhow::Result<Agreed> {
    let name = server_name()?;
    let resuming = tls_client::config(Trust::Ca(&cert.ca_path), Sessions::Tickets(8))?;
    let first = exchange(address, &resuming, &name)
        .await
        .context("first handshake")?;
    anyhow::ensure!(
        first.tls().handshake_kind() != Some(HandshakeKind::Resumed),
        "the first handshake claims to resume"
    );
    let agreed = agreed(first.tls());
    first.close().await;
    let second = attempt(address, &resuming, &name)
        .await
        .context("second handshake")?;
    anyhow::ensure!(
        second == HandshakeKind::Resumed,
        "the second handshake did not resume the first one's session ({second:?})"
    );
    let full = tls_client::config(Trust::Ca(&cert.ca_path), Sessions::None)?;
    for _ in 0..2 {
        let kind = attempt(address, &full, &name).await?;
        anyhow::ensure!(
            kind != HandshakeKind::Resumed,
            "a client with no session resumed"
        );
    }
    Ok(agreed)
}

fn server_name() -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(SERVER_NAME).context("the benchmark's server name")
}

/// One connection up to its answer: connect, handshake, the GET. The caller looks at the
/// handshake and closes.
async fn exchange(
    address: SocketAddr,
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
) -> anyhow::Result<TlsClient> {
    let mut client = TlsClient::connect(address, config, name).await?;
    client.exchange(REQUEST).await.context("the GET")?;
    Ok(client)
}

/// One whole connection, and the kind of its handshake.
async fn attempt(
    address: SocketAddr,
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
) -> anyhow::Result<HandshakeKind> {
    let client = exchange(address, config, name).await?;
    let kind = client.tls().handshake_kind().context("no handshake kind")?;
    client.close().await;
    Ok(kind)
}

fn agreed(tls: &rustls::ClientConnection) -> Agreed {
    Agreed {
        protocol: tls
            .protocol_version()
            // `TLSv1_3`, written as OpenSSL writes it.
            .map_or_else(|| "?".to_owned(), |v| format!("{v:?}").replace('_', ".")),
        cipher_suite: tls
            .negotiated_cipher_suite()
            .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite())),
        group: tls
            .negotiated_key_exchange_group()
            .map_or_else(|| "?".to_owned(), |g| format!("{:?}", g.name())),
    }
}

/// The hidden subcommand: warm up, load for the given time, print [`Counts`] as JSON.
pub async fn serve_load(args: LoadArgs) -> anyhow::Result<()> {
    let sessions = match args.mode {
        Mode::Full => Sessions::None,
        // Room for the two tickets a full handshake brings for every connection.
        Mode::Resumed => Sessions::Tickets(4 * args.connections.max(1)),
    };
    let config = tls_client::config(Trust::Anything, sessions)?;
    let name = server_name()?;
    drive(&config, &name, &args, WARM_UP).await?;
    println!("{MEASURING}");
    let counts = drive(
        &config,
        &name,
        &args,
        Duration::from_secs(args.duration.max(1)),
    )
    .await?;
    println!("{}", serde_json::to_string(&counts)?);
    Ok(())
}

/// What one connection loop counted.
#[derive(Default)]
struct Tally {
    /// Microseconds from connect to close, one per completed connection.
    latencies_us: Vec<u64>,
    resumed: u64,
    failures: u64,
    first_failure: Option<String>,
}

/// Runs `args.connections` loops for `duration` and adds up what they counted.
async fn drive(
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    args: &LoadArgs,
    duration: Duration,
) -> anyhow::Result<Counts> {
    let start = Instant::now();
    let deadline = start + duration;
    let loops: Vec<_> = (0..args.connections.max(1))
        .map(|_| {
            tokio::spawn(one_loop(
                config.clone(),
                name.clone(),
                args.address,
                args.mode,
                deadline,
            ))
        })
        .collect();
    let mut all = Tally::default();
    for handle in loops {
        let tally = handle.await.context("a connection loop panicked")?;
        all.latencies_us.extend(tally.latencies_us);
        all.resumed += tally.resumed;
        all.failures += tally.failures;
        if all.first_failure.is_none() {
            all.first_failure = tally.first_failure;
        }
    }
    // Up to the last connection's end: handshakes started before the deadline count.
    let seconds = start.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let quantile = |q: f64| {
        let n = all.latencies_us.len();
        if n == 0 {
            return 0;
        }
        all.latencies_us[((n as f64 * q) as usize).min(n - 1)]
    };
    Ok(Counts {
        handshakes: all.latencies_us.len() as u64,
        resumed: all.resumed,
        failures: all.failures,
        seconds,
        p50_us: quantile(0.50),
        p99_us: quantile(0.99),
        first_failure: all.first_failure,
    })
}

async fn one_loop(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    address: SocketAddr,
    mode: Mode,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(address, &config, &name)).await {
            Ok(Ok(HandshakeKind::Resumed)) if mode == Mode::Full => {
                // Cannot happen with no session kept; if it did, the run would measure less
                // than it says.
                tally
                    .fail("resumed a session the client did not keep".to_owned())
                    .await
            }
            Ok(Ok(kind)) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latencies_us.push(micros);
                if kind == HandshakeKind::Resumed {
                    tally.resumed += 1;
                }
            }
            Ok(Err(error)) => tally.fail(format!("{error:#}")).await,
            Err(_) => {
                tally
                    .fail(format!("no answer within {ATTEMPT_TIMEOUT:?}"))
                    .await
            }
        }
    }
    tally
}

impl Tally {
    /// Counts a failure, then pauses: a proxy refusing at once would otherwise turn the loop
    /// into a spin that takes the load core from the other loops.
    async fn fail(&mut self, message: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(message);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
