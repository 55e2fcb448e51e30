//! Rule 4: no process-wide statics below the worker's lifecycle. A static cell, lock or atomic is
//! state shared by everything in the process: a test cannot get a fresh one, two workers in one
//! process (the benchmarks, the tests) would share it, and it outlives every config revision. So
//! only the lifecycle modules, which own the process, may hold one; everything below gets its
//! state passed in.
//!
//! A `static` is flagged when its type or initializer names one of [`PROCESS_WIDE`] (or an
//! `Atomic*`/`ArcSwap*` type), and so is any use of `lazy_static!` or `once_cell`. `thread_local!`
//! is fine (per-thread scratch and caches are not process-wide; syn leaves its body as macro
//! tokens, so its statics are never seen as items), and so are `const` items. Test code is left
//! out.

use syn::ext::IdentExt;
use syn::visit::{self, Visit};
use syn::{Item, ItemStatic, StaticMutability};

use crate::attrs;
use crate::imports::flatten_use;
use crate::table::LayerTable;
use crate::tree::{CrateTree, line_of};
use crate::violation::{Rule, Violation};

/// Types that make a static process-wide mutable state. Besides the ones named in the design
/// (`LazyLock`, `OnceLock`, `OnceCell`, `Lazy`, `Mutex`, `RwLock`, `Cell`, `RefCell`, atomics),
/// `Once` and anything `ArcSwap*` are the same thing by another name.
pub const PROCESS_WIDE: &[&str] = &[
    "LazyLock", "OnceLock", "OnceCell", "Lazy", "Mutex", "RwLock", "Cell", "RefCell", "Once",
];

/// Prefixes of type families that are process-wide state in a static.
pub const PROCESS_WIDE_PREFIXES: &[&str] = &["Atomic", "ArcSwap"];

/// Crates whose only job is process-wide lazy statics.
pub const LAZY_STATIC_CRATES: &[&str] = &["once_cell", "lazy_static"];

