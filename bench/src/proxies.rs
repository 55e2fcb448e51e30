//! The contestants and the upstream they share, each started from a config written into the
//! benchmark's temporary directory and killed when dropped; for the TLS benchmark, the same
//! contestants terminating TLS with one certificate.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use gateway_tests::binaries::binary;
use gateway_tests::http::{Admin, send};
use gateway_tests::process::Process;
use serde_json::json;

use crate::certs::Certificate;

pub struct Ports {
    pub upstream: u16,
    pub nginx: u16,
    pub haproxy: u16,
    next_gateway: std::cell::Cell<u16>,
}

impl Ports {
    pub fn from_base(base: u16) -> Ports {
        Ports {
            upstream: base,
            nginx: base + 1,
            haproxy: base + 2,
            next_gateway: std::cell::Cell::new(base + 3),
        }
    }

    /// A port of its own for one more listener.
    pub fn take(&self) -> u16 {
        let port = self.next_gateway.get();
        self.next_gateway.set(port + 1);
        port
    }
}

pub struct Proxy {
    pub name: String,
    /// `http://host:port` (`https://` over TLS), to which each shape adds its path.
    pub base: String,
    /// Processes whose CPU time counts as the proxy's.
    pub cpu_pids: Vec<u32>,
    /// The process whose memory is reported.
    pub pid: u32,
    _processes: Vec<Process>,
}

/// Runs `program args` pinned to one core.
fn pinned(name: &str, cpu: usize, program: &Path, args: &[String]) -> Process {
    let mut all = vec![
        "-c".to_owned(),
        cpu.to_string(),
        program.display().to_string(),
    ];
    all.extend_from_slice(args);
    Process::spawn(name, Path::new("taskset"), &all, None)
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path.display().to_string())
}

fn nginx(dir: &Path, name: &str, cpu: usize, http_block: &str) -> anyhow::Result<Process> {
    let prefix = dir.join(name);
    std::fs::create_dir_all(prefix.join("logs"))?;
    let config = format!(
        "worker_processes 1;\ndaemon off;\nmaster_process off;\nerror_log stderr warn;\npid {prefix}/nginx.pid;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n  client_body_temp_path {prefix};\n  proxy_temp_path {prefix};\n  fastcgi_temp_path {prefix};\n  uwsgi_temp_path {prefix};\n  scgi_temp_path {prefix};\n{http_block}\n}}\n",
        prefix = prefix.display()
    );
    let file = write(dir, &format!("{name}.conf"), &config)?;
    let args = [
        "-p".to_owned(),
        prefix.display().to_string(),
        "-c".to_owned(),
        file,
    ];
    Ok(pinned(name, cpu, Path::new("/usr/sbin/nginx"), &args))
}

/// What the gateway does to every proxied message, asked of nginx too so that all three do the
/// same work: `X-Forwarded-For/-Proto/-Host` and `Via` on the request, `Via` on the response.
/// (Each also drops the hop-by-hop headers and sets its own `Host`, as proxies do anyway.)
const FORWARDED_NGINX: &str = " proxy_set_header X-Forwarded-For $remote_addr; \
     proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $http_host; \
     proxy_set_header Via \"1.1 nginx\"; add_header Via \"1.1 nginx\" always;";

/// The same headers as [`FORWARDED_NGINX`], for HAProxy's frontend reached by `scheme`.
fn forwarded_haproxy(scheme: &str) -> String {
    format!(
        "  option forwardfor\n  \
         http-request set-header X-Forwarded-Proto {scheme}\n  \
         http-request set-header X-Forwarded-Host %[req.hdr(host)]\n  \
         http-request add-header Via \"1.1 haproxy\"\n  \
         http-response add-header Via \"1.1 haproxy\"\n"
    )
}

/// Size of the body of the `large` shape's response.
pub const LARGE_BODY_BYTES: usize = 64 * 1024;

/// The fixed fast upstream: nginx answering `ok` from memory (a request body is read and
/// dropped), and a 64 KiB file for `/bench/large`.
pub fn start_upstream(dir: &Path, ports: &Ports, cpu: usize) -> anyhow::Result<Process> {
    let large = dir.join("large.bin");
    std::fs::write(&large, vec![b'x'; LARGE_BODY_BYTES])
        .with_context(|| format!("write {}", large.display()))?;
    let block = format!(
        "  server {{ listen 127.0.0.1:{}; location / {{ return 200 'ok\\n'; }} \
         location = /bench/large {{ default_type application/octet-stream; alias {}; }} }}",
        ports.upstream,
        large.display()
    );
    nginx(dir, "upstream", cpu, &block)
}

