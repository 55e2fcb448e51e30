//! Who is calling: every request but the probes needs `Authorization: Bearer <token>` once any
//! token exists, and the token's role must allow what the request does (reads: `viewer`; config
//! writes: `editor`; `/v1/tokens`: `admin`). A missing, unknown or expired token is 401 with
//! `WWW-Authenticate`, a role that may not is 403, and an address past its failed attempts is
//! 429. The caller (token and client address) goes to the handlers as [`Caller`], so that every
//! revision records the token's name as its actor.
//!
//! Until the first token exists the API is open; it then only listens on loopback (the flags'
//! checks make sure of that).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::{AppState, OpenEndpoints};
use crate::store::now_ms;
use crate::tokens::{Known, Lookup, Role, secret};

/// The `realm` of every `WWW-Authenticate` challenge.
const REALM: &str = "gateway-admin";

/// The caller of a request, as the handlers see it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The token the request came with; `None` while the API is open.
    pub token: Option<Arc<Known>>,
    /// The client's address, when the listener knows it.
    pub client: Option<SocketAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The role a request needs, or `None` when it needs no token.
fn needed_role(method: &Method, path: &str, open: OpenEndpoints) -> Option<Role> {
    match path {
        "/healthz" | "/readyz" => return None,
        "/metrics" | "/openapi.json" if open == OpenEndpoints::ProbesMetricsAndSchema => {
            return None;
        }
        _ => {}
    }
    if path == "/v1/tokens" || path.starts_with("/v1/tokens/") {
        return Some(Role::Admin);
    }
    if *method == Method::GET || *method == Method::HEAD {
        Some(Role::Viewer)
    } else {
        Some(Role::Editor)
    }
}

/// The middleware.
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let Some(needed) = needed_role(request.method(), request.uri().path(), state.open_endpoints)
    else {
        return next.run(request).await;
    };
    let tokens = &state.tokens;
    if !tokens.required() {
        request.extensions_mut().insert(Caller {
            token: None,
            client,
        });
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    // Owned, so that no borrow of the request (whose body is not `Sync`) is held across awaits.
    let authorization: Vec<HeaderValue> = request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .cloned()
        .collect();
    let known = match authenticate(&state, &authorization, client).await {
        Ok(known) => known,
        Err(refusal) => {
            if refusal.counts_as_failure() {
                tracing::warn!(
                    client = %client.map_or_else(|| "-".to_owned(), |c| c.ip().to_string()),
                    method = %request.method(),
                    path = %path,
                    reason = refusal.reason(),
                    "admin API authentication failed"
                );
            }
            return refusal.into_response();
        }
    };
    if !known.role.allows(needed) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token `{}` has the role {}; {} {path} needs {} or above",
                known.name,
                known.role.as_str(),
                request.method(),
                needed.as_str()
            ),
        )
        .into_response();
    }
    request.extensions_mut().insert(Caller {
        token: Some(known),
        client,
    });
    next.run(request).await
}

/// Why a request was not let in.
#[derive(Debug)]
enum Refusal {
    Missing,
    Malformed,
    Unknown,
    Expired(String),
    TooManyFailures(u64),
    Unavailable(String),
}

impl Refusal {
    fn counts_as_failure(&self) -> bool {
        matches!(
            self,
            Refusal::Malformed | Refusal::Unknown | Refusal::Expired(_)
        )
    }

    fn reason(&self) -> &'static str {
        match self {
            Refusal::Missing => "no token",
            Refusal::Malformed => "malformed Authorization header",
            Refusal::Unknown => "unknown token",
            Refusal::Expired(_) => "expired token",
            Refusal::TooManyFailures(_) => "too many failed attempts",
            Refusal::Unavailable(_) => "database unavailable",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let challenge = |error: Option<&str>| {
            let value = match error {
                None => format!("Bearer realm=\"{REALM}\""),
                Some(error) => format!("Bearer realm=\"{REALM}\", error=\"{error}\""),
            };
            HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer"))
        };
        let (error, challenge) = match self {
            Refusal::Missing => (
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this endpoint needs a token: send `Authorization: Bearer <token>`",
                ),
                Some(challenge(None)),
            ),
            Refusal::Malformed => (
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "the Authorization header is not `Bearer <token>`",
                )
                .with_field("Authorization"),
                Some(challenge(Some("invalid_request"))),
            ),
            Refusal::Unknown => (
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "the token is not valid (unknown or revoked)",
                )
                .with_field("Authorization"),
                Some(challenge(Some("invalid_token"))),
            ),
            Refusal::Expired(name) => (
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    format!("token `{name}` has expired"),
                )
                .with_field("Authorization"),
                Some(challenge(Some("invalid_token"))),
            ),
            Refusal::TooManyFailures(seconds) => {
                let error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_failed_attempts",
                    format!(
                        "too many failed authentication attempts from this address; \
                         try again in {seconds} s"
                    ),
                );
                let mut response = error.into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                return response;
            }
            Refusal::Unavailable(message) => (ApiError::database_unavailable(message), None),
        };
        let mut response = error.into_response();
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