fn is_process_wide(name: &str) -> bool {
    PROCESS_WIDE.contains(&name) || PROCESS_WIDE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The process-wide statics of one crate target below the lifecycle.
pub fn process_wide_statics(tree: &CrateTree, table: &LayerTable) -> Vec<Violation> {
    let mut violations = Vec::new();
    for module in &tree.modules {
        if module.test {
            continue;
        }
        // A module the table does not place is not known to be lifecycle code, so it is checked.
        let allowed = table
            .layer_of(module.top())
            .is_some_and(|layer| layer.rank >= table.statics_from_rank);
        if allowed {
            continue;
        }
        let mut finder = Finder { found: Vec::new() };
        for item in &module.items {
            finder.visit_item(item);
        }
        for (line, what) in finder.found {
            violations.push(Violation::new(
                Rule::NoStatics,
                tree.display(&module.file),
                Some(line),
                format!(
                    "{what} in {}, below the lifecycle: pass the state in from the lifecycle (`run`, `sync`, ...) instead; `thread_local!` and `const` are fine",
                    module.display_path()
                ),
            ));
        }
    }
    violations.sort();
    violations
}

/// Finds the statics and lazy-static crates in one module's items.
struct Finder {
    found: Vec<(usize, String)>,
}

/// Collects the last segment of every path in a type or expression.
#[derive(Default)]
struct Names(Vec<String>);

impl<'ast> Visit<'ast> for Names {
    fn visit_path_segment(&mut self, segment: &'ast syn::PathSegment) {
        self.0.push(segment.ident.unraw().to_string());
        visit::visit_path_segment(self, segment);
    }
}

impl Finder {
    fn check_static(&mut self, item: &ItemStatic) {
        let line = line_of(item.ident.span());
        if matches!(item.mutability, StaticMutability::Mut(_)) {
            self.found.push((
                line,
                format!("`static mut {}` (process-wide state)", item.ident),
            ));
            return;
        }
        let mut names = Names::default();
        names.visit_type(&item.ty);
        names.visit_expr(&item.expr);
        if let Some(name) = names.0.iter().find(|name| is_process_wide(name)) {
            self.found.push((
                line,
                format!(
                    "`static {}` holds a `{name}` (process-wide state)",
                    item.ident
                ),
            ));
        }
    }

    fn check_crate_name(&mut self, first: &str, line: usize) {
        if LAZY_STATIC_CRATES.contains(&first) {
            self.found.push((
                line,
                format!("`{first}` (a crate for process-wide statics) is used"),
            ));
        }
    }
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_item(&mut self, item: &'ast Item) {
        if attrs::is_test_only(attrs::item_attrs(item)) {
            return;
        }
        match item {
            Item::Mod(_) => {}
            Item::Static(item_static) => {
                self.check_static(item_static);
                visit::visit_item(self, item);
            }
            Item::Use(item_use) => {
                let mut leaves = Vec::new();
                flatten_use(&item_use.tree, &mut Vec::new(), &mut leaves);
                for leaf in leaves {
                    if let Some(first) = leaf.segments.first() {
                        self.check_crate_name(first, leaf.line);
                    }
                }
            }
            Item::ExternCrate(krate) => {
                self.check_crate_name(
                    &krate.ident.unraw().to_string(),
                    line_of(krate.ident.span()),
                );
            }
            _ => visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        if let syn::ImplItem::Fn(f) = item
            && attrs::is_test_only(&f.attrs)
        {
            return;
        }
        visit::visit_impl_item(self, item);
    }

    fn visit_expr(&mut self, expr: &'ast syn::Expr) {
        if !attrs::is_test_only(attrs::expr_attrs(expr)) {
            visit::visit_expr(self, expr);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some(first) = path.segments.first() {
            self.check_crate_name(
                &first.ident.unraw().to_string(),
                line_of(first.ident.span()),
            );
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // `lazy_static! { ... }` is caught by its path; `once_cell::sync::Lazy` written inside
        // some other macro by its tokens.
        self.visit_path(&mac.path);
        scan_tokens(mac.tokens.clone(), &mut |ident| {
            if LAZY_STATIC_CRATES.contains(&ident.unraw().to_string().as_str()) {
                self.found.push((
                    line_of(ident.span()),
                    format!("`{ident}` (a crate for process-wide statics) is used"),
                ));
            }
        });
    }
}

fn scan_tokens(tokens: proc_macro2::TokenStream, on_ident: &mut dyn FnMut(&proc_macro2::Ident)) {
    for token in tokens {
        match token {
            proc_macro2::TokenTree::Ident(ident) => on_ident(&ident),
            proc_macro2::TokenTree::Group(group) => scan_tokens(group.stream(), on_ident),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, assert_lines_start_with, lines};
    use crate::table::DATA_PLANE;

    fn statics_of(files: &[(&str, &str)]) -> Vec<String> {
        let fixture = Fixture::new(files);
        lines(&process_wide_statics(
            &fixture.tree("src/lib.rs"),
            &DATA_PLANE,
        ))
    }

    #[test]
    fn reports_statics_below_the_lifecycle() {
        let got = statics_of(&[
            ("src/lib.rs", "//! Root.\nmod upstream;\nmod routing;\n"),
            (
                "src/upstream/mod.rs",
                "//! Upstream.\nmod pool;\nuse std::sync::Mutex;\nstatic POOLS: Mutex<Vec<u8>> = Mutex::new(Vec::new());\n",
            ),
            (
                "src/upstream/pool.rs",
                "//! Pool.\nstatic NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);\nfn f() {\n    static INNER: std::sync::LazyLock<String> = std::sync::LazyLock::new(String::new);\n}\n",
            ),
            (
                "src/routing.rs",
                "//! Routing.\nuse once_cell::sync::Lazy;\nlazy_static::lazy_static! { static ref X: u8 = 1; }\nlazy_static! { static ref Y: u8 = 1; }\n",
            ),
        ]);
        let want = [
            "src/routing.rs:2: [no-statics] `once_cell` (a crate for process-wide statics) is used in crate::routing, below the lifecycle",
            "src/routing.rs:3: [no-statics] `lazy_static` (a crate for process-wide statics) is used in crate::routing, below the lifecycle",
            "src/routing.rs:4: [no-statics] `lazy_static` (a crate for process-wide statics) is used in crate::routing, below the lifecycle",
            "src/upstream/mod.rs:4: [no-statics] `static POOLS` holds a `Mutex` (process-wide state) in crate::upstream, below the lifecycle",
            "src/upstream/pool.rs:2: [no-statics] `static NEXT` holds a `AtomicU64` (process-wide state) in crate::upstream::pool, below the lifecycle",
            "src/upstream/pool.rs:4: [no-statics] `static INNER` holds a `LazyLock` (process-wide state) in crate::upstream::pool, below the lifecycle",
        ];
        assert_lines_start_with(&got, &want);
    }

    #[test]
    fn accepts_thread_locals_consts_tests_and_the_lifecycle() {
        let got = statics_of(&[
            (
                "src/lib.rs",
                "//! Root.\nmod routing;\nmod sync;\nstatic ROOT: std::sync::OnceLock<u8> = std::sync::OnceLock::new();\n",
            ),
            (
                "src/routing.rs",
                "//! Routing.\nuse std::cell::RefCell;\nthread_local! {\n    static SCRATCH: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };\n}\nconst EMPTY: std::sync::Mutex<u8> = std::sync::Mutex::new(0);\nstatic NAMES: [&str; 1] = [\"a\"];\n#[cfg(test)]\n#[allow(dead_code)]\nstatic HITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);\n#[cfg(test)]\nmod tests { static M: std::sync::Mutex<u8> = std::sync::Mutex::new(0); }\n",
            ),
            (
                "src/sync.rs",
                "//! Sync.\nstatic STATE: std::sync::Mutex<u8> = std::sync::Mutex::new(0);\n",
            ),
        ]);
        assert!(got.is_empty(), "{got:#?}");
    }
}
