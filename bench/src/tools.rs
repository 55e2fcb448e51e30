//! Makes sure nginx, HAProxy and wrk are installed, from Debian's packages when they are not.

use std::process::Command;

const TOOLS: [(&str, &str); 3] = [("nginx", "nginx"), ("haproxy", "haproxy"), ("wrk", "wrk")];

fn installed(binary: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            &format!("command -v {binary} || test -x /usr/sbin/{binary}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn ensure_installed() -> anyhow::Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(bin, _)| !installed(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {} from Debian's packages", missing.join(", "));
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq {}",
            missing.join(" ")
        ))
        .status()?;
    anyhow::ensure!(
        status.success(),
        "apt-get could not install {}",
        missing.join(", ")
    );
    Ok(())
}
