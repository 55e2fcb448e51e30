//! Errors the proxy answers itself, each with a fixed status, a code for logs and metrics, and a
//! static JSON body so that answering costs no allocation; and how any error is written in a log
//! line, with its sources.

use std::error::Error as StdError;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("the worker has not received a configuration yet")]
    NoConfig,
    #[error("no route matches the request")]
    NoRoute,
    #[error("conflicting Content-Length or Transfer-Encoding headers")]
    BadFraming,
    #[error("the request uses a transfer coding the worker does not decode")]
    UnsupportedCoding,
    #[error("the request body is malformed")]
    BadBody,
    #[error("the client stopped sending its request body")]
    BodyTimeout,
    #[error("the request needs exactly one valid Host header")]
    BadHost,
    #[error("the request cannot be forwarded")]
    InvalidRequest,
    #[error("the upstream could not be reached")]
    UpstreamUnavailable,
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    #[error("no target of the upstream is healthy")]
    NoHealthyTarget,
    #[error("the upstream is at its connection or request limit")]
    CircuitOpen,
    #[error("the client's address may not use this route")]
    AddressRefused,
    #[error("the request body is larger than this route takes")]
    BodyTooLarge,
}

impl ProxyError {
    pub fn status(self) -> StatusCode {
        match self {
            ProxyError::NoConfig => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::BadFraming
            | ProxyError::BadHost
            | ProxyError::InvalidRequest
            | ProxyError::BadBody => StatusCode::BAD_REQUEST,
            ProxyError::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
            ProxyError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::NoHealthyTarget | ProxyError::CircuitOpen => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::AddressRefused => StatusCode::FORBIDDEN,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ProxyError::NoConfig => "no_config",
            ProxyError::NoRoute => "no_route",
            ProxyError::BadFraming
            | ProxyError::BadHost
            | ProxyError::InvalidRequest
            | ProxyError::BadBody => "bad_request",
            ProxyError::UnsupportedCoding => "unsupported_transfer_coding",
            ProxyError::BodyTimeout => "request_timeout",
            ProxyError::UpstreamUnavailable => "upstream_unavailable",
            ProxyError::UpstreamTimeout => "upstream_timeout",
            ProxyError::NoHealthyTarget => "no_healthy_target",
            ProxyError::CircuitOpen => "circuit_open",
            ProxyError::AddressRefused => "address_refused",
            ProxyError::BodyTooLarge => "body_too_large",
        }
    }

