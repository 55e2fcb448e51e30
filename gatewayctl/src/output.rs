//! Rendering API documents for people (tables, one-line write summaries) and for scripts (JSON,
//! YAML).
//!
//! Tables read only the fields they show and tolerate missing ones, so a newer server with more
//! fields still renders; JSON and YAML print the server's document unchanged. The one exception
//! is a whole configuration (`export`, `revisions show`), which is written as a file for `apply`:
//! it goes through the shared model so that every entity starts with its name.

mod cells;
mod certificates;
mod changes;
mod error;

use gateway_config::{Backend, Config, Kind, PathMatch, Target};
use serde::Deserialize;
use serde_json::Value;

use cells::{finish, or_dash, revision_cell, rows, table};
use error::shape;

pub use certificates::{certificate_details, certificates_table, expiry_warnings};
pub use changes::{ChangeReport, apply_summary, diff_lines, parse_changes, rollback_summary};
pub use error::OutputError;

/// Keys the API adds to entities in its responses; not part of a file for `apply`.
const READ_ONLY_KEYS: [&str; 3] = ["created_at", "updated_at", "revision"];

/// Number of digest characters worth showing; enough to tell revisions apart.
const DIGEST_CHARS: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// The document as pretty JSON or YAML, ending with a newline.
pub fn document(format: Format, value: &Value) -> Result<String, OutputError> {
    match format {
        Format::Yaml => Ok(serde_yaml_ng::to_string(value)?),
        Format::Json | Format::Table => {
            // Serializing a Value cannot fail: its map keys are always strings.
            let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
            text.push('\n');
            Ok(text)
        }
    }
}

/// A whole configuration (`{"upstreams": [...], "routes": [...]}`) as a file for `apply`: YAML
/// unless JSON is asked for. Keys come in the model's order (name first) rather than the
/// alphabetical order of a parsed JSON document; a document the model does not describe (a newer
/// server) is printed as it came.
pub fn config_document(format: Format, config: &Value) -> Result<String, OutputError> {
    let format = match format {
        Format::Json => Format::Json,
        Format::Table | Format::Yaml => Format::Yaml,
    };
    match normalized_config(config) {
        Some(model) => {
            let text = match format {
                Format::Json => {
                    // Serializing the model cannot fail: plain structs and string-keyed maps.
                    let mut text = serde_json::to_string_pretty(&model).unwrap_or_default();
                    text.push('\n');
                    text
                }
                // Through JSON text into an insertion-ordered YAML value: serializing the model
                // straight to YAML would write enums as tags (`!prefix /v1`), which the JSON
                // model of the API does not read back.
                Format::Table | Format::Yaml => {
                    let json = serde_json::to_string(&model).unwrap_or_default();
                    let ordered: serde_yaml_ng::Value =
                        serde_json::from_str(&json).map_err(|e| shape("configuration", e))?;
                    serde_yaml_ng::to_string(&ordered)?
                }
            };
            Ok(text)
        }
        None => document(format, config),
    }
}

fn normalized_config(config: &Value) -> Option<Config> {
    let mut config = config.clone();
    for list in ["upstreams", "routes"] {
        if let Some(Value::Array(items)) = config.get_mut(list) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                for key in READ_ONLY_KEYS {
                    item.remove(key);
                }
            }
        }
    }
    serde_json::from_value(config).ok()
}

/// `revisions show N` for people: a comment naming the revision, then its configuration as a
/// file for `apply`.
pub fn revision_config(document: &Value) -> Result<String, OutputError> {
    let record = RevisionRow::deserialize(document).map_err(|e| shape("revision", e))?;
    let Some(config) = document.get("config") else {
        return Err(OutputError::Shape {
            what: "revision",
            message: "it has no `config`".into(),
        });
    };
    let mut header = format!("# revision {}", record.revision);
    let about: Vec<String> = [record.created_at, record.actor]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    if !about.is_empty() {
        header.push_str(&format!(" ({})", about.join(", ")));
    }
    if let Some(message) = record.message.filter(|m| !m.is_empty()) {
        // A comment ends at a line break; keep the whole message inside it.
        let message: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        header.push_str(&format!(": {message}"));
    }
    header.push('\n');
    Ok(header + &config_document(Format::Yaml, config)?)
}

