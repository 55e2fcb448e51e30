//! A WebSocket echo server (tokio-tungstenite): completes the opening handshake, sends every text
//! and binary message back as it came, answers pings with pongs and closing handshakes with a
//! close, so a test can check that the gateway carries a real WebSocket session both ways.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub struct WebSocketEchoServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl WebSocketEchoServer {
    pub async fn start() -> WebSocketEchoServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind WebSocket server");
        let addr = listener.local_addr().expect("WebSocket server address");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(echo(stream));
            }
        });
        WebSocketEchoServer { addr, task }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for WebSocketEchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(stream: TcpStream) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    // Pings and closes are answered by tungstenite itself while reading; the stream ends once
    // the closing handshake is complete.
    while let Some(Ok(message)) = socket.next().await {
        if matches!(message, Message::Text(_) | Message::Binary(_))
            && socket.send(message).await.is_err()
        {
            return;
        }
    }
}
