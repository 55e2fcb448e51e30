//! `gateway-bench`: runs the same wrk load through nginx, HAProxy and the gateway worker (each
//! with one worker thread, pinned to the same core, in front of the same upstream, keeping its
//! upstream connections alive and adding the same `X-Forwarded-*` and `Via` headers), alternating
//! them over several rounds, and prints req/s, p50, p99, CPU per request and the ratios to nginx
//! (medians over the rounds), for each request shape asked for. Also measures the worker with
//! 10,000 routes loaded and its memory, and, given another build of the worker, that build in
//! the same rounds. With `--tls`, the same proxies terminate TLS instead: keep-alive HTTP/1.1
//! and HTTP/2, full and resumed handshakes per second, for an ECDSA and an RSA certificate.
//!
//! `cargo run --release -p gateway-bench` (the README's performance section shows a run).

mod certs;
mod h2load;
mod handshakes;
mod idle;
mod procfs;
mod proxies;
mod report;
mod shapes;
mod tls;
mod tls_client;
mod tools;
mod wrk;

use std::path::PathBuf;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::certs::KeyType;
use crate::proxies::{Build, Proxy};
use crate::report::{Sample, Table};
use crate::shapes::Shape;

#[derive(Debug, Parser)]
#[command(about = "Benchmark the gateway worker against nginx and HAProxy on this machine")]
struct Cli {
    /// Rounds; every round runs every proxy once, in turn.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Keep-alive connections wrk holds open.
    #[arg(long, default_value_t = 50)]
    connections: u32,
    /// Routes loaded into the second gateway worker.
    #[arg(long, default_value_t = 10_000)]
    routes: usize,
    /// First of the loopback ports the benchmark uses (it takes up to twenty).
    #[arg(long, default_value_t = 18_080)]
    port_base: u16,
    /// Core the proxies run on; wrk and the upstream share the other one.
    #[arg(long, default_value_t = 1)]
    proxy_cpu: usize,
    /// Request shapes, each measured in its own rounds (comma-separated) [default: get; with
    /// --tls: get,post].
    #[arg(long, value_enum, value_delimiter = ',')]
    shapes: Vec<Shape>,
    /// Another build of the data-plane binary (e.g. of the commit before a change), run in the
    /// same rounds as this one.
    #[arg(long)]
    baseline_worker: Option<PathBuf>,
    /// Also measure the memory each proxy holds per idle keep-alive connection, with this many
    /// connections (one request each, then idle); 0: not measured.
    #[arg(long, default_value_t = 0)]
    idle_connections: usize,
    /// Measure only idle connections (no wrk runs).
    #[arg(long, requires = "idle_connections")]
    idle_only: bool,
    /// Measure over TLS instead: nginx, HAProxy and the worker serving one certificate, with
    /// keep-alive HTTP/1.1 (wrk) and HTTP/2 (h2load) for each shape, then full and resumed
    /// handshakes per second, for each key type of --tls-keys.
    #[arg(long, conflicts_with_all = ["idle_only", "idle_connections"])]
    tls: bool,
    /// Key types of the certificates the TLS benchmark serves, one after the other.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ecdsa,rsa")]
    tls_keys: Vec<KeyType>,
    #[command(subcommand)]
    internal: Option<Internal>,
}

/// What the benchmark runs of itself in processes of their own.
#[derive(Debug, clap::Subcommand)]
enum Internal {
    /// The TLS handshake load generator, run pinned to the load core (see handshakes.rs).
    #[command(hide = true)]
    HandshakeLoad(handshakes::LoadArgs),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if let Some(Internal::HandshakeLoad(args)) = cli.internal {
        return handshakes::serve_load(args).await;
    }
    if cli.shapes.is_empty() {
        cli.shapes = if cli.tls {
            vec![Shape::Get, Shape::Post]
        } else {
            vec![Shape::Get]
        };
    }
    tools::ensure_installed(cli.tls).context("the proxies and load generators are needed")?;
    let dir = tempfile::tempdir()?;
    let ports = proxies::Ports::from_base(cli.port_base);
    let load_cpu = usize::from(cli.proxy_cpu == 0);