    pub fn body(self) -> &'static str {
        match self {
            ProxyError::NoConfig => {
                r#"{"error":{"code":"no_config","message":"the worker has not received a configuration yet"}}"#
            }
            ProxyError::NoRoute => {
                r#"{"error":{"code":"no_route","message":"no route matches the request"}}"#
            }
            ProxyError::BadFraming => {
                r#"{"error":{"code":"bad_request","message":"conflicting Content-Length or Transfer-Encoding headers"}}"#
            }
            ProxyError::UnsupportedCoding => {
                r#"{"error":{"code":"unsupported_transfer_coding","message":"the request uses a transfer coding the worker does not decode"}}"#
            }
            ProxyError::BadBody => {
                r#"{"error":{"code":"bad_request","message":"the request body is malformed"}}"#
            }
            ProxyError::BodyTimeout => {
                r#"{"error":{"code":"request_timeout","message":"the client stopped sending its request body"}}"#
            }
            ProxyError::BadHost => {
                r#"{"error":{"code":"bad_request","message":"the request needs exactly one valid Host header"}}"#
            }
            ProxyError::InvalidRequest => {
                r#"{"error":{"code":"bad_request","message":"the request cannot be forwarded"}}"#
            }
            ProxyError::UpstreamUnavailable => {
                r#"{"error":{"code":"upstream_unavailable","message":"the upstream could not be reached"}}"#
            }
            ProxyError::UpstreamTimeout => {
                r#"{"error":{"code":"upstream_timeout","message":"the upstream did not answer in time"}}"#
            }
            ProxyError::NoHealthyTarget => {
                r#"{"error":{"code":"no_healthy_target","message":"no target of the upstream is healthy"}}"#
            }
            ProxyError::CircuitOpen => {
                r#"{"error":{"code":"circuit_open","message":"the upstream is at its connection or request limit"}}"#
            }
            ProxyError::AddressRefused => {
                r#"{"error":{"code":"address_refused","message":"the client's address may not use this route"}}"#
            }
            ProxyError::BodyTooLarge => {
                r#"{"error":{"code":"body_too_large","message":"the request body is larger than this route takes"}}"#
            }
        }
    }

    /// Whether the rest of the connection can no longer be read: where the request's body ends
    /// is unknown.
    pub fn loses_framing(self) -> bool {
        matches!(
            self,
            ProxyError::BadFraming
                | ProxyError::UnsupportedCoding
                | ProxyError::BadBody
                | ProxyError::BodyTimeout
                | ProxyError::BodyTooLarge
        )
    }

    /// The gRPC status of this error, for a gRPC client: UNIMPLEMENTED for no route, UNAVAILABLE
    /// for an upstream that cannot take the request, DEADLINE_EXCEEDED for a timeout, INTERNAL
    /// for a request the worker refused (the codes Envoy uses for the same answers).
    pub fn grpc_status(self) -> (&'static str, &'static str) {
        match self {
            ProxyError::NoRoute => ("12", "no route matches the request"),
            ProxyError::NoConfig => ("14", "the gateway has no configuration yet"),
            ProxyError::UpstreamUnavailable => ("14", "the upstream could not be reached"),
            ProxyError::NoHealthyTarget => ("14", "no target of the upstream is healthy"),
            ProxyError::CircuitOpen => ("14", "the upstream is at its connection or request limit"),
            ProxyError::UpstreamTimeout => ("4", "the upstream did not answer in time"),
            ProxyError::BodyTimeout => ("4", "the client stopped sending its request"),
            ProxyError::AddressRefused => ("7", "the client's address may not use this route"),
            ProxyError::BodyTooLarge => ("8", "the request is larger than this route takes"),
            ProxyError::BadFraming
            | ProxyError::UnsupportedCoding
            | ProxyError::BadBody
            | ProxyError::BadHost
            | ProxyError::InvalidRequest => ("13", "the gateway refused the request"),
        }
    }

    /// The answer to a gRPC client: HTTP 200 with only headers (a gRPC "trailers-only"
    /// response) carrying `grpc-status` and `grpc-message`.
    pub fn grpc_response(self) -> Response<Full<Bytes>> {
        let (status, message) = self.grpc_status();
        let mut response = Response::new(Full::new(Bytes::new()));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from_static(status));
        headers.insert("grpc-message", HeaderValue::from_static(message));
        response
    }

    /// The answer to the client.
    pub fn response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from_static(self.body().as_bytes())));
        *response.status_mut() = self.status();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

#[cfg(test)]
impl ProxyError {
    /// Every error.
    pub const ALL: [ProxyError; 14] = [
        ProxyError::NoConfig,
        ProxyError::NoRoute,
        ProxyError::BadFraming,
        ProxyError::UnsupportedCoding,
        ProxyError::BadBody,
        ProxyError::BodyTimeout,
        ProxyError::BadHost,
        ProxyError::InvalidRequest,
        ProxyError::UpstreamUnavailable,
        ProxyError::UpstreamTimeout,
        ProxyError::NoHealthyTarget,
        ProxyError::CircuitOpen,
        ProxyError::AddressRefused,
        ProxyError::BodyTooLarge,
    ];
}

/// An error with its sources, `outer: inner: innermost`.
pub struct DisplayChain<'a>(pub &'a (dyn StdError + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_with_their_code() {
        for error in ProxyError::ALL {
            let json: serde_json::Value = serde_json::from_str(error.body()).unwrap();
            assert_eq!(json["error"]["code"], error.code());
            assert_eq!(json["error"]["message"], error.to_string());
            assert_eq!(error.response().status(), error.status());
        }
    }
}
