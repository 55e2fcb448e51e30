//! The user-facing shape of routes, upstreams and certificates, as accepted by the admin API and declarative
//! files. Unknown fields are refused so that a typo never silently does nothing.

mod certificate;
mod defaults;
mod duration;
mod plugins;
mod policy;
mod route;
#[cfg(feature = "openapi")]
mod text_schema;
mod upstream;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use certificate::{Certificate, ClientAuth, ClientAuthMode, Computed, PrivateKey};
pub use duration::Duration;
pub use plugins::{IpRestriction, Plugins, RequestId, RequestSizeLimit};
pub use policy::{
    ActiveHealthCheck, CircuitBreaker, HealthCheck, PassiveHealthCheck, UpstreamTimeouts,
};
pub use policy::{Retries, RetryOn};
pub use route::{
    Backend, DirectResponse, HeaderMatch, HeaderTransform, Mirror, PathMatch, QueryMatch, Redirect,
    Rewrite, Route, Sticky,
};
pub use upstream::{AllUnhealthy, HashOn, Protocol, UpstreamTls};
pub use upstream::{Balance, Target, Upstream};

/// The whole configuration at one revision, keyed by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, with = "by_name")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Upstream>))]
    pub upstreams: BTreeMap<String, Upstream>,
    #[serde(default, with = "by_name")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Route>))]
    pub routes: BTreeMap<String, Route>,
    #[serde(default, with = "by_name", skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Certificate>))]
    pub certificates: BTreeMap<String, Certificate>,
}

impl Config {
    /// Entries the routes of this config make in every worker's route table: the sum of
    /// [`Route::expansion`].
    pub fn expansion(&self) -> u64 {
        self.routes
            .values()
            .fold(0u64, |total, route| total.saturating_add(route.expansion()))
    }
}

/// Entities that are stored in a map keyed by their own name.
pub trait Named {
    fn name(&self) -> &str;
}

impl Named for Upstream {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Route {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Certificate {
    fn name(&self) -> &str {
        &self.name
    }
}

/// (De)serializes a name-keyed map as a list, the shape people write in files.
mod by_name {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    use super::Named;

    pub fn serialize<S: Serializer, T: Serialize>(
        map: &BTreeMap<String, T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.values())
    }

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<BTreeMap<String, T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Named,
    {
        let items = Vec::<T>::deserialize(deserializer)?;
        let mut map = BTreeMap::new();
        for item in items {
            let name = item.name().to_owned();
            if map.insert(name.clone(), item).is_some() {
                return Err(D::Error::custom(format!("duplicate name `{name}`")));
            }
        }
        Ok(map)
    }
}