    let upstream = proxies::start_upstream(dir.path(), &ports, load_cpu)?;
    if cli.tls {
        let options = tls::Options {
            rounds: cli.rounds,
            duration: Duration::from_secs(cli.duration),
            connections: cli.connections,
            proxy_cpu: cli.proxy_cpu,
            load_cpu,
            shapes: &cli.shapes,
            keys: &cli.tls_keys,
            baseline: cli.baseline_worker.as_deref(),
        };
        tls::run(dir.path(), &ports, &options).await?;
        drop(upstream);
        return Ok(());
    }
    if cli.idle_only {
        idle_report(dir.path(), &ports, &cli).await?;
        drop(upstream);
        return Ok(());
    }
    let mut runners: Vec<Proxy> = vec![
        proxies::start_nginx(dir.path(), &ports, cli.proxy_cpu)?,
        proxies::start_haproxy(dir.path(), &ports, cli.proxy_cpu)?,
        proxies::start_gateway(
            dir.path(),
            &ports,
            cli.proxy_cpu,
            proxies::GatewayRoutes::One,
            Build::Current,
            None,
        )
        .await?,
        proxies::start_gateway(
            dir.path(),
            &ports,
            cli.proxy_cpu,
            proxies::GatewayRoutes::Many(cli.routes),
            Build::Current,
            None,
        )
        .await?,
    ];
    if let Some(baseline) = &cli.baseline_worker {
        runners.push(
            proxies::start_gateway(
                dir.path(),
                &ports,
                cli.proxy_cpu,
                proxies::GatewayRoutes::One,
                Build::Baseline(baseline),
                None,
            )
            .await?,
        );
    }
    let idle_rss = procfs::rss_kib(runners[2].pid)?;
    let loaded_rss = procfs::rss_kib(runners[3].pid)?;

    for shape in &cli.shapes {
        let script = shape.script(dir.path())?;
        for proxy in &runners {
            let url = format!("{}{}", proxy.base, shape.path());
            wrk::check_reachable(&url, script.as_deref())
                .with_context(|| format!("{} does not answer {shape:?}", proxy.name))?;
        }
        let upstream_url = format!("http://127.0.0.1:{}{}", ports.upstream, shape.path());
        let mut table = Table::default();
        let mut ceiling = Vec::new();
        for round in 1..=cli.rounds {
            // wrk straight to the upstream, on the same core: what the load side can do with no
            // proxy in the way, an upper bound for every proxied run of the round.
            let direct = wrk::run(
                &upstream_url,
                cli.connections,
                Duration::from_secs(cli.duration),
                load_cpu,
                script.as_deref(),
            )?;
            eprintln!(
                "{shape:?} round {round} {:<28} {:.0} req/s",
                "load side alone", direct.requests_per_second
            );
            ceiling.push(direct.requests_per_second);
            for proxy in &mut runners {
                let cpu_before = procfs::cpu_ticks(&proxy.cpu_pids)?;
                let run = wrk::run(
                    &format!("{}{}", proxy.base, shape.path()),
                    cli.connections,
                    Duration::from_secs(cli.duration),
                    load_cpu,
                    script.as_deref(),
                )?;
                let cpu_ticks = procfs::cpu_ticks(&proxy.cpu_pids)? - cpu_before;
                let sample = Sample::new(&run, cpu_ticks);
                eprintln!("{shape:?} round {round} {:<28} {sample}", proxy.name);
                table.add(&proxy.name, sample);
            }
        }
        println!();
        println!("{}:", shape.describe());
        println!();
        println!("{}", table.render("nginx"));
        ceiling.sort_by(f64::total_cmp);
        if let Some(median) = ceiling.get(ceiling.len() / 2) {
            println!(
                "load side alone (wrk straight to the upstream on CPU {load_cpu}): {median:.0} req/s; \
                 proxies close to it are held back by the load side, and their ratios say little"
            );
        }
    }
    println!(
        "gateway worker RSS: {:.1} MiB idle (1 route), {:.1} MiB with {} routes",
        idle_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0,
        cli.routes
    );
    if cli.idle_connections > 0 {
        drop(runners);
        idle_report(dir.path(), &ports, &cli).await?;
    }
    drop(upstream);
    Ok(())
}

