//! Memory held by idle client connections: opens many keep-alive connections to a proxy, sends
//! one request on each and reads its answer, lets them sit idle, and reports how much the
//! proxy's resident set grew per connection. What a proxy holds per idle connection decides how
//! many clients (browsers, mobile apps, IoT devices keeping connections open) one instance can
//! carry.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::procfs;
use crate::proxies::Proxy;

/// How a connection is opened and what its one request is.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// HTTP/1.1, a `GET`.
    Http1Get,
    /// HTTP/1.1, a `POST` with a small body.
    Http1Post,
    /// HTTP/2 with prior knowledge (h2c), a `GET`.
    Http2,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Http1Get => "HTTP/1.1 after a GET",
            Kind::Http1Post => "HTTP/1.1 after a POST",
            Kind::Http2 => "HTTP/2 (h2c) after a GET",
        }
    }
}

/// The proxy's resident set before and after, and what that makes per connection.
#[derive(Debug)]
pub struct Measured {
    pub before_kib: u64,
    pub after_kib: u64,
    pub connections: usize,
}

impl Measured {
    pub fn bytes_per_connection(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 * 1024.0 / self.connections as f64
    }
}

/// Opens `count` connections of `kind` to `proxy` (`host:port`), one request each, waits
/// `settle` with all of them idle, and measures.
pub async fn measure(
    proxy: &Proxy,
    address: &str,
    kind: Kind,
    count: usize,
    settle: Duration,
) -> anyhow::Result<Measured> {
    let before_kib = procfs::rss_kib(proxy.pid)?;
    let mut open = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connection {i} to {}", proxy.name))?;
        stream.set_nodelay(true)?;
        let answered = match kind {
            Kind::Http1Get => http1_exchange(&mut stream, false).await,
            Kind::Http1Post => http1_exchange(&mut stream, true).await,
            Kind::Http2 => http2_exchange(&mut stream).await,
        };
        answered.with_context(|| format!("request {i} through {}", proxy.name))?;
        open.push(stream);
    }
    tokio::time::sleep(settle).await;
    let after_kib = procfs::rss_kib(proxy.pid)?;
    drop(open);
    // Give the proxy time to notice the closes before anything else is measured.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Measured {
        before_kib,
        after_kib,
        connections: count,
    })
}

/// Waits until something accepts connections at `address`.
pub async fn wait_listening(address: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match TcpStream::connect(address).await {
            Ok(_) => return Ok(()),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// One request and its whole answer (`Content-Length` or chunked).
async fn http1_exchange(stream: &mut TcpStream, with_body: bool) -> anyhow::Result<()> {
    let request: &[u8] = if with_body {
        b"POST /bench/idle HTTP/1.1\r\nhost: bench.test\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"idle\":true}"
    } else {
        b"GET /bench/idle HTTP/1.1\r\nhost: bench.test\r\n\r\n"
    };
    stream.write_all(request).await?;
    let mut received = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed before the answer ended");
        received.extend_from_slice(&chunk[..n]);
        let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
        anyhow::ensure!(head.starts_with("http/1.1 200"), "answered {head}");
        let body = &received[end + 4..];
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok());
        let complete = match length {
            Some(length) => body.len() >= length,
            None => body.ends_with(b"0\r\n\r\n"),
        };
        if complete {
            return Ok(());
        }
    }
}

/// The preface, empty settings, one `GET` on stream 1, and frames read until that stream ends.
async fn http2_exchange(stream: &mut TcpStream) -> anyhow::Result<()> {
    const DATA: u8 = 0x0;
    const HEADERS: u8 = 0x1;
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const END_STREAM: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;
    const ACK: u8 = 0x1;
    // :method GET, :scheme http, then :authority and :path as literals never indexed.
    let mut block = vec![0x82, 0x86];
    for (name, value) in [(":authority", "bench.test"), (":path", "/bench/idle")] {
        block.extend([0x10, name.len() as u8]);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend(frame(SETTINGS, 0, 0, &[]));
    bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &block));
    stream.write_all(&bytes).await?;
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await?;
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).await?;
        match kind {
            SETTINGS if flags & ACK == 0 => stream.write_all(&frame(SETTINGS, ACK, 0, &[])).await?,
            GOAWAY => anyhow::bail!("GOAWAY"),
            DATA | HEADERS if id == 1 && flags & END_STREAM != 0 => return Ok(()),
            _ => {}
        }
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = (payload.len() as u32).to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}
