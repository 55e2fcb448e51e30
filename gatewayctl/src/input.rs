//! Reading `-f` documents as YAML or JSON, from a file or (`-`) stdin: one upstream or route, or
//! a whole configuration for `apply` and `diff`; and the PEM files of `certificate create` and
//! `replace`, bounded by the sizes the admin API takes.
//!
//! An entity document is checked against the shared model before anything is sent, so a typo in
//! a field name is reported with its path without a round trip. The read-only keys the API adds
//! to its responses are dropped first, so the output of `get -o yaml` can be edited and fed back.
//! A whole configuration is only checked for syntax here: the admin API validates it as a whole
//! and reports every problem at once, which a local first-error check would hide.
//!
//! Both are read as strictly as the admin API reads them, by the same code: a key given twice,
//! nesting deeper than the API takes, or YAML aliases that blow a document up are refused here,
//! with the API's own message, before anything is sent.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

// The admin API's own reader, compiled here too so that both refuse the same documents with the
// same words; gatewayctl needs only its whole-document half.
#[allow(dead_code)]
#[path = "../../control-plane/src/api/strict.rs"]
mod strict;

/// The API's limits, but not its size limit: the server decides how large a body it takes
/// (it is configurable there), and a local file is the user's own.
const LIMITS: strict::Limits = strict::Limits {
    max_bytes: usize::MAX,
    max_depth: strict::MAX_DEPTH,
};

/// Keys the API returns but ignores on input.
const READ_ONLY_KEYS: [&str; 3] = ["created_at", "updated_at", "revision"];

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is neither valid YAML nor JSON: {message}")]
    Syntax { path: String, message: String },
    /// Well-formed, but refused as the admin API would refuse it (a duplicate key, too deep).
    #[error("{path}: {message}")]
    Refused { path: String, message: String },
    #[error("{path} must hold a single mapping (an object), not {found}")]
    NotAMapping { path: String, found: &'static str },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: String,
        field: String,
        message: String,
    },
    /// A PEM file given with `flag` that cannot be read or does not hold what the flag takes.
    /// `message` never quotes the file, which may be a private key.
    #[error("{flag} {path} {message}")]
    Pem {
        flag: &'static str,
        path: String,
        message: String,
    },
}

/// Reads and parses one entity document from `path` (`-` = stdin).
pub fn read_document<T: DeserializeOwned>(path: &Path) -> Result<T, InputError> {
    let display = display_name(path);
    let text = read_text(path, &display)?;
    parse_document(&text, &display)
}

/// Reads a whole-configuration document from `path` (`-` = stdin) as a JSON mapping, ready to
/// send as `PUT /v1/config`.
pub fn read_config(path: &Path) -> Result<Value, InputError> {
    let display = display_name(path);
    let text = read_text(path, &display)?;
    parse_config(&text, &display)
}

/// Parses a whole-configuration document. An empty file is refused rather than read as "no
/// entities", which would delete everything.
pub fn parse_config(text: &str, display: &str) -> Result<Value, InputError> {
    parse_mapping(text, display).map(Value::Object)
}

/// Reads the PEM file given with `flag`: text of at most `max_len` bytes, which is the most the
/// admin API takes for `what`, so that an oversized file is refused here, by its name, and is
/// never read whole.
pub fn read_pem(
    flag: &'static str,
    path: &Path,
    max_len: usize,
    what: &str,
) -> Result<String, InputError> {
    let refused = |message: String| InputError::Pem {
        flag,
        path: path.display().to_string(),
        message,
    };
    let cannot_read = |e: std::io::Error| refused(format!("cannot be read: {e}"));
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() > max_len {
        return Err(refused(format!(
            "is larger than {}, the most the admin API takes for {what}",
            size(max_len)
        )));
    }
    String::from_utf8(bytes).map_err(|_| refused("is not text; PEM is ASCII".into()))
}

/// A size for people: in KiB when it is a whole number of them.
fn size(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB ({n} bytes)", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

fn read_text(path: &Path, display: &str) -> Result<String, InputError> {
    let read_error = |source| InputError::Read {
        path: display.to_owned(),
        source,
    };
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(read_error)?;
        Ok(text)
    } else {
        std::fs::read_to_string(PathBuf::from(path)).map_err(read_error)
    }
}

/// Parses YAML or JSON text into an entity.
pub fn parse_document<T: DeserializeOwned>(text: &str, display: &str) -> Result<T, InputError> {
    let mut map = parse_mapping(text, display)?;
    for key in READ_ONLY_KEYS {
        map.remove(key);
    }
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let field = e.path().to_string();
        InputError::Field {
            path: display.to_owned(),
            field: if field == "." {
                "(document)".into()
            } else {
                field
            },
            message: e.into_inner().to_string(),
        }
    })
}

