//! The admin API of the control plane under test, as the benchmark uses it: whole-config
//! applies, one-route writes (timed from the request to the end of the answer) and the latest
//! revision.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;

/// The header every successful write answers with.
const REVISION_HEADER: &str = "x-gateway-revision";

#[derive(Clone)]
pub struct Admin {
    base: String,
    client: reqwest::Client,
}

/// One answer of the admin API.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The revision the write made (or the latest, when it changed nothing).
    pub revision: Option<u64>,
    pub body: String,
    /// From sending the request until the whole answer was read.
    pub elapsed: Duration,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The status and the start of the body, for error messages.
    pub fn describe(&self) -> String {
        let body: String = self.body.chars().take(300).collect();
        format!("{} {body}", self.status)
    }
}

/// The latest revision and the digest of its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub revision: u64,
    pub digest: String,
}

impl Admin {
    pub fn new(base: String, client: reqwest::Client) -> Admin {
        Admin { base, client }
    }

    pub async fn send(&self, method: Method, path: &str, body: Vec<u8>) -> anyhow::Result<Answer> {
        let started = Instant::now();
        let response = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let revision = response
            .headers()
            .get(REVISION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response
            .text()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        Ok(Answer {
            status,
            revision,
            body,
            elapsed: started.elapsed(),
        })
    }

    pub async fn put(&self, path: &str, body: Vec<u8>) -> anyhow::Result<Answer> {
        self.send(Method::PUT, path, body).await
    }

    pub async fn post(&self, path: &str, body: Vec<u8>) -> anyhow::Result<Answer> {
        self.send(Method::POST, path, body).await
    }

    pub async fn latest(&self) -> anyhow::Result<Latest> {
        let answer = self
            .send(Method::GET, "/v1/revisions?limit=1", Vec::new())
            .await?;
        if !answer.is_success() {
            bail!("GET /v1/revisions: {}", answer.describe());
        }
        let body: Value =
            serde_json::from_str(&answer.body).context("GET /v1/revisions: not JSON")?;
        let item = &body["items"][0];
        Ok(Latest {
            revision: item["revision"]
                .as_u64()
                .context("GET /v1/revisions: no revision")?,
            digest: item["digest"]
                .as_str()
                .context("GET /v1/revisions: no digest")?
                .to_owned(),
        })
    }
}
