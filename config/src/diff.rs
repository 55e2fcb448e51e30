//! What changed between two configs, entity by entity: the basis of revision diffs, dry runs,
//! declarative apply summaries and ConfigSync deltas.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::Config;
use crate::validate::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// One entity's change. `before`/`after` are the user-facing JSON documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub kind: Kind,
    pub name: String,
    pub op: Op,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Config {
    /// Changes that turn `self` into `next`: upstreams first, then routes, then certificates,
    /// each by name.
    pub fn diff(&self, next: &Config) -> Vec<Change> {
        let mut changes = Vec::new();
        diff_maps(
            Kind::Upstream,
            &self.upstreams,
            &next.upstreams,
            &mut changes,
        );
        diff_maps(Kind::Route, &self.routes, &next.routes, &mut changes);
        diff_maps(
            Kind::Certificate,
            &self.certificates,
            &next.certificates,
            &mut changes,
        );
        changes
    }
}

fn diff_maps<T: Serialize + PartialEq>(
    kind: Kind,
    before: &BTreeMap<String, T>,
    after: &BTreeMap<String, T>,
    changes: &mut Vec<Change>,
) {
    let document = |entity: &T| serde_json::to_value(entity).ok();
    for (name, old) in before {
        match after.get(name) {
            None => changes.push(Change {
                kind,
                name: name.clone(),
                op: Op::Delete,
                before: document(old),
                after: None,
            }),
            Some(new) if new != old => changes.push(Change {
                kind,
                name: name.clone(),
                op: Op::Update,
                before: document(old),
                after: document(new),
            }),
            Some(_) => {}
        }
    }
    for (name, new) in after {
        if !before.contains_key(name) {
            changes.push(Change {
                kind,
                name: name.clone(),
                op: Op::Create,
                before: None,
                after: document(new),
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn creates_updates_and_deletes() {
        let a = config(
            r#"{"upstreams": [{"name": "u", "targets": [{"address": "h:1"}]},
                              {"name": "old", "targets": [{"address": "h:2"}]}],
                "routes": [{"name": "r", "backends": [{"upstream": "u"}]}]}"#,
        );
        let b = config(
            r#"{"upstreams": [{"name": "u", "targets": [{"address": "h:9"}]},
                              {"name": "new", "targets": [{"address": "h:3"}]}],
                "routes": [{"name": "r", "backends": [{"upstream": "u"}]}]}"#,
        );
        let changes = a.diff(&b);
        let summary: Vec<_> = changes
            .iter()
            .map(|c| (c.kind, c.name.as_str(), c.op))
            .collect();
        assert_eq!(
            summary,
            [
                (Kind::Upstream, "old", Op::Delete),
                (Kind::Upstream, "u", Op::Update),
                (Kind::Upstream, "new", Op::Create),
            ]
        );
        assert_eq!(
            changes[1].after.as_ref().unwrap()["targets"][0]["address"],
            "h:9"
        );
        assert!(a.diff(&a).is_empty());
    }
}
