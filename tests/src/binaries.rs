//! Locates the gateway binaries, building them first so that a plain `cargo test` never runs stale
//! executables of the other workspace packages.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Path of a workspace binary, e.g. `binary("data-plane")`.
pub fn binary(name: &str) -> PathBuf {
    let dir = binaries_dir();
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

fn binaries_dir() -> &'static PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(build_binaries);
    binaries_dir_path()
}

fn binaries_dir_path() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Test and bench executables live in target/<profile>/deps, binaries such as
        // gateway-bench in target/<profile>; the gateway binaries are in target/<profile>.
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe.parent().expect("executable directory");
        let dir = if dir.ends_with("deps") {
            dir.parent().expect("target directory")
        } else {
            dir
        };
        dir.to_path_buf()
    })
}

fn binaries_dir_name() -> Option<&'static str> {
    binaries_dir_path().file_name().and_then(|n| n.to_str())
}

fn build_binaries() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // The same selection as `scripts/test.sh` builds, so features unify the same way and this is
    // a no-op there instead of a rebuild.
    command
        .args(["build", "--workspace", "--bins"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // Benchmarks run from target/release and measure release binaries.
    if binaries_dir_name() == Some("release") {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build");
    assert!(status.success(), "building the gateway binaries failed");
}
