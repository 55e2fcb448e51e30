//! An echo server that can really go away: `kill` closes its listener and every open connection
//! (a plain aborted accept loop would leave pooled keep-alive connections answering), and
//! `restart` brings it back on the same address. Answers `{"server": name}` with `x-served-by`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

pub struct KillableServer {
    pub name: String,
    pub addr: SocketAddr,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl KillableServer {
    pub async fn start(name: &str) -> KillableServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind killable server");
        let addr = listener.local_addr().expect("killable server address");
        let server = KillableServer {
            name: name.to_owned(),
            addr,
            tasks: Arc::default(),
        };
        server.serve(listener);
        server
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let name = self.name.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let name = name.clone();
                let connection = tokio::spawn(async move {
                    let service = service_fn(move |request| answer(name.clone(), request));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(connection.abort_handle());
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(accept.abort_handle());
    }

    /// Closes the listener and every connection.
    pub fn kill(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    /// Listens again on the same address (retrying while the old socket is released).
    pub async fn restart(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => return self.serve(listener),
                Err(error) if tokio::time::Instant::now() > deadline => {
                    panic!("cannot listen on {} again: {error}", self.addr)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for KillableServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn answer(name: String, _: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = serde_json::json!({ "server": name }).to_string();
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("x-served-by", name)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default())
}
