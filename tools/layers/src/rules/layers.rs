//! Rule 2: the data plane's layers (the table is `crate::table::DATA_PLANE`). Each import of
//! non-test code is checked between the top-level modules on its two ends: the same top-level
//! module is always fine; otherwise the bans come first, then the ranks. Every top-level module
//! must be in the table, so that a new module is placed on purpose rather than by accident.

use crate::imports;
use crate::table::LayerTable;
use crate::tree::CrateTree;
use crate::violation::{Rule, Violation};

/// `crate` for the root, `` `name` `` for a top-level module.
fn shown(top: Option<&str>) -> String {
    match top {
        Some(name) => format!("`{name}`"),
        None => "the crate root".to_owned(),
    }
}

/// The layer violations of one crate target.
pub fn layers(tree: &CrateTree, table: &LayerTable) -> Vec<Violation> {
    let mut violations = Vec::new();

    for (name, &child) in &tree.root().children {
        if table.layer_of(Some(name)).is_none() {
            let module = &tree.modules[child];
            let (file, line) = match &module.declared_at {
                Some((file, line)) => (tree.display(file), Some(*line)),
                None => (tree.display(&module.file), None),
            };
            violations.push(Violation::new(
                Rule::Layers,
                file,
                line,
                format!(
                    "top-level module `{name}` is not in the layer table: add it to the layer it belongs to in tools/layers/src/table.rs"
                ),
            ));
        }
    }

    for import in imports::collect(tree) {
        let from = &tree.modules[import.from];
        let to = &tree.modules[import.target];
        let (from_top, to_top) = (from.top(), to.top());
        if from_top == to_top {
            continue;
        }
        // A module the table does not place is reported once, above.
        let (Some(from_layer), Some(to_layer)) = (table.layer_of(from_top), table.layer_of(to_top))
        else {
            continue;
        };
        let problem = if let (Some(a), Some(b)) = (from_top, to_top)
            && table.banned(a, b)
        {
            format!("`{a}` must never import `{b}`")
        } else if to_layer.rank > from_layer.rank {
            format!(
                "an upward import: {} is at rank {} ({}), {} at rank {} ({}); a layer imports only the layers below it",
                shown(from_top),
                from_layer.rank,
                from_layer.name,
                shown(to_top),
                to_layer.rank,
                to_layer.name
            )
        } else if to_layer.rank == from_layer.rank && !from_layer.same_rank_imports {
            format!(
                "{} and {} are both at rank {} ({}), whose modules must not import each other",
                shown(from_top),
                shown(to_top),
                from_layer.rank,
                from_layer.name
            )
        } else {
            continue;
        };
        violations.push(Violation::new(
            Rule::Layers,
            tree.display(&from.file),
            Some(import.line),
            format!(
                "{} imports {} through `{}`: {problem}",
                from.display_path(),
                to.display_path(),
                import.written
            ),
        ));
    }
    violations.sort();
    violations.dedup();
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, lines};
    use crate::table::DATA_PLANE;

    fn layer_violations(files: &[(&str, &str)]) -> Vec<String> {
        let fixture = Fixture::new(files);
        lines(&layers(&fixture.tree("src/lib.rs"), &DATA_PLANE))
    }

    const LIB: &str = "//! Root.\nmod body;\nmod error;\n#[path = \"odd/place.rs\"]\nmod filters;\nmod observe;\nmod routing;\nmod upstream;\nmod served;\nmod proxy;\nmod listener;\nmod sync;\nmod run;\npub use run::Exported;\n";

    #[test]
    fn reports_upward_imports_in_uses_and_inline_paths() {
        let got = layer_violations(&[
            ("src/lib.rs", LIB),
            // Leaves may use each other, and nothing above them.
            (
                "src/body.rs",
                "//! Body.\nuse crate::error::E;\nuse crate::routing::Route;\n",
            ),
            (
                "src/error.rs",
                "//! Error.\npub struct E;\nfn f() { crate::proxy::go(); }\n",
            ),
            // A `#[path]` module is checked under its module name, in its real file.
            (
                "src/odd/place.rs",
                "//! Filters.\nuse crate::listener::L;\nuse crate::observe::M;\n",
            ),
            ("src/observe.rs", "//! Observe.\npub struct M;\n"),
            (
                "src/routing.rs",
                "//! Routing.\npub struct Route;\nuse crate::filters::F;\nuse crate::upstream::U;\n",
            ),
            (
                "src/upstream/mod.rs",
                "//! Upstream.\npub struct U;\nfn f() { let _ = crate::Exported; }\n",
            ),
            (
                "src/served.rs",
                "//! Served.\nuse crate::routing::Route;\nuse crate::upstream::U;\n",
            ),
            (
                "src/proxy.rs",
                "//! Proxy.\npub fn go() {}\nfn f() { crate::sync::start(); }\n",
            ),
            (
                "src/listener.rs",
                "//! Listener.\npub struct L;\nuse crate::proxy::go;\n",
            ),
            (
                "src/sync.rs",
                "//! Sync.\npub fn start() {}\nuse crate::run::Exported;\nuse crate::listener::L;\n",
            ),
            (
                "src/run.rs",
                "//! Run.\npub struct Exported;\nuse crate::sync::start;\n",
            ),
        ]);
        assert_eq!(
            got,
            [
                "src/body.rs:3: [layers] crate::body imports crate::routing through `crate::routing::Route`: an upward import: `body` is at rank 0 (leaves), `routing` at rank 2 (routing, upstreams and TLS); a layer imports only the layers below it",
                "src/error.rs:3: [layers] crate::error imports crate::proxy through `crate::proxy::go`: an upward import: `error` is at rank 0 (leaves), `proxy` at rank 4 (proxy); a layer imports only the layers below it",
                "src/odd/place.rs:2: [layers] crate::filters imports crate::listener through `crate::listener::L`: an upward import: `filters` is at rank 1 (filters and observability), `listener` at rank 5 (listener); a layer imports only the layers below it",
                "src/odd/place.rs:3: [layers] crate::filters imports crate::observe through `crate::observe::M`: `filters` and `observe` are both at rank 1 (filters and observability), whose modules must not import each other",
                "src/proxy.rs:3: [layers] crate::proxy imports crate::sync through `crate::sync::start`: `proxy` must never import `sync`",
                "src/routing.rs:4: [layers] crate::routing imports crate::upstream through `crate::upstream::U`: `routing` must never import `upstream`",
                "src/upstream/mod.rs:3: [layers] crate::upstream imports crate through `crate::Exported`: an upward import: `upstream` is at rank 2 (routing, upstreams and TLS), the crate root at rank 6 (lifecycle); a layer imports only the layers below it",
            ]
        );
    }

    #[test]
    fn test_code_may_import_anything() {
        let got = layer_violations(&[
            ("src/lib.rs", "//! Root.\nmod body;\nmod listener;\n"),
            (
                "src/body.rs",
                "//! Body.\n#[cfg(test)]\nuse crate::listener::L;\n#[cfg(test)]\n#[allow(clippy::unwrap_used)]\nmod tests {\n    use crate::listener::L;\n    fn f() { crate::listener::serve(); }\n}\n#[cfg(test)]\n#[path = \"body_tests.rs\"]\nmod more;\nfn f() {\n    #[cfg(test)]\n    crate::listener::serve();\n}\n",
            ),
            ("src/body_tests.rs", "//! Tests.\nuse crate::listener::L;\n"),
            (
                "src/listener.rs",
                "//! Listener.\npub struct L;\npub fn serve() {}\nuse crate::body;\n",
            ),
        ]);
        assert!(got.is_empty(), "{got:#?}");
    }

    #[test]
    fn a_module_missing_from_the_table_is_an_error() {
        let got = layer_violations(&[
            (
                "src/lib.rs",
                "//! Root.\nmod body;\nmod gadgets;\n#[cfg(test)]\nmod tests;\n",
            ),
            ("src/body.rs", "//! Body.\n"),
            ("src/gadgets.rs", "//! Unplaced.\nuse crate::body;\n"),
            ("src/tests.rs", "//! Tests.\n"),
        ]);
        assert_eq!(
            got,
            [
                "src/lib.rs:3: [layers] top-level module `gadgets` is not in the layer table: add it to the layer it belongs to in tools/layers/src/table.rs"
            ]
        );
    }
}
