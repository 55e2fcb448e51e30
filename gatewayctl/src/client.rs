//! A small typed client of the admin API.
//!
//! It knows the URL layout, pagination (`next_cursor`), the `x-gateway-revision` header, the
//! write preconditions (`If-Match`, `?dry_run=true`, `x-gateway-message`) and the error document, and sorts every failure into "the API refused" or "the API could not be
//! reached", the distinction the exit codes are built on. Bodies stay `serde_json::Value` so that
//! `-o json` shows exactly what the server sent.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use gateway_config::Kind;
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const REVISION_HEADER: &str = "x-gateway-revision";
const MESSAGE_HEADER: &str = "x-gateway-message";
/// Largest page the API hands out.
const MAX_PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid admin URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot read the CA file {path}: {reason}")]
    InvalidCa { path: String, reason: String },
    #[error("could not reach the admin API at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("{0}")]
    Api(ApiError),
    #[error("unexpected response from {url}: {reason}")]
    InvalidResponse { url: String, reason: String },
}

/// The admin API's refusal, from its `{"error": {...}}` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct ErrorDocument {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

impl ApiError {
    /// Reads an error response. A body that is not the API's error document (say, from a proxy in
    /// between) still yields an error naming the HTTP status.
    pub fn from_response(status: u16, body: &[u8]) -> ApiError {
        match serde_json::from_slice::<ErrorDocument>(body) {
            Ok(ErrorDocument { error }) => ApiError {
                status,
                code: error.code,
                message: error.message,
                field: error.field.filter(|f| !f.is_empty()),
                details: error.details,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let reason = StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("unknown status");
                let message = if text.is_empty() {
                    format!("HTTP {status} {reason}")
                } else {
                    let snippet: String = text.chars().take(200).collect();
                    format!("HTTP {status} {reason}: {snippet}")
                };
                ApiError {
                    status,
                    code: format!("http_{status}"),
                    message,
                    field: None,
                    details: Vec::new(),
                }
            }
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.message, self.code)?;
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.name) {
            (Some(kind), Some(name)) => write!(f, "{kind} \"{name}\": ")?,
            (Some(kind), None) => write!(f, "{kind}: ")?,
            (None, Some(name)) => write!(f, "\"{name}\": ")?,
            (None, None) => {}
        }
        if let Some(field) = self.field.as_deref().filter(|f| !f.is_empty()) {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The outcome of a successful write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// True when the request created the entity (201), false when it replaced or deleted one.
    pub created: bool,
    /// From the `x-gateway-revision` header.
    pub revision: Option<u64>,
    /// The resource as stored (for a dry run, the change report); `None` for a delete.
    pub body: Option<Value>,
    /// Where the request went, for error messages.
    pub url: String,
}

/// How a write is to be made; the default is a plain write with the server's message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Sent as `If-Match`: the write only happens while this is the latest revision.
    pub if_match: Option<u64>,
    /// Sent as `x-gateway-message`, the message of the revision the write makes.
    pub message: Option<String>,
    /// Sent as `?dry_run=true`: validate and report the changes, store nothing.
    pub dry_run: bool,
}

impl WriteOptions {
    fn query(&self) -> &'static [(&'static str, &'static str)] {
        if self.dry_run {
            &[("dry_run", "true")]
        } else {
            &[]
        }
    }
}

