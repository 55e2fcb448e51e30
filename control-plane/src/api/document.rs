//! The whole-config document of `PUT /v1/config`: `{"upstreams": [...], "routes": [...]}` in
//! JSON or YAML. Unlike a single entity, a document is checked completely before it is refused,
//! so that one answer lists every problem (each with kind, name and field).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use gateway_config::{Config, ErrorKind, FieldError, Kind, Route, Upstream};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::body::{READ_ONLY_KEYS, field_of, syntax_reason};
use super::error::{ApiError, Detail};

const TOP_LEVEL_KEYS: [&str; 2] = ["upstreams", "routes"];

/// Whether the body is to be read as JSON: by its type, or by its first character.
fn looks_like_json(bytes: &[u8], content_type: Option<&str>) -> bool {
    if content_type.is_some_and(|t| t.contains("json")) {
        return true;
    }
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

fn syntax(bytes: &[u8], content_type: Option<&str>) -> Result<Value, ApiError> {
    if looks_like_json(bytes, content_type) {
        return serde_json::from_slice(bytes).map_err(|e| {
            ApiError::malformed_json(format!(
                "the body is not valid JSON: {} at line {} column {}",
                syntax_reason(&e),
                e.line(),
                e.column()
            ))
        });
    }
    match serde_yaml_ng::from_slice::<Value>(bytes) {
        Ok(Value::Null) => Err(ApiError::malformed_json(
            "the body is empty; send {\"upstreams\": [], \"routes\": []} to remove everything",
        )),
        Ok(value) => Ok(value),
        Err(e) => Err(ApiError::malformed_json(format!(
            "the body is neither JSON nor YAML: {e}"
        ))),
    }
}

fn detail(kind: &str, name: &str, field: impl Into<String>, message: impl Into<String>) -> Detail {
    Detail {
        kind: kind.to_owned(),
        name: name.to_owned(),
        field: field.into(),
        message: message.into(),
    }
}

/// Reads one list of entities, collecting errors; returns the entities that parsed and the names
/// of those that did not (so that references to them are not reported twice).
fn entities<T: DeserializeOwned>(
    kind: Kind,
    list: Option<Value>,
    errors: &mut Vec<Detail>,
) -> (BTreeMap<String, T>, BTreeSet<String>) {
    let mut parsed = BTreeMap::new();
    let mut broken = BTreeSet::new();
    let items = match list {
        None | Some(Value::Null) => return (parsed, broken),
        Some(Value::Array(items)) => items,
        Some(_) => {
            let list_name = format!("{kind}s");
            errors.push(detail("config", "", list_name, "must be a list"));
            return (parsed, broken);
        }
    };
    let mut seen = BTreeSet::new();
    for (index, mut item) in items.into_iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{kind}s[{index}]"), str::to_owned);
        if let Value::Object(map) = &mut item {
            for key in READ_ONLY_KEYS {
                map.remove(key);
            }
        }
        if !seen.insert(name.clone()) {
            errors.push(detail(
                kind.as_str(),
                &name,
                "name",
                format!("`{name}` is listed twice"),
            ));
            continue;
        }
        match serde_path_to_error::deserialize::<_, T>(item) {
            Ok(entity) => {
                parsed.insert(name, entity);
            }
            Err(e) => {
                let path = e.path().to_string();
                let message = e.inner().to_string();
                let field = field_of(&path, &message).unwrap_or_default();
                errors.push(detail(kind.as_str(), &name, field, message));
                broken.insert(name);
            }
        }
    }
    (parsed, broken)
}