/// nginx with a pool of kept-alive upstream connections that, like the gateway's and HAProxy's,
/// is not recycled every 1,000 requests (the default of `keepalive_requests` in an upstream).
pub fn start_nginx(dir: &Path, ports: &Ports, cpu: usize) -> anyhow::Result<Proxy> {
    let listen = format!("listen 127.0.0.1:{};", ports.nginx);
    let base = format!("http://127.0.0.1:{}", ports.nginx);
    nginx_proxy(dir, ports, "nginx", cpu, &listen, base)
}

/// [`start_nginx`] on a TLS port of its own, serving `cert` to every client, HTTP/2 and
/// HTTP/1.1 by ALPN, with a session cache and tickets.
pub fn start_nginx_tls(
    dir: &Path,
    ports: &Ports,
    cpu: usize,
    cert: &Certificate,
) -> anyhow::Result<Proxy> {
    let port = ports.take();
    let listen = if nginx_has_http2_directive()? {
        format!("listen 127.0.0.1:{port} ssl; http2 on;")
    } else {
        format!("listen 127.0.0.1:{port} ssl http2;")
    };
    let tls = format!(
        "{listen} ssl_certificate {}; ssl_certificate_key {}; ssl_protocols TLSv1.2 TLSv1.3; \
         ssl_session_cache shared:SSL:10m; ssl_session_tickets on;",
        cert.chain_path.display(),
        cert.key_path.display()
    );
    let base = format!("https://127.0.0.1:{port}");
    nginx_proxy(dir, ports, &format!("nginx-tls-{port}"), cpu, &tls, base)
}

/// The proxying nginx: `listen` (its directives for the listening side) and the rest, which
/// the plain and the TLS nginx share.
fn nginx_proxy(
    dir: &Path,
    ports: &Ports,
    name: &str,
    cpu: usize,
    listen: &str,
    base: String,
) -> anyhow::Result<Proxy> {
    let block = format!(
        "  upstream backend {{ server 127.0.0.1:{}; keepalive 64; keepalive_requests 1000000; }}\n  server {{ {listen} location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";{FORWARDED_NGINX} }} }}",
        ports.upstream
    );
    let process = nginx(dir, name, cpu, &block)?;
    let pid = process.pid();
    Ok(Proxy {
        name: "nginx (1 worker)".into(),
        base,
        cpu_pids: vec![pid],
        pid,
        _processes: vec![process],
    })
}

const MAX_REQUESTS_FLAG: &str = "--max-requests-per-connection";