async fn authenticate(
    state: &AppState,
    authorization: &[HeaderValue],
    client: Option<SocketAddr>,
) -> Result<Arc<Known>, Refusal> {
    let value = match authorization {
        [] => return Err(Refusal::Missing),
        [value] => value,
        _ => return Err(Refusal::Malformed),
    };
    let secret = bearer(value).ok_or(Refusal::Malformed)?;
    let tokens = &state.tokens;
    let now = now_ms();
    let lookup = match tokens.lookup_known(secret, now) {
        Some(lookup) => lookup,
        None => {
            let started = Instant::now();
            if let Some(address) = client.map(|c| c.ip())
                && let Some(wait) = tokens.attempts().blocked_for(address, started)
            {
                return Err(Refusal::TooManyFailures(wait.as_secs().max(1)));
            }
            tokens
                .lookup_stored(secret, now)
                .await
                .map_err(|e| Refusal::Unavailable(e.to_string()))?
        }
    };
    let refusal = match lookup {
        Lookup::Valid(known) => return Ok(known),
        Lookup::Expired(name) => Refusal::Expired(name),
        Lookup::Unknown => Refusal::Unknown,
    };
    if let Some(client) = client {
        tokens.attempts().failed(client.ip(), Instant::now());
    }
    Err(refusal)
}

/// The secret of `Bearer <secret>` (the scheme in any case, RFC 9110 §11.1).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, secret) = text.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && !secret.is_empty()
        && secret.len() <= secret::MAX_LEN
        && secret.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_needed_by_method_and_path() {
        let open = OpenEndpoints::ProbesMetricsAndSchema;
        assert_eq!(needed_role(&Method::GET, "/healthz", open), None);
        assert_eq!(needed_role(&Method::GET, "/metrics", open), None);
        assert_eq!(
            needed_role(&Method::GET, "/metrics", OpenEndpoints::Probes),
            Some(Role::Viewer)
        );
        assert_eq!(
            needed_role(&Method::GET, "/openapi.json", OpenEndpoints::Probes),
            Some(Role::Viewer)
        );
        assert_eq!(
            needed_role(&Method::GET, "/v1/routes", open),
            Some(Role::Viewer)
        );
        assert_eq!(
            needed_role(&Method::PUT, "/v1/config", open),
            Some(Role::Editor)
        );
        assert_eq!(
            needed_role(&Method::POST, "/v1/revisions/3/rollback", open),
            Some(Role::Editor)
        );
        assert_eq!(
            needed_role(&Method::GET, "/v1/tokens", open),
            Some(Role::Admin)
        );
        assert_eq!(
            needed_role(&Method::DELETE, "/v1/tokens/ci", open),
            Some(Role::Admin)
        );
        assert_eq!(
            needed_role(&Method::GET, "/v1/tokensx", open),
            Some(Role::Viewer)
        );
    }

    #[test]
    fn bearer_values() {
        let secret = |text: &str| bearer(&HeaderValue::from_str(text).ok()?).map(str::to_owned);
        assert_eq!(secret("Bearer gwt_abc").as_deref(), Some("gwt_abc"));
        assert_eq!(secret("bearer gwt_abc").as_deref(), Some("gwt_abc"));
        assert_eq!(secret("Basic dXNlcjpwYXNz"), None);
        assert_eq!(secret("Bearer "), None);
        assert_eq!(secret("Bearer a b"), None);
        assert_eq!(secret("Bearergwt_abc"), None);
        assert_eq!(secret(&format!("Bearer {}", "x".repeat(300))), None);
    }
}
