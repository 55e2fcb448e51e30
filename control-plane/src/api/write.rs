//! What every write shares: the actor and message headers, `If-Match`, `?dry_run=true`, and the
//! answer of a whole-config write (`{"revision", "changed", "changes"}`).

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gateway_config::Change as ConfigChange;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Required, Schema};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use crate::service::{ConfigStored, Written};
use crate::store::WriteOptions;

/// Header naming who made a change, recorded in the revision.
pub const ACTOR_HEADER: &str = "x-gateway-actor";
/// Header overriding a write's revision message.
pub const MESSAGE_HEADER: &str = "x-gateway-message";
pub const REVISION_HEADER: &str = "x-gateway-revision";
const DEFAULT_ACTOR: &str = "admin-api";

/// Query parameters every write accepts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteQuery {
    /// Validate and answer with the changes the write would make, storing nothing
    /// (`true`, `false`, `1`, `0`, or empty for true).
    #[param(value_type = Option<bool>)]
    pub dry_run: Option<String>,
}

/// The request headers every write takes, for the API description.
pub struct WriteHeaders;

impl IntoParams for WriteHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let text = |pattern: Option<&str>| {
            Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(pattern)
                    .build(),
            )
        };
        let header = |name: &str, description: &str, pattern: Option<&str>| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(text(pattern)))
                .build()
        };
        vec![
            header(
                "If-Match",
                "Write only if this is the latest revision, else answer 412. A revision number, \
                 quotes and a `W/` prefix optional; `*` or an empty value matches any revision.",
                Some(r#"^\s*(\*|(W/)?"?[-+]?[0-9]+"?)?\s*$"#),
            ),
            header(
                ACTOR_HEADER,
                "Who makes the change, recorded in the revision (default `admin-api`).",
                None,
            ),
            header(
                MESSAGE_HEADER,
                "The revision's message, instead of the default that names the change.",
                None,
            ),
        ]
    }
}

/// The answer to a dry run: what the write would change, at the current revision.
// `deny_unknown_fields` does nothing to serializing; it makes the schema closed, so that every
// answer matches exactly one of the schemas that a write may answer with.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunAnswer {
    /// Always true: nothing was stored.
    pub dry_run: bool,
    /// The latest revision, which the write would have built on.
    pub revision: i64,
    pub changed: bool,
    #[schema(value_type = Vec<super::schema::Change>)]
    pub changes: Vec<ConfigChange>,
}

/// The answer to a whole-config write: the revision it made (the latest one if nothing
/// changed) and what changed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppliedAnswer {
    pub revision: i64,
    pub changed: bool,
    #[schema(value_type = Vec<super::schema::Change>)]
    pub changes: Vec<ConfigChange>,
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The options of a write request, from its headers and query.
pub fn options(
    headers: &HeaderMap,
    query: Result<Query<WriteQuery>, QueryRejection>,
) -> Result<WriteOptions, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_field(None, e.body_text()))?;
    let dry_run = match query.dry_run.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(other) => {
            return Err(ApiError::invalid_field(
                Some("dry_run".into()),
                format!("`{other}` is not true or false"),
            ));
        }
    };
    Ok(WriteOptions {
        actor: header_text(headers, ACTOR_HEADER)
            .unwrap_or(DEFAULT_ACTOR)
            .to_owned(),
        message: header_text(headers, MESSAGE_HEADER).map(str::to_owned),
        if_match: if_match(headers)?,
        dry_run,
    })
}

/// `If-Match: <revision>`, quotes (and a weak `W/` prefix) optional; `*` matches anything.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(text) = header_text(headers, header::IF_MATCH) else {
        return Ok(None);
    };
    if text == "*" {
        return Ok(None);
    }
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        ApiError::invalid_field(
            Some("If-Match".into()),
            format!("`{text}` is not a revision number"),
        )
    })
}

/// The answer to a dry run: what the write would change, at the current revision.
pub fn dry_run_response(revision: i64, changes: Vec<ConfigChange>) -> Response {
    let body = DryRunAnswer {
        dry_run: true,
        revision,
        changed: !changes.is_empty(),
        changes,
    };
    with_revision(Json(body).into_response(), revision)
}

/// The answer to a whole-config write (declarative apply, rollback), or to its dry run.
pub fn config_written_response(written: Written<ConfigStored>) -> Response {
    match written {
        Written::DryRun { revision, changes } => dry_run_response(revision, changes),
        Written::Stored(ConfigStored {
            revision,
            changed,
            changes,
        }) => {
            let body = AppliedAnswer {
                revision,
                changed,
                changes,
            };
            with_revision((StatusCode::OK, Json(body)).into_response(), revision)
        }
    }
}

pub fn with_revision(mut response: Response, revision: i64) -> Response {
    response
        .headers_mut()
        .insert(REVISION_HEADER, HeaderValue::from(revision));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        for (value, expected) in [
            ("7", Some(7)),
            ("\"7\"", Some(7)),
            ("W/\"8\"", Some(8)),
            ("*", None),
        ] {
            headers.insert(header::IF_MATCH, HeaderValue::from_static(value));
            assert_eq!(if_match(&headers).unwrap(), expected, "{value}");
        }
        headers.insert(header::IF_MATCH, HeaderValue::from_static("abc"));
        assert_eq!(
            if_match(&headers).unwrap_err().field.as_deref(),
            Some("If-Match")
        );
    }
}
