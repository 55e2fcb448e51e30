//! Validation of single entities and of a whole config (references included).
//!
//! Every problem is reported, not just the first, each with the entity and the field it concerns
//! (`backends[1].upstream`), so that an API client or a worker's NACK can say exactly what is wrong.

use crate::model::Config;

mod certificate;
#[cfg(test)]
mod duration_tests;
mod error;
mod fields;
#[cfg(test)]
mod limit_tests;
pub mod limits;
mod plugins;
mod policy;
mod route;
mod upstream;

pub use certificate::server_name_conflicts_with;
pub use error::{ErrorKind, FieldError, Kind, ValidationErrors};
pub use fields::validate_name;
pub use limits::REGEX_SIZE_LIMIT;
pub use plugins::parse_ip_rule;
pub use route::compile_full_match;

use limits::MAX_CONFIG_EXPANSION;

#[cfg(test)]
use upstream::parse_address;

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
        for (key, certificate) in &self.certificates {
            if previous.and_then(|p| p.certificates.get(key)) != Some(certificate) {
                certificate.collect_errors(&mut errors);
            }
            if *key != certificate.name {
                errors.push(key_mismatch(Kind::Certificate, key, &certificate.name));
            }
        }
        errors.extend(certificate::server_name_conflicts(
            self.certificates.values(),
        ));
        // Named on the route whose entries are the most (the first in name order among equals):
        // the one whose trimming helps the most.
        let largest = self
            .routes
            .values()
            .rev()
            .max_by_key(|route| route.expansion());
        if let Some(largest) = largest
            && let Some(error) = expansion_budget_error(self.expansion(), &largest.name)
        {
            errors.push(error);
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

/// The error for a config whose routes make `total` route table entries (the sum of
/// [`Route::expansion`](crate::Route::expansion) over its routes) when that is over
/// [`MAX_CONFIG_EXPANSION`], reported on route `route` (the route just written, or the largest).
///
/// Constant time, so that a writer can keep the total as a running sum (minus the old entity's
/// expansion, plus the new one's) and check it after each change instead of walking every route;
/// a change that removes a route or makes one smaller cannot push a total that was within the
/// budget over it. [`Config::validate`] makes the same check from the routes themselves.
pub fn expansion_budget_error(total: u64, route: &str) -> Option<FieldError> {
    (total > MAX_CONFIG_EXPANSION).then(|| FieldError {
        kind: Kind::Route,
        name: route.to_owned(),
        field: "paths".into(),
        message: format!(
            "the routes of the config would make {total} route table entries (hosts × paths of \
             each route, summed); at most {MAX_CONFIG_EXPANSION} are allowed"
        ),
        error: ErrorKind::Invalid,
    })
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
            upgrades: vec![],
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
