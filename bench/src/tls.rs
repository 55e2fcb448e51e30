//! The TLS benchmark (`--tls`): nginx, HAProxy and the gateway worker terminating TLS with the
//! same certificate, one key type after the other (ECDSA P-256, RSA-2048), each proxy pinned
//! to the same core as in the plain benchmark. For each key type it measures keep-alive
//! requests over HTTP/1.1 (wrk) and HTTP/2 (h2load) for each request shape, then full and
//! resumed handshakes per second ([`handshakes`](crate::handshakes)), each measurement in rounds
//! that alternate the proxies, and prints one table per measurement with ratios to nginx.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::certs::{self, Certificate, KeyType};
use crate::handshakes::{self, Mode};
use crate::proxies::{self, Build, GatewayRoutes, Ports, Proxy};
use crate::report::{Run, Sample, Table};
use crate::shapes::Shape;
use crate::{h2load, idle, procfs, wrk};

pub struct Options<'a> {
    pub rounds: usize,
    pub duration: Duration,
    /// wrk's and h2load's connections, and the handshake generator's concurrent loops.
    pub connections: u32,
    pub proxy_cpu: usize,
    pub load_cpu: usize,
    pub shapes: &'a [Shape],
    pub keys: &'a [KeyType],
    /// Another build of the worker, measured in the same rounds.
    pub baseline: Option<&'a Path>,
}

/// One table's worth of runs.
#[derive(Debug, Clone, Copy)]
enum Measurement {
    Http1(Shape),
    Http2(Shape),
    Handshakes(Mode),
}

impl Measurement {
    /// The table's title: the key type, the TLS `versions` agreed on, the protocol and load.
    fn describe(self, key: KeyType, versions: &str, connections: u32) -> String {
        let key = key.describe();
        match self {
            Measurement::Http1(shape) => format!(
                "{key} certificate, {versions}, HTTP/1.1 keep-alive (wrk, {connections} connections): {}",
                shape.describe()
            ),
            Measurement::Http2(shape) => format!(
                "{key} certificate, {versions}, HTTP/2 (h2load, {connections} connections × {} streams): {}",
                h2load::STREAMS,
                shape.describe()
            ),
            Measurement::Handshakes(mode) => format!(
                "{key} certificate, {versions}, {}: {connections} concurrent loops of connect, handshake, \
                 one HTTP/1.1 GET (3-byte response), close",
                mode.describe()
            ),
        }
    }
}

pub async fn run(dir: &Path, ports: &Ports, options: &Options<'_>) -> anyhow::Result<()> {
    let mut measurements = Vec::new();
    for shape in options.shapes {
        measurements.push(Measurement::Http1(*shape));
        measurements.push(Measurement::Http2(*shape));
    }
    measurements.push(Measurement::Handshakes(Mode::Full));
    measurements.push(Measurement::Handshakes(Mode::Resumed));

    for key in options.keys {
        let cert = certs::generate(dir, *key)?;
        let mut runners = start(dir, ports, options, &cert).await?;
        let versions = check(&runners, dir, options, &cert).await?;
        println!(
            "Proxies on CPU {}; wrk, h2load and the handshake generator on CPU {} with the upstream \
             (nothing measures the load side alone over TLS: ratios near 1 may be its limit). The \
             generator verifies no certificate under load (the check above did).",
            options.proxy_cpu, options.load_cpu
        );
        for measurement in &measurements {
            let mut table = Table::default();
            for round in 1..=options.rounds {
                for proxy in &mut runners {
                    let (run, cpu_ticks, failure) = measure(proxy, *measurement, dir, options)
                        .with_context(|| format!("{} {measurement:?}", proxy.name))?;
                    let sample = Sample::new(&run, cpu_ticks);
                    eprintln!(
                        "{} {measurement:?} round {round} {:<28} {sample}",
                        key.describe(),
                        proxy.name
                    );
                    if let Some(failure) = failure {
                        eprintln!("  first failure: {failure}");
                    }
                    table.add(&proxy.name, sample);
                }
            }
            println!();
            println!(
                "{}:",
                measurement.describe(*key, &versions, options.connections)
            );
            println!();
            println!("{}", table.render("nginx"));
        }
    }
    Ok(())
}

