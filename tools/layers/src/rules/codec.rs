//! Rule 3: the HTTP/1 codec crate stands alone. It is differentially tested against hyper and
//! fuzzed on its own, and both sides of the worker share it; that only holds while it knows
//! nothing of the gateway. So its `[dependencies]` are exactly the HTTP building blocks
//! ([`CODEC_DEPENDENCIES`]), and no file of its `src/` names a gateway crate
//! ([`GATEWAY_NAMES`]), not even in a comment that would invite the dependency.

use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest;
use crate::tree::display_relative;
use crate::violation::{Rule, Violation};

/// All the codec may depend on.
pub const CODEC_DEPENDENCIES: &[&str] = &["bytes", "http", "httparse", "httpdate"];

/// How gateway crates are named in Rust code (`gateway_config`, `data_plane::`, ...).
pub const GATEWAY_NAMES: &[&str] = &["gateway_", "data_plane", "control_plane"];

/// The codec crate's violations. `crate_dir` is the crate (`http1/`); paths in messages are
/// relative to `base`.
pub fn codec_standalone(crate_dir: &Path, base: &Path) -> Vec<Violation> {
    let mut violations = Vec::new();
    let manifest_path = crate_dir.join("Cargo.toml");
    let shown_manifest = display_relative(base, &manifest_path);
    match fs::read_to_string(&manifest_path) {
        Ok(text) => {
            for dependency in manifest::dependencies(&text) {
                let names = std::iter::once(&dependency.name).chain(dependency.package.as_ref());
                for name in names {
                    if !CODEC_DEPENDENCIES.contains(&name.as_str()) {
                        violations.push(Violation::new(
                            Rule::CodecStandalone,
                            shown_manifest.clone(),
                            Some(dependency.line),
                            format!(
                                "dependency `{name}`: the codec depends only on {}",
                                CODEC_DEPENDENCIES.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        Err(err) => violations.push(Violation::new(
            Rule::CodecStandalone,
            shown_manifest,
            None,
            format!("cannot read the codec's manifest: {err}"),
        )),
    }

    let mut files = Vec::new();
    if let Err(err) = files_below(&crate_dir.join("src"), &mut files) {
        violations.push(Violation::new(
            Rule::CodecStandalone,
            display_relative(base, &crate_dir.join("src")),
            None,
            format!("cannot list the codec's sources: {err}"),
        ));
    }
    files.sort();
    for file in files {
        let shown = display_relative(base, &file);
        let text = match fs::read(&file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => {
                violations.push(Violation::new(
                    Rule::CodecStandalone,
                    shown,
                    None,
                    format!("cannot read: {err}"),
                ));
                continue;
            }
        };
        for (index, line) in text.lines().enumerate() {
            for name in GATEWAY_NAMES.iter().filter(|name| line.contains(*name)) {
                violations.push(Violation::new(
                    Rule::CodecStandalone,
                    shown.clone(),
                    Some(index + 1),
                    format!("names `{name}`: the codec must not know the gateway's crates"),
                ));
            }
        }
    }
    violations
}

/// Every file below `dir`, recursively.
fn files_below(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_below(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, lines};

    const MANIFEST: &str = "[package]\nname = \"gateway-http1\"\n\n[dependencies]\nbytes.workspace = true\nhttp.workspace = true\nhttparse.workspace = true\nhttpdate.workspace = true\n\n[dev-dependencies]\nhyper.workspace = true\ngateway-config.workspace = true\n";

    #[test]
    fn accepts_the_http_building_blocks() {
        let fixture = Fixture::new(&[
            ("http1/Cargo.toml", MANIFEST),
            (
                "http1/src/lib.rs",
                "//! The codec, for both sides of a proxy.\npub fn parse() {}\n",
            ),
        ]);
        let got = codec_standalone(&fixture.root().join("http1"), fixture.root());
        assert!(got.is_empty(), "{:#?}", lines(&got));
    }

    #[test]
    fn reports_other_dependencies_and_gateway_names() {
        let manifest = MANIFEST.replace(
            "httpdate.workspace = true\n",
            "httpdate.workspace = true\ntokio = \"1\"\nconfig = { package = \"gateway-config\", path = \"../config\" }\n",
        );
        let fixture = Fixture::new(&[
            ("http1/Cargo.toml", &manifest),
            ("http1/src/lib.rs", "//! Codec.\nmod fields;\n"),
            (
                "http1/src/fields.rs",
                "//! Fields.\nuse gateway_config::Limits;\n// see data_plane::listener\n",
            ),
        ]);
        let got = lines(&codec_standalone(
            &fixture.root().join("http1"),
            fixture.root(),
        ));
        assert_eq!(
            got,
            [
                "http1/Cargo.toml:9: [codec-standalone] dependency `tokio`: the codec depends only on bytes, http, httparse, httpdate",
                "http1/Cargo.toml:10: [codec-standalone] dependency `config`: the codec depends only on bytes, http, httparse, httpdate",
                "http1/Cargo.toml:10: [codec-standalone] dependency `gateway-config`: the codec depends only on bytes, http, httparse, httpdate",
                "http1/src/fields.rs:2: [codec-standalone] names `gateway_`: the codec must not know the gateway's crates",
                "http1/src/fields.rs:3: [codec-standalone] names `data_plane`: the codec must not know the gateway's crates",
            ]
        );
    }
}
