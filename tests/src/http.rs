//! HTTP helpers for the admin API and for traffic through the workers.

use std::time::Duration;

use serde_json::Value;

use crate::topology::Worker;

/// A reqwest client for tests; one per test is enough.
pub fn client() -> reqwest::Client {
    // reqwest is built without a default TLS provider; the tests speak plain HTTP on loopback but the
    // client still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("http client")
}

/// A response reduced to what tests look at.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error.code` of an error body.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The upstream server that answered (from the echo body).
    pub fn server(&self) -> &str {
        self.body["server"].as_str().unwrap_or("")
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Result<Reply, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .map_err(|e| format!("reading body: {e}"))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        headers,
        body,
        text,
    })
}

/// Admin API calls against one control plane.
pub struct Admin {
    pub url: String,
    pub client: reqwest::Client,
}

impl Admin {
    pub fn new(url: &str) -> Admin {
        Admin {
            url: url.to_owned(),
            client: client(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.try_get(path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn try_get(&self, path: &str) -> Result<Reply, String> {
        send(self.client.get(format!("{}{path}", self.url))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.raw("POST", path, body.to_string()).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.raw("PUT", path, body.to_string()).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        let request = self.client.delete(format!("{}{path}", self.url));
        send(request)
            .await
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}"))
    }

    /// Sends a body as given, malformed or not.
    pub async fn raw(&self, method: &str, path: &str, body: String) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let request = self
            .client
            .request(method.clone(), format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        send(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// The newest revision number, from `GET /v1/revisions`.
    pub async fn latest_revision(&self) -> u64 {
        let reply = self.get("/v1/nodes").await;
        reply.body["latest_revision"].as_u64().unwrap_or(0)
    }

    pub async fn revision_count(&self) -> usize {
        let reply = self.get("/v1/revisions?limit=1000").await;
        reply.body["items"].as_array().map_or(0, Vec::len)
    }
}

/// The revision a worker reports on its status port.
pub async fn worker_revision(client: &reqwest::Client, worker: &Worker) -> Result<u64, String> {
    let reply = send(client.get(worker.status_url("/status"))).await?;
    reply.body["applied_revision"]
        .as_u64()
        .ok_or_else(|| format!("no applied_revision in {}", reply.text))
}

/// One HTTP/1.1 keep-alive connection that is never replaced: if the peer closes or resets it,
/// every later request fails, which is what the no-dropped-connection tests look for.
pub struct KeptConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    host: String,
}

impl KeptConnection {
    pub async fn open(addr: std::net::SocketAddr) -> KeptConnection {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to worker");
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("handshake");
        tokio::spawn(connection);
        KeptConnection {
            sender,
            host: addr.to_string(),
        }
    }

    /// A GET on this connection. `Err` only when the connection itself failed.
    pub async fn get(&mut self, path: &str) -> Result<Reply, String> {
        use http_body_util::BodyExt;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        let request = http::Request::get(path)
            .header("host", &self.host)
            .body(http_body_util::Empty::new())
            .map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        let status = response.status().as_u16();
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in response.headers() {
            headers.append(name.clone(), value.clone());
        }
        if headers
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
        {
            return Err("the worker asked to close the connection".into());
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("connection lost while reading the body: {e}"))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
            text,
        })
    }
}

/// The value of one sample in a Prometheus text page, e.g.
/// `metric(&text, "config_pushes_total{kind=\"full\"}")`. Absent samples read as 0.
pub fn metric(page: &str, sample: &str) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Fetches a Prometheus text page.
pub async fn metrics_page(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let reply = send(client.get(url)).await?;
    if reply.status == 200 {
        Ok(reply.text)
    } else {
        Err(format!("{} {}", reply.status, reply.text))
    }
}