/// A reference error about an upstream that is in the document but failed to parse.
fn refers_to(error: &FieldError, config: &Config, broken: &BTreeSet<String>) -> bool {
    let Some(index) = error
        .field
        .strip_prefix("backends[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|i| i.parse::<usize>().ok())
    else {
        return false;
    };
    config
        .routes
        .get(&error.name)
        .and_then(|route| route.backends.get(index))
        .is_some_and(|backend| broken.contains(&backend.upstream))
}

/// Parses and validates a whole-config document; every problem is in the error's `details`.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Config, ApiError> {
    let value = syntax(bytes, content_type)?;
    let Value::Object(mut map) = value else {
        return Err(ApiError::invalid_field(
            None,
            "the body must be an object with `upstreams` and `routes` lists",
        ));
    };
    let mut errors = Vec::new();
    let unknown: Map<String, Value> = map
        .iter()
        .filter(|(key, _)| !TOP_LEVEL_KEYS.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for key in unknown.keys() {
        errors.push(detail(
            "config",
            "",
            key.as_str(),
            format!("unknown field `{key}`, expected `upstreams` or `routes`"),
        ));
    }
    let (upstreams, broken) =
        entities::<Upstream>(Kind::Upstream, map.remove("upstreams"), &mut errors);
    let (routes, _) = entities::<Route>(Kind::Route, map.remove("routes"), &mut errors);
    let config = Config { upstreams, routes };
    let mut only_references = errors.is_empty();
    if let Err(invalid) = config.validate() {
        for error in invalid.0 {
            if error.error == ErrorKind::UnknownReference && refers_to(&error, &config, &broken) {
                continue;
            }
            only_references &= error.error == ErrorKind::UnknownReference;
            errors.push(Detail::from(&error));
        }
    }
    let Some(first) = errors.first() else {
        return Ok(config);
    };
    let code = if only_references {
        "unknown_reference"
    } else {
        "invalid_field"
    };
    let message = match errors.len() {
        1 => format!(
            "{} `{}`: {}: {}",
            first.kind, first.name, first.field, first.message
        ),
        n => format!(
            "{n} errors; the first: {} `{}`: {}: {}",
            first.kind, first.name, first.field, first.message
        ),
    };
    Err(ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
        field: Some(first.field.clone()),
        details: errors,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_read_alike() {
        let yaml = b"upstreams:\n  - name: a\n    targets: [{address: 'h:1'}]\nroutes: []\n";
        let json =
            br#"{"upstreams": [{"name": "a", "targets": [{"address": "h:1"}], "revision": 4}]}"#;
        assert_eq!(
            parse(yaml, None).unwrap(),
            parse(json, Some("text/plain")).unwrap()
        );
        assert_eq!(parse(b"{}", None).unwrap(), Config::default());
        assert_eq!(
            parse(b"{\"upstreams\": ", None).unwrap_err().code,
            "malformed_json"
        );
        assert_eq!(parse(b"", None).unwrap_err().code, "malformed_json");
    }

    #[test]
    fn every_error_is_listed() {
        let body = br#"{"upstreams": [
                {"name": "a", "targets": [{"address": "nope"}]},
                {"name": "b", "targets": [{"address": "h:1", "weight": "x"}]},
                {"name": "a", "targets": [{"address": "h:2"}]}],
            "routes": [
                {"name": "r1", "backends": [{"upstream": "b"}]},
                {"name": "r2", "backends": [{"upstream": "ghost"}], "hosts": [""]}],
            "consumers": []}"#;
        let err = parse(body, None).unwrap_err();
        assert_eq!(err.code, "invalid_field");
        let found: Vec<_> = err
            .details
            .iter()
            .map(|d| (d.kind.as_str(), d.name.as_str(), d.field.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("config", "", "consumers"),
                ("upstream", "b", "targets[0].weight"),
                ("upstream", "a", "name"),
                ("upstream", "a", "targets[0].address"),
                ("route", "r2", "hosts[0]"),
                ("route", "r2", "backends[0].upstream"),
            ]
        );
        let refs = parse(
            br#"{"routes": [{"name": "r", "backends": [{"upstream": "ghost"}]}]}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(refs.code, "unknown_reference");
        assert_eq!(refs.field.as_deref(), Some("backends[0].upstream"));
    }
}
