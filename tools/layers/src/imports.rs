//! Every place where a module names another module of its own crate, resolved to the deepest
//! module that exists: `crate::upstream::idle::IdleClock` is an import of `upstream/idle.rs`, and
//! `crate::upstream::Choice` one of `upstream/mod.rs` (a re-export is an import of the module that
//! re-exports).
//!
//! What counts:
//! - `use` trees starting with `crate`, `self` or `super`, and 2018-style relative ones whose
//!   first segment is a child module, an item of the current module, or a name a `use` of the
//!   same module brought in as a module alias (`use crate::served;` then `use served::State;`);
//! - paths in code, types, patterns and trait bounds (`crate::upstream::idle::reap_loop(..)`,
//!   `super::x::Y`, `answer::Answer::new()` after `mod answer;`, `served::State` after
//!   `use crate::served;`), with at least two segments, so that a local variable that shares a
//!   module's name is not taken for it;
//! - the same paths inside macro invocations (`matches!`, `tracing::info!`, `thread_local!`) and
//!   `macro_rules!` bodies, found in their tokens, since syn does not parse macro input;
//! - paths written as strings in attributes (`#[serde(with = "crate::model::by_name")]`), which
//!   generated code imports as surely as a `use`.
//!
//! What does not: anything under `#[cfg(test)]` (tests may use helpers from anywhere), `mod`
//! declarations themselves (a parent declaring a child is not an import, or every child that
//! imports its parent would make a cycle), visibility paths (`pub(in crate::x)`), doc comments
//! (an intra-doc link is not an import) and paths starting with `::` (other crates).
//!
//! A child importing its parent (`use super::Store;`) is an import like any other. The Python
//! reference (`shared/tools/rust_cycles.py`) skips every import of an ancestor module, which hides
//! the commonest cycle of all: a `mod.rs` that re-exports from its children while they take
//! types from it.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::visit::{self, Visit};
use syn::{Attribute, Expr, ExprLit, Item, Lit, Meta, UseTree};

use crate::attrs;
use crate::tree::{CrateTree, line_of};

/// One import of a module of the same crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The importing module (an index into [`CrateTree::modules`]).
    pub from: usize,
    /// The deepest existing module the path names.
    pub target: usize,
    /// The 1-based line in the importing module's file.
    pub line: usize,
    /// The path as written, segments joined by `::` (`crate::upstream::idle::IdleClock`).
    pub written: String,
}

/// All imports of every non-test module of the tree, in module order, then source order.
pub fn collect(tree: &CrateTree) -> Vec<Import> {
    let mut imports = Vec::new();
    for (index, module) in tree.modules.iter().enumerate() {
        if module.test {
            continue;
        }
        let scope = Scope::new(tree, index);
        let mut visitor = Collector {
            scope: &scope,
            imports: &mut imports,
        };
        for item in &module.items {
            visitor.visit_item(item);
        }
    }
    imports
}

/// What names mean inside one module.
pub struct Scope<'a> {
    tree: &'a CrateTree,
    module: usize,
    /// Names that `use` items of this module bring in and that are modules of this crate.
    aliases: BTreeMap<String, usize>,
    /// Names of the module's own items (not its child modules), for `use Item::Variant;`.
    items: BTreeSet<String>,
}

impl<'a> Scope<'a> {
    pub fn new(tree: &'a CrateTree, module: usize) -> Self {
        let items = tree.modules[module]
            .items
            .iter()
            .filter(|item| !attrs::is_test_only(attrs::item_attrs(item)))
            .filter_map(item_name)
            .collect();
        let mut scope = Scope {
            tree,
            module,
            aliases: BTreeMap::new(),
            items,
        };
        scope.find_aliases();
        scope
    }

