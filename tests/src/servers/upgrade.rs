//! A server that accepts any `Connection: upgrade` request with `101 Switching Protocols` and
//! then echoes every byte it receives on the upgraded connection, so a test can check that the
//! gateway tunnels an upgraded (WebSocket) connection in both directions.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct UpgradeEchoServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl UpgradeEchoServer {
    pub async fn start() -> UpgradeEchoServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upgrade server");
        let addr = listener.local_addr().expect("upgrade server address");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .with_upgrades()
                        .await;
                });
            }
        });
        UpgradeEchoServer { addr, task }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for UpgradeEchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let Some(protocol) = request.headers().get("upgrade").cloned() else {
        return Ok(Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Empty::new())
            .unwrap_or_default());
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", protocol)
        .body(Empty::new())
        .unwrap_or_default())
}