/// The contestants for one certificate.
async fn start(
    dir: &Path,
    ports: &Ports,
    options: &Options<'_>,
    cert: &Certificate,
) -> anyhow::Result<Vec<Proxy>> {
    let cpu = options.proxy_cpu;
    let mut runners = vec![
        proxies::start_nginx_tls(dir, ports, cpu, cert)?,
        proxies::start_haproxy_tls(dir, ports, cpu, cert)?,
        proxies::start_gateway(
            dir,
            ports,
            cpu,
            GatewayRoutes::One,
            Build::Current,
            Some(cert),
        )
        .await?,
    ];
    if let Some(baseline) = options.baseline {
        runners.push(
            proxies::start_gateway(
                dir,
                ports,
                cpu,
                GatewayRoutes::One,
                Build::Baseline(baseline),
                Some(cert),
            )
            .await?,
        );
    }
    Ok(runners)
}

fn address(proxy: &Proxy) -> anyhow::Result<SocketAddr> {
    proxy
        .base
        .strip_prefix("https://")
        .context("a TLS proxy's address")?
        .parse()
        .with_context(|| format!("{}'s address {}", proxy.name, proxy.base))
}

/// Makes sure every proxy answers every load before anything is measured, prints what each
/// TLS client agreed on with each proxy, and returns the TLS versions agreed on.
async fn check(
    runners: &[Proxy],
    dir: &Path,
    options: &Options<'_>,
    cert: &Certificate,
) -> anyhow::Result<String> {
    println!();
    println!(
        "{} certificate for {}, the same for every proxy; what the clients agreed on:",
        cert.key_type.describe(),
        certs::SERVER_NAME
    );
    let mut versions = Vec::new();
    for proxy in runners {
        // nginx and HAProxy are not waited for when they start.
        idle::wait_listening(&address(proxy)?.to_string(), Duration::from_secs(30))
            .await
            .with_context(|| format!("{} is not listening", proxy.name))?;
        let mut h2 = None;
        for shape in options.shapes {
            let url = format!("{}{}", proxy.base, shape.path());
            let script = shape.script(dir)?;
            wrk::check_reachable(&url, script.as_deref()).with_context(|| {
                format!("{} does not answer {shape:?} over HTTP/1.1", proxy.name)
            })?;
            let body = shape.body_file(dir)?;
            let agreed = h2load::check(address(proxy)?, shape.path(), body.as_deref())
                .with_context(|| format!("{} does not answer {shape:?} over HTTP/2", proxy.name))?;
            h2.get_or_insert(agreed);
        }
        let agreed = handshakes::check(address(proxy)?, cert)
            .await
            .with_context(|| format!("{}: the handshake check failed", proxy.name))?;
        let h2 = h2.unwrap_or_default();
        for version in [h2.protocol.clone(), agreed.protocol.clone()] {
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        println!(
            "- {}: h2load (OpenSSL, like wrk) {} {} {} ALPN {}; handshake generator (rustls) {} {} {}, \
             certificate verified, sessions resumed",
            proxy.name,
            h2.protocol,
            h2.cipher,
            h2.key_exchange,
            h2.application_protocol,
            agreed.protocol,
            agreed.cipher_suite,
            agreed.group
        );
    }
    Ok(versions.join(" and "))
}

/// One run of `measurement` against `proxy`, the CPU time the proxy spent on it, and the first
/// failure the run saw, if it says.
fn measure(
    proxy: &Proxy,
    measurement: Measurement,
    dir: &Path,
    options: &Options<'_>,
) -> anyhow::Result<(Run, u64, Option<String>)> {
    let cpu_before = procfs::cpu_ticks(&proxy.cpu_pids)?;
    let run = match measurement {
        Measurement::Http1(shape) => {
            let script = shape.script(dir)?;
            wrk::run(
                &format!("{}{}", proxy.base, shape.path()),
                options.connections,
                options.duration,
                options.load_cpu,
                script.as_deref(),
            )?
        }
        Measurement::Http2(shape) => {
            let body = shape.body_file(dir)?;
            h2load::run(
                address(proxy)?,
                shape.path(),
                options.connections,
                options.duration,
                options.load_cpu,
                body.as_deref(),
                &dir.join("h2load.log"),
            )?
        }
        Measurement::Handshakes(mode) => {
            // The generator warms up first; the proxy's CPU time counts from its end.
            let measured = handshakes::run(
                address(proxy)?,
                options.connections,
                options.duration,
                options.load_cpu,
                mode,
                &proxy.cpu_pids,
            )?;
            return Ok((measured.run, measured.cpu_ticks, measured.first_failure));
        }
    };
    let cpu_ticks = procfs::cpu_ticks(&proxy.cpu_pids)?.saturating_sub(cpu_before);
    Ok((run, cpu_ticks, None))
}