/// YAML or JSON text that must be a mapping. JSON-looking text goes through the JSON parser so
/// that its error messages (line and column) are the familiar ones.
fn parse_mapping(text: &str, display: &str) -> Result<Map<String, Value>, InputError> {
    let bytes = text.as_bytes();
    let format = strict::Format::detect(bytes, None);
    let value = strict::read_value(bytes, format, &LIMITS).map_err(|e| match e {
        strict::ReadError::Syntax { message, .. } => InputError::Syntax {
            path: display.to_owned(),
            message,
        },
        refused => InputError::Refused {
            path: display.to_owned(),
            message: refused.to_string(),
        },
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(InputError::NotAMapping {
            path: display.to_owned(),
            found: type_name(&other),
        }),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "an empty document",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use gateway_config::{Backend, PathMatch, Route, Target, Upstream};

    use super::*;

    #[test]
    fn yaml_upstream_with_read_only_keys() {
        let text = "
name: api
created_at: 2025-01-01T00:00:00.000Z
updated_at: 2025-01-01T00:00:00.000Z
revision: 4
targets:
  - address: 10.0.0.1:80
  - address: 10.0.0.2:80
    weight: 3
";
        let upstream: Upstream = parse_document(text, "api.yaml").unwrap();
        assert_eq!(upstream.name, "api");
        assert_eq!(
            upstream.targets,
            vec![
                Target {
                    address: "10.0.0.1:80".into(),
                    weight: 1
                },
                Target {
                    address: "10.0.0.2:80".into(),
                    weight: 3
                },
            ]
        );
    }

    #[test]
    fn json_route() {
        let text = r#"{"name": "web", "paths": [{"prefix": "/api"}, {"exact": "/health"}],
                       "backends": [{"upstream": "api", "weight": 2}]}"#;
        let route: Route = parse_document(text, "web.json").unwrap();
        assert_eq!(
            route.paths,
            vec![
                PathMatch::Prefix("/api".into()),
                PathMatch::Exact("/health".into())
            ]
        );
        assert_eq!(
            route.backends,
            vec![Backend {
                upstream: "api".into(),
                weight: 2
            }]
        );
    }

    #[test]
    fn unknown_field_names_its_path() {
        let text = "name: api\ntargets:\n  - address: a:80\n    wieght: 2\n";
        let err = parse_document::<Upstream>(text, "api.yaml").unwrap_err();
        let InputError::Field { field, message, .. } = &err else {
            panic!("unexpected error {err}");
        };
        assert_eq!(field, "targets[0].wieght");
        assert!(message.contains("wieght"), "{message}");
    }

    #[test]
    fn syntax_errors_and_wrong_shapes() {
        assert!(matches!(
            parse_document::<Upstream>("{\"name\": ", "x.json"),
            Err(InputError::Syntax { .. })
        ));
        assert!(matches!(
            parse_document::<Upstream>("- a\n- b\n", "x.yaml"),
            Err(InputError::NotAMapping { .. })
        ));
        assert!(matches!(
            parse_document::<Upstream>("", "x.yaml"),
            Err(InputError::NotAMapping { .. })
        ));
    }

    #[test]
    fn whole_config_in_yaml_and_json() {
        let yaml = "upstreams:\n  - name: api\n    targets: [{address: 'a:80'}]\nroutes: []\n";
        let value = parse_config(yaml, "gw.yaml").unwrap();
        assert_eq!(value["upstreams"][0]["targets"][0]["address"], "a:80");
        assert_eq!(value["routes"], serde_json::json!([]));
        let json = r#"{"routes": [{"name": "r", "backends": [{"upstream": "api"}]}]}"#;
        assert_eq!(
            parse_config(json, "gw.json").unwrap()["routes"][0]["name"],
            "r"
        );
        // Not checked locally: the server reports every problem at once.
        assert!(parse_config("upstream: []\n", "gw.yaml").is_ok());
    }

    #[test]
    fn whole_config_must_be_a_mapping() {
        assert!(matches!(
            parse_config("", "gw.yaml"),
            Err(InputError::NotAMapping {
                found: "an empty document",
                ..
            })
        ));
        assert!(matches!(
            parse_config("- a\n", "gw.yaml"),
            Err(InputError::NotAMapping { .. })
        ));
        assert!(matches!(
            parse_config("upstreams: [\n", "gw.yaml"),
            Err(InputError::Syntax { .. })
        ));
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let cases = [
            ("name: a\nname: b\ntargets: []\n", "name"),
            (
                "name: a\ntargets:\n- address: a:80\n  address: b:80\n",
                "targets[0].address",
            ),
            (
                r#"{"name": "a", "targets": [{"address": "a:80", "weight": 1, "weight": 2}]}"#,
                "targets[0].weight",
            ),
        ];
        for (text, field) in cases {
            let err = parse_document::<Upstream>(text, "up.yaml").unwrap_err();
            let InputError::Refused { message, .. } = &err else {
                panic!("{text}: {err}");
            };
            assert!(message.contains(&format!("at `{field}`")), "{message}");
            assert!(message.starts_with("duplicate key"), "{message}");
        }
        let config = "routes:\n- name: r\n  hosts: [a]\n  hosts: [b]\nroutes: []\n";
        let err = parse_config(config, "gw.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "gw.yaml: duplicate key `hosts` at `routes[0].hosts` (line 4, column 3)"
        );
        let top = parse_config("{\"routes\": [], \"routes\": []}", "gw.json").unwrap_err();
        assert!(top.to_string().contains("at `routes`"), "{top}");
    }

    #[test]
    fn nesting_and_alias_bombs_are_refused() {
        let deep = format!("routes: {}", "[".repeat(100));
        let err = parse_config(&deep, "gw.yaml").unwrap_err();
        assert!(matches!(err, InputError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("nested deeper than 64"), "{err}");
        let json = format!("{{\"routes\": {}{}}}", "[".repeat(100), "]".repeat(100));
        let err = parse_config(&json, "gw.json").unwrap_err();
        assert!(err.to_string().contains("nested deeper than 64"), "{err}");
        let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..9 {
            let previous = format!("*a{}", level - 1);
            let items = [previous.as_str(); 9].join(", ");
            laughs.push_str(&format!("a{level}: &a{level} [{items}]\n"));
        }
        let err = parse_config(&laughs, "gw.yaml").unwrap_err();
        assert!(err.to_string().contains("aliases are expanded"), "{err}");
    }

    /// What the gateway writes as YAML (`export`, `-o yaml`, `GET /v1/config?format=yaml`, all
    /// through serde_yaml_ng) reads back as the same document, however its strings look.
    #[test]
    fn yaml_as_the_gateway_writes_it_reads_back_the_same() {
        let tricky = [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "true",
            "True",
            "null",
            "~",
            "",
            "012",
            "0x10",
            "0o7",
            "1_000",
            "1e3",
            ".inf",
            "-.inf",
            ".nan",
            "+1",
            "-0",
            "1.0",
            "2025-01-01",
            "a: b",
            "- a",
            "#x",
            "x #y",
            "'",
            "\"",
            "*a",
            "&a",
            "!a",
            "%a",
            "@a",
            "`a",
            "{}",
            "[]",
            "|",
            ">",
            "?",
            ":",
            "-",
            "---",
            "...",
            "é",
            "\u{feff}x",
            "a\nb",
            " a ",
            "\t",
        ];
        let names: Vec<Value> = tricky.iter().map(|t| Value::from(*t)).collect();
        let document = serde_json::json!({
            "upstreams": [{"name": "api", "tags": names, "targets": [{"address": "a:80", "weight": 1}]}],
            "routes": [{"name": "r", "priority": -3, "headers": [{"name": "x", "exact": "012"}]}],
        });
        let yaml = serde_yaml_ng::to_string(&document).unwrap();
        assert_eq!(parse_config(&yaml, "gw.yaml").unwrap(), document, "{yaml}");
    }

    #[test]
    fn reads_a_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "name: api\ntargets: [{{address: 'a:80'}}]").unwrap();
        let upstream: Upstream = read_document(file.path()).unwrap();
        assert_eq!(upstream.targets.len(), 1);
        let missing = read_document::<Upstream>(Path::new("/nonexistent/up.yaml"));
        assert!(matches!(missing, Err(InputError::Read { .. })));
    }

    #[test]
    fn pem_files_are_bounded_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "x".repeat(16)).unwrap();
        assert_eq!(read_pem("--key", &path, 16, "a key").unwrap().len(), 16);

        let err = read_pem("--key", &path, 15, "a private key").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--key {} is larger than 15 bytes, the most the admin API takes for a private key",
                path.display()
            )
        );
        assert_eq!(size(64 * 1024), "64 KiB (65536 bytes)");

        std::fs::write(&path, b"\xff\xfe").unwrap();
        let err = read_pem("--cert", &path, 1024, "x").unwrap_err();
        assert!(
            err.to_string().ends_with("is not text; PEM is ASCII"),
            "{err}"
        );

        let err = read_pem("--cert", Path::new("/nonexistent/c.pem"), 1024, "x").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--cert /nonexistent/c.pem cannot be read: "),
            "{err}"
        );
    }
}