struct Reply {
    status: StatusCode,
    revision: Option<u64>,
    body: Vec<u8>,
    url: Url,
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

/// Makes ring the process-wide rustls provider; reqwest is built without one so that the build
/// needs no cmake. Calling it again is harmless.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// A client of the admin API at `admin_url`, sending `token`; with `ca_file`, the server's
    /// certificate must be signed by one of the PEM certificates in it (and by nothing else).
    pub fn new(
        admin_url: &str,
        token: Option<String>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Client, ClientError> {
        install_crypto_provider();
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: admin_url.to_owned(),
            reason,
        };
        let base = Url::parse(admin_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        if base.cannot_be_a_base() {
            return Err(invalid("not a base URL".into()));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("gatewayctl/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let unreadable = |reason: String| ClientError::InvalidCa {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| unreadable(error_chain(&e)))?;
            if certs.is_empty() {
                return Err(unreadable("holds no PEM certificate".into()));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| invalid(error_chain(&e)))?;
        Ok(Client { http, base, token })
    }

    /// `base` + `/v1/<segments...>`, each segment percent-encoded, keeping any path prefix the
    /// admin URL has (for an API behind a path-routing proxy).
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        options: Option<&WriteOptions>,
    ) -> Result<Reply, ClientError> {
        let mut request = self.http.request(method, url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(options) = options {
            if let Some(revision) = options.if_match {
                request = request.header(reqwest::header::IF_MATCH, revision.to_string());
            }
            if let Some(message) = &options.message {
                request = request.header(MESSAGE_HEADER, message.as_str());
            }
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: url.to_string(),
            cause: error_chain(&e.without_url()),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let revision = response
            .headers()
            .get(REVISION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = response.bytes().await.map_err(unreachable)?.to_vec();
        if !status.is_success() {
            return Err(ClientError::Api(ApiError::from_response(
                status.as_u16(),
                &body,
            )));
        }
        Ok(Reply {
            status,
            revision,
            body,
            url,
        })
    }

    async fn get_json(&self, url: Url) -> Result<Value, ClientError> {
        let reply = self.send(Method::GET, url, None, None).await?;
        reply.json()
    }

    /// `GET /v1/<kind>s/<name>`.
    pub async fn get(&self, kind: Kind, name: &str) -> Result<Value, ClientError> {
        let url = self.url(&[collection(kind), name], &[]);
        self.get_json(url).await
    }

    /// Every entity of a kind, following `next_cursor` to the last page.
    pub async fn list(&self, kind: Kind, tag: Option<&str>) -> Result<Vec<Value>, ClientError> {
        let page = self.pages(&[collection(kind)], tag, None).await?;
        Ok(page.items)
    }

    /// `GET /v1/revisions`, newest first: at most `limit` of them, or all.
    pub async fn revisions(&self, limit: Option<u32>) -> Result<Value, ClientError> {
        let page = self.pages(&["revisions"], None, limit).await?;
        Ok(page.into_document())
    }

    /// `GET /v1/nodes`, the whole document.
    pub async fn nodes(&self) -> Result<Value, ClientError> {
        let url = self.url(&["nodes"], &[]);
        self.get_json(url).await
    }

    /// `GET /v1/tokens`, the whole document.
    pub async fn tokens(&self) -> Result<Value, ClientError> {
        let url = self.url(&["tokens"], &[]);
        self.get_json(url).await
    }

    /// `POST /v1/tokens`: the new token, with its secret.
    pub async fn create_token(&self, body: &Value) -> Result<Value, ClientError> {
        let url = self.url(&["tokens"], &[]);
        let body = serde_json::to_vec(body).map_err(|e| ClientError::InvalidResponse {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        self.send(Method::POST, url, Some(body), None).await?.json()
    }

    /// `DELETE /v1/tokens/<name>`.
    pub async fn revoke_token(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&["tokens", name], &[]);
        self.send(Method::DELETE, url, None, None).await?;
        Ok(())
    }

    /// Reads pages until there is no `next_cursor` or `limit` items are collected. Each request
    /// asks for no more than is still wanted, so the last cursor stays exact.
    async fn pages(
        &self,
        segments: &[&str],
        tag: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Collected, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let wanted = match limit {
                Some(limit) => {
                    let left = usize::try_from(limit)
                        .unwrap_or(usize::MAX)
                        .saturating_sub(items.len());
                    if left == 0 {
                        break;
                    }
                    u32::try_from(left).unwrap_or(MAX_PAGE).min(MAX_PAGE)
                }
                None => MAX_PAGE,
            };
            let wanted = wanted.to_string();
            let mut query = vec![("limit", wanted.as_str())];
            if let Some(tag) = tag {
                query.push(("tag", tag));
            }
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.as_str()));
            }
            let url = self.url(segments, &query);
            let reply = self.send(Method::GET, url, None, None).await?;
            let page: Page = reply.parse()?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if !next.is_empty() => {
                    // A server that hands out the same cursor twice would loop forever.
                    if !seen.insert(next.clone()) {
                        return Err(ClientError::InvalidResponse {
                            url: reply.url.to_string(),
                            reason: format!("cursor `{next}` was returned twice"),
                        });
                    }
                    cursor = Some(next);
                }
                _ => {
                    cursor = None;
                    break;
                }
            }
        }
        Ok(Collected {
            items,
            next_cursor: cursor,
        })
    }

    /// `GET /v1/config`: the whole running configuration, `{"upstreams": [...], "routes": [...]}`,
    /// and the revision it is (from `x-gateway-revision`).
    pub async fn config(&self) -> Result<(Value, Option<u64>), ClientError> {
        let url = self.url(&["config"], &[]);
        let reply = self.send(Method::GET, url, None, None).await?;
        Ok((reply.json()?, reply.revision))
    }

    /// `GET /v1/revisions/<n>`: one revision's record and its whole configuration.
    pub async fn revision(&self, revision: u64) -> Result<Value, ClientError> {
        let url = self.url(&["revisions", &revision.to_string()], &[]);
        self.get_json(url).await
    }

    /// `GET /v1/revisions/<a>/diff/<b>`: the changes that turn config `a` into config `b`.
    pub async fn revision_diff(&self, from: u64, to: u64) -> Result<Value, ClientError> {
        let url = self.url(
            &["revisions", &from.to_string(), "diff", &to.to_string()],
            &[],
        );
        self.get_json(url).await
    }

    /// `POST /v1/<kind>s`.
    pub async fn create<T: Serialize>(
        &self,
        kind: Kind,
        body: &T,
        options: &WriteOptions,
    ) -> Result<Written, ClientError> {
        let url = self.url(&[collection(kind)], options.query());
        self.write(Method::POST, url, Some(body), options).await
    }

    /// `PUT /v1/<kind>s/<name>`: replaces, or creates when absent.
    pub async fn replace<T: Serialize>(
        &self,
        kind: Kind,
        name: &str,
        body: &T,
        options: &WriteOptions,
    ) -> Result<Written, ClientError> {
        let url = self.url(&[collection(kind), name], options.query());
        self.write(Method::PUT, url, Some(body), options).await
    }

    /// `DELETE /v1/<kind>s/<name>`.
    pub async fn delete(
        &self,
        kind: Kind,
        name: &str,
        options: &WriteOptions,
    ) -> Result<Written, ClientError> {
        let url = self.url(&[collection(kind), name], options.query());
        self.write::<()>(Method::DELETE, url, None, options).await
    }

    /// `PUT /v1/config`: makes the whole configuration equal to `config`, as one revision.
    /// Answers `{"revision", "changed", "changes"}` (plus `"dry_run": true` for a dry run).
    pub async fn apply_config(
        &self,
        config: &Value,
        options: &WriteOptions,
    ) -> Result<Value, ClientError> {
        let url = self.url(&["config"], options.query());
        self.write(Method::PUT, url, Some(config), options)
            .await?
            .into_document()
    }

    /// `POST /v1/revisions/<n>/rollback`: makes the configuration equal to the one at `n`, as
    /// one new revision. Answers like [`Client::apply_config`].
    pub async fn rollback(
        &self,
        revision: u64,
        options: &WriteOptions,
    ) -> Result<Value, ClientError> {
        let url = self.url(
            &["revisions", &revision.to_string(), "rollback"],
            options.query(),
        );
        self.write::<()>(Method::POST, url, None, options)
            .await?
            .into_document()
    }

    async fn write<T: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&T>,
        options: &WriteOptions,
    ) -> Result<Written, ClientError> {
        let bytes = match body {
            Some(body) => {
                Some(
                    serde_json::to_vec(body).map_err(|e| ClientError::InvalidResponse {
                        url: url.to_string(),
                        reason: format!("cannot encode the request body: {e}"),
                    })?,
                )
            }
            None => None,
        };
        let reply = self.send(method, url, bytes, Some(options)).await?;
        let created = reply.status == StatusCode::CREATED;
        let revision = reply.revision;
        let body = if reply.body.is_empty() {
            None
        } else {
            Some(reply.json()?)
        };
        Ok(Written {
            created,
            revision,
            body,
            url: reply.url.to_string(),
        })
    }
}