    /// Finds which `use`d names are modules. A `use` may start from a name another `use` of the
    /// same module brings in, in any order, so this repeats until nothing new turns up.
    fn find_aliases(&mut self) {
        let mut uses = Vec::new();
        for item in &self.tree.modules[self.module].items {
            if let Item::Use(item_use) = item
                && item_use.leading_colon.is_none()
                && !attrs::is_test_only(&item_use.attrs)
            {
                flatten_use(&item_use.tree, &mut Vec::new(), &mut uses);
            }
        }
        loop {
            let mut changed = false;
            for leaf in &uses {
                let Some(resolved) = self.resolve(&leaf.segments, true) else {
                    continue;
                };
                if !resolved.complete {
                    continue;
                }
                match &leaf.kind {
                    LeafKind::Name(name) => {
                        if !self.aliases.contains_key(name) {
                            self.aliases.insert(name.clone(), resolved.module);
                            changed = true;
                        }
                    }
                    LeafKind::Glob => {
                        // `use some::module::*` brings in its child modules, unless a name of
                        // this module shadows them.
                        let tree = self.tree;
                        let own = &tree.modules[self.module];
                        for (name, &child) in &tree.modules[resolved.module].children {
                            if !self.aliases.contains_key(name)
                                && !own.children.contains_key(name)
                                && !self.items.contains(name)
                            {
                                self.aliases.insert(name.clone(), child);
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// The deepest existing module a path names, or `None` when it starts outside this crate (or
    /// goes above the root). `in_use` allows a first segment that is an item of this module, as
    /// in `use Flow::*`; in code such a path never leaves the module, so it is not looked at.
    pub fn resolve(&self, segments: &[String], in_use: bool) -> Option<Resolved> {
        let first = segments.first()?;
        let modules = &self.tree.modules;
        let (start, rest) = match first.as_str() {
            "crate" | "$crate" => (0, &segments[1..]),
            "self" | "super" => {
                let mut current = self.module;
                let mut consumed = 0;
                for segment in segments {
                    match segment.as_str() {
                        "self" => {}
                        "super" => current = modules[current].parent?,
                        _ => break,
                    }
                    consumed += 1;
                }
                (current, &segments[consumed..])
            }
            name => {
                if modules[self.module].children.contains_key(name) {
                    (self.module, segments)
                } else if let Some(&alias) = self.aliases.get(name) {
                    (alias, &segments[1..])
                } else if in_use && self.items.contains(name) {
                    return Some(Resolved {
                        module: self.module,
                        complete: false,
                    });
                } else {
                    return None;
                }
            }
        };
        let mut current = start;
        let mut consumed = 0;
        for segment in rest {
            match modules[current].children.get(segment) {
                Some(&child) => {
                    current = child;
                    consumed += 1;
                }
                None => break,
            }
        }
        Some(Resolved {
            module: current,
            complete: consumed == rest.len(),
        })
    }
}

/// Where a path leads.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub module: usize,
    /// Every segment was a module: the path names the module itself, not an item in it.
    pub complete: bool,
}

/// One leaf of a `use` tree, with the path that leads to it.
#[derive(Debug)]
pub struct UseLeaf {
    pub segments: Vec<String>,
    pub kind: LeafKind,
    pub line: usize,
}

/// What a `use` leaf brings into scope.
#[derive(Debug)]
pub enum LeafKind {
    /// One name (the last segment, or the `as` name).
    Name(String),
    /// Everything public in the module (`*`).
    Glob,
}

/// `a::{b, c::{self, d as e}, f::*}` → `a::b`, `a::c` (as `c`), `a::c::d` (as `e`), `a::f::*`.
pub fn flatten_use(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
    match tree {
        UseTree::Path(path) => {
            prefix.push(path.ident.unraw().to_string());
            flatten_use(&path.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(name) => {
            let ident = name.ident.unraw().to_string();
            let line = line_of(name.ident.span());
            if ident == "self" {
                // `a::c::{self}` names `a::c` itself.
                if let Some(last) = prefix.last() {
                    out.push(UseLeaf {
                        kind: LeafKind::Name(last.clone()),
                        segments: prefix.clone(),
                        line,
                    });
                }
            } else {
                let mut segments = prefix.clone();
                segments.push(ident.clone());
                out.push(UseLeaf {
                    segments,
                    kind: LeafKind::Name(ident),
                    line,
                });
            }
        }
        UseTree::Rename(rename) => {
            let ident = rename.ident.unraw().to_string();
            let mut segments = prefix.clone();
            if ident != "self" {
                segments.push(ident);
            }
            out.push(UseLeaf {
                segments,
                kind: LeafKind::Name(rename.rename.unraw().to_string()),
                line: line_of(rename.ident.span()),
            });
        }
        UseTree::Glob(glob) => out.push(UseLeaf {
            segments: prefix.clone(),
            kind: LeafKind::Glob,
            line: line_of(glob.star_token.spans[0]),
        }),
        UseTree::Group(group) => {
            for tree in &group.items {
                flatten_use(tree, prefix, out);
            }
        }
    }
}

/// The name an item declares in its module's namespace (child modules are kept apart).
fn item_name(item: &Item) -> Option<String> {
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::ExternCrate(i) => i.rename.as_ref().map_or(&i.ident, |(_, rename)| rename),
        Item::Fn(i) => &i.sig.ident,
        Item::Macro(i) => i.ident.as_ref()?,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.unraw().to_string())
}

/// The segments of a path, or `None` for a path that starts with `::` (another crate).
fn path_segments(path: &syn::Path) -> Option<Vec<String>> {
    if path.leading_colon.is_some() {
        return None;
    }
    Some(
        path.segments
            .iter()
            .map(|segment| segment.ident.unraw().to_string())
            .collect(),
    )
}

/// Walks one module's items and records its imports.
struct Collector<'s, 'a> {
    scope: &'s Scope<'a>,
    imports: &'s mut Vec<Import>,
}

impl Collector<'_, '_> {
    fn record(&mut self, segments: &[String], line: usize, in_use: bool) {
        if let Some(resolved) = self.scope.resolve(segments, in_use) {
            self.imports.push(Import {
                from: self.scope.module,
                target: resolved.module,
                line,
                written: segments.join("::"),
            });
        }
    }

    /// A path in code: only with two segments or more (see the module docs).
    fn record_code_path(&mut self, segments: &[String], line: usize) {
        if segments.len() >= 2 {
            self.record(segments, line, false);
        }
    }

    /// Paths in the tokens of a macro invocation or attribute. `strings` also reads string
    /// literals that are a whole path (attribute values such as `with = "crate::x"`).
    fn scan_tokens(&mut self, tokens: TokenStream, strings: bool) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(group) => {
                    self.scan_tokens(group.stream(), strings);
                    i += 1;
                }
                TokenTree::Literal(literal) if strings => {
                    if let Ok(Lit::Str(s)) = syn::parse_str::<Lit>(&literal.to_string())
                        && let Ok(path) = syn::parse_str::<syn::Path>(&s.value())
                        && let Some(segments) = path_segments(&path)
                    {
                        self.record_code_path(&segments, line_of(literal.span()));
                    }
                    i += 1;
                }
                TokenTree::Ident(_) | TokenTree::Punct(_) => match path_at(&tokens, i) {
                    Some((segments, line, next)) => {
                        self.record_code_path(&segments, line);
                        i = next;
                    }
                    None => i += 1,
                },
                TokenTree::Literal(_) => i += 1,
            }
        }
    }

    fn scan_attribute(&mut self, attr: &Attribute) {
        let path = attr.path();
        // Doc comments hold links, not imports; `cfg` and `path` hold no paths of this crate.
        if path.is_ident("doc") || path.is_ident("cfg") || path.is_ident("path") {
            return;
        }
        match &attr.meta {
            Meta::Path(_) => {}
            Meta::List(list) => self.scan_tokens(list.tokens.clone(), true),
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => {
                    if let Ok(path) = syn::parse_str::<syn::Path>(&s.value())
                        && let Some(segments) = path_segments(&path)
                    {
                        self.record_code_path(&segments, line_of(s.span()));
                    }
                }
                value => self.visit_expr(value),
            },
        }
    }
}

/// The path that starts at token `i`: `a :: b :: c` or `$crate :: b`, with the index after it.
/// A path continues a `.` or `::` before it (a method call with a turbofish, the tail of another
/// path), so it cannot start there.
fn path_at(tokens: &[TokenTree], i: usize) -> Option<(Vec<String>, usize, usize)> {
    let is_colon =
        |j: usize| matches!(tokens.get(j), Some(TokenTree::Punct(p)) if p.as_char() == ':');
    let is_path_sep = |j: usize| {
        matches!(tokens.get(j), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
            && is_colon(j + 1)
    };
    if i > 0 {
        match &tokens[i - 1] {
            TokenTree::Punct(p) if p.as_char() == '.' || p.as_char() == ':' => return None,
            _ => {}
        }
    }
    let (first, line, mut j) = match (&tokens[i], tokens.get(i + 1)) {
        (TokenTree::Punct(p), Some(TokenTree::Ident(id)))
            if p.as_char() == '$' && id == "crate" =>
        {
            ("$crate".to_owned(), line_of(id.span()), i + 2)
        }
        (TokenTree::Ident(id), _) => (id.unraw().to_string(), line_of(id.span()), i + 1),
        _ => return None,
    };
    let mut segments = vec![first];
    while is_path_sep(j) {
        match tokens.get(j + 2) {
            Some(TokenTree::Ident(id)) => {
                segments.push(id.unraw().to_string());
                j += 3;
            }
            _ => break,
        }
    }
    (segments.len() >= 2).then_some((segments, line, j))
}

/// `visit_*` methods that walk their node only when it is not test code (`#[cfg(test)]` can sit
/// on these nodes inside an item), each from its method, node type and attribute accessor.
macro_rules! outside_tests {
    ($($method:ident($node:ty) => $attrs:expr;)*) => {
        $(
            fn $method(&mut self, node: &'ast $node) {
                let attrs_of: fn(&$node) -> &[Attribute] = $attrs;
                if !attrs::is_test_only(attrs_of(node)) {
                    visit::$method(self, node);
                }
            }
        )*
    };
}

impl<'ast> Visit<'ast> for Collector<'_, '_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if attrs::is_test_only(attrs::item_attrs(item)) {
            return;
        }
        match item {
            // A child module's items are the child's, and a declaration imports nothing.
            Item::Mod(_) => {}
            Item::Use(item_use) => {
                if item_use.leading_colon.is_some() {
                    return;
                }
                let mut leaves = Vec::new();
                flatten_use(&item_use.tree, &mut Vec::new(), &mut leaves);
                for leaf in leaves {
                    self.record(&leaf.segments, leaf.line, true);
                }
            }
            _ => visit::visit_item(self, item),
        }
    }

    outside_tests! {
        visit_impl_item(syn::ImplItem) => attrs::impl_item_attrs;
        visit_trait_item(syn::TraitItem) => attrs::trait_item_attrs;
        visit_local(syn::Local) => |local| &local.attrs;
        visit_stmt_macro(syn::StmtMacro) => |stmt| &stmt.attrs;
        visit_expr(Expr) => attrs::expr_attrs;
        visit_field(syn::Field) => |field| &field.attrs;
        visit_variant(syn::Variant) => |variant| &variant.attrs;
        visit_arm(syn::Arm) => |arm| &arm.attrs;
        visit_field_value(syn::FieldValue) => |field| &field.attrs;
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(in crate::x)` restricts who may see an item; it imports nothing.
    }

    fn visit_attribute(&mut self, attr: &'ast Attribute) {
        self.scan_attribute(attr);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some(segments) = path_segments(path)
            && let Some(first) = path.segments.first()
        {
            self.record_code_path(&segments, line_of(first.ident.span()));
        }
        // Generic arguments hold paths of their own (`Vec<crate::x::Y>`).
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.scan_tokens(mac.tokens.clone(), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(src: &str) -> Vec<(String, String)> {
        let item: syn::ItemUse = match syn::parse_str(src) {
            Ok(item) => item,
            Err(err) => panic!("bad fixture {src}: {err}"),
        };
        let mut out = Vec::new();
        flatten_use(&item.tree, &mut Vec::new(), &mut out);
        out.into_iter()
            .map(|leaf| {
                let kind = match leaf.kind {
                    LeafKind::Name(name) => name,
                    LeafKind::Glob => "*".to_owned(),
                };
                (leaf.segments.join("::"), kind)
            })
            .collect()
    }

    #[test]
    fn flattens_use_trees() {
        let got = leaves("use a::{b, c::{self, d as e}, f::*};");
        let want = [
            ("a::b", "b"),
            ("a::c", "c"),
            ("a::c::d", "e"),
            ("a::f", "*"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(p, n)| ((*p).to_owned(), (*n).to_owned()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn finds_paths_in_tokens() {
        let tokens: TokenStream = match "x.y::<T>(); $crate::a::b; crate::c; d".parse() {
            Ok(tokens) => tokens,
            Err(err) => panic!("{err}"),
        };
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut found = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            match path_at(&tokens, i) {
                Some((segments, _, next)) => {
                    found.push(segments.join("::"));
                    i = next;
                }
                None => i += 1,
            }
        }
        assert_eq!(found, ["$crate::a::b", "crate::c"]);
    }
}

#[cfg(test)]
mod resolution_tests {
    use super::collect;
    use crate::fixture::Fixture;

    /// `file:line from -> to [written]` for every import of the fixture crate.
    fn imports_of(files: &[(&str, &str)]) -> Vec<String> {
        let fixture = Fixture::new(files);
        let tree = fixture.tree("src/lib.rs");
        collect(&tree)
            .iter()
            .map(|i| {
                format!(
                    "{}:{} -> {} [{}]",
                    tree.display(&tree.modules[i.from].file),
                    i.line,
                    tree.display(&tree.modules[i.target].file),
                    i.written
                )
            })
            .collect()
    }

    #[test]
    fn resolves_to_the_deepest_existing_module() {
        let got = imports_of(&[
            ("src/lib.rs", "//! Root.\nmod upstream;\nmod routing;\n"),
            (
                "src/upstream/mod.rs",
                "//! Upstreams.\npub mod idle;\npub use idle::IdleClock as Choice;\n",
            ),
            (
                "src/upstream/idle.rs",
                "//! Idle.\npub struct IdleClock;\npub fn reap_loop() {}\n",
            ),
            (
                "src/routing.rs",
                "//! Routing.\nuse crate::upstream::idle::IdleClock;\nuse crate::upstream::Choice;\nfn f() {\n    crate::upstream::idle::reap_loop();\n    let _: Option<super::upstream::Choice> = None;\n}\n",
            ),
        ]);
        assert_eq!(
            got,
            [
                "src/upstream/mod.rs:3 -> src/upstream/idle.rs [idle::IdleClock]",
                "src/routing.rs:2 -> src/upstream/idle.rs [crate::upstream::idle::IdleClock]",
                "src/routing.rs:3 -> src/upstream/mod.rs [crate::upstream::Choice]",
                "src/routing.rs:5 -> src/upstream/idle.rs [crate::upstream::idle::reap_loop]",
                "src/routing.rs:6 -> src/upstream/mod.rs [super::upstream::Choice]",
            ]
        );
    }

    #[test]
    fn follows_relative_paths_aliases_macros_and_attributes() {
        let got = imports_of(&[
            (
                "src/lib.rs",
                "//! Root.\nmod filters;\nmod served;\nmod proxy;\n",
            ),
            (
                "src/filters/mod.rs",
                "//! Filters.\npub mod answer;\nuse answer::Answer;\npub enum Flow { Go }\nuse Flow::Go;\nfn f() { let answer = 1; let _ = answer; let _ = answer::make(); }\n",
            ),
            (
                "src/filters/answer.rs",
                "//! Answers.\npub struct Answer;\npub fn make() {}\n",
            ),
            (
                "src/served.rs",
                "//! Served.\npub struct State;\npub mod config { pub struct C; }\n",
            ),
            (
                "src/proxy.rs",
                "//! Proxy.\nuse crate::served;\nuse served::config;\n#[derive(serde::Deserialize)]\nstruct S { #[serde(with = \"crate::filters::answer\")] a: u8 }\nfn f() {\n    let _ = served::State;\n    let _ = config::C;\n    assert!(matches!(x, crate::filters::Flow::Go));\n    pub(in crate::proxy) fn g() {}\n    let _ = ::served::Other;\n}\n",
            ),
        ]);
        assert_eq!(
            got,
            [
                "src/filters/mod.rs:3 -> src/filters/answer.rs [answer::Answer]",
                // An item of the module itself: an import of its own file, which no rule minds.
                "src/filters/mod.rs:5 -> src/filters/mod.rs [Flow::Go]",
                "src/filters/mod.rs:6 -> src/filters/answer.rs [answer::make]",
                "src/proxy.rs:2 -> src/served.rs [crate::served]",
                "src/proxy.rs:3 -> src/served.rs [served::config]",
                "src/proxy.rs:5 -> src/filters/answer.rs [crate::filters::answer]",
                "src/proxy.rs:7 -> src/served.rs [served::State]",
                "src/proxy.rs:8 -> src/served.rs [config::C]",
                "src/proxy.rs:9 -> src/filters/mod.rs [crate::filters::Flow::Go]",
            ]
        );
    }

    #[test]
    fn leaves_out_test_code() {
        let got = imports_of(&[
            ("src/lib.rs", "//! Root.\nmod low;\nmod high;\n"),
            (
                "src/low.rs",
                "//! Low.\n#[cfg(test)]\nuse crate::high::H;\n#[cfg(test)]\n#[allow(clippy::unwrap_used)]\nmod tests { use crate::high::H; }\n#[cfg(test)]\n#[allow(dead_code)]\n#[path = \"low_tests.rs\"]\nmod more;\nfn f() {\n    #[cfg(test)]\n    let _ = crate::high::H;\n}\nimpl X {\n    #[cfg(all(test, unix))]\n    fn t() { crate::high::g(); }\n}\n",
            ),
            ("src/low_tests.rs", "//! Tests.\nuse crate::high::H;\n"),
            ("src/high.rs", "//! High.\npub struct H;\npub fn g() {}\n"),
        ]);
        assert!(got.is_empty(), "{got:#?}");
    }
}
