//! Fuzzes the worker's whole request path: arbitrary bytes are sent from a real client socket
//! to the worker's front door (its listener and proxy, with a served config), which parses them,
//! routes what it can, and forwards to a recording upstream over another real socket. Nothing
//! may panic, in any task; every request that reaches the upstream must be a well-formed
//! HTTP/1.1 request with one unambiguous framing (what a smuggling attempt would break); and
//! whatever the worker answers on HTTP/1 starts with a status line.
//!
//! Input: one byte choosing the server path (low bit: the worker's own HTTP/1 code on, or hyper
//! for every request), then the bytes the client sends before it closes its side.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use data_plane::{FrontDoorSettings, start_front_door};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// What the whole exchange may take; longer is not a failure (a request waiting on a timeout),
/// only wasted time.
const EXCHANGE: Duration = Duration::from_secs(2);
/// The most the client reads of an answer.
const MAX_ANSWER: usize = 1 << 20;

struct Harness {
    runtime: Runtime,
    /// The front door with the worker's own HTTP/1 code on, and with hyper serving everything.
    fast_path: SocketAddr,
    hyper_only: SocketAddr,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (fast_path, hyper_only) = runtime.block_on(async {
            let upstream = start_recording_upstream().await;
            let config = serde_json::json!({
                "upstreams": [{"name": "up", "targets": [{"address": upstream.to_string()}]}],
                "routes": [
                    {"name": "api", "paths": [{"prefix": "/api"}], "strip_prefix": true,
                     "backends": [{"upstream": "up"}]},
                    {"name": "host", "hosts": ["*.fuzz.test"], "preserve_host": true,
                     "backends": [{"upstream": "up"}]},
                    {"name": "fixed", "paths": [{"exact": "/fixed"}],
                     "direct_response": {"status": 200, "body": "fixed"}},
                    {"name": "rest", "paths": [{"prefix": "/"}], "backends": [{"upstream": "up"}]}
                ]
            });
            let config: gateway_config::Config =
                serde_json::from_value(config).expect("the harness's config");
            let start = |http1_fast_path| {
                start_front_door(
                    config.clone(),
                    FrontDoorSettings {
                        http1_fast_path,
                        timeout: Duration::from_millis(500),
                    },
                )
            };
            let fast_path = start(true).await.expect("the front door");
            let hyper_only = start(false).await.expect("the front door");
            (fast_path, hyper_only)
        });
        Harness {
            runtime,
            fast_path,
            hyper_only,
        }
    })
}

/// An upstream that checks every request it is sent and answers each with a small 200.
async fn start_recording_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(record(stream));
        }
    });
    addr
}

/// Reads requests off one upstream connection until it closes.
async fn record(mut stream: TcpStream) {
    let mut buffer = Vec::new();
    loop {
        while let Some(used) = forwarded_request(&buffer) {
            buffer.drain(..used);
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The length of the complete request at the start of `bytes`, if one is there; panics when
/// what the worker forwarded is not a well-formed, unambiguously framed HTTP/1.1 request.
fn forwarded_request(bytes: &[u8]) -> Option<usize> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut fields);
    let head = match request.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return None,
        Err(error) => panic!(
            "the worker forwarded a malformed head ({error}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    assert_eq!(request.version, Some(1), "forwarded as HTTP/1.1");
    let values = |name: &str| -> Vec<&[u8]> {
        request
            .headers
            .iter()
            .filter(|field| field.name.eq_ignore_ascii_case(name))
            .map(|field| field.value)
            .collect()
    };
    let lengths = values("content-length");
    let codings = values("transfer-encoding");
    assert!(
        lengths.is_empty() || codings.is_empty(),
        "forwarded with both Content-Length and Transfer-Encoding"
    );
    assert!(
        lengths.len() <= 1,
        "forwarded with two Content-Length fields"
    );
    assert_eq!(
        values("host").len(),
        1,
        "forwarded without exactly one Host"
    );
    // Hop-by-hop fields are the worker's own: `TE: trailers`, and `Connection` naming only what
    // the worker itself asks of the upstream (an upgrade, or the connection's fate).
    for value in values("connection") {
        let own = String::from_utf8_lossy(value).split(',').all(|token| {
            let token = token.trim();
            ["upgrade", "keep-alive", "close"]
                .iter()
                .any(|own| token.eq_ignore_ascii_case(own))
        });
        assert!(
            own,
            "forwarded Connection: {:?}",
            String::from_utf8_lossy(value)
        );
    }
    for value in values("te") {
        assert!(
            value.eq_ignore_ascii_case(b"trailers"),
            "forwarded TE: {:?}",
            String::from_utf8_lossy(value)
        );
    }
    for name in ["keep-alive", "proxy-connection"] {
        assert!(values(name).is_empty(), "forwarded the client's {name}");
    }
    for field in request.headers.iter() {
        assert!(!field.name.contains('_'), "forwarded {}", field.name);
    }
    let body = &bytes[head..];
    if let Some(coding) = codings.first() {
        assert_eq!(codings.len(), 1, "forwarded two Transfer-Encoding fields");
        assert!(
            coding.eq_ignore_ascii_case(b"chunked"),
            "forwarded Transfer-Encoding {:?}",
            String::from_utf8_lossy(coding)
        );
        return chunked_length(body).map(|length| head + length);
    }
    let length = match lengths.first() {
        Some(value) => std::str::from_utf8(value)
            .ok()
            .and_then(|value| value.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("forwarded Content-Length {value:?}")),
        None => 0,
    };
    (body.len() >= length).then_some(head + length)
}

/// The length of a complete chunked body at the start of `body`; panics when it is malformed.
fn chunked_length(body: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = body[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let line = std::str::from_utf8(&body[at..line_end]).expect("a chunk size line");
        let size = line.split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16)
            .unwrap_or_else(|_| panic!("forwarded chunk size {line:?}"));
        at = line_end + 2;
        if size == 0 {
            // Trailers (if any), then the blank line.
            let end = body[at..].windows(2).position(|w| w == b"\r\n")?;
            if end == 0 {
                return Some(at + 2);
            }
            let blank = body[at..].windows(4).position(|w| w == b"\r\n\r\n")?;
            return Some(at + blank + 4);
        }
        if body.len() < at + size + 2 {
            return None;
        }
        assert_eq!(
            &body[at + size..at + size + 2],
            b"\r\n",
            "a chunk's data ends in CRLF"
        );
        at += size + 2;
    }
}

/// Sends `request` to `front_door`, closes the sending side, and reads the answer.
async fn exchange(front_door: SocketAddr, request: &[u8]) -> Vec<u8> {
    let Ok(mut stream) = TcpStream::connect(front_door).await else {
        return Vec::new();
    };
    let mut answer = Vec::new();
    let talk = async {
        // The worker may close before reading everything (a refused head): not a failure.
        let _ = stream.write_all(request).await;
        let _ = stream.shutdown().await;
        let mut chunk = [0u8; 8192];
        while answer.len() < MAX_ANSWER {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(EXCHANGE, talk).await;
    answer
}

fuzz_target!(|input: &[u8]| {
    let Some((&choice, request)) = input.split_first() else {
        return;
    };
    let harness = harness();
    let front_door = if choice & 1 == 0 {
        harness.fast_path
    } else {
        harness.hyper_only
    };
    let answer = harness.runtime.block_on(exchange(front_door, request));
    let http2 = request.starts_with(b"PRI * HTTP/2.0");
    if !answer.is_empty() && !http2 {
        assert!(
            answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "),
            "the worker answered {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }
});
