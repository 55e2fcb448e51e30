//! Small source trees written to a temporary directory, for the unit tests of every rule: each
//! test plants exactly the code it is about and loads it the way the workspace test does.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use crate::tree::CrateTree;
use crate::violation::Violation;

/// A directory of files that disappears with the value.
pub struct Fixture {
    dir: TempDir,
}

impl Fixture {
    /// Writes `files` (relative path, contents) below a new temporary directory.
    pub fn new(files: &[(&str, &str)]) -> Fixture {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(err) => panic!("cannot create a temporary directory: {err}"),
        };
        for (path, text) in files {
            let path = dir.path().join(path);
            if let Some(parent) = path.parent()
                && let Err(err) = fs::create_dir_all(parent)
            {
                panic!("cannot create {}: {err}", parent.display());
            }
            if let Err(err) = fs::write(&path, text) {
                panic!("cannot write {}: {err}", path.display());
            }
        }
        Fixture { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The module tree rooted at `root` (relative to the fixture), with its load problems.
    pub fn load(&self, root: &str) -> (CrateTree, Vec<Violation>) {
        CrateTree::load(&self.root().join(root), self.root())
    }

    /// The module tree rooted at `root`, which must load without problems.
    pub fn tree(&self, root: &str) -> CrateTree {
        let (tree, problems) = self.load(root);
        assert!(problems.is_empty(), "fixture problems: {problems:#?}");
        tree
    }
}

/// The violations as `file:line: [rule] message` lines, for assertions that name what they
/// expect.
pub fn lines(violations: &[Violation]) -> Vec<String> {
    violations.iter().map(ToString::to_string).collect()
}

/// Asserts that `got` has one line per prefix in `want`, in order. Prefixes, because a message
/// ends in advice the tests need not repeat.
pub fn assert_lines_start_with(got: &[String], want: &[&str]) {
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (got, want) in got.iter().zip(want) {
        assert!(got.starts_with(want), "{got}\ndoes not start with\n{want}");
    }
}
