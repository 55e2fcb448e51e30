//! The control-plane and worker executables the benchmark starts: the ones given on the command
//! line, or release builds made by `cargo build` in this workspace (a no-op when they are up to
//! date). Cargo's own build messages name the executables, so no target directory is guessed.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

const CONTROL_PLANE: &str = "control-plane";
const WORKER: &str = "data-plane";

#[derive(Debug, Clone)]
pub struct Binaries {
    pub control_plane: PathBuf,
    pub worker: PathBuf,
}

impl Binaries {
    /// Uses the given paths; builds what is missing.
    pub fn locate(control_plane: Option<PathBuf>, worker: Option<PathBuf>) -> anyhow::Result<Self> {
        let (control_plane, worker) = match (control_plane, worker) {
            (Some(control_plane), Some(worker)) => (control_plane, worker),
            (control_plane, worker) => {
                let built = build()?;
                (
                    control_plane.unwrap_or(built.control_plane),
                    worker.unwrap_or(built.worker),
                )
            }
        };
        for path in [&control_plane, &worker] {
            ensure!(path.is_file(), "{} is not a file", path.display());
        }
        Ok(Binaries {
            control_plane,
            worker,
        })
    }
}

/// `cargo build --release` of both binaries; progress and errors go to the terminal.
fn build() -> anyhow::Result<Binaries> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    eprintln!("building {CONTROL_PLANE} and {WORKER} (release)");
    let mut command = Command::new(cargo);
    // `cargo run` describes this package to us in these variables. Build scripts (ring's) ask to
    // rerun when some of them change, and cargo compares them with its own environment, so
    // passing them on would rebuild half the dependency tree instead of finding it up to date.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else {
            continue;
        };
        let described = name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "OUT_DIR"
            );
        if described {
            command.env_remove(name);
        }
    }
    let output = command
        .args([
            "build",
            "--release",
            "-p",
            CONTROL_PLANE,
            "-p",
            WORKER,
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo build")?;
    if !output.status.success() {
        bail!("cargo build of {CONTROL_PLANE} and {WORKER} failed");
    }
    let mut control_plane = None;
    let mut worker = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(name), Some(executable)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) else {
            continue;
        };
        match name {
            CONTROL_PLANE => control_plane = Some(PathBuf::from(executable)),
            WORKER => worker = Some(PathBuf::from(executable)),
            _ => {}
        }
    }
    Ok(Binaries {
        control_plane: control_plane.context("cargo built no control-plane executable")?,
        worker: worker.context("cargo built no data-plane executable")?,
    })
}
