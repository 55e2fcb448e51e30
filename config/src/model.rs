//! The user-facing shape of routes and upstreams, as accepted by the admin API and declarative
//! files. Unknown fields are refused so that a typo never silently does nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A group of interchangeable targets that routes send traffic to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub targets: Vec<Target>,
    #[serde(default)]
    pub balance: Balance,
}

/// One address of an upstream, `host:port` (IPv6 as `[addr]:port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub address: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Weighted round robin over the targets.
    #[default]
    RoundRobin,
}

/// Which requests a route takes and where it sends them.
///
/// Empty `hosts`, `paths` or `methods` match anything. Among routes that match a request, the one
/// with the highest `priority` wins, then the most specific host, then the most specific path
/// (exact, then the longest prefix), then a method match, then the older route, then the name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Exact host names or `*.suffix` wildcards, matched without the port and ignoring case.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub paths: Vec<PathMatch>,
    /// HTTP methods, upper case.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Remove the matched path prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Forward the client's `Host` instead of the target's address.
    #[serde(default)]
    pub preserve_host: bool,
    pub backends: Vec<Backend>,
    #[serde(default)]
    pub priority: i32,
    /// Creation time in Unix milliseconds, set by the control plane; an older route wins a
    /// precedence tie. Not part of the user-facing document.
    #[serde(skip)]
    pub created_at_unix_ms: i64,
}

/// A path condition. A prefix is segment-aware: `/api` matches `/api` and `/api/x`, never `/apix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
}

impl PathMatch {
    pub fn value(&self) -> &str {
        match self {
            PathMatch::Prefix(p) | PathMatch::Exact(p) => p,
        }
    }
}

/// One upstream a route sends to, with its share of the route's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    pub upstream: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// The whole configuration at one revision, keyed by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, with = "by_name")]
    pub upstreams: BTreeMap<String, Upstream>,
    #[serde(default, with = "by_name")]
    pub routes: BTreeMap<String, Route>,
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
