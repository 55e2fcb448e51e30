//! Rendering change reports (`apply`, `diff`, `rollback`, `revisions diff`) for people: one line
//! per changed entity, `+` created, `~` updated, `-` deleted, in the server's order (upstreams
//! first, then routes, each by name), and for a diff the changed top-level fields of each update.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use super::error::{OutputError, shape};

/// Shown for a field that one side of an update does not have (an empty list the model leaves
/// out, say), so that it is not mistaken for a JSON `null`.
const UNSET: &str = "(unset)";

/// The answer to a write that reports its changes: `PUT /v1/config`, a rollback, a dry run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChangeReport {
    #[serde(default)]
    pub revision: Option<u64>,
    #[serde(default)]
    changed: Option<bool>,
    #[serde(default)]
    pub changes: Vec<ChangeRow>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChangeRow {
    pub kind: String,
    pub name: String,
    pub op: ChangeOp,
    #[serde(default)]
    pub before: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
}

impl ChangeOp {
    fn marker(self) -> char {
        match self {
            ChangeOp::Create => '+',
            ChangeOp::Update => '~',
            ChangeOp::Delete => '-',
        }
    }
}

impl ChangeReport {
    pub fn parse(document: &Value) -> Result<ChangeReport, OutputError> {
        ChangeReport::deserialize(document).map_err(|e| shape("change report", e))
    }

    /// The server's `changed`, or whether it listed any change when it did not say.
    pub fn changed(&self) -> bool {
        self.changed.unwrap_or(!self.changes.is_empty())
    }
}

/// The `changes` list of `GET /v1/revisions/{a}/diff/{b}`.
pub fn parse_changes(document: &Value) -> Result<Vec<ChangeRow>, OutputError> {
    #[derive(Deserialize)]
    struct Diff {
        #[serde(default)]
        changes: Vec<ChangeRow>,
    }
    Diff::deserialize(document)
        .map(|diff| diff.changes)
        .map_err(|e| shape("revision diff", e))
}

/// One line per change: `+ route "a"`, `~ upstream "b"`, `- route "c"`.
fn change_lines(changes: &[ChangeRow]) -> String {
    let mut text = String::new();
    for change in changes {
        text.push_str(&headline(change));
        text.push('\n');
    }
    text
}

/// Like [`change_lines`], but an update gets one line per changed top-level field:
/// `~ route "api": paths: [{"prefix":"/v1"}] -> [{"prefix":"/v2"}]`. `no changes` when empty.
pub fn diff_lines(changes: &[ChangeRow]) -> String {
    if changes.is_empty() {
        return "no changes\n".to_owned();
    }
    let mut text = String::new();
    for change in changes {
        let fields = match (change.op, &change.before, &change.after) {
            (ChangeOp::Update, Some(before), Some(after)) => changed_fields(before, after),
            _ => Vec::new(),
        };
        if fields.is_empty() {
            text.push_str(&headline(change));
            text.push('\n');
        }
        for field in fields {
            text.push_str(&format!("{}: {field}\n", headline(change)));
        }
    }
    text
}

/// What `apply` prints: the changes, then the revision they made (or would be made on).
pub fn apply_summary(report: &ChangeReport) -> String {
    outcome(report, None)
}

/// What `rollback` prints; like [`apply_summary`], naming the revision rolled back to.
pub fn rollback_summary(report: &ChangeReport, target: u64) -> String {
    outcome(report, Some(target))
}

fn outcome(report: &ChangeReport, rollback_to: Option<u64>) -> String {
    if !report.changed() {
        return "no changes\n".to_owned();
    }
    let mut text = change_lines(&report.changes);
    let revision = report
        .revision
        .map_or_else(|| "-".to_owned(), |r| r.to_string());
    if report.dry_run {
        let count = report.changes.len();
        let plural = if count == 1 { "" } else { "s" };
        text.push_str(&format!(
            "dry run: {count} change{plural} not stored (latest revision {revision})\n"
        ));
    } else {
        text.push_str(&format!("applied: revision {revision}"));
        if let Some(target) = rollback_to {
            text.push_str(&format!(" (rollback to revision {target})"));
        }
        text.push('\n');
    }
    text
}

fn headline(change: &ChangeRow) -> String {
    format!("{} {} \"{}\"", change.op.marker(), change.kind, change.name)
}

