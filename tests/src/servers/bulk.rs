//! A server for large bodies that never holds one in memory: `GET /bytes?n=N` streams N bytes
//! in 64 KiB chunks, and any request with a body is answered with the number of bytes it read
//! (`{"received": N}`), counted as they stream in.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const CHUNK: usize = 64 * 1024;

type BulkBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub struct BulkServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl BulkServer {
    pub async fn start() -> BulkServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind bulk server");
        let addr = listener.local_addr().expect("bulk server address");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .await;
                });
            }
        });
        BulkServer { addr, task }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for BulkServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<BulkBody>, Infallible> {
    let wanted = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("n="))
            .and_then(|n| n.parse::<usize>().ok())
    });
    if let Some(total) = wanted {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
        tokio::spawn(async move {
            let chunk = Bytes::from(vec![b'x'; CHUNK]);
            let mut left = total;
            while left > 0 {
                let n = left.min(CHUNK);
                if sender
                    .send(Ok(Frame::data(chunk.slice(..n))))
                    .await
                    .is_err()
                {
                    return;
                }
                left -= n;
            }
        });
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        return Ok(Response::new(body.boxed()));
    }
    let mut body = request.into_body();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => received += frame.data_ref().map_or(0, |d| d.len()),
            Err(_) => break,
        }
    }
    let document = format!("{{\"received\":{received}}}");
    Ok(Response::new(
        http_body_util::Full::new(Bytes::from(document))
            .map_err(|never| match never {})
            .boxed(),
    ))
}
