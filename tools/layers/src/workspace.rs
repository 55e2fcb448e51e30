//! The real workspace: its members (from the root `Cargo.toml`), each member's crate targets
//! (`src/lib.rs`, `src/main.rs`, `src/bin/*`), and one function per rule that runs it over the
//! parts of the workspace it is about.

use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest;
use crate::rules::{codec, cycles, docs, exposure, layers, statics};
use crate::table;
use crate::tree::{CrateTree, display_relative};
use crate::violation::{Rule, Violation};

/// The member whose layers, statics and exposure are checked (rules 2, 4 and 6).
pub const DATA_PLANE: &str = "data-plane";
/// The member that must stand alone (rule 3).
pub const CODEC: &str = "http1";

/// One workspace member.
pub struct Member {
    /// Its directory relative to the workspace root, as `members` names it (`data-plane`).
    pub name: String,
    pub dir: PathBuf,
    /// One module tree per crate target with its root under `src/`.
    pub trees: Vec<CrateTree>,
}

/// Everything the rules read.
pub struct Workspace {
    pub root: PathBuf,
    pub members: Vec<Member>,
    /// What could not be read: unreadable manifests, missing module files, parse errors.
    pub problems: Vec<Violation>,
}

/// The crate roots of a member: `src/lib.rs`, `src/main.rs`, `src/bin/*.rs`, `src/bin/*/main.rs`.
pub fn crate_roots(member_dir: &Path) -> Vec<PathBuf> {
    let src = member_dir.join("src");
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|name| src.join(name))
        .filter(|path| path.is_file())
        .collect();
    if let Ok(entries) = fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter_map(|path| {
                if path.is_dir() {
                    Some(path.join("main.rs")).filter(|main| main.is_file())
                } else {
                    (path.extension().is_some_and(|ext| ext == "rs")).then_some(path)
                }
            })
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

impl Workspace {
    /// Loads every member's module trees. Never fails: what cannot be read is a problem
    /// reported by [`module_trees`], and the rules check the rest.
    pub fn load(root: &Path) -> Workspace {
        let mut workspace = Workspace {
            root: root.to_path_buf(),
            members: Vec::new(),
            problems: Vec::new(),
        };
        let dirs = match manifest::member_dirs(root) {
            Ok(dirs) => dirs,
            Err(err) => {
                workspace.problems.push(Violation::new(
                    Rule::ModuleTree,
                    "Cargo.toml",
                    None,
                    format!("cannot read the workspace members: {err}"),
                ));
                return workspace;
            }
        };
        for dir in dirs {
            let name = display_relative(root, &dir);
            let roots = crate_roots(&dir);
            if roots.is_empty() {
                workspace.problems.push(Violation::new(
                    Rule::ModuleTree,
                    format!("{name}/src"),
                    None,
                    "member has no crate root (src/lib.rs, src/main.rs or src/bin/*)".to_owned(),
                ));
            }
            let mut trees = Vec::new();
            for root_file in roots {
                let (tree, problems) = CrateTree::load(&root_file, root);
                workspace.problems.extend(problems);
                trees.push(tree);
            }
            workspace.members.push(Member { name, dir, trees });
        }
        workspace.problems.sort();
        // The library and the binary of a member may declare the same module.
        workspace.problems.dedup();
        workspace
    }

    /// The member at `name` (its directory relative to the root).
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|member| member.name == name)
    }

    /// The member at `name`, or a violation of `rule` saying it is gone (a renamed crate must
    /// not silently switch its rules off).
    fn required(&self, name: &str, rule: Rule) -> Result<&Member, Vec<Violation>> {
        self.member(name).ok_or_else(|| {
            vec![Violation::new(
                rule,
                "Cargo.toml",
                None,
                format!("no workspace member `{name}`, so this rule checked nothing: update tools/layers/src/workspace.rs"),
            )]
        })
    }

    fn all_trees(&self) -> impl Iterator<Item = &CrateTree> {
        self.members.iter().flat_map(|member| member.trees.iter())
    }

    /// `check` of `rule` over every crate target of the data plane (its library and binary).
    fn over_data_plane(
        &self,
        rule: Rule,
        check: impl Fn(&CrateTree) -> Vec<Violation>,
    ) -> Vec<Violation> {
        match self.required(DATA_PLANE, rule) {
            Ok(member) => member.trees.iter().flat_map(check).collect(),
            Err(violations) => violations,
        }
    }
}

/// What could not be read, so that a rule that saw less than the whole tree says so.
pub fn module_trees(workspace: &Workspace) -> Vec<Violation> {
    workspace.problems.clone()
}

/// Rule 1 over every crate target of every member.
pub fn import_cycles(workspace: &Workspace) -> Vec<Violation> {
    let mut violations: Vec<Violation> = workspace
        .all_trees()
        .flat_map(cycles::import_cycles)
        .collect();
    violations.sort();
    violations.dedup();
    violations
}

/// Rule 2 over the data plane's library and binary.
pub fn data_plane_layers(workspace: &Workspace) -> Vec<Violation> {
    workspace.over_data_plane(Rule::Layers, |tree| {
        layers::layers(tree, &table::DATA_PLANE)
    })
}