/// `field: old -> new` for each top-level field that differs, compact JSON on both sides.
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let (Value::Object(old), Value::Object(new)) = (before, after) else {
        return if before == after {
            Vec::new()
        } else {
            vec![format!(
                "{} -> {}",
                compact(Some(before)),
                compact(Some(after))
            )]
        };
    };
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(|key| {
            format!(
                "{key}: {} -> {}",
                compact(old.get(key)),
                compact(new.get(key))
            )
        })
        .collect()
}

fn compact(value: Option<&Value>) -> String {
    match value {
        // Serializing a Value cannot fail: its map keys are always strings.
        Some(value) => serde_json::to_string(value).unwrap_or_default(),
        None => UNSET.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(document: Value) -> ChangeReport {
        ChangeReport::parse(&document).unwrap()
    }

    fn three_changes() -> Value {
        json!([
            {"kind": "upstream", "name": "b", "op": "update",
             "before": {"name": "b", "targets": [{"address": "h:1", "weight": 1}], "balance": "round_robin"},
             "after": {"name": "b", "tags": ["x"], "targets": [{"address": "h:2", "weight": 1}], "balance": "round_robin"}},
            {"kind": "route", "name": "c", "op": "delete", "before": {"name": "c"}, "after": null},
            {"kind": "route", "name": "a", "op": "create", "before": null, "after": {"name": "a"}}
        ])
    }

    #[test]
    fn apply_lists_changes_then_the_revision() {
        let applied = report(json!({"revision": 7, "changed": true, "changes": three_changes()}));
        assert_eq!(
            apply_summary(&applied),
            "~ upstream \"b\"\n- route \"c\"\n+ route \"a\"\napplied: revision 7\n"
        );
        let unchanged = report(json!({"revision": 6, "changed": false, "changes": []}));
        assert_eq!(apply_summary(&unchanged), "no changes\n");
    }

    #[test]
    fn dry_runs_say_nothing_was_stored() {
        let dry = report(
            json!({"dry_run": true, "revision": 6, "changed": true, "changes": three_changes()}),
        );
        assert!(
            apply_summary(&dry).ends_with("dry run: 3 changes not stored (latest revision 6)\n")
        );
    }

    #[test]
    fn rollback_names_its_target() {
        let rolled = report(json!({"revision": 9, "changed": true,
            "changes": [{"kind": "route", "name": "a", "op": "delete", "before": {}, "after": null}]}));
        assert_eq!(
            rollback_summary(&rolled, 3),
            "- route \"a\"\napplied: revision 9 (rollback to revision 3)\n"
        );
    }

    #[test]
    fn diff_shows_each_changed_field() {
        let changes: Vec<ChangeRow> = serde_json::from_value(three_changes()).unwrap();
        assert_eq!(
            diff_lines(&changes),
            "~ upstream \"b\": tags: (unset) -> [\"x\"]\n\
             ~ upstream \"b\": targets: [{\"address\":\"h:1\",\"weight\":1}] -> [{\"address\":\"h:2\",\"weight\":1}]\n\
             - route \"c\"\n\
             + route \"a\"\n"
        );
        assert_eq!(diff_lines(&[]), "no changes\n");
    }

    #[test]
    fn diff_of_a_route_path() {
        let changes = parse_changes(&json!({"from": 1, "to": 2, "changes": [
            {"kind": "route", "name": "api", "op": "update",
             "before": {"name": "api", "paths": [{"prefix": "/v1"}]},
             "after": {"name": "api", "paths": [{"prefix": "/v2"}]}}]}))
        .unwrap();
        assert_eq!(
            diff_lines(&changes),
            "~ route \"api\": paths: [{\"prefix\":\"/v1\"}] -> [{\"prefix\":\"/v2\"}]\n"
        );
    }

    #[test]
    fn changed_defaults_to_whether_changes_were_listed() {
        assert!(report(json!({"changes": three_changes()})).changed());
        assert!(!report(json!({"revision": 1})).changed());
        assert!(ChangeReport::parse(&json!({"changes": [{"kind": "route"}]})).is_err());
        assert!(
            ChangeReport::parse(&json!({"changes": [
            {"kind": "route", "name": "a", "op": "rename"}]}))
            .is_err()
        );
    }
}
