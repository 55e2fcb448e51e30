//! Rule 6: the data-plane library exposes only what its binary and benchmarks need. Everything
//! public is a promise to keep; a private module can be split, moved or renamed by whoever needs
//! to, and the compiler's dead-code warnings keep seeing into it. So `lib.rs` declares `pub mod`
//! only for [`PUBLIC_MODULES`]; every other module is `mod` or `pub(crate) mod` (what the
//! benchmarks need beyond that is re-exported item by item).

use syn::{Item, Visibility};

use crate::attrs;
use crate::tree::{CrateTree, line_of};
use crate::violation::{Rule, Violation};

/// The modules the data-plane library may declare `pub`: the binary's flags and its entry point.
pub const PUBLIC_MODULES: &[&str] = &["cli", "run"];

/// The `pub mod` declarations of a library root beyond `allowed`.
pub fn lib_exposure(tree: &CrateTree, allowed: &[&str]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for item in &tree.root().items {
        let Item::Mod(decl) = item else {
            continue;
        };
        // A test-only module exists in no build the binary or the benchmarks link.
        if attrs::is_test_only(&decl.attrs) || !matches!(decl.vis, Visibility::Public(_)) {
            continue;
        }
        let name = decl.ident.to_string();
        if !allowed.contains(&name.as_str()) {
            violations.push(Violation::new(
                Rule::LibExposure,
                tree.display(&tree.root_file),
                Some(line_of(decl.ident.span())),
                format!(
                    "`pub mod {name}`: only {} may be public; make it `mod {name}` or `pub(crate) mod {name}` and re-export what the binary or benchmarks need",
                    allowed.join(" and ")
                ),
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, lines};

    #[test]
    fn only_the_entry_points_are_public() {
        let fixture = Fixture::new(&[
            (
                "src/lib.rs",
                "//! Root.\npub mod cli;\npub mod run;\npub mod routing;\npub(crate) mod served;\nmod body;\n#[cfg(test)]\npub mod test_support { }\n",
            ),
            ("src/cli.rs", "//! Flags.\n"),
            ("src/run.rs", "//! Run.\n"),
            ("src/routing.rs", "//! Routing.\n"),
            ("src/served.rs", "//! Served.\n"),
            ("src/body.rs", "//! Body.\n"),
        ]);
        let got = lines(&lib_exposure(&fixture.tree("src/lib.rs"), PUBLIC_MODULES));
        assert_eq!(
            got,
            [
                "src/lib.rs:4: [lib-exposure] `pub mod routing`: only cli and run may be public; make it `mod routing` or `pub(crate) mod routing` and re-export what the binary or benchmarks need"
            ]
        );
    }
}
