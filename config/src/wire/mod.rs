//! Conversions between the ConfigSync wire messages and the domain model.
//!
//! Conversion checks only what the wire shape cannot express (a oneof left empty, an enum value
//! from a newer build); the semantic checks stay in [`Config::validate`].

mod certificate;
mod policy;
mod route;
mod upstream;

use gateway_proto::v1;

use crate::model::{Certificate, Config, Route, Upstream};
use crate::validate::Kind;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("resource without a kind")]
    EmptyResource,
    #[error("{kind} `{name}` appears twice in one push")]
    Duplicate { kind: Kind, name: String },
    #[error("removal of a resource of unknown kind {0}")]
    UnknownKind(i32),
    #[error("{kind} `{name}` to remove does not exist")]
    MissingRemoval { kind: Kind, name: String },
    #[error("upstream `{name}`: unknown balance algorithm {value}")]
    UnknownBalance { name: String, value: i32 },
    #[error("route `{name}`: paths[{index}] has no match kind")]
    EmptyPathMatch { name: String, index: usize },
    #[error("{kind} `{name}`: {field}: {message}")]
    Invalid {
        kind: Kind,
        name: String,
        field: &'static str,
        message: String,
    },
}

impl From<Kind> for v1::Kind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Upstream => v1::Kind::Upstream,
            Kind::Route => v1::Kind::Route,
            Kind::Certificate => v1::Kind::Certificate,
        }
    }
}

/// Every entity of `config` as wire resources: upstreams first, then routes, then
/// certificates, each by name.
pub fn resources_from_config(config: &Config) -> Vec<v1::Resource> {
    let upstreams = config.upstreams.values().map(|u| v1::Resource {
        resource: Some(v1::resource::Resource::Upstream(u.into())),
    });
    let routes = config.routes.values().map(|r| v1::Resource {
        resource: Some(v1::resource::Resource::Route(r.into())),
    });
    let certificates = config.certificates.values().map(|c| v1::Resource {
        resource: Some(v1::resource::Resource::Certificate(c.into())),
    });
    upstreams.chain(routes).chain(certificates).collect()
}

/// Builds a config from a full set of wire resources.
pub fn config_from_resources(resources: Vec<v1::Resource>) -> Result<Config, WireError> {
    let mut config = Config::default();
    config.apply_changes(resources, Vec::new(), true)?;
    Ok(config)
}

impl Config {
    /// Applies wire upserts and removals in place. With `fresh`, an entity named twice is an error
    /// (a full snapshot names each entity once).
    pub fn apply_changes(
        &mut self,
        upserts: Vec<v1::Resource>,
        removals: Vec<v1::ResourceKey>,
        fresh: bool,
    ) -> Result<(), WireError> {
        for key in removals {
            let removed = match v1::Kind::try_from(key.kind) {
                Ok(v1::Kind::Upstream) => self.upstreams.remove(&key.name).map(|_| Kind::Upstream),
                Ok(v1::Kind::Route) => self.routes.remove(&key.name).map(|_| Kind::Route),
                Ok(v1::Kind::Certificate) => self
                    .certificates
                    .remove(&key.name)
                    .map(|_| Kind::Certificate),
                _ => return Err(WireError::UnknownKind(key.kind)),
            };
            if removed.is_none() {
                let kind = match v1::Kind::try_from(key.kind) {
                    Ok(v1::Kind::Route) => Kind::Route,
                    Ok(v1::Kind::Certificate) => Kind::Certificate,
                    _ => Kind::Upstream,
                };
                return Err(WireError::MissingRemoval {
                    kind,
                    name: key.name,
                });
            }
        }
        for resource in upserts {
            match resource.resource {
                Some(v1::resource::Resource::Upstream(u)) => {
                    let upstream = Upstream::try_from(u)?;
                    let name = upstream.name.clone();
                    if self.upstreams.insert(name.clone(), upstream).is_some() && fresh {
                        return Err(WireError::Duplicate {
                            kind: Kind::Upstream,
                            name,
                        });
                    }
                }
                Some(v1::resource::Resource::Route(r)) => {
                    let route = Route::try_from(r)?;
                    let name = route.name.clone();
                    if self.routes.insert(name.clone(), route).is_some() && fresh {
                        return Err(WireError::Duplicate {
                            kind: Kind::Route,
                            name,
                        });
                    }
                }
                Some(v1::resource::Resource::Certificate(c)) => {
                    let certificate = Certificate::try_from(c)?;
                    let name = certificate.name.clone();
                    if self
                        .certificates
                        .insert(name.clone(), certificate)
                        .is_some()
                        && fresh
                    {
                        return Err(WireError::Duplicate {
                            kind: Kind::Certificate,
                            name,
                        });
                    }
                }
                None => return Err(WireError::EmptyResource),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Config {
        let json = r#"{
            "upstreams": [{"name": "api", "targets": [{"address": "127.0.0.1:9000", "weight": 3}]}],
            "routes": [{"name": "r", "hosts": ["*.example.com"],
                        "paths": [{"prefix": "/api"}, {"exact": "/health"}],
                        "methods": ["GET"], "strip_prefix": true,
                        "backends": [{"upstream": "api"}], "priority": 5}]
        }"#;
        let mut config: Config = serde_json::from_str(json).unwrap();
        if let Some(route) = config.routes.get_mut("r") {
            route.created_at_unix_ms = 1234;
        }
        config
    }

    #[test]
    fn round_trip_through_the_wire_is_lossless() {
        let config = sample();
        let back = config_from_resources(resources_from_config(&config)).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.routes["r"].created_at_unix_ms, 1234);
        assert_eq!(crate::digest(&back), crate::digest(&config));
    }

    #[test]
    fn duplicates_and_bad_removals_are_refused() {
        let mut resources = resources_from_config(&sample());
        resources.push(resources[0].clone());
        assert!(matches!(
            config_from_resources(resources),
            Err(WireError::Duplicate { .. })
        ));
        let mut config = sample();
        let missing = v1::ResourceKey {
            kind: v1::Kind::Route.into(),
            name: "nope".into(),
        };
        assert!(matches!(
            config.apply_changes(vec![], vec![missing], false),
            Err(WireError::MissingRemoval { .. })
        ));
    }

    #[test]
    fn duplicate_names_in_a_document_are_refused() {
        let json = r#"{"upstreams": [
            {"name": "a", "targets": [{"address": "h:1"}]},
            {"name": "a", "targets": [{"address": "h:2"}]}]}"#;
        let err = serde_json::from_str::<Config>(json).unwrap_err();
        assert!(err.to_string().contains("duplicate name `a`"), "{err}");
    }
}