/// What a write did, for the one-line summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Replaced,
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Replaced => "replaced",
            Action::Deleted => "deleted",
        }
    }
}

/// `upstream "api" created (revision 3)`.
pub fn write_summary(kind: Kind, name: &str, action: Action, revision: Option<u64>) -> String {
    let mut line = format!("{kind} \"{name}\" {}", action.as_str());
    if let Some(revision) = revision {
        line.push_str(&format!(" (revision {revision})"));
    }
    line.push('\n');
    line
}

#[derive(Deserialize)]
struct UpstreamRow {
    name: String,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    balance: Value,
    #[serde(default)]
    revision: Option<u64>,
    #[serde(default)]
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct RouteRow {
    name: String,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    paths: Vec<PathMatch>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    backends: Vec<Backend>,
    #[serde(default)]
    revision: Option<u64>,
}

#[derive(Deserialize)]
struct NodesDocument {
    #[serde(default)]
    latest_revision: Option<u64>,
    #[serde(default)]
    items: Vec<NodeRow>,
}

#[derive(Deserialize)]
struct NodeRow {
    id: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    applied_revision: Option<u64>,
    #[serde(default)]
    last_seen: Option<String>,
    #[serde(default)]
    last_error: Option<String>,
}

#[derive(Deserialize)]
struct RevisionsDocument {
    #[serde(default)]
    items: Vec<RevisionRow>,
}

#[derive(Deserialize)]
struct RevisionRow {
    revision: u64,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

/// Empty match lists mean "any", which is what a reader needs to see.
fn list_or_any(values: impl IntoIterator<Item = String>) -> String {
    let joined = values.into_iter().collect::<Vec<_>>().join(",");
    if joined.is_empty() {
        "*".to_owned()
    } else {
        joined
    }
}

/// `round_robin`, or the variant name of a balance with settings (`{"consistent_hash": {...}}`).
fn balance_cell(balance: &Value) -> String {
    match balance {
        Value::Null => "round_robin".to_owned(),
        Value::String(s) => s.clone(),
        Value::Object(map) => map.keys().cloned().collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

pub fn upstreams_table(items: &[Value]) -> Result<String, OutputError> {
    let rows: Vec<UpstreamRow> = rows(items, "upstream")?;
    let mut table = table(&["NAME", "TARGETS", "BALANCE", "REVISION", "UPDATED"]);
    for row in rows {
        let targets = row
            .targets
            .iter()
            .map(|t| format!("{}={}", t.address, t.weight))
            .collect::<Vec<_>>()
            .join(",");
        table.add_row(vec![
            row.name,
            or_dash(Some(&targets)),
            balance_cell(&row.balance),
            revision_cell(row.revision),
            or_dash(row.updated_at.as_deref()),
        ]);
    }
    Ok(finish(&table))
}

pub fn routes_table(items: &[Value]) -> Result<String, OutputError> {
    let rows: Vec<RouteRow> = rows(items, "route")?;
    let mut table = table(&["NAME", "HOSTS", "PATHS", "METHODS", "BACKENDS", "REVISION"]);
    for row in rows {
        let paths = row.paths.iter().map(|p| match p {
            PathMatch::Prefix(prefix) => prefix.clone(),
            PathMatch::Exact(exact) => format!("={exact}"),
            PathMatch::Regex(regex) => format!("~{regex}"),
        });
        let backends = row
            .backends
            .iter()
            .map(|b| format!("{}={}", b.upstream, b.weight))
            .collect::<Vec<_>>()
            .join(",");
        table.add_row(vec![
            row.name,
            list_or_any(row.hosts),
            list_or_any(paths),
            list_or_any(row.methods),
            or_dash(Some(&backends)),
            revision_cell(row.revision),
        ]);
    }
    Ok(finish(&table))
}

/// `latest revision: N` and then one row per node.
pub fn nodes_table(document: &Value) -> Result<String, OutputError> {
    let nodes = NodesDocument::deserialize(document).map_err(|e| shape("node list", e))?;
    let mut table = table(&["NODE", "GROUP", "STATUS", "REVISION", "LAST SEEN", "ERROR"]);
    for node in nodes.items {
        table.add_row(vec![
            node.id,
            or_dash(node.group.as_deref()),
            or_dash(node.status.as_deref()),
            revision_cell(node.applied_revision),
            or_dash(node.last_seen.as_deref()),
            or_dash(node.last_error.as_deref()),
        ]);
    }
    Ok(format!(
        "latest revision: {}\n{}",
        revision_cell(nodes.latest_revision),
        finish(&table)
    ))
}

pub fn revisions_table(document: &Value) -> Result<String, OutputError> {
    let revisions =
        RevisionsDocument::deserialize(document).map_err(|e| shape("revision list", e))?;
    let mut table = table(&["REVISION", "CREATED", "ACTOR", "MESSAGE", "DIGEST"]);
    for revision in revisions.items {
        let digest: String = revision
            .digest
            .unwrap_or_default()
            .chars()
            .take(DIGEST_CHARS)
            .collect();
        table.add_row(vec![
            revision.revision.to_string(),
            or_dash(revision.created_at.as_deref()),
            or_dash(revision.actor.as_deref()),
            or_dash(revision.message.as_deref()),
            or_dash(Some(&digest)),
        ]);
    }
    Ok(finish(&table))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lines(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn upstream_table() {
        let items = vec![
            json!({"name": "api", "targets": [{"address": "10.0.0.1:80", "weight": 1},
                   {"address": "10.0.0.2:80", "weight": 3}], "balance": "round_robin",
                   "created_at": "2025-01-01T00:00:00.000Z", "updated_at": "2025-01-02T00:00:00.000Z",
                   "revision": 7}),
            json!({"name": "db", "targets": [{"address": "db:5432", "weight": 1}],
                   "tags": ["x"], "revision": 2, "updated_at": "2025-01-01T00:00:00.000Z"}),
        ];
        let text = upstreams_table(&items).unwrap();
        assert_eq!(
            lines(&text),
            vec![
                vec!["NAME", "TARGETS", "BALANCE", "REVISION", "UPDATED"],
                vec![
                    "api",
                    "10.0.0.1:80=1,10.0.0.2:80=3",
                    "round_robin",
                    "7",
                    "2025-01-02T00:00:00.000Z"
                ],
                vec![
                    "db",
                    "db:5432=1",
                    "round_robin",
                    "2",
                    "2025-01-01T00:00:00.000Z"
                ],
            ]
        );
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
        assert!(text.starts_with("NAME"), "{text:?}");
    }

    #[test]
    fn route_table() {
        let items = vec![
            json!({"name": "web", "hosts": ["example.com", "*.example.org"],
                   "paths": [{"prefix": "/api"}, {"exact": "/health"}], "methods": ["GET", "POST"],
                   "backends": [{"upstream": "api", "weight": 9}, {"upstream": "canary", "weight": 1}],
                   "strip_prefix": false, "preserve_host": false, "priority": 0, "revision": 5}),
            json!({"name": "all", "backends": [{"upstream": "api", "weight": 1}], "revision": 6}),
        ];
        let text = routes_table(&items).unwrap();
        assert_eq!(
            lines(&text),
            vec![
                vec!["NAME", "HOSTS", "PATHS", "METHODS", "BACKENDS", "REVISION"],
                vec![
                    "web",
                    "example.com,*.example.org",
                    "/api,=/health",
                    "GET,POST",
                    "api=9,canary=1",
                    "5"
                ],
                vec!["all", "*", "*", "*", "api=1", "6"],
            ]
        );
    }

    #[test]
    fn empty_list_prints_the_header() {
        assert_eq!(
            lines(&upstreams_table(&[]).unwrap()),
            vec![vec!["NAME", "TARGETS", "BALANCE", "REVISION", "UPDATED"]]
        );
    }

    #[test]
    fn nodes_table_starts_with_the_latest_revision() {
        let doc = json!({"latest_revision": 9, "items": [
            {"id": "w1", "group": "default", "build": "0.1.0", "applied_revision": 9,
             "applied_digest": "abc", "status": "SYNCED", "last_error": null,
             "last_seen": "2025-01-01T00:00:00.000Z", "connected": true},
            {"id": "w2", "group": "edge", "build": "0.1.0", "applied_revision": 8,
             "applied_digest": "abd", "status": "ERROR", "last_error": "bad",
             "last_seen": "2025-01-01T00:00:01.000Z", "connected": true}]});
        let text = nodes_table(&doc).unwrap();
        assert_eq!(
            lines(&text),
            vec![
                vec!["latest", "revision:", "9"],
                vec![
                    "NODE", "GROUP", "STATUS", "REVISION", "LAST", "SEEN", "ERROR"
                ],
                vec![
                    "w1",
                    "default",
                    "SYNCED",
                    "9",
                    "2025-01-01T00:00:00.000Z",
                    "-"
                ],
                vec![
                    "w2",
                    "edge",
                    "ERROR",
                    "8",
                    "2025-01-01T00:00:01.000Z",
                    "bad"
                ],
            ]
        );
        assert!(text.starts_with("latest revision: 9\n"));
    }

    #[test]
    fn revisions_table_shortens_digests() {
        let doc = json!({"items": [
            {"revision": 2, "actor": "admin", "message": "create route web",
             "digest": "0123456789abcdef0123", "created_at": "2025-01-01T00:00:00.000Z"},
            {"revision": 1, "actor": null, "message": "", "digest": "fedcba9876543210",
             "created_at": "2025-01-01T00:00:00.000Z"}], "next_cursor": null});
        let text = revisions_table(&doc).unwrap();
        let rows = lines(&text);
        assert_eq!(
            rows[1],
            vec![
                "2",
                "2025-01-01T00:00:00.000Z",
                "admin",
                "create",
                "route",
                "web",
                "0123456789ab"
            ]
        );
        assert_eq!(
            rows[2],
            vec!["1", "2025-01-01T00:00:00.000Z", "-", "-", "fedcba987654"]
        );
    }

    #[test]
    fn malformed_documents_are_reported() {
        let err = upstreams_table(&[json!({"targets": []})]).unwrap_err();
        assert!(matches!(
            err,
            OutputError::Shape {
                what: "upstream",
                ..
            }
        ));
        assert!(nodes_table(&json!({"items": [{"group": "x"}]})).is_err());
    }

    #[test]
    fn json_and_yaml_documents() {
        let value = json!({"name": "api", "revision": 3});
        assert_eq!(
            document(Format::Json, &value).unwrap(),
            "{\n  \"name\": \"api\",\n  \"revision\": 3\n}\n"
        );
        assert_eq!(
            document(Format::Yaml, &value).unwrap(),
            "name: api\nrevision: 3\n"
        );
    }

    #[test]
    fn config_documents_put_names_first_and_drop_metadata() {
        let config = json!({"routes": [{"backends": [{"upstream": "api", "weight": 1}],
                "hosts": [], "methods": [], "name": "web", "paths": [{"prefix": "/"}],
                "preserve_host": false, "priority": 0, "strip_prefix": false, "revision": 3}],
            "upstreams": [{"balance": "round_robin", "name": "api",
                "targets": [{"address": "a:80", "weight": 1}], "updated_at": "x"}]});
        let yaml = config_document(Format::Table, &config).unwrap();
        assert!(
            yaml.starts_with("upstreams:\n- name: api\n  targets:\n  - address: a:80\n"),
            "{yaml}"
        );
        assert!(yaml.contains("routes:\n- name: web\n"), "{yaml}");
        assert!(!yaml.contains("revision") && !yaml.contains("updated_at"));
        // Read back the way `apply` reads files: serde_yaml_ng alone wants enums as tags.
        let back: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let back: Config = serde_json::from_value(back).unwrap();
        assert_eq!(back.routes["web"].backends[0].upstream, "api");

        let json = config_document(Format::Json, &config).unwrap();
        assert!(
            json.starts_with("{\n  \"upstreams\": [\n    {\n      \"name\": \"api\""),
            "{json}"
        );
        assert_eq!(
            config_document(Format::Yaml, &json!({})).unwrap(),
            "upstreams: []\nroutes: []\n"
        );
    }

    #[test]
    fn config_the_model_does_not_know_is_printed_as_is() {
        let config = json!({"upstreams": [], "consumers": [{"name": "c"}]});
        assert_eq!(
            config_document(Format::Yaml, &config).unwrap(),
            "upstreams: []\nconsumers:\n- name: c\n"
        );
    }

    #[test]
    fn revision_config_starts_with_a_comment() {
        let doc = json!({"revision": 4, "actor": "admin", "message": "apply config",
            "digest": "abc", "created_at": "2025-01-01T00:00:00.000Z",
            "config": {"upstreams": [], "routes": []}});
        assert_eq!(
            revision_config(&doc).unwrap(),
            "# revision 4 (2025-01-01T00:00:00.000Z, admin): apply config\nupstreams: []\nroutes: []\n"
        );
        let doc = json!({"revision": 1, "message": "two\nlines", "config": {}});
        assert!(
            revision_config(&doc)
                .unwrap()
                .starts_with("# revision 1: two lines\n")
        );
        assert!(revision_config(&json!({"revision": 1})).is_err());
    }

    #[test]
    fn write_summaries() {
        assert_eq!(
            write_summary(Kind::Upstream, "api", Action::Created, Some(3)),
            "upstream \"api\" created (revision 3)\n"
        );
        assert_eq!(
            write_summary(Kind::Route, "web", Action::Deleted, None),
            "route \"web\" deleted\n"
        );
    }
}

#[derive(Deserialize)]
struct TokensDocument {
    items: Vec<TokenRow>,
}

#[derive(Deserialize)]
struct TokenRow {
    name: String,
    role: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    expired: bool,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

/// One row per token: name, role, expiry (marked when passed), who made it and when.
pub fn tokens_table(document: &Value) -> Result<String, OutputError> {
    let tokens = TokensDocument::deserialize(document).map_err(|e| shape("token list", e))?;
    let mut table = table(&["NAME", "ROLE", "EXPIRES", "CREATED BY", "CREATED"]);
    for token in tokens.items {
        let expires = match (token.expires_at, token.expired) {
            (None, _) => "never".to_owned(),
            (Some(at), true) => format!("{at} (expired)"),
            (Some(at), false) => at,
        };
        table.add_row(vec![
            token.name,
            token.role,
            expires,
            or_dash(token.created_by.as_deref()),
            or_dash(token.created_at.as_deref()),
        ]);
    }
    Ok(finish(&table))
}

/// One row per context, `*` on the current one.
pub fn contexts_table(items: &[Value]) -> String {
    let mut table = table(&["CURRENT", "NAME", "ADMIN URL", "AUTH", "CA FILE"]);
    for item in items {
        let text = |key: &str| item[key].as_str().unwrap_or("-").to_owned();
        table.add_row(vec![
            if item["current"] == true { "*" } else { "" }.to_owned(),
            text("name"),
            text("admin_url"),
            text("auth"),
            text("ca_file"),
        ]);
    }
    finish(&table)
}
