//! Rule 1: no import cycles between the files of a crate. Files that import each other, directly
//! or around a longer loop, can only be understood, tested and changed together; keeping the file
//! graph acyclic keeps every file understandable from the ones it imports.
//!
//! The graph has one node per file of a non-test module and an edge for every import (see
//! `crate::imports`) from one file to another; each strongly connected set of more than one file
//! is one violation, listing the imports that close it.
//!
//! Against the Python reference (`shared/tools/rust_cycles.py`) this sees every edge it sees and
//! more (2018-style relative paths, `use`d module aliases, paths in macros and attribute strings,
//! imports of a parent module), and none of its test code: a test module is known by its
//! `#[cfg(test)]`, wherever that sits among its attributes, not by its file name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::imports::{self, Import};
use crate::tree::CrateTree;
use crate::violation::{Rule, Violation};

/// The import cycles of one crate target.
pub fn import_cycles(tree: &CrateTree) -> Vec<Violation> {
    let imports = imports::collect(tree);
    // The first import (by line) behind each edge, to show in the message.
    let mut edges: BTreeMap<(PathBuf, PathBuf), &Import> = BTreeMap::new();
    let mut nodes: BTreeSet<PathBuf> = tree
        .modules
        .iter()
        .filter(|m| !m.test)
        .map(|m| m.file.clone())
        .collect();
    for import in &imports {
        let from = &tree.modules[import.from].file;
        let to = &tree.modules[import.target].file;
        if from == to {
            continue;
        }
        nodes.insert(from.clone());
        nodes.insert(to.clone());
        let edge = edges.entry((from.clone(), to.clone())).or_insert(import);
        if import.line < edge.line {
            *edge = import;
        }
    }

    let nodes: Vec<PathBuf> = nodes.into_iter().collect();
    let index: BTreeMap<&PathBuf, usize> = nodes.iter().enumerate().map(|(i, n)| (n, i)).collect();
    let mut adjacency = vec![Vec::new(); nodes.len()];
    for (from, to) in edges.keys() {
        if let (Some(&f), Some(&t)) = (index.get(from), index.get(to)) {
            adjacency[f].push(t);
        }
    }

    let mut violations = Vec::new();
    for component in strongly_connected(&adjacency) {
        if component.len() < 2 {
            continue;
        }
        let members: BTreeSet<&PathBuf> = component.iter().map(|&i| &nodes[i]).collect();
        let files: Vec<String> = members.iter().map(|f| tree.display(f)).collect();
        let mut inside: Vec<(&PathBuf, &PathBuf, &Import)> = edges
            .iter()
            .filter(|((from, to), _)| members.contains(from) && members.contains(to))
            .map(|((from, to), import)| (from, to, *import))
            .collect();
        // In reading order: by importing file, then line.
        inside.sort_by_key(|(from, _, import)| (*from, import.line));
        let closing: Vec<String> = inside
            .into_iter()
            .map(|(from, to, import)| {
                format!(
                    "{}:{} imports {} (`{}`)",
                    tree.display(from),
                    import.line,
                    tree.display(to),
                    import.written
                )
            })
            .collect();
        violations.push(Violation::new(
            Rule::ImportCycle,
            files[0].clone(),
            None,
            format!(
                "{} files import each other: {}; cut one of these imports (move what both need into a file of its own):\n    {}",
                files.len(),
                files.join(", "),
                closing.join("\n    ")
            ),
        ));
    }
    violations.sort();
    violations
}

/// Tarjan's strongly connected components, without recursion (a deep import chain must not
/// overflow the test's stack).
fn strongly_connected(adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let n = adjacency.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next = 0;

    for start in 0..n {
        if index[start] != UNVISITED {
            continue;
        }
        // (node, position in its adjacency list)
        let mut work = vec![(start, 0usize)];
        while let Some(&(v, pos)) = work.last() {
            if pos == 0 && index[v] == UNVISITED {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = adjacency[v].get(pos) {
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if index[w] == UNVISITED {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, lines};

    fn cycles_of(files: &[(&str, &str)]) -> Vec<String> {
        let fixture = Fixture::new(files);
        lines(&import_cycles(&fixture.tree("src/lib.rs")))
    }

    #[test]
    fn reports_a_planted_cycle() {
        let got = cycles_of(&[
            ("src/lib.rs", "//! Root.\nmod a;\nmod b;\nmod c;\n"),
            ("src/a.rs", "//! A.\nuse crate::b::B;\npub struct A;\n"),
            (
                "src/b.rs",
                "//! B.\npub struct B;\nfn f() { crate::c::g(); }\n",
            ),
            ("src/c.rs", "//! C.\npub fn g() { let _ = super::a::A; }\n"),
        ]);
        assert_eq!(
            got,
            [
                "src/a.rs: [import-cycle] 3 files import each other: src/a.rs, src/b.rs, src/c.rs; \
                 cut one of these imports (move what both need into a file of its own):\n    \
                 src/a.rs:2 imports src/b.rs (`crate::b::B`)\n    \
                 src/b.rs:3 imports src/c.rs (`crate::c::g`)\n    \
                 src/c.rs:2 imports src/a.rs (`super::a::A`)"
            ]
        );
    }

    #[test]
    fn a_parent_and_a_child_that_import_each_other_are_a_cycle() {
        // mod.rs re-exports from its child, and the child takes a type from mod.rs: neither file
        // can be read without the other.
        let got = cycles_of(&[
            ("src/lib.rs", "//! Root.\nmod store;\n"),
            (
                "src/store/mod.rs",
                "//! Store.\nmod write;\npub use write::Applied;\npub struct Store;\n",
            ),
            (
                "src/store/write.rs",
                "//! Writes.\nuse super::Store;\npub struct Applied;\n",
            ),
        ]);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].contains("src/store/mod.rs, src/store/write.rs"),
            "{got:#?}"
        );
    }

    #[test]
    fn accepts_one_way_imports_and_test_code() {
        let got = cycles_of(&[
            ("src/lib.rs", "//! Root.\nmod a;\nmod b;\npub use a::A;\n"),
            // The declaration `mod child;` is no import, so a child may use its parent.
            (
                "src/a.rs",
                "//! A.\nmod child;\npub struct A;\nuse crate::b::B;\n",
            ),
            ("src/a/child.rs", "//! Child.\nuse super::A;\n"),
            (
                "src/b.rs",
                "//! B.\npub struct B;\n#[cfg(test)]\nuse crate::a::A;\n#[cfg(test)]\n#[allow(clippy::unwrap_used)]\nmod tests { use crate::a::A; }\n#[cfg(test)]\n#[path = \"b_tests.rs\"]\nmod more;\n",
            ),
            ("src/b_tests.rs", "//! Tests of b.\nuse crate::a::A;\n"),
        ]);
        assert!(got.is_empty(), "{got:#?}");
    }

    fn sorted(mut components: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
        for c in &mut components {
            c.sort_unstable();
        }
        components.retain(|c| c.len() > 1);
        components.sort();
        components
    }

    #[test]
    fn finds_components() {
        // 0 → 1 → 2 → 0, 3 → 4, 4 → 3, 5 alone, 2 → 3.
        let adjacency = vec![vec![1], vec![2], vec![0, 3], vec![4], vec![3], vec![]];
        assert_eq!(
            sorted(strongly_connected(&adjacency)),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        assert!(sorted(strongly_connected(&[vec![1], vec![2], vec![]])).is_empty());
    }
}
