//! The whole-config document of `PUT /v1/config`: `{"upstreams": [...], "routes": [...],
//! "certificates": [...]}` in JSON or YAML. Unlike a single entity, a document is checked completely before it is refused,
//! so that one answer lists every problem (each with kind, name and field).
//!
//! The document is read by [`strict`] one entity at a time, each turned into its model type as
//! soon as it is read, so that a large document is in memory as its text and its model, never
//! also as a tree of values. A duplicate key, too deep nesting or too much alias expansion
//! refuses the whole document at once (400 or 413), as a syntax error does.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use gateway_config::{Certificate, Config, ErrorKind, FieldError, Kind, Route, Upstream};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::body::{READ_ONLY_KEYS, field_of, refused};
use super::error::{ApiError, Detail};
use super::strict::{self, Format, TopLevel};

/// The lists of a document, in the order [`strict::read_lists`] numbers them.
const LISTS: [&str; 3] = ["upstreams", "routes", "certificates"];

fn detail(kind: &str, name: &str, field: impl Into<String>, message: impl Into<String>) -> Detail {
    Detail {
        kind: kind.to_owned(),
        name: name.to_owned(),
        field: field.into(),
        message: message.into(),
    }
}

/// One list of entities as it is read, collecting errors: the entities that parsed, and the
/// names of those that did not (so that references to them are not reported twice).
struct Entities<T> {
    kind: Kind,
    parsed: BTreeMap<String, T>,
    broken: BTreeSet<String>,
    errors: Vec<Detail>,
}

impl<T: DeserializeOwned> Entities<T> {
    fn new(kind: Kind) -> Self {
        Entities {
            kind,
            parsed: BTreeMap::new(),
            broken: BTreeSet::new(),
            errors: Vec::new(),
        }
    }

    fn add(&mut self, index: usize, mut item: Value) {
        let kind = self.kind;
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{kind}s[{index}]"), str::to_owned);
        if let Value::Object(map) = &mut item {
            for key in READ_ONLY_KEYS {
                map.remove(key);
            }
        }
        if self.parsed.contains_key(&name) || self.broken.contains(&name) {
            self.errors.push(detail(
                kind.as_str(),
                &name,
                "name",
                format!("`{name}` is listed twice"),
            ));
            return;
        }
        match serde_path_to_error::deserialize::<_, T>(item) {
            Ok(entity) => {
                self.parsed.insert(name, entity);
            }
            Err(e) => {
                let path = e.path().to_string();
                let message = e.inner().to_string();
                let field = field_of(&path, &message).unwrap_or_default();
                self.errors
                    .push(detail(kind.as_str(), &name, field, message));
                self.broken.insert(name);
            }
        }
    }
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

/// A certificate of the document without its key: the store fills the key in from the stored
/// certificate with the same leaf (an export applied again), and refuses it when there is none.
fn keeps_stored_key(error: &FieldError, config: &Config) -> bool {
    error.kind == Kind::Certificate
        && error.field == "key"
        && config
            .certificates
            .get(&error.name)
            .is_some_and(|certificate| certificate.key.is_none())
}

/// Parses and validates a whole-config document; every problem is in the error's `details`.
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    limits: &strict::Limits,
) -> Result<Config, ApiError> {
    let format = Format::detect(bytes, content_type);
    let mut upstream_list = Entities::<Upstream>::new(Kind::Upstream);
    let mut route_list = Entities::<Route>::new(Kind::Route);
    let mut certificate_list = Entities::<Certificate>::new(Kind::Certificate);
    let top = strict::read_lists(
        bytes,
        format,
        limits,
        &LISTS,
        &mut |list, index, item| match list {
            0 => upstream_list.add(index, item),
            1 => route_list.add(index, item),
            _ => certificate_list.add(index, item),
        },
    )
    .map_err(refused)?;
    let (unknown, not_lists) = match top {
        TopLevel::Mapping { unknown, not_lists } => (unknown, not_lists),
        TopLevel::Empty => {
            return Err(ApiError::malformed_json(
                "the body is empty; send {\"upstreams\": [], \"routes\": []} to remove everything",
            ));
        }
        TopLevel::Other(_) => {
            return Err(ApiError::invalid_field(
                None,
                "the body must be an object with `upstreams`, `routes` and `certificates` lists",
            ));
        }
    };
    let mut errors: Vec<Detail> = unknown
        .iter()
        .map(|key| {
            detail(
                "config",
                "",
                key.as_str(),
                format!("unknown field `{key}`, expected `upstreams`, `routes` or `certificates`"),
            )
        })
        .collect();
    errors.extend(
        not_lists
            .iter()
            .map(|key| detail("config", "", key.as_str(), "must be a list")),
    );
    errors.append(&mut upstream_list.errors);
    errors.append(&mut route_list.errors);
    errors.append(&mut certificate_list.errors);
    let broken = upstream_list.broken;
    let config = Config {
        upstreams: upstream_list.parsed,
        routes: route_list.parsed,
        certificates: certificate_list.parsed,
    };
    let mut only_references = errors.is_empty();
    if let Err(invalid) = config.validate() {
        for error in invalid.0 {
            if error.error == ErrorKind::UnknownReference && refers_to(&error, &config, &broken) {
                continue;
            }
            if keeps_stored_key(&error, &config) {
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

    const LIMITS: strict::Limits = strict::Limits {
        max_bytes: 1024 * 1024,
        max_depth: strict::MAX_DEPTH,
    };

    #[test]
    fn yaml_and_json_read_alike() {
        let yaml = b"upstreams:\n  - name: a\n    targets: [{address: 'h:1'}]\nroutes: []\n";
        let json =
            br#"{"upstreams": [{"name": "a", "targets": [{"address": "h:1"}], "revision": 4}]}"#;
        assert_eq!(
            parse(yaml, None, &LIMITS).unwrap(),
            parse(json, Some("text/plain"), &LIMITS).unwrap()
        );
        assert_eq!(parse(b"{}", None, &LIMITS).unwrap(), Config::default());
        assert_eq!(
            parse(b"{\"upstreams\": ", None, &LIMITS).unwrap_err().code,
            "malformed_json"
        );
        assert_eq!(
            parse(b"", None, &LIMITS).unwrap_err().code,
            "malformed_json"
        );
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
        let err = parse(body, None, &LIMITS).unwrap_err();
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
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(refs.code, "unknown_reference");
        assert_eq!(refs.field.as_deref(), Some("backends[0].upstream"));
    }
}
