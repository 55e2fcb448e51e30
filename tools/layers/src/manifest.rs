//! Just enough of `Cargo.toml` for the checks: the workspace's `members`, and the names of a
//! crate's dependencies with the line each is declared on.
//!
//! This is a line reader, not a TOML parser (the workspace has no TOML crate to share, and these
//! two questions need little): it knows table headers, `key = value` lines, multi-line arrays and
//! `#` comments, which is how Cargo manifests are written. A dependency is any key of a
//! `[dependencies]` or `[target.'...'.dependencies]` table, or the name in a
//! `[dependencies.NAME]` header, together with its `package = "..."` when it renames one.

use std::fs;
use std::path::{Path, PathBuf};

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The key it is declared under (the name code uses, with `-` as in the manifest).
    pub name: String,
    /// The crate behind a renamed dependency (`package = "..."`).
    pub package: Option<String>,
    /// The 1-based line of the key or header.
    pub line: usize,
}

/// The line without a trailing `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    for (i, ch) in line.char_indices() {
        match in_string {
            Some(quote) => {
                if escaped {
                    escaped = false;
                } else if ch == '\\' && quote == '"' {
                    escaped = true;
                } else if ch == quote {
                    in_string = None;
                }
            }
            None => match ch {
                '"' | '\'' => in_string = Some(ch),
                '#' => return &line[..i],
                _ => {}
            },
        }
    }
    line
}

/// A table header's dotted key, split into unquoted parts: `target.'cfg(unix)'.dependencies` →
/// `["target", "cfg(unix)", "dependencies"]`.
fn split_key(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_string: Option<char> = None;
    for ch in key.chars() {
        match in_string {
            Some(quote) if ch == quote => in_string = None,
            Some(_) => current.push(ch),
            None => match ch {
                '"' | '\'' => in_string = Some(ch),
                '.' => parts.push(std::mem::take(&mut current).trim().to_owned()),
                _ => current.push(ch),
            },
        }
    }
    parts.push(current.trim().to_owned());
    parts
}

/// Every string literal in a piece of TOML value text.
fn strings_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch == '"' || ch == '\'' {
            let mut value = String::new();
            for inner in chars.by_ref() {
                if inner == ch {
                    break;
                }
                value.push(inner);
            }
            out.push(value);
        }
    }
    out
}

/// The `package = "..."` of an inline table, if there is one.
fn package_in(value: &str) -> Option<String> {
    let at = value.find("package")?;
    let rest = value[at + "package".len()..].trim_start();
    let rest = rest.strip_prefix('=')?;
    strings_in(rest).into_iter().next()
}

/// Whether a table's header names a dependency table, and, for `[dependencies.NAME]`, which
/// dependency it declares.
fn dependency_table(header: &[String]) -> Option<Option<String>> {
    let rest = match header {
        [target, _, rest @ ..] if target == "target" => rest,
        rest => rest,
    };
    match rest {
        [deps] if deps == "dependencies" => Some(None),
        [deps, name] if deps == "dependencies" => Some(Some(name.clone())),
        _ => None,
    }
}

/// The dependencies a manifest declares for normal builds (not dev- or build-dependencies).
pub fn dependencies(manifest: &str) -> Vec<Dependency> {
    let mut out = Vec::new();
    // `Some(None)`: inside a dependency table; `Some(Some(i))`: inside `[dependencies.NAME]`,
    // whose entry is `out[i]`.
    let mut table: Option<Option<usize>> = None;
    for (index, raw) in manifest.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("[[") {
            table = None;
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = match dependency_table(&split_key(header)) {
                Some(Some(name)) => {
                    out.push(Dependency {
                        name,
                        package: None,
                        line: index + 1,
                    });
                    Some(Some(out.len() - 1))
                }
                Some(None) => Some(None),
                None => None,
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            // The inside of a multi-line array.
            continue;
        };
        match table {
            Some(None) => {
                let Some(name) = split_key(key.trim()).into_iter().next() else {
                    continue;
                };
                // `bytes.workspace = true` and `bytes = { ... }` are both `bytes`.
                if out
                    .last()
                    .is_some_and(|d: &Dependency| d.name == name && key.contains('.'))
                {
                    continue;
                }
                out.push(Dependency {
                    name,
                    package: package_in(value),
                    line: index + 1,
                });
            }
            Some(Some(entry)) => {
                if key.trim() == "package"
                    && let Some(dependency) = out.get_mut(entry)
                {
                    dependency.package = strings_in(value).into_iter().next();
                }
            }
            None => {}
        }
    }
    out
}

