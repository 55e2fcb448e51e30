//! Rule 5: every module file starts with a `//!` paragraph saying what it is for (the sozu
//! convention in DESIGN.md), in every crate, test module files included: a reader opening any
//! file should learn its job before its first item.
//!
//! The rule is about files: an inline `mod x { ... }` is part of its file's story (and inline
//! `mod tests { ... }` blocks need no docs of their own). Any inner doc comment counts (`//!`,
//! `/*! */`, `#![doc = ...]`); Rust puts inner attributes before every item, so "at the start"
//! is what the parser already enforces, and what is left to check is that there is text.

use crate::attrs;
use crate::tree::CrateTree;
use crate::violation::{Rule, Violation};

/// The module files of one crate target without a `//!` paragraph.
pub fn module_docs(tree: &CrateTree) -> Vec<Violation> {
    let mut violations = Vec::new();
    for module in &tree.modules {
        if module.inline {
            continue;
        }
        if attrs::inner_doc_text(&module.file_attrs).trim().is_empty() {
            violations.push(Violation::new(
                Rule::ModuleDocs,
                tree.display(&module.file),
                Some(1),
                format!(
                    "{} has no `//!` paragraph at its top saying what the module is for",
                    module.display_path()
                ),
            ));
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, lines};

    #[test]
    fn reports_files_without_a_doc_paragraph() {
        let fixture = Fixture::new(&[
            (
                "src/lib.rs",
                "//! Root.\nmod plain;\nmod documented;\nmod blank;\n#[cfg(test)]\n#[path = \"lib_tests.rs\"]\nmod tests;\n#[cfg(test)]\nmod inline_tests {\n    fn f() {}\n}\n",
            ),
            (
                "src/plain.rs",
                "// A comment, not docs.\n/// Docs of an item, not the module.\npub fn f() {}\n",
            ),
            (
                "src/documented.rs",
                "#![forbid(unsafe_code)]\n/*! Block docs count. */\npub fn f() {}\n",
            ),
            ("src/blank.rs", "//!\n//!\nfn f() {}\n"),
            (
                "src/lib_tests.rs",
                "#![allow(clippy::unwrap_used)]\nuse super::*;\n",
            ),
        ]);
        assert_eq!(
            lines(&module_docs(&fixture.tree("src/lib.rs"))),
            [
                "src/blank.rs:1: [module-docs] crate::blank has no `//!` paragraph at its top saying what the module is for",
                "src/lib_tests.rs:1: [module-docs] crate::tests has no `//!` paragraph at its top saying what the module is for",
                "src/plain.rs:1: [module-docs] crate::plain has no `//!` paragraph at its top saying what the module is for",
            ]
        );
    }
}
