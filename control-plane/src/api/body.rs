//! Request bodies and response documents of the admin API.
//!
//! Bodies are parsed as JSON whatever their Content-Type. A syntax error is a 400 that says where,
//! and so is a key given twice or nesting deeper than [`strict::MAX_DEPTH`] (400 too, naming the
//! path); a well-formed document of the wrong shape is a 422 naming the field, e.g.
//! `targets[0].weight`. Server-set keys (`created_at`, `updated_at`, `revision`) are dropped so
//! that a document fetched with GET can be edited and sent back with PUT.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, SecondsFormat};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use super::limits::ENTITY_BODY_LIMIT;
use super::strict::{self, Format, ReadError};
use crate::store::{Entity, Record};

pub(super) const READ_ONLY_KEYS: [&str; 3] = ["created_at", "updated_at", "revision"];

/// Parses an entity document. With `path_name` (PUT), a `name` in the body must equal it, and a
/// missing `name` is taken from the path.
pub fn parse_entity<T: DeserializeOwned>(
    bytes: &[u8],
    path_name: Option<&str>,
) -> Result<T, ApiError> {
    let limits = strict::Limits::new(ENTITY_BODY_LIMIT);
    let mut value = strict::read_value(bytes, Format::Json, &limits).map_err(refused)?;
    if let Value::Object(map) = &mut value {
        for key in READ_ONLY_KEYS {
            map.remove(key);
        }
        if let Some(path_name) = path_name {
            match map.get("name") {
                None => {
                    map.insert("name".into(), Value::String(path_name.to_owned()));
                }
                Some(Value::String(name)) if name == path_name => {}
                Some(other) => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "name_mismatch",
                        format!("the body names {other} but the path names `{path_name}`"),
                    )
                    .with_field("name"));
                }
            }
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        ApiError::invalid_field(field_of(&path, &message), message)
    })
}

/// The answer to a document that [`strict`] refused.
pub(super) fn refused(error: ReadError) -> ApiError {
    let field = error.field().map(str::to_owned);
    let message = error.to_string();
    let refusal = match error {
        ReadError::Syntax {
            format: Format::Json,
            ..
        } => ApiError::malformed_json(format!("the body is not valid JSON: {message}")),
        ReadError::Syntax {
            format: Format::Yaml,
            ..
        } => ApiError::malformed_json(format!("the body is neither JSON nor YAML: {message}")),
        ReadError::DuplicateKey { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "duplicate_key", message)
        }
        ReadError::TooDeep { .. } => ApiError::new(StatusCode::BAD_REQUEST, "too_deep", message),
        ReadError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
        }
    };
    ApiError { field, ..refusal }
}

/// Reads a request body of at most `limit` bytes into one buffer, sized up front from
/// `Content-Length` (a body that declares more than the limit is refused before it is read).
pub async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    let capacity = declared.map_or(0, |length| length as usize);
    let mut bytes = Vec::with_capacity(capacity);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                format!("the body could not be read: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if bytes.len().saturating_add(data.len()) > limit {
            return Err(ApiError::body_too_large(limit));
        }
        bytes.extend_from_slice(&data);
    }
    Ok(bytes)
}

/// The field a deserialization error is about: for an unknown or missing key the path points at
/// the enclosing object, so the key itself is appended.
pub(super) fn field_of(path: &str, message: &str) -> Option<String> {
    let key = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let base = (path != ".").then_some(path);
    // serde_path_to_error already ends the path with an unknown key, not with a missing one.
    let key = key.filter(|key| !base.is_some_and(|b| b == *key || b.ends_with(&format!(".{key}"))));
    match (base, key) {
        (Some(base), Some(key)) => Some(format!("{base}.{key}")),
        (None, Some(key)) => Some(key.to_owned()),
        (Some(base), None) => Some(base.to_owned()),
        (None, None) => None,
    }
}

/// RFC 3339 UTC with millisecond precision.
pub fn timestamp(unix_ms: i64) -> String {
    DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An entity as the API shows it: its document plus the server-set keys.
pub fn resource_json<T: Entity>(record: &Record<T>) -> Value {
    let mut value = serde_json::to_value(&record.entity).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("created_at".into(), timestamp(record.created_at).into());
        map.insert("updated_at".into(), timestamp(record.updated_at).into());
        map.insert("revision".into(), record.revision.into());
    }
    value
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Cursors are opaque to clients; hex keeps them URL-safe without escaping.
pub fn encode_cursor(position: &str) -> String {
    hex::encode(position)
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ApiError::invalid_field(
                Some("cursor".into()),
                "is not a cursor returned by this API",
            )
        })
}

/// Query parameters shared by the list endpoints.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Items per page: 100 by default; more than 1000 is taken as 1000.
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only entities that have this tag.
    pub tag: Option<String>,
}

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

impl ListQuery {
    /// The page size: 100 by default, larger requests are capped at 1000.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(text) => match text.parse::<usize>() {
                Ok(0) | Err(_) => Err(ApiError::invalid_field(
                    Some("limit".into()),
                    format!("`{text}` is not a positive integer"),
                )),
                Ok(n) => Ok(n.min(MAX_LIMIT)),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::Upstream;

    use super::*;

    #[test]
    fn syntax_errors_say_where() {
        let err = parse_entity::<Upstream>(b"{\n  \"name\": ", None).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("line 2"), "{}", err.message);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let err = parse_entity::<Upstream>(
            br#"{"name": "a", "targets": [{"address": "h:1", "weight": "x"}]}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("targets[0].weight"));
        let err = parse_entity::<Upstream>(
            br#"{"name": "a", "targets": [{"address": "h:1", "wait": 1}]}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("targets[0].wait"));
        let err = parse_entity::<Upstream>(br#"{"name": "a"}"#, None).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("targets"));
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn read_only_keys_are_dropped_and_the_path_names_the_entity() {
        let up: Upstream = parse_entity(
            br#"{"targets": [], "revision": 3, "created_at": "x", "updated_at": "y"}"#,
            Some("api"),
        )
        .unwrap();
        assert_eq!(up.name, "api");
        let err =
            parse_entity::<Upstream>(br#"{"name": "b", "targets": []}"#, Some("a")).unwrap_err();
        assert_eq!(err.code, "name_mismatch");
    }

    #[test]
    fn duplicate_keys_and_deep_nesting_are_refused_with_their_path() {
        let err = parse_entity::<Upstream>(
            br#"{"name": "a", "targets": [{"address": "h:1", "address": "h:2"}]}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "duplicate_key");
        assert_eq!(err.field.as_deref(), Some("targets[0].address"));
        assert!(err.message.contains("line 1"), "{}", err.message);
        let deep = format!("{{\"name\": \"a\", \"tags\": {}}}", "[".repeat(100));
        let err = parse_entity::<Upstream>(deep.as_bytes(), None).unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::BAD_REQUEST, "too_deep")
        );
    }

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(timestamp(1_500), "1970-01-01T00:00:01.500Z");
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor("api-2")).unwrap(), "api-2");
        assert!(decode_cursor("zz").is_err());
    }
}