/// Rule 3 over the codec crate.
pub fn codec_standalone(workspace: &Workspace) -> Vec<Violation> {
    match workspace.required(CODEC, Rule::CodecStandalone) {
        Ok(member) => codec::codec_standalone(&member.dir, &workspace.root),
        Err(violations) => violations,
    }
}

/// Rule 4 over the data plane's library and binary.
pub fn data_plane_statics(workspace: &Workspace) -> Vec<Violation> {
    workspace.over_data_plane(Rule::NoStatics, |tree| {
        statics::process_wide_statics(tree, &table::DATA_PLANE)
    })
}

/// Rule 5 over every crate target of every member.
pub fn module_docs(workspace: &Workspace) -> Vec<Violation> {
    let mut violations: Vec<Violation> =
        workspace.all_trees().flat_map(docs::module_docs).collect();
    violations.sort();
    violations.dedup();
    violations
}

/// Rule 6 over the data plane's library.
pub fn data_plane_exposure(workspace: &Workspace) -> Vec<Violation> {
    let member = match workspace.required(DATA_PLANE, Rule::LibExposure) {
        Ok(member) => member,
        Err(violations) => return violations,
    };
    let lib = member.dir.join("src").join("lib.rs");
    match member.trees.iter().find(|tree| tree.root_file == lib) {
        Some(tree) => exposure::lib_exposure(tree, exposure::PUBLIC_MODULES),
        None => vec![Violation::new(
            Rule::LibExposure,
            display_relative(&workspace.root, &lib),
            None,
            "the data plane has no library root".to_owned(),
        )],
    }
}

/// Every rule, in rule order.
pub fn check(workspace: &Workspace) -> Vec<Violation> {
    let mut violations = module_trees(workspace);
    violations.extend(import_cycles(workspace));
    violations.extend(data_plane_layers(workspace));
    violations.extend(codec_standalone(workspace));
    violations.extend(data_plane_statics(workspace));
    violations.extend(module_docs(workspace));
    violations.extend(data_plane_exposure(workspace));
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, assert_lines_start_with, lines};

    #[test]
    fn runs_every_rule_over_a_workspace() {
        let fixture = Fixture::new(&[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\n  \"data-plane\",\n  \"http1\",\n  \"tools/*\",\n]\n",
            ),
            (
                "data-plane/Cargo.toml",
                "[package]\nname = \"data-plane\"\n",
            ),
            (
                "data-plane/src/lib.rs",
                "//! Worker.\nmod body;\npub mod routing;\npub mod run;\nmod missing;\n",
            ),
            (
                "data-plane/src/body.rs",
                "//! Body.\nuse crate::routing::R;\n",
            ),
            (
                "data-plane/src/routing.rs",
                "pub struct R;\nuse crate::body;\n",
            ),
            ("data-plane/src/run.rs", "//! Run.\n"),
            ("data-plane/src/main.rs", "//! Binary.\nfn main() {}\n"),
            (
                "http1/Cargo.toml",
                "[package]\nname = \"gateway-http1\"\n[dependencies]\nbytes = \"1\"\n",
            ),
            ("http1/src/lib.rs", "//! Codec.\n"),
            ("tools/one/Cargo.toml", "[package]\nname = \"one\"\n"),
            ("tools/one/src/main.rs", "//! Tool.\nmod a;\nfn main() {}\n"),
            ("tools/one/src/a.rs", "//! A.\nuse crate::main as _m;\n"),
            ("tools/one/src/bin/extra.rs", "fn main() {}\n"),
        ]);
        let workspace = Workspace::load(fixture.root());
        let names: Vec<&str> = workspace.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["data-plane", "http1", "tools/one"]);
        assert_eq!(
            workspace.members[2].trees.len(),
            2,
            "main.rs and bin/extra.rs"
        );
        let got = lines(&check(&workspace));
        let want = [
            "data-plane/src/lib.rs:5: [module-tree] cannot read module file data-plane/src/missing.rs",
            "data-plane/src/body.rs: [import-cycle] 2 files import each other: data-plane/src/body.rs, data-plane/src/routing.rs",
            "data-plane/src/body.rs:2: [layers] crate::body imports crate::routing",
            "data-plane/src/routing.rs:1: [module-docs] crate::routing has no `//!` paragraph",
            "tools/one/src/bin/extra.rs:1: [module-docs] crate has no `//!` paragraph",
            "data-plane/src/lib.rs:3: [lib-exposure] `pub mod routing`",
        ];
        assert_lines_start_with(&got, &want);
    }

    #[test]
    fn a_missing_member_is_reported_not_skipped() {
        let fixture = Fixture::new(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"other\"]\n"),
            ("other/Cargo.toml", "[package]\nname = \"other\"\n"),
            ("other/src/lib.rs", "//! Other.\n"),
        ]);
        let got = lines(&check(&Workspace::load(fixture.root())));
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(
            got.iter().all(|line| line.contains("no workspace member")),
            "{got:#?}"
        );
    }
}
