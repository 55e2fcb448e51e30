//! Runs every rule over the real workspace (found from this crate's manifest directory, two levels
//! down from the root) and fails with all the violations of a rule listed, one per line, each
//! naming its file, line and rule. One test per rule, so that CI says which rules broke.

use std::path::PathBuf;
use std::sync::LazyLock;

use gateway_layers::violation::{Rule, Violation, render};
use gateway_layers::workspace::{self, Workspace};

/// What one pass over the workspace found. Parsed syntax trees are not `Sync`, so the workspace
/// is loaded once here and only its results are shared between the tests.
struct Checked {
    root: PathBuf,
    /// Each member with its number of crate targets.
    members: Vec<(String, usize)>,
    violations: Vec<Violation>,
}

static CHECKED: LazyLock<Checked> = LazyLock::new(|| {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let loaded = Workspace::load(&root);
    Checked {
        members: loaded
            .members
            .iter()
            .map(|member| (member.name.clone(), member.trees.len()))
            .collect(),
        violations: workspace::check(&loaded),
        root,
    }
});

fn assert_clean(rule: Rule) {
    let violations: Vec<Violation> = CHECKED
        .violations
        .iter()
        .filter(|violation| violation.rule == rule)
        .cloned()
        .collect();
    assert!(
        violations.is_empty(),
        "rule {rule}: {} violation(s):\n{}",
        violations.len(),
        render(&violations)
    );
}

#[test]
fn finds_the_workspace() {
    let expected = [
        "proto",
        "config",
        "http1",
        "control-plane",
        "data-plane",
        "gatewayctl",
        "tests",
        "bench",
        "tools/layers",
    ];
    for member in expected {
        assert!(
            CHECKED
                .members
                .iter()
                .any(|(name, trees)| name == member && *trees > 0),
            "member {member} with a crate root not found in {}: {:?}",
            CHECKED.root.display(),
            CHECKED.members
        );
    }
}

/// One test per rule, each asserting that its rule finds nothing.
macro_rules! clean {
    ($($test:ident: $rule:ident,)*) => {
        $(
            #[test]
            fn $test() {
                assert_clean(Rule::$rule);
            }
        )*
    };
}

clean! {
    every_module_file_loads: ModuleTree,
    no_import_cycles: ImportCycle,
    data_plane_layers: Layers,
    codec_stands_alone: CodecStandalone,
    no_process_wide_statics_below_the_lifecycle: NoStatics,
    every_module_file_starts_with_docs: ModuleDocs,
    data_plane_library_exposes_only_its_entry_points: LibExposure,
}
