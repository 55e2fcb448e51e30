//! A crate's module tree, built the way rustc finds module files: from a root (`src/lib.rs`,
//! `src/main.rs`), following every `mod` declaration, inline (`mod x { ... }`) or in a file
//! (`x.rs` or `x/mod.rs`, or wherever `#[path = "..."]` says).
//!
//! The tree keeps every module, test modules too (the docs rule reads their files), but marks
//! the ones that exist only under `#[cfg(test)]`, with everything below them, so that the import
//! rules can leave them out; and only non-test modules are linked as children for path
//! resolution, since code outside tests cannot name a test module.
//!
//! The rules follow the Rust reference, "Modules" and "The path attribute":
//! - a root and every `mod.rs` own their directory: `mod x;` there is `x.rs` or `x/mod.rs` beside
//!   them; any other file `a.rs` puts its children under `a/`;
//! - `#[path]` on a file module is relative to the directory of the file holding the declaration,
//!   and the file it names owns its directory like a `mod.rs`;
//! - an inline module adds its name (or its `#[path]`) to the directory its children live in.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use syn::{Attribute, Item};

use crate::attrs;
use crate::violation::{Rule, Violation};

/// One module of a crate.
pub struct Module {
    /// The path from the crate root: empty for the root, `["upstream", "idle"]` for
    /// `crate::upstream::idle`.
    pub path: Vec<String>,
    /// The file that holds the module's items; an inline module shares its parent's file.
    pub file: PathBuf,
    /// Declared as `mod x { ... }` rather than in a file of its own.
    pub inline: bool,
    /// Exists only in test builds (`#[cfg(test)]` on it or on a module above it).
    pub test: bool,
    pub parent: Option<usize>,
    /// Non-test child modules by name: the names code outside tests can use.
    pub children: BTreeMap<String, usize>,
    /// The module's own items. The bodies of inline child modules have been moved into those
    /// children, so walking these never walks another module's items.
    pub items: Vec<Item>,
    /// The inner attributes at the top of the module's file (its `//!` docs); empty for inline
    /// modules.
    pub file_attrs: Vec<Attribute>,
    /// Where the module is declared (the parent's file and line); `None` for the root.
    pub declared_at: Option<(PathBuf, usize)>,
}

impl Module {
    /// `crate::a::b`, for messages.
    pub fn display_path(&self) -> String {
        if self.path.is_empty() {
            "crate".to_owned()
        } else {
            format!("crate::{}", self.path.join("::"))
        }
    }

    /// The top-level module this one belongs to (`upstream` for `crate::upstream::idle`), or
    /// `None` for the crate root.
    pub fn top(&self) -> Option<&str> {
        self.path.first().map(String::as_str)
    }
}

/// The module tree of one crate target (a library or a binary).
pub struct CrateTree {
    /// The root file, e.g. `/work/main/data-plane/src/lib.rs`.
    pub root_file: PathBuf,
    /// The directory paths in messages are shown relative to (the workspace root).
    pub base: PathBuf,
    /// `modules[0]` is the crate root.
    pub modules: Vec<Module>,
}

impl CrateTree {
    /// Builds the tree from its root file. Problems (a declared module without a file, a file
    /// syn cannot parse) come back as violations beside a tree that leaves that part out.
    pub fn load(root_file: &Path, base: &Path) -> (CrateTree, Vec<Violation>) {
        let mut builder = Builder {
            tree: CrateTree {
                root_file: root_file.to_path_buf(),
                base: base.to_path_buf(),
                modules: Vec::new(),
            },
            problems: Vec::new(),
        };
        let (items, file_attrs) = builder.parse(root_file, None).unwrap_or_default();
        let dir = parent_dir(root_file);
        builder.add(
            NewModule {
                path: Vec::new(),
                file: root_file.to_path_buf(),
                inline: false,
                test: false,
                parent: None,
                declared_at: None,
                file_attrs,
            },
            items,
            Dirs {
                children: dir.clone(),
                path_attr: dir,
            },
        );
        (builder.tree, builder.problems)
    }

