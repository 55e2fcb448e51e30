//! What every write shares: the actor and message headers, `If-Match`, `?dry_run=true`, and the
//! answer of a whole-config write (`{"revision", "changed", "changes"}`).

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gateway_config::Change as ConfigChange;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Required, Schema};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
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
                 quotes and a `W/` prefix optional; `*` matches any revision. Any other value, \
                 or the header sent twice, is refused with 400 (`invalid_header`).",
                Some(r#"^\s*(\*|(W/)?[0-9]+|(W/)?"[0-9]+")\s*$"#),
            ),
            header(
                ACTOR_HEADER,
                "Who makes the change, recorded in the revision (default `admin-api`); UTF-8, \
                 at most 256 bytes.",
                None,
            ),
            header(
                MESSAGE_HEADER,
                "The revision's message, instead of the default that names the change; UTF-8, \
                 at most 4096 bytes.",
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

/// The longest actor a revision records, in bytes.
const MAX_ACTOR_LEN: usize = 256;
/// The longest revision message, in bytes.
const MAX_MESSAGE_LEN: usize = 4096;
/// How much of a refused header value a message repeats.
const SHOWN_HEADER_CHARS: usize = 40;

fn invalid_header(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_header", message).with_field(name)
}

/// A header value for a message: quoted and escaped, and cut, whatever its bytes.
fn shown(value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    let cut: String = text.chars().take(SHOWN_HEADER_CHARS).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{cut:?}{more}")
}

/// The one value of header `name`, if sent. A header sent twice is refused rather than one of
/// the two ignored.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h HeaderValue>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(invalid_header(name, format!("send {name} once")));
    }
    Ok(first)
}

/// A free-text header (actor, message): UTF-8, trimmed, at most `max` bytes; empty is absent.
fn text_header<'h>(
    headers: &'h HeaderMap,
    name: &str,
    max: usize,
) -> Result<Option<&'h str>, ApiError> {
    let Some(value) = single(headers, name)? else {
        return Ok(None);
    };
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| invalid_header(name, format!("{name} {} is not UTF-8", shown(value))))?
        .trim();
    if text.len() > max {
        return Err(invalid_header(
            name,
            format!("{name} is {} bytes long; the most is {max}", text.len()),
        ));
    }
    Ok((!text.is_empty()).then_some(text))
}

/// The options of a write request, from its headers and query.
pub fn options(
    headers: &HeaderMap,
    caller: &Caller,
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
    let if_match = if_match(headers)?;
    let actor = text_header(headers, ACTOR_HEADER, MAX_ACTOR_LEN)?;
    let message = text_header(headers, MESSAGE_HEADER, MAX_MESSAGE_LEN)?;
    // With tokens, the revision names the token, whatever the request says.
    let actor = match &caller.token {
        Some(token) => token.name.clone(),
        None => actor.unwrap_or(DEFAULT_ACTOR).to_owned(),
    };
    Ok(WriteOptions {
        actor,
        message: message.map(str::to_owned),
        if_match,
        dry_run,
        client: caller.client,
    })
}

/// `If-Match: <revision>`, quoted or not (a weak `W/` prefix is taken too); `*` matches any
/// revision. Anything else is refused: a condition that cannot be read must not turn into a
/// write without one.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    const NAME: &str = "If-Match";
    let Some(value) = single(headers, NAME)? else {
        return Ok(None);
    };
    let refused = |why: &str| {
        invalid_header(
            NAME,
            format!(
                "If-Match {} {why}; send the revision to build on, e.g. `If-Match: 7` or \
                 `If-Match: \"7\"`, or `*` for any",
                shown(value)
            ),
        )
    };
    // Visible ASCII only (RFC 9110 entity tags); `to_str` also takes tabs and spaces.
    let text = value
        .to_str()
        .map_err(|_| refused("is not plain ASCII"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let bare = match tag.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .ok_or_else(|| refused("has an unclosed quote"))?,
        None => tag,
    };
    if bare.is_empty() {
        return Err(refused("is empty"));
    }
    if !bare.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused("is not a revision number"));
    }
    bare.parse::<i64>()
        .map(Some)
        .map_err(|_| refused("is larger than any revision"))
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
    use axum::http::header;

    use super::*;

    #[test]
    fn if_match_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        for (value, expected) in [
            ("7", Some(7)),
            ("\"7\"", Some(7)),
            ("W/\"8\"", Some(8)),
            (" 0 ", Some(0)),
            ("*", None),
        ] {
            headers.insert(header::IF_MATCH, HeaderValue::from_static(value));
            assert_eq!(if_match(&headers).unwrap(), expected, "{value}");
        }
        let refused: [&[u8]; 13] = [
            b"abc",
            b"-1",
            b"+1",
            b"1.5",
            b"\"7",
            b"7\"",
            b"\"\"",
            b"",
            b"1, 2",
            b"\"1\", \"2\"",
            b"99999999999999999999",
            "\u{37}\u{feff}".as_bytes(),
            b"\xff7",
        ];
        for value in refused {
            headers.insert(header::IF_MATCH, HeaderValue::from_bytes(value).unwrap());
            let err = if_match(&headers).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{value:?}");
            assert_eq!(err.code, "invalid_header", "{value:?}");
            assert_eq!(err.field.as_deref(), Some("If-Match"), "{value:?}");
        }
        headers.insert(header::IF_MATCH, HeaderValue::from_static("1"));
        headers.append(header::IF_MATCH, HeaderValue::from_static("2"));
        assert_eq!(if_match(&headers).unwrap_err().code, "invalid_header");
    }

    #[test]
    fn actor_and_message_are_utf8_and_bounded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACTOR_HEADER,
            HeaderValue::from_bytes("zoë".as_bytes()).unwrap(),
        );
        let query = Ok(Query(WriteQuery::default()));
        assert_eq!(
            options(&headers, &Caller::default(), query).unwrap().actor,
            "zoë"
        );
        headers.insert(ACTOR_HEADER, HeaderValue::from_bytes(b"\xff").unwrap());
        let query = Ok(Query(WriteQuery::default()));
        assert_eq!(
            options(&headers, &Caller::default(), query)
                .unwrap_err()
                .field
                .as_deref(),
            Some(ACTOR_HEADER)
        );
        headers.remove(ACTOR_HEADER);
        let long = "m".repeat(MAX_MESSAGE_LEN + 1);
        headers.insert(MESSAGE_HEADER, HeaderValue::from_str(&long).unwrap());
        let query = Ok(Query(WriteQuery::default()));
        assert_eq!(
            options(&headers, &Caller::default(), query)
                .unwrap_err()
                .code,
            "invalid_header"
        );
    }
}