/// Whether `binary --help` lists `flag`.
fn takes_flag(binary: &Path, flag: &str) -> anyhow::Result<bool> {
    let output = Command::new(binary)
        .arg("--help")
        .output()
        .with_context(|| format!("run {} --help", binary.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .any(|word| word == flag))
}

/// nginx 1.25.1 turned HTTP/2 into a directive of its own (`http2 on;`) and deprecated the
/// `http2` parameter of `listen`, which older versions (Debian 12 has 1.22) need instead.
fn nginx_has_http2_directive() -> anyhow::Result<bool> {
    let output = Command::new("/usr/sbin/nginx")
        .arg("-v")
        .output()
        .context("run nginx -v")?;
    let text = String::from_utf8_lossy(&output.stderr);
    let version = nginx_version(&text).with_context(|| format!("nginx -v said {text:?}"))?;
    Ok(version >= (1, 25, 1))
}

/// `(1, 22, 1)` from `nginx version: nginx/1.22.1`.
fn nginx_version(text: &str) -> Option<(u32, u32, u32)> {
    let version = text.split("nginx/").nth(1)?.split_whitespace().next()?;
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

pub fn start_haproxy(dir: &Path, ports: &Ports, cpu: usize) -> anyhow::Result<Proxy> {
    let bind = format!("127.0.0.1:{}", ports.haproxy);
    let base = format!("http://127.0.0.1:{}", ports.haproxy);
    haproxy_proxy(dir, ports, "haproxy", cpu, &bind, "http", base)
}

/// [`start_haproxy`] on a TLS port of its own, serving `cert` to every client, HTTP/2 and
/// HTTP/1.1 by ALPN (HAProxy keeps sessions and issues tickets by default).
pub fn start_haproxy_tls(
    dir: &Path,
    ports: &Ports,
    cpu: usize,
    cert: &Certificate,
) -> anyhow::Result<Proxy> {
    let port = ports.take();
    let bind = format!(
        "127.0.0.1:{port} ssl crt {} alpn h2,http/1.1 ssl-min-ver TLSv1.2",
        cert.combined_path.display()
    );
    let base = format!("https://127.0.0.1:{port}");
    haproxy_proxy(
        dir,
        ports,
        &format!("haproxy-tls-{port}"),
        cpu,
        &bind,
        "https",
        base,
    )
}

/// HAProxy with `bind` as its frontend's listening side and `scheme` as what it tells the
/// upstream the client used.
fn haproxy_proxy(
    dir: &Path,
    ports: &Ports,
    name: &str,
    cpu: usize,
    bind: &str,
    scheme: &str,
    base: String,
) -> anyhow::Result<Proxy> {
    let config = format!(
        "global\n  nbthread 1\n  maxconn 8192\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\n  http-reuse always\nfrontend bench\n  bind {bind}\n{}  default_backend upstream\nbackend upstream\n  server s1 127.0.0.1:{}\n",
        forwarded_haproxy(scheme),
        ports.upstream
    );
    let file = write(dir, &format!("{name}.cfg"), &config)?;
    let process = pinned(
        name,
        cpu,
        Path::new("/usr/sbin/haproxy"),
        &["-db".to_owned(), "-f".to_owned(), file],
    );
    let pid = process.pid();
    Ok(Proxy {
        name: "HAProxy (1 thread)".into(),
        base,
        cpu_pids: vec![pid],
        pid,
        _processes: vec![process],
    })
}

pub enum GatewayRoutes {
    One,
    Many(usize),
}

/// Which build of the worker runs: this workspace's, or another one given by path (to compare
/// a change with what it changes, in the same run).
pub enum Build<'a> {
    Current,
    Baseline(&'a Path),
}

/// The name under which the TLS benchmark's certificate is stored and made the worker's default.
const CERTIFICATE_NAME: &str = "bench";

/// A control plane on SQLite (on the load core: it idles during the runs) and one worker thread;
/// given a certificate, the worker also listens for TLS on a port of its own, serving it to
/// every client (those sending no server name or another one too), and that port is the one
/// measured.
pub async fn start_gateway(
    dir: &Path,
    ports: &Ports,
    cpu: usize,
    routes: GatewayRoutes,
    build: Build<'_>,
    tls: Option<&Certificate>,
) -> anyhow::Result<Proxy> {
    let listen = ports.take();
    let label = match (&routes, &build) {
        (GatewayRoutes::One, Build::Current) => "gateway (1 thread)".to_owned(),
        (GatewayRoutes::Many(n), Build::Current) => format!("gateway, {n} routes"),
        (GatewayRoutes::One, Build::Baseline(_)) => "baseline gateway (1 thread)".to_owned(),
        (GatewayRoutes::Many(n), Build::Baseline(_)) => format!("baseline gateway, {n} routes"),
    };
    let worker_binary = match build {
        Build::Current => binary("data-plane"),
        Build::Baseline(path) => path.to_path_buf(),
    };
    let state = dir.join(format!("gateway-{listen}"));
    std::fs::create_dir_all(&state)?;
    let cp_args: Vec<String> = [
        "--admin-listen",
        "127.0.0.1:0",
        "--sync-listen",
        "127.0.0.1:0",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut control_plane = Process::spawn(
        "control-plane",
        &binary("control-plane"),
        &cp_args,
        Some(&state),
    );
    let admin_addr = control_plane.wait_for("admin API listening on ", Duration::from_secs(30));
    let sync_addr = control_plane.wait_for("config sync listening on ", Duration::from_secs(30));
    let admin = Admin::new(&format!("http://{admin_addr}"));

    let bench_route = json!({"name": "bench", "paths": [{"prefix": "/bench"}], "backends": [{"upstream": "backend"}]});
    let mut document_routes = vec![bench_route];
    if let GatewayRoutes::Many(n) = routes {
        // A realistic mix: host-specific and any-host routes, prefixes and exact paths.
        for i in 1..n {
            let route = match i % 3 {
                0 => {
                    json!({"name": format!("r{i}"), "hosts": [format!("svc{}.example.com", i % 500)], "paths": [{"prefix": format!("/svc/{i}")}], "backends": [{"upstream": "backend"}]})
                }
                1 => {
                    json!({"name": format!("r{i}"), "paths": [{"prefix": format!("/api/v{}/items{i}", i % 7)}], "methods": ["GET"], "backends": [{"upstream": "backend"}]})
                }
                _ => {
                    json!({"name": format!("r{i}"), "paths": [{"exact": format!("/static/{i}.js")}], "backends": [{"upstream": "backend"}]})
                }
            };
            document_routes.push(route);
        }
    }
    let document = json!({
        "upstreams": [{"name": "backend", "targets": [{"address": format!("127.0.0.1:{}", ports.upstream)}]}],
        "routes": document_routes,
    });
    let reply = admin.put("/v1/config", &document).await;
    anyhow::ensure!(
        reply.status == 200,
        "loading the config failed: {}",
        reply.text
    );
    if let Some(cert) = tls {
        // Before the worker starts, so that the first config it receives has the certificate.
        let certificate =
            json!({"name": CERTIFICATE_NAME, "cert": cert.chain_pem, "key": cert.key_pem});
        let reply = admin.post("/v1/certificates", &certificate).await;
        anyhow::ensure!(
            matches!(reply.status, 200 | 201),
            "creating the certificate failed ({}): {}",
            reply.status,
            reply.text
        );
    }

    let mut worker_args = vec![
        "--listen".to_owned(),
        format!("127.0.0.1:{listen}"),
        "--status-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--control-plane".to_owned(),
        format!("http://{sync_addr}"),
        "--worker-threads".to_owned(),
        "1".to_owned(),
        "--no-cache".to_owned(),
    ];
    if tls.is_some() {
        worker_args.extend([
            "--tls-listen".to_owned(),
            format!("127.0.0.1:{}", ports.take()),
            "--tls-default-certificate".to_owned(),
            CERTIFICATE_NAME.to_owned(),
        ]);
    }
    // Like nginx's raised `keepalive_requests`: the load's connections are never recycled (h2load
    // does not reconnect after a GOAWAY: it would count the streams cut short as failures). A
    // baseline built before the flag existed recycles them, and its numbers show it.
    if matches!(build, Build::Current) || takes_flag(&worker_binary, MAX_REQUESTS_FLAG)? {
        worker_args.extend([MAX_REQUESTS_FLAG.to_owned(), "0".to_owned()]);
    }
    let mut worker = if tls.is_some() {
        // wrk sends the address it connects to as its server name, which rustls warns about on
        // every connection: lines that would bury the benchmark's output.
        let mut args = vec![
            "RUST_LOG=info,rustls=error".to_owned(),
            worker_binary.display().to_string(),
        ];
        args.extend(worker_args);
        pinned(&label, cpu, Path::new("env"), &args)
    } else {
        pinned(&label, cpu, &worker_binary, &worker_args)
    };
    let status_addr = worker.wait_for("status listening on ", Duration::from_secs(30));
    let base = match tls {
        Some(_) => format!(
            "https://{}",
            worker.wait_for("proxy TLS listening on ", Duration::from_secs(30))
        ),
        None => format!("http://127.0.0.1:{listen}"),
    };
    let client = gateway_tests::http::client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = send(client.get(format!("http://{status_addr}/readyz"))).await;
        if ready.is_ok_and(|r| r.status == 200) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{label} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = worker.pid();
    Ok(Proxy {
        name: label,
        base,
        cpu_pids: vec![pid],
        pid,
        _processes: vec![worker, control_plane],
    })
}

#[cfg(test)]
mod tests {
    use super::nginx_version;

    #[test]
    fn reads_nginx_versions() {
        assert_eq!(
            nginx_version("nginx version: nginx/1.22.1\n"),
            Some((1, 22, 1))
        );
        assert_eq!(
            nginx_version("nginx version: nginx/1.26.3 (Debian)"),
            Some((1, 26, 3))
        );
        assert_eq!(nginx_version("nginx version: nginx/1.25"), Some((1, 25, 0)));
        assert_eq!(nginx_version("command not found"), None);
    }
}