    /// A path shown relative to the base directory.
    pub fn display(&self, path: &Path) -> String {
        display_relative(&self.base, path)
    }

    /// The root module.
    pub fn root(&self) -> &Module {
        &self.modules[0]
    }
}

/// `path` relative to `base` with `/` separators, or `path` itself when it is not below `base`.
pub fn display_relative(base: &Path, path: &Path) -> String {
    let shown = path.strip_prefix(base).unwrap_or(path);
    shown
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The 1-based line a span starts on (0 when syn has no position for it).
pub fn line_of(span: proc_macro2::Span) -> usize {
    span.start().line
}

/// `a/b/../c/./d.rs` → `a/c/d.rs`, without touching the file system (the file may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn parent_dir(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Where the children of a module are looked for.
#[derive(Clone)]
struct Dirs {
    /// Where `mod x;` (without `#[path]`) finds `x.rs` or `x/mod.rs`.
    children: PathBuf,
    /// What `#[path = "..."]` on a `mod x;` inside this module is relative to.
    path_attr: PathBuf,
}

struct NewModule {
    path: Vec<String>,
    file: PathBuf,
    inline: bool,
    test: bool,
    parent: Option<usize>,
    declared_at: Option<(PathBuf, usize)>,
    file_attrs: Vec<Attribute>,
}

struct Builder {
    tree: CrateTree,
    problems: Vec<Violation>,
}

impl Builder {
    /// Records a problem with the module in `file`: at its `mod` declaration, which is where it
    /// is fixed, or at the file itself for the root, which no declaration names.
    fn module_problem(
        &mut self,
        declared_at: Option<&(PathBuf, usize)>,
        file: &Path,
        message: String,
    ) {
        let (at, line) = match declared_at {
            Some((decl_file, line)) => (self.tree.display(decl_file), Some(*line)),
            None => (self.tree.display(file), None),
        };
        self.problems
            .push(Violation::new(Rule::ModuleTree, at, line, message));
    }

    /// Reads and parses one module file; `None` (with a problem recorded) if that fails.
    fn parse(
        &mut self,
        file: &Path,
        declared_at: Option<&(PathBuf, usize)>,
    ) -> Option<(Vec<Item>, Vec<Attribute>)> {
        let text = match fs::read_to_string(file) {
            Ok(text) => text,
            Err(err) => {
                let message = format!("cannot read module file {}: {err}", self.tree.display(file));
                self.module_problem(declared_at, file, message);
                return None;
            }
        };
        match syn::parse_file(&text) {
            Ok(parsed) => Some((parsed.items, parsed.attrs)),
            Err(err) => {
                self.problems.push(Violation::new(
                    Rule::ModuleTree,
                    self.tree.display(file),
                    Some(line_of(err.span())),
                    format!("cannot parse this file, so no rule can check it: {err}"),
                ));
                None
            }
        }
    }

    /// Adds a module and, depth first, everything it declares. Returns its index.
    fn add(&mut self, new: NewModule, items: Vec<Item>, dirs: Dirs) -> usize {
        let index = self.tree.modules.len();
        let test = new.test;
        let path = new.path.clone();
        let file = new.file.clone();
        self.tree.modules.push(Module {
            path: new.path,
            file: new.file,
            inline: new.inline,
            test: new.test,
            parent: new.parent,
            children: BTreeMap::new(),
            items: Vec::new(),
            file_attrs: new.file_attrs,
            declared_at: new.declared_at,
        });

        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            let Item::Mod(mut decl) = item else {
                kept.push(item);
                continue;
            };
            let name = decl.ident.to_string();
            let child_test = test || attrs::is_test_only(&decl.attrs);
            let path_attr = attrs::path_attr(&decl.attrs);
            let line = line_of(decl.ident.span());
            let mut child_path = path.clone();
            child_path.push(name.clone());
            let declared_at = Some((file.clone(), line));

            let child = if let Some((_, content)) = decl.content.take() {
                let children_dir = match &path_attr {
                    Some(p) => dirs.path_attr.join(p),
                    None => dirs.children.join(&name),
                };
                Some(self.add(
                    NewModule {
                        path: child_path,
                        file: file.clone(),
                        inline: true,
                        test: child_test,
                        parent: Some(index),
                        declared_at,
                        file_attrs: Vec::new(),
                    },
                    content,
                    Dirs {
                        children: children_dir.clone(),
                        path_attr: children_dir,
                    },
                ))
            } else {
                self.add_file_module(
                    &name,
                    path_attr.as_deref(),
                    &dirs,
                    NewModule {
                        path: child_path,
                        file: PathBuf::new(),
                        inline: false,
                        test: child_test,
                        parent: Some(index),
                        declared_at,
                        file_attrs: Vec::new(),
                    },
                )
            };
            if let Some(child) = child
                && !child_test
            {
                // Two non-test declarations of one name (under different `cfg`s) are one name
                // to the code around them; the first is enough to resolve paths through.
                self.tree.modules[index]
                    .children
                    .entry(name)
                    .or_insert(child);
            }
            // The declaration stays among the items (the exposure rule reads its visibility),
            // without the body that now belongs to the child.
            kept.push(Item::Mod(decl));
        }
        self.tree.modules[index].items = kept;
        index
    }

    /// Finds, parses and adds a module declared as `mod name;`.
    fn add_file_module(
        &mut self,
        name: &str,
        path_attr: Option<&str>,
        dirs: &Dirs,
        mut new: NewModule,
    ) -> Option<usize> {
        let (file, children_dir) = match path_attr {
            Some(p) => {
                // `#[path = "../x.rs"]` must name the same file as the `x.rs` it points at, or the
                // cycle rule would see two nodes for one file.
                let file = normalize(&dirs.path_attr.join(p));
                let dir = parent_dir(&file);
                (file, dir)
            }
            None => {
                let flat = dirs.children.join(format!("{name}.rs"));
                let nested = dirs.children.join(name).join("mod.rs");
                match (flat.is_file(), nested.is_file()) {
                    (true, true) => {
                        let message = format!(
                            "module `{name}` has two files, {} and {} (rustc refuses this)",
                            self.tree.display(&flat),
                            self.tree.display(&nested)
                        );
                        self.module_problem(new.declared_at.as_ref(), &flat, message);
                        (flat, dirs.children.join(name))
                    }
                    (false, true) => (nested, dirs.children.join(name)),
                    // When neither exists, reading `x.rs` reports the missing file.
                    _ => (flat, dirs.children.join(name)),
                }
            }
        };

        // A `#[path]` loop would otherwise recurse for ever.
        let mut ancestor = new.parent;
        while let Some(a) = ancestor {
            let module = &self.tree.modules[a];
            if !module.inline && module.file == file {
                let message = format!(
                    "module `{name}` loads {}, which is already a module above it",
                    self.tree.display(&file)
                );
                self.module_problem(new.declared_at.as_ref(), &file, message);
                return None;
            }
            ancestor = module.parent;
        }

        let (items, file_attrs) = self.parse(&file, new.declared_at.as_ref())?;
        // `#[path]` inside this file is relative to the file's own directory, also for a plain
        // `a.rs` whose other children live in `a/`.
        let path_attr_dir = parent_dir(&file);
        new.file = file;
        new.file_attrs = file_attrs;
        Some(self.add(
            new,
            items,
            Dirs {
                children: children_dir,
                path_attr: path_attr_dir,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::fixture::{Fixture, assert_lines_start_with, lines};
    use crate::violation::Rule;

    /// The module paths of a tree with their files, as `crate::a::b = src/a/b.rs`.
    fn layout(fixture: &Fixture, root: &str) -> Vec<String> {
        let tree = fixture.tree(root);
        tree.modules
            .iter()
            .map(|m| {
                let test = if m.test { " (test)" } else { "" };
                format!("{} = {}{test}", m.display_path(), tree.display(&m.file))
            })
            .collect()
    }

    #[test]
    fn finds_module_files_like_rustc() {
        let fixture = Fixture::new(&[
            (
                "src/lib.rs",
                "//! Root.\nmod flat;\nmod nested;\nmod inline { mod deep; }\n#[path = \"elsewhere/moved.rs\"] mod moved;\n#[cfg(test)] #[allow(clippy::unwrap_used)] #[path = \"lib_tests.rs\"] mod tests;\n",
            ),
            (
                "src/flat.rs",
                "//! A plain file with children below it.\nmod child;\n#[path = \"beside.rs\"] mod beside;\nmod inner { mod leaf; }\n",
            ),
            ("src/flat/child.rs", "//! Child of flat.\n"),
            // `#[path]` in a plain `a.rs` is relative to that file's directory, not `a/`.
            ("src/beside.rs", "//! Next to flat.rs.\n"),
            (
                "src/flat/inner/leaf.rs",
                "//! Inside flat's inline module.\n",
            ),
            (
                "src/nested/mod.rs",
                "//! A mod.rs owns its directory.\nmod sibling;\n",
            ),
            ("src/nested/sibling.rs", "//! Beside mod.rs.\n"),
            (
                "src/inline/deep.rs",
                "//! Below an inline module of the root.\n",
            ),
            // A `#[path]` file owns its directory like a mod.rs.
            (
                "src/elsewhere/moved.rs",
                "//! Moved.\nmod next;\n#[path = \"../flat/child.rs\"]\nmod again;\n",
            ),
            ("src/elsewhere/next.rs", "//! Beside moved.rs.\n"),
            ("src/lib_tests.rs", "//! Tests.\nmod helpers { }\n"),
        ]);
        assert_eq!(
            layout(&fixture, "src/lib.rs"),
            [
                "crate = src/lib.rs",
                "crate::flat = src/flat.rs",
                "crate::flat::child = src/flat/child.rs",
                "crate::flat::beside = src/beside.rs",
                "crate::flat::inner = src/flat.rs",
                "crate::flat::inner::leaf = src/flat/inner/leaf.rs",
                "crate::nested = src/nested/mod.rs",
                "crate::nested::sibling = src/nested/sibling.rs",
                "crate::inline = src/lib.rs",
                "crate::inline::deep = src/inline/deep.rs",
                "crate::moved = src/elsewhere/moved.rs",
                "crate::moved::next = src/elsewhere/next.rs",
                "crate::moved::again = src/flat/child.rs",
                "crate::tests = src/lib_tests.rs (test)",
                "crate::tests::helpers = src/lib_tests.rs (test)",
            ]
        );
        let tree = fixture.tree("src/lib.rs");
        // Test modules are in the tree, but not among the names other code can use.
        assert!(!tree.root().children.contains_key("tests"));
        assert!(tree.root().children.contains_key("moved"));
    }

    #[test]
    fn reports_missing_and_unparsable_files() {
        let fixture = Fixture::new(&[
            ("src/lib.rs", "//! Root.\nmod gone;\nmod broken;\n"),
            ("src/broken.rs", "//! Broken.\nfn f( {}\n"),
        ]);
        let (tree, mut problems) = fixture.load("src/lib.rs");
        problems.sort();
        assert_eq!(tree.modules.len(), 1);
        assert_lines_start_with(
            &lines(&problems),
            &[
                "src/broken.rs:2: [module-tree] cannot parse",
                "src/lib.rs:2: [module-tree] cannot read module file src/gone.rs",
            ],
        );
        assert!(problems.iter().all(|p| p.rule == Rule::ModuleTree));
    }
}
