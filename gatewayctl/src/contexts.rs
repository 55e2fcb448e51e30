//! Named contexts: which admin API to talk to and how to authenticate, kept in a YAML file
//! (`--config`, else `$XDG_CONFIG_HOME/gatewayctl/config.yaml`, else
//! `~/.config/gatewayctl/config.yaml`), so that `gatewayctl context use prod` switches clusters.
//! A context names the admin URL, a token or a command that prints one (so that the token can
//! stay in a password manager), and a CA file. Flags and their environment twins win over the
//! context, which wins over the defaults. The file is written owner-only: it may hold tokens.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The admin URL when neither a flag nor a context gives one.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:8001";

/// The largest contexts file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ContextsError {
    #[error("no contexts file: set --config or GATEWAYCTL_CONFIG (no home directory found)")]
    NoPath,
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("no context named `{name}` in {path}; `gatewayctl context list` shows them")]
    Unknown { name: String, path: String },
    #[error("context `{context}`: the token command failed: {reason}")]
    TokenCommand { context: String, reason: String },
    #[error("context name `{0}`: use letters, digits, `.`, `_` and `-`")]
    BadName(String),
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: Vec<ContextEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextEntry {
    pub name: String,
    pub admin_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Run with `sh -c`; its output, trimmed, is the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Where the admin API is and how to reach it, all settings applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub admin_url: String,
    pub token: Option<String>,
    pub ca_file: Option<PathBuf>,
}

/// What the command line says, before the contexts file is read.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub config: Option<PathBuf>,
    pub context: Option<String>,
    pub admin_url: Option<String>,
    pub token: Option<String>,
    pub ca_file: Option<PathBuf>,
}

/// The contexts file's path.
pub fn path(given: Option<&Path>) -> Result<PathBuf, ContextsError> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").ok_or(ContextsError::NoPath)?).join(".config")
        }
    };
    Ok(base.join("gatewayctl").join("config.yaml"))
}

/// The contexts file; none yet is an empty one.
pub fn load(path: &Path) -> Result<ContextsFile, ContextsError> {
    let unreadable = |reason: String| ContextsError::Read {
        path: path.display().to_string(),
        reason,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ContextsFile::default());
        }
        Err(error) => return Err(unreadable(error.to_string())),
    };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(unreadable(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    if text.trim().is_empty() {
        return Ok(ContextsFile::default());
    }
    serde_yaml_ng::from_str(&text).map_err(|e| unreadable(e.to_string()))
}

/// Writes the contexts file, readable by its owner only, replacing it in one step.
pub fn save(path: &Path, file: &ContextsFile) -> Result<(), ContextsError> {
    let failed = |reason: String| ContextsError::Write {
        path: path.display().to_string(),
        reason,
    };
    let text = serde_yaml_ng::to_string(file).map_err(|e| failed(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    }
    let temporary = path.with_extension("yaml.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options
            .open(&temporary)
            .map_err(|e| failed(e.to_string()))?;
        out.write_all(text.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    std::fs::rename(&temporary, path).map_err(|e| failed(e.to_string()))
}

/// Checks a context's name.
pub fn check_name(name: &str) -> Result<(), ContextsError> {
    let fine = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if fine {
        Ok(())
    } else {
        Err(ContextsError::BadName(name.to_owned()))
    }
}

/// The connection for this run: flags, then the chosen context, then the defaults.
pub fn resolve(given: &Given) -> Result<Connection, ContextsError> {
    let needs_file = given.context.is_some()
        || given.admin_url.is_none()
        || given.token.is_none()
        || given.ca_file.is_none();
    let mut entry = None;
    if needs_file {
        let path = path(given.config.as_deref());
        let file = match (&path, &given.context) {
            (Ok(path), _) => load(path)?,
            // Without a home directory there is no file to read unless a context is asked for.
            (Err(_), None) => ContextsFile::default(),
            (Err(_), Some(_)) => return Err(ContextsError::NoPath),
        };
        let chosen = given.context.clone().or(file.current_context.clone());
        if let Some(name) = chosen {
            let found = file.contexts.iter().find(|c| c.name == name).cloned();
            match found {
                Some(found) => entry = Some(found),
                None => {
                    return Err(ContextsError::Unknown {
                        name,
                        path: path.map(|p| p.display().to_string()).unwrap_or_default(),
                    });
                }
            }
        }
    }
    let admin_url = given
        .admin_url
        .clone()
        .or_else(|| entry.as_ref().map(|e| e.admin_url.clone()))
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned());
    let token = match (&given.token, &entry) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(entry)) => match (&entry.token, &entry.token_command) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(command)) => Some(run_token_command(&entry.name, command)?),
            (None, None) => None,
        },
        (None, None) => None,
    };
    let ca_file = given
        .ca_file
        .clone()
        .or_else(|| entry.as_ref().and_then(|e| e.ca_file.clone()));
    Ok(Connection {
        admin_url,
        token,
        ca_file,
    })
}

