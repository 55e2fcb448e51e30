//! The `request_headers` and `response_headers` filters: a route's header edits, applied in the
//! order remove, set, add. Request edits run after the proxy's own forwarding headers, so a route
//! may override `X-Forwarded-*` (never the framing, which the connections write themselves).

use std::collections::BTreeMap;

use gateway_config::HeaderTransform;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::values::{header_name, header_pair};

/// Header edits in the order they apply: remove, set, add.
#[derive(Debug, Default)]
pub struct HeaderEdits {
    remove: Box<[HeaderName]>,
    set: Box<[(HeaderName, HeaderValue)]>,
    add: Box<[(HeaderName, HeaderValue)]>,
}

impl HeaderEdits {
    /// `None` for a transform that changes nothing.
    pub fn compile(route: &str, transform: &HeaderTransform) -> Option<Self> {
        if transform.is_empty() {
            return None;
        }
        let pairs = |map: &BTreeMap<String, String>| {
            map.iter()
                .filter_map(|(name, value)| header_pair(route, name, value))
                .collect()
        };
        Some(HeaderEdits {
            remove: transform
                .remove
                .iter()
                .filter_map(|name| header_name(route, name))
                .collect(),
            set: pairs(&transform.set),
            add: pairs(&transform.add),
        })
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}
