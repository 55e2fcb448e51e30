//! A gRPC upstream speaking h2c: the `gateway.test.echo.v1.Echo` service of
//! `tests/proto/echo.proto`, with a unary call, a server stream, a client stream, a bidirectional
//! stream and a call that always fails with custom trailing metadata, so a test can check that
//! every kind of call, its trailers and its status pass through the gateway unchanged.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status, Streaming};

/// The generated messages, server and client of `echo.proto`.
#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("gateway.test.echo.v1");
}

use proto::echo_server::{Echo, EchoServer};
use proto::{
    ChatMessage, CountReply, CountRequest, EchoReply, EchoRequest, FailRequest, SumReply,
    SumRequest,
};

pub use proto::echo_client::EchoClient;

/// Name of the text trailing metadata a failed call carries.
pub const DETAIL: &str = "x-detail";
/// Name of the binary trailing metadata a failed call carries.
pub const BINARY_DETAIL: &str = "x-detail-bin";

pub struct GrpcEchoServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl GrpcEchoServer {
    pub async fn start() -> GrpcEchoServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind gRPC server");
        let addr = listener.local_addr().expect("gRPC server address");
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(EchoServer::new(Service))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
            if let Err(error) = served {
                eprintln!("gRPC test server stopped: {error}");
            }
        });
        GrpcEchoServer { addr, task }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for GrpcEchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Service;

type Replies<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn header(request_metadata: &MetadataMap, name: &str) -> String {
    request_metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tonic::async_trait]
impl Echo for Service {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let te = header(request.metadata(), "te");
        let via = header(request.metadata(), "via");
        Ok(Response::new(EchoReply {
            text: request.into_inner().text,
            te,
            via,
        }))
    }

    type CountStream = Replies<CountReply>;

    async fn count(
        &self,
        request: Request<CountRequest>,
    ) -> Result<Response<Self::CountStream>, Status> {
        let CountRequest {
            count,
            interval_ms,
            fail,
        } = request.into_inner();
        let end = match fail {
            Some(fail) => Some(Err(failure(fail)?)),
            None => None,
        };
        let interval = Duration::from_millis(u64::from(interval_ms));
        let replies = futures_util::stream::iter(1..=count)
            .then(move |number| async move {
                if number > 1 && !interval.is_zero() {
                    // Pacing, so that a stream can outlast the gateway's timeouts.
                    tokio::time::sleep(interval).await;
                }
                Ok(CountReply { number })
            })
            .chain(futures_util::stream::iter(end));
        Ok(Response::new(Box::pin(replies)))
    }

    async fn sum(
        &self,
        request: Request<Streaming<SumRequest>>,
    ) -> Result<Response<SumReply>, Status> {
        let mut numbers = request.into_inner();
        let mut reply = SumReply::default();
        while let Some(SumRequest { number }) = numbers.message().await? {
            reply.total += number;
            reply.count += 1;
        }
        Ok(Response::new(reply))
    }

    type ChatStream = Replies<ChatMessage>;

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let replies = request.into_inner().map(|message| {
            message.map(|m| ChatMessage {
                text: m.text.chars().rev().collect(),
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn fail(&self, request: Request<FailRequest>) -> Result<Response<EchoReply>, Status> {
        Err(failure(request.into_inner())?)
    }
}

/// The status a [`FailRequest`] asks for, with its details and trailing metadata; an `Err` when
/// the request itself is unusable.
fn failure(request: FailRequest) -> Result<Status, Status> {
    let FailRequest {
        code,
        message,
        detail,
        binary_detail,
    } = request;
    let mut metadata = MetadataMap::new();
    let text = detail
        .parse()
        .map_err(|_| Status::invalid_argument("detail is not valid metadata"))?;
    metadata.insert(DETAIL, text);
    metadata.insert_bin(BINARY_DETAIL, MetadataValue::from_bytes(&binary_detail));
    Ok(Status::with_details_and_metadata(
        Code::from(code),
        message,
        binary_detail.into(),
        metadata,
    ))
}

/// Through `client`: a server stream of `count` messages arrives whole, in order, with OK
/// trailers.
pub async fn check_server_stream(client: &mut EchoClient<tonic::transport::Channel>, count: u32) {
    let mut stream = client
        .count(CountRequest {
            count,
            interval_ms: 0,
            fail: None,
        })
        .await
        .expect("the call starts")
        .into_inner();
    let mut numbers = Vec::new();
    while let Some(message) = stream.message().await.expect("a message") {
        numbers.push(message.number);
    }
    assert_eq!(numbers, (1..=count).collect::<Vec<_>>());
    assert!(
        stream.trailers().await.expect("trailers").is_some(),
        "OK trailers"
    );
}

/// Through `client`: a bidirectional stream of `messages` messages, interleaved (each answer
/// arrives before the next message is sent), that ends OK.
pub async fn check_chat(client: &mut EchoClient<tonic::transport::Channel>, messages: usize) {
    let (outbound, requests) = tokio::sync::mpsc::channel(1);
    let mut answers = client
        .chat(tokio_stream::wrappers::ReceiverStream::new(requests))
        .await
        .expect("the call starts")
        .into_inner();
    for i in 0..messages {
        let text = format!("message {i}");
        outbound
            .send(ChatMessage { text: text.clone() })
            .await
            .expect("the call is open");
        let answer = tokio::time::timeout(Duration::from_secs(10), answers.message())
            .await
            .unwrap_or_else(|_| panic!("no answer to {text:?}"))
            .expect("an answer")
            .expect("an answer, not the end");
        assert_eq!(answer.text, text.chars().rev().collect::<String>());
    }
    drop(outbound);
    assert!(
        answers.message().await.expect("the end").is_none(),
        "the chat ends OK"
    );
}