fn run_token_command(context: &str, command: &str) -> Result<String, ContextsError> {
    let failed = |reason: String| ContextsError::TokenCommand {
        context: context.to_owned(),
        reason,
    };
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(format!("`{command}` exited with {}", output.status)));
    }
    let token = String::from_utf8(output.stdout)
        .map_err(|_| failed("its output is not UTF-8".into()))?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err(failed(format!("`{command}` printed nothing")));
    }
    Ok(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(name: &str, url: &str) -> ContextEntry {
        ContextEntry {
            name: name.into(),
            admin_url: url.into(),
            token: None,
            token_command: None,
            ca_file: None,
        }
    }

    #[test]
    fn flags_win_over_the_context_which_wins_over_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("nested/config.yaml");
        let given = Given {
            config: Some(config.clone()),
            ..Given::default()
        };
        // No file: the defaults.
        let plain = resolve(&given).unwrap();
        assert_eq!(plain.admin_url, DEFAULT_ADMIN_URL);
        assert_eq!(plain.token, None);

        let mut prod = entry("prod", "https://gw.example:8001");
        prod.token_command = Some("echo '  from-command  '".into());
        prod.ca_file = Some("/etc/gw/ca.pem".into());
        let mut dev = entry("dev", "http://127.0.0.1:9001");
        dev.token = Some("dev-token".into());
        let file = ContextsFile {
            current_context: Some("prod".into()),
            contexts: vec![prod, dev],
        };
        save(&config, &file).unwrap();
        assert_eq!(load(&config).unwrap(), file);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&config).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let current = resolve(&given).unwrap();
        assert_eq!(current.admin_url, "https://gw.example:8001");
        assert_eq!(current.token.as_deref(), Some("from-command"));
        assert_eq!(current.ca_file, Some(PathBuf::from("/etc/gw/ca.pem")));

        let chosen = resolve(&Given {
            context: Some("dev".into()),
            ..given.clone()
        })
        .unwrap();
        assert_eq!(chosen.admin_url, "http://127.0.0.1:9001");
        assert_eq!(chosen.token.as_deref(), Some("dev-token"));

        let flags = resolve(&Given {
            admin_url: Some("http://other:1".into()),
            token: Some("flag-token".into()),
            ..given.clone()
        })
        .unwrap();
        assert_eq!(flags.admin_url, "http://other:1");
        assert_eq!(flags.token.as_deref(), Some("flag-token"));
        assert_eq!(flags.ca_file, Some(PathBuf::from("/etc/gw/ca.pem")));

        let unknown = resolve(&Given {
            context: Some("staging".into()),
            ..given
        });
        assert!(matches!(unknown, Err(ContextsError::Unknown { .. })));
    }

    #[test]
    fn a_failing_token_command_is_an_error() {
        assert!(matches!(
            run_token_command("c", "exit 3"),
            Err(ContextsError::TokenCommand { .. })
        ));
        assert!(matches!(
            run_token_command("c", "true"),
            Err(ContextsError::TokenCommand { .. })
        ));
    }

    #[test]
    fn context_names() {
        assert!(check_name("prod-eu.1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
    }
}
