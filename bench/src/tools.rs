//! Makes sure nginx, HAProxy and wrk are installed (and for the TLS benchmark h2load and the
//! openssl CLI), from Debian's packages when they are not.

use std::process::Command;

use anyhow::Context;

/// Binaries and the Debian packages that have them.
const TOOLS: [(&str, &str); 3] = [("nginx", "nginx"), ("haproxy", "haproxy"), ("wrk", "wrk")];
const TLS_TOOLS: [(&str, &str); 2] = [("h2load", "nghttp2-client"), ("openssl", "openssl")];

fn installed(binary: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            &format!("command -v {binary} || test -x /usr/sbin/{binary}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn ensure_installed(tls: bool) -> anyhow::Result<()> {
    let extra: &[(&str, &str)] = if tls { &TLS_TOOLS } else { &[] };
    let missing: Vec<&str> = TOOLS
        .iter()
        .chain(extra)
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
        .status()
        .context("run apt-get")?;
    anyhow::ensure!(
        status.success(),
        "apt-get could not install {}",
        missing.join(", ")
    );
    Ok(())
}