impl Written {
    /// The response document of a write that must answer with one.
    fn into_document(self) -> Result<Value, ClientError> {
        self.body.ok_or_else(|| ClientError::InvalidResponse {
            url: self.url,
            reason: "the response has no body".into(),
        })
    }
}

impl Reply {
    fn json(&self) -> Result<Value, ClientError> {
        self.parse()
    }

    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::InvalidResponse {
            url: self.url.to_string(),
            reason: format!("the body is not the expected JSON: {e}"),
        })
    }
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Value>,
    #[serde(default)]
    next_cursor: Option<String>,
}

struct Collected {
    items: Vec<Value>,
    next_cursor: Option<String>,
}

impl Collected {
    fn into_document(self) -> Value {
        serde_json::json!({ "items": self.items, "next_cursor": self.next_cursor })
    }
}

fn collection(kind: Kind) -> &'static str {
    match kind {
        Kind::Upstream => "upstreams",
        Kind::Route => "routes",
        Kind::Certificate => "certificates",
    }
}

/// An error and its causes on one line; reqwest's own message alone ("error sending request")
/// does not say why.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_error_document() {
        let body =
            br#"{"error": {"code": "unknown_reference", "message": "upstream `x` does not exist",
            "field": "backends[0].upstream",
            "details": [{"kind": "route", "name": "web", "field": "backends[0].upstream",
                         "message": "upstream `x` does not exist"}]}}"#;
        let error = ApiError::from_response(422, body);
        assert_eq!(error.status, 422);
        assert_eq!(error.code, "unknown_reference");
        assert_eq!(error.field.as_deref(), Some("backends[0].upstream"));
        assert_eq!(
            error.to_string(),
            "upstream `x` does not exist (unknown_reference, field backends[0].upstream)"
        );
        assert_eq!(error.details.len(), 1);
        assert_eq!(
            error.details[0].to_string(),
            "route \"web\": backends[0].upstream: upstream `x` does not exist"
        );
    }

    #[test]
    fn error_without_field_or_details() {
        let body = br#"{"error": {"code": "not_found", "message": "upstream `api` not found", "field": null}}"#;
        let error = ApiError::from_response(404, body);
        assert_eq!(error.to_string(), "upstream `api` not found (not_found)");
        assert!(error.details.is_empty());
    }

    #[test]
    fn error_body_that_is_not_the_api_document() {
        let error = ApiError::from_response(502, b"<html>Bad Gateway</html>");
        assert_eq!(error.code, "http_502");
        assert_eq!(
            error.message,
            "HTTP 502 Bad Gateway: <html>Bad Gateway</html>"
        );
        let error = ApiError::from_response(503, b"");
        assert_eq!(error.message, "HTTP 503 Service Unavailable");
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_names() {
        let client = Client::new("http://cp:8001/gw/", None, None).unwrap();
        let url = client.url(&["upstreams", "a b/c"], &[("tag", "x&y")]);
        assert_eq!(
            url.as_str(),
            "http://cp:8001/gw/v1/upstreams/a%20b%2Fc?tag=x%26y"
        );
        let client = Client::new("http://cp:8001", None, None).unwrap();
        assert_eq!(
            client.url(&["nodes"], &[]).as_str(),
            "http://cp:8001/v1/nodes"
        );
    }

    #[test]
    fn dry_runs_add_the_query() {
        let client = Client::new("http://cp:8001", None, None).unwrap();
        let dry = WriteOptions {
            dry_run: true,
            ..WriteOptions::default()
        };
        assert_eq!(
            client.url(&["config"], dry.query()).as_str(),
            "http://cp:8001/v1/config?dry_run=true"
        );
        assert_eq!(
            client
                .url(
                    &["revisions", "4", "rollback"],
                    WriteOptions::default().query()
                )
                .as_str(),
            "http://cp:8001/v1/revisions/4/rollback"
        );
    }

    #[test]
    fn rejects_unusable_admin_urls() {
        assert!(matches!(
            Client::new("cp:8001", None, None),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Client::new("ftp://cp", None, None),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Client::new("not a url", None, None),
            Err(ClientError::InvalidUrl { .. })
        ));
    }
}