/// A proxy whose idle connections are measured.
enum Measured<'a> {
    Nginx,
    Haproxy,
    Gateway(Build<'a>),
}

/// Bytes per idle connection for each proxy, each measured in a process of its own started
/// for it (a process that has just carried load keeps memory that would hide the growth).
async fn idle_report(
    dir: &std::path::Path,
    ports: &proxies::Ports,
    cli: &Cli,
) -> anyhow::Result<()> {
    use idle::Kind;

    // Long enough for every proxy to have let go of what it releases when a connection idles
    // (the gateway: after 0.5 s), well within every proxy's idle timeout.
    let settle = Duration::from_secs(2);
    let gateway_kinds = [Kind::Http1Get, Kind::Http1Post, Kind::Http2];
    let mut cases: Vec<(Measured, Kind)> = vec![
        (Measured::Nginx, Kind::Http1Get),
        (Measured::Nginx, Kind::Http1Post),
        (Measured::Haproxy, Kind::Http1Get),
        (Measured::Haproxy, Kind::Http1Post),
    ];
    cases.extend(gateway_kinds.map(|kind| (Measured::Gateway(Build::Current), kind)));
    if let Some(baseline) = &cli.baseline_worker {
        cases
            .extend(gateway_kinds.map(|kind| (Measured::Gateway(Build::Baseline(baseline)), kind)));
    }
    let mut rows = Vec::new();
    for (which, kind) in cases {
        let proxy = match which {
            Measured::Nginx => proxies::start_nginx(dir, ports, cli.proxy_cpu)?,
            Measured::Haproxy => proxies::start_haproxy(dir, ports, cli.proxy_cpu)?,
            Measured::Gateway(build) => {
                proxies::start_gateway(
                    dir,
                    ports,
                    cli.proxy_cpu,
                    proxies::GatewayRoutes::One,
                    build,
                    None,
                )
                .await?
            }
        };
        let address = proxy
            .base
            .strip_prefix("http://")
            .context("a proxy's address")?
            .to_owned();
        idle::wait_listening(&address, Duration::from_secs(30))
            .await
            .with_context(|| format!("{} is not listening", proxy.name))?;
        // Warm up: the first requests set up upstream connections and caches.
        idle::measure(&proxy, &address, kind, 10, Duration::ZERO).await?;
        let measured = idle::measure(&proxy, &address, kind, cli.idle_connections, settle).await?;
        eprintln!(
            "idle {:<28} {:<26} {:>8.0} bytes per connection",
            proxy.name,
            kind.describe(),
            measured.bytes_per_connection()
        );
        rows.push((proxy.name.clone(), kind, measured));
    }
    println!();
    println!(
        "Memory per idle connection ({} keep-alive connections, one request each, then idle {} s; \
         growth of the proxy's resident set):",
        cli.idle_connections,
        settle.as_secs()
    );
    println!();
    println!("| proxy | connections | RSS before | RSS idle | per connection |");
    println!("|---|---|---|---|---|");
    for (name, kind, measured) in rows {
        println!(
            "| {name} | {} | {:.1} MiB | {:.1} MiB | {:.2} KiB |",
            kind.describe(),
            measured.before_kib as f64 / 1024.0,
            measured.after_kib as f64 / 1024.0,
            measured.bytes_per_connection() / 1024.0
        );
    }
    Ok(())
}
