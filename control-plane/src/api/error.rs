//! The admin API's error responses: always JSON, with a stable `code` that scripts can match on.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gateway_config::{ErrorKind, FieldError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// One problem of a rejected request, as listed in `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Detail {
    /// `upstream`, `route`, or `config` for the document as a whole.
    #[schema(example = "upstream")]
    pub kind: String,
    /// The entity's name; empty for the document as a whole.
    #[schema(example = "api")]
    pub name: String,
    /// Where in the entity, e.g. `targets[0].address`; empty when it is about the whole entity.
    #[schema(example = "targets[0].address")]
    pub field: String,
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {
    "code": "invalid_field",
    "message": "targets[0].address: `backend` is not host:port",
    "field": "targets[0].address",
    "details": [{"kind": "upstream", "name": "api", "field": "targets[0].address",
                 "message": "`backend` is not host:port"}]
}}))]
pub struct ErrorBody {
    pub error: ErrorContent,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorContent {
    /// Stable, for scripts to match on: `malformed_json`, `duplicate_key`, `too_deep`,
    /// `invalid_header`, `body_too_large`, `unreadable_body`, `invalid_field`,
    /// `unknown_reference`, `name_mismatch`, `not_found`, `method_not_allowed`,
    /// `already_exists`, `in_use`, `precondition_failed`, `database_unavailable`, `internal`.
    #[schema(example = "invalid_field")]
    pub code: String,
    /// For people; its wording may change.
    pub message: String,
    /// The request field the error is about (a JSON path into the body such as
    /// `routes[3].hosts`, or a query parameter or header name such as `If-Match`), when there
    /// is one.
    #[schema(required = true)]
    pub field: Option<String>,
    /// Every problem, when a request has several (e.g. a whole-config document).
    pub details: Vec<Detail>,
}

impl From<&FieldError> for Detail {
    fn from(e: &FieldError) -> Self {
        Detail {
            kind: e.kind.as_str().to_owned(),
            name: e.name.clone(),
            field: e.field.clone(),
            message: e.message.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub details: Vec<Detail>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            details: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    pub fn invalid_field(field: Option<String>, message: impl Into<String>) -> Self {
        ApiError {
            field,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        }
    }

    /// A body larger than `limit` bytes.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body is larger than {}, the most this endpoint takes",
                bytes(limit)
            ),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this path",
        )
    }

    pub fn database_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            message,
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::Unavailable(_) => ApiError::database_unavailable(message),
            StoreError::AlreadyExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", message).with_field("name")
            }
            StoreError::NotFound { .. } | StoreError::RevisionNotKept { .. } => {
                ApiError::not_found(message)
            }
            StoreError::PreconditionFailed { current, .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                format!("{message}; the current revision is {current}"),
            ),
            StoreError::InUse {
                name, references, ..
            } => ApiError {
                details: references
                    .iter()
                    .map(|(route, field)| Detail {
                        kind: "route".into(),
                        name: route.clone(),
                        field: field.clone(),
                        message: format!("sends traffic to upstream `{name}`"),
                    })
                    .collect(),
                ..ApiError::new(StatusCode::CONFLICT, "in_use", message)
            },
            StoreError::Invalid(errors)
                if errors.0.iter().all(|e| e.error == ErrorKind::Conflict) =>
            {
                let first = errors.0.first();
                ApiError {
                    status: StatusCode::CONFLICT,
                    code: "conflict",
                    message: first.map_or(message, |e| format!("{}: {}", e.field, e.message)),
                    field: first.map(|e| e.field.clone()),
                    details: errors.0.iter().map(Detail::from).collect(),
                }
            }
            StoreError::Invalid(errors) => {
                let code = match errors.0.first().map(|e| e.error) {
                    Some(ErrorKind::UnknownReference) => "unknown_reference",
                    _ => "invalid_field",
                };
                if errors.0.len() > 1 && code == "invalid_field" {
                    let first = &errors.0[0];
                    return ApiError {
                        status: StatusCode::UNPROCESSABLE_ENTITY,
                        code,
                        message: format!(
                            "{} errors; the first: {} `{}`: {}: {}",
                            errors.0.len(),
                            first.kind,
                            first.name,
                            first.field,
                            first.message
                        ),
                        field: Some(first.field.clone()),
                        details: errors.0.iter().map(Detail::from).collect(),
                    };
                }
                let first = errors.0.first();
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code,
                    message: first.map_or(message, |e| format!("{}: {}", e.field, e.message)),
                    field: first.map(|e| e.field.clone()),
                    details: errors.0.iter().map(Detail::from).collect(),
                }
            }
            StoreError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "config_too_large", message)
            }
            StoreError::NoKeyring => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_key_encryption_key",
                message,
            )
            .with_field("key"),
            StoreError::Corrupt { .. }
            | StoreError::Database(_)
            | StoreError::Migration(_)
            | StoreError::Sealing(_) => {
                tracing::error!(error = %message, "admin API request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

/// A size for people: in MiB when it is a whole number of them.
fn bytes(n: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB ({n} bytes)", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorContent {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

pub async fn not_found_fallback() -> ApiError {
    ApiError::not_found("no such path")
}

pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::method_not_allowed()
}
