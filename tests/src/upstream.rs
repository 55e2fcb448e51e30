//! Fake upstream servers: each answers every request with a JSON echo of what it received and
//! its own name, so tests can see which target served a request and what the proxy forwarded.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct EchoServer {
    pub name: String,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoServer {
    pub async fn start(name: &str) -> EchoServer {
        Self::start_on("127.0.0.1:0".parse().expect("loopback address"), name).await
    }

    /// Starts on a given address, e.g. to bring a target back where it was.
    pub async fn start_on(addr: SocketAddr, name: &str) -> EchoServer {
        let listener = TcpListener::bind(addr).await.expect("bind echo server");
        let addr = listener.local_addr().expect("echo server address");
        let server_name = name.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let name = server_name.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| echo(name.clone(), peer, req));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        EchoServer {
            name: name.to_owned(),
            addr,
            task,
        }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type EchoBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Query parameter `name` of a request, parsed.
fn query_param(query: Option<&str>, name: &str) -> Option<u64> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// `/stream?chunks=N&interval_ms=M`: a long-lived response of N numbered lines, one every M ms.
fn stream(name: &str, query: Option<&str>) -> Response<EchoBody> {
    let chunks = query_param(query, "chunks").unwrap_or(10);
    let interval =
        std::time::Duration::from_millis(query_param(query, "interval_ms").unwrap_or(100));
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, Infallible>>(1);
    tokio::spawn(async move {
        for i in 0..chunks {
            let line = Bytes::from(format!("chunk {i}\n"));
            if sender
                .send(Ok(hyper::body::Frame::data(line)))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(interval).await;
        }
    });
    let body =
        http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    Response::builder()
        .header("content-type", "text/plain")
        .header("x-served-by", name)
        .body(body.boxed())
        .unwrap_or_default()
}

async fn echo(
    name: String,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<EchoBody>, Infallible> {
    if req.uri().path().ends_with("/stream") {
        return Ok(stream(&name, req.uri().query()));
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in &parts.headers {
        headers
            .entry(key.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let document = serde_json::json!({
        "server": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        // HTTP/2's `:authority`; HTTP/1 requests in origin form have none.
        "authority": parts.uri.authority().map(|a| a.as_str()),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "peer": peer.to_string(),
        "body_len": body.len(),
    });
    let response = Response::builder()
        .header("content-type", "application/json")
        .header("x-served-by", name.as_str())
        .body(Full::new(Bytes::from(document.to_string())).boxed())
        .unwrap_or_default();
    Ok(response)
}
