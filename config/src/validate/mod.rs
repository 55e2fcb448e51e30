//! Validation of single entities and of a whole config (references included).
//!
//! Every problem is reported, not just the first, each with the entity and the field it concerns
//! (`backends[1].upstream`), so that an API client or a worker's NACK can say exactly what is wrong.

use std::fmt;

use serde::Serialize;

use crate::model::Config;

mod policy;
mod route;
mod upstream;

pub use route::{REGEX_SIZE_LIMIT, compile_full_match};

#[cfg(test)]
use upstream::parse_address;

const MAX_WEIGHT: u32 = 10_000;
const MAX_NAME_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Upstream,
    Route,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Upstream => "upstream",
            Kind::Route => "route",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What sort of problem a field has; the admin API maps it to an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The value itself is malformed or out of range.
    Invalid,
    /// The value names an entity that does not exist.
    UnknownReference,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub kind: Kind,
    pub name: String,
    /// Path of the field inside the entity, e.g. `backends[0].upstream`.
    pub field: String,
    pub message: String,
    #[serde(skip)]
    pub error: ErrorKind,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}`: {}: {}",
            self.kind, self.name, self.field, self.message
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// Collects the errors of one entity.
pub(crate) struct Report<'a> {
    kind: Kind,
    name: &'a str,
    errors: &'a mut Vec<FieldError>,
}

impl Report<'_> {
    pub(crate) fn invalid(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(field, message, ErrorKind::Invalid);
    }

    pub(crate) fn push(
        &mut self,
        field: impl Into<String>,
        message: impl Into<String>,
        error: ErrorKind,
    ) {
        self.errors.push(FieldError {
            kind: self.kind,
            name: self.name.to_owned(),
            field: field.into(),
            message: message.into(),
            error,
        });
    }
}

/// Checks an entity name: 1–128 characters of letters, digits, `.`, `_`, `-`, starting with a
/// letter or digit. Names appear in URLs and files, so nothing else is allowed.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "contains `{c}`; only letters, digits, `.`, `_` and `-` are allowed"
        ));
    }
    Ok(())
}

pub(crate) fn check_tags(tags: &[String], report: &mut Report<'_>) {
    for (i, tag) in tags.iter().enumerate() {
        if tag.is_empty() || tag.len() > 64 || tag.chars().any(|c| c.is_whitespace() || c == ',') {
            report.invalid(
                format!("tags[{i}]"),
                "must be 1-64 characters without spaces or commas",
            );
        }
    }
}

impl Config {
    /// Every error of every entity, plus every reference to an entity that does not exist.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        self.validate_since(None)
    }

    /// Like [`Config::validate`], but trusts every entity equal to the same-named entity of
    /// `previous`, a config that passed validation: only changed entities are checked on their
    /// own, while references between entities are always checked. Applying a small change to a
    /// large config then costs a comparison per entity instead of compiling every regex again.
    pub fn validate_since(&self, previous: Option<&Config>) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        for (key, upstream) in &self.upstreams {
            if previous.and_then(|p| p.upstreams.get(key)) != Some(upstream) {
                upstream.collect_errors(&mut errors);
            }
            if *key != upstream.name {
                errors.push(key_mismatch(Kind::Upstream, key, &upstream.name));
            }
        }
        for (key, route) in &self.routes {
            if previous.and_then(|p| p.routes.get(key)) != Some(route) {
                route.collect_errors(&mut errors);
            }
            if *key != route.name {
                errors.push(key_mismatch(Kind::Route, key, &route.name));
            }
            route.reference_errors(|name| self.upstreams.contains_key(name), &mut errors);
        }
        ValidationErrors(errors).into_result()
    }

    /// Names of the routes that send traffic to `upstream`.
    pub fn routes_using(&self, upstream: &str) -> Vec<&str> {
        let mut routes: Vec<&str> = self
            .references_to(upstream)
            .into_iter()
            .map(|(route, _)| route)
            .collect();
        routes.dedup();
        routes
    }

    /// Every place a route names `upstream`: the route's name and the field, such as
    /// `backends[1].upstream` or `mirror.upstream`.
    pub fn references_to(&self, upstream: &str) -> Vec<(&str, String)> {
        let mut references = Vec::new();
        for route in self.routes.values() {
            for (i, backend) in route.backends.iter().enumerate() {
                if backend.upstream == upstream {
                    references.push((route.name.as_str(), format!("backends[{i}].upstream")));
                }
            }
            if route
                .mirror
                .as_ref()
                .is_some_and(|m| m.upstream == upstream)
            {
                references.push((route.name.as_str(), "mirror.upstream".to_owned()));
            }
        }
        references
    }
}

fn key_mismatch(kind: Kind, key: &str, name: &str) -> FieldError {
    FieldError {
        kind,
        name: key.to_owned(),
        field: "name".into(),
        message: format!("is `{name}` but the entity is stored as `{key}`"),
        error: ErrorKind::Invalid,
    }
}

pub(crate) fn check_hostname(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("host name must not be empty".into());
    }
    if host.len() > 253 {
        return Err("host name must be at most 253 characters".into());
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "`{host}` is not a valid host name (empty or overlong label)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{host}` is not a valid host name (label starts or ends with `-`)"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "`{host}` is not a valid host name (contains `{c}`)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{Backend, PathMatch, Route, Target, Upstream};

    fn upstream(name: &str, addresses: &[&str]) -> Upstream {
        Upstream {
            name: name.into(),
            tags: vec![],
            targets: addresses
                .iter()
                .map(|a| Target {
                    address: (*a).into(),
                    weight: 1,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn route(name: &str, upstream: &str) -> Route {
        Route {
            name: name.into(),
            tags: vec![],
            hosts: vec![],
            paths: vec![PathMatch::Prefix("/".into())],
            methods: vec![],
            strip_prefix: false,
            preserve_host: false,
            backends: vec![Backend {
                upstream: upstream.into(),
                weight: 1,
            }],
            priority: 0,
            ..Default::default()
        }
    }

    fn fields(errors: ValidationErrors) -> Vec<String> {
        errors.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn validation_since_a_valid_config_checks_changes_and_every_reference() {
        let mut previous = Config::default();
        previous
            .upstreams
            .insert("api".into(), upstream("api", &["127.0.0.1:80"]));
        previous.routes.insert("a".into(), route("a", "api"));
        previous.routes.insert("b".into(), route("b", "api"));
        assert!(previous.validate().is_ok());

        let mut changed = previous.clone();
        let mut bad = route("b", "api");
        bad.paths = vec![PathMatch::Regex("(".into())];
        changed.routes.insert("b".into(), bad);
        let errors = changed.validate_since(Some(&previous)).unwrap_err();
        assert_eq!(fields(errors), ["paths[0].regex"]);

        // Route `a` did not change, but the upstream it names is gone.
        let mut removed = previous.clone();
        removed.upstreams.clear();
        let errors = removed.validate_since(Some(&previous)).unwrap_err();
        assert_eq!(
            fields(errors),
            ["backends[0].upstream", "backends[0].upstream"]
        );
    }

    #[test]
    fn addresses() {
        assert!(parse_address("127.0.0.1:80").is_ok());
        assert!(parse_address("backend.internal:8080").is_ok());
        assert!(parse_address("[::1]:443").is_ok());
        assert!(parse_address("backend").is_err());
        assert!(parse_address("backend:0").is_err());
        assert!(parse_address("backend:99999").is_err());
        assert!(parse_address("::1:80").is_err());
        assert!(parse_address(":80").is_err());
        assert!(parse_address("bad_host:80").is_err());
    }

    #[test]
    fn upstream_errors_name_their_fields() {
        let mut u = upstream("api", &["10.0.0.1", "10.0.0.2:80", "10.0.0.2:80"]);
        u.targets[1].weight = 20_000;
        assert_eq!(
            fields(u.validate().unwrap_err()),
            [
                "targets[0].address",
                "targets[1].weight",
                "targets[2].address"
            ]
        );
        let mut zero = upstream("api", &["10.0.0.1:80"]);
        zero.targets[0].weight = 0;
        assert_eq!(fields(zero.validate().unwrap_err()), ["targets"]);
        assert_eq!(
            fields(upstream("", &[]).validate().unwrap_err()),
            ["name", "targets"]
        );
    }

    #[test]
    fn route_errors_name_their_fields() {
        let mut r = route("r", "api");
        r.hosts = vec![
            "".into(),
            "*.example.com".into(),
            "a*.example.com".into(),
            "x.com:80".into(),
        ];
        r.paths = vec![
            PathMatch::Prefix("api".into()),
            PathMatch::Exact("/ok".into()),
        ];
        r.methods = vec!["get".into(), "GET".into()];
        assert_eq!(
            fields(r.validate().unwrap_err()),
            [
                "hosts[0]",
                "hosts[2]",
                "hosts[3]",
                "paths[0].prefix",
                "methods[0]"
            ]
        );
        let mut zero = route("r", "api");
        zero.backends[0].weight = 0;
        assert_eq!(fields(zero.validate().unwrap_err()), ["backends"]);
    }

    #[test]
    fn config_checks_references() {
        let mut config = Config::default();
        config
            .upstreams
            .insert("api".into(), upstream("api", &["127.0.0.1:1"]));
        config.routes.insert("ok".into(), route("ok", "api"));
        assert!(config.validate().is_ok());
        config
            .routes
            .insert("dangling".into(), route("dangling", "missing"));
        let errors = config.validate().unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].error, ErrorKind::UnknownReference);
        assert_eq!(errors.0[0].name, "dangling");
        assert_eq!(errors.0[0].field, "backends[0].upstream");
        assert_eq!(config.routes_using("api"), ["ok"]);
    }

    #[test]
    fn names() {
        assert!(validate_name("api-v2.internal_1").is_ok());
        assert!(validate_name("-api").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(129)).is_err());
    }
}