/// The `members` of the `[workspace]` table, as written (globs not expanded).
pub fn workspace_members(manifest: &str) -> Result<Vec<String>, String> {
    let mut in_workspace = false;
    let mut collecting: Option<String> = None;
    for raw in manifest.lines() {
        let line = strip_comment(raw).trim();
        if let Some(text) = collecting.as_mut() {
            text.push_str(line);
            if line.contains(']') {
                return Ok(strings_in(text));
            }
            continue;
        }
        if line.starts_with('[') {
            in_workspace = line == "[workspace]";
            continue;
        }
        if !in_workspace {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "members"
        {
            let value = value.trim();
            if value.contains(']') {
                return Ok(strings_in(value));
            }
            collecting = Some(value.to_owned());
        }
    }
    Err("no `members` array in the `[workspace]` table".to_owned())
}

/// The member directories of a workspace, with `dir/*` globs expanded to the directories below
/// `dir` that hold a `Cargo.toml`.
pub fn member_dirs(root: &Path) -> Result<Vec<PathBuf>, String> {
    let manifest_path = root.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path)
        .map_err(|err| format!("cannot read {}: {err}", manifest_path.display()))?;
    let mut dirs = Vec::new();
    for member in workspace_members(&manifest)? {
        match member.strip_suffix("/*") {
            Some(parent) => {
                let entries = fs::read_dir(root.join(parent))
                    .map_err(|err| format!("cannot list workspace members {member}: {err}"))?;
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|dir| dir.join("Cargo.toml").is_file())
                    .collect();
                found.sort();
                dirs.extend(found);
            }
            None if member.contains('*') => {
                return Err(format!(
                    "workspace member glob `{member}` is not of the form `dir/*`, which is all this checker expands"
                ));
            }
            None => dirs.push(root.join(member)),
        }
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_members_on_one_line_and_several() {
        let one = "[workspace]\nresolver = \"3\"\nmembers = [\"a\", \"b/c\"] # comment\n";
        assert_eq!(workspace_members(one), Ok(vec!["a".into(), "b/c".into()]));
        let several = "[package]\nmembers = [\"no\"]\n[workspace]\nmembers = [\n  \"a\", # one\n  \"b\",\n]\n";
        assert_eq!(workspace_members(several), Ok(vec!["a".into(), "b".into()]));
        assert!(workspace_members("[workspace]\n").is_err());
    }

    #[test]
    fn reads_dependencies() {
        let manifest = r#"
[package]
name = "x"

[dependencies]
bytes.workspace = true
http = { workspace = true, features = ["std"] }
renamed = { package = "gateway-config", path = "../config" }

[dependencies.extra]
package = "data-plane"
version = "1"

[target.'cfg(unix)'.dependencies]
nix = "1"

[dev-dependencies]
tokio = "1"

[build-dependencies]
cc = "1"
"#;
        let got: Vec<(String, Option<String>, usize)> = dependencies(manifest)
            .into_iter()
            .map(|d| (d.name, d.package, d.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("bytes".into(), None, 6),
                ("http".into(), None, 7),
                ("renamed".into(), Some("gateway-config".into()), 8),
                ("extra".into(), Some("data-plane".into()), 10),
                ("nix".into(), None, 15),
            ]
        );
    }
}
