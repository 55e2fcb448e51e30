//! `gatewayctl context list|use|set|delete`: the contexts file, edited without reaching any
//! admin API.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::exit::CommandError;
use crate::cli::{ContextCommand, ContextSetArgs};
use crate::contexts::{self, ContextEntry, ContextsError, ContextsFile};
use crate::output::{self, Format};

pub fn run(
    path: &Path,
    command: ContextCommand,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let mut file = contexts::load(path)?;
    let text = match command {
        ContextCommand::List => list(&file, format)?,
        ContextCommand::Use(name) => {
            find(&file, &name.name, path)?;
            file.current_context = Some(name.name.clone());
            contexts::save(path, &file)?;
            format!("now using context {}\n", name.name)
        }
        ContextCommand::Set(args) => {
            let name = args.name.clone();
            set(&mut file, args, path)?;
            contexts::save(path, &file)?;
            format!("context {name} saved in {}\n", path.display())
        }
        ContextCommand::Delete(name) => {
            find(&file, &name.name, path)?;
            file.contexts.retain(|c| c.name != name.name);
            if file.current_context.as_deref() == Some(name.name.as_str()) {
                file.current_context = None;
            }
            contexts::save(path, &file)?;
            format!("context {} deleted\n", name.name)
        }
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn find<'f>(
    file: &'f ContextsFile,
    name: &str,
    path: &Path,
) -> Result<&'f ContextEntry, ContextsError> {
    file.contexts
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| ContextsError::Unknown {
            name: name.to_owned(),
            path: path.display().to_string(),
        })
}

fn set(file: &mut ContextsFile, args: ContextSetArgs, path: &Path) -> Result<(), CommandError> {
    contexts::check_name(&args.name)?;
    let existing = file.contexts.iter_mut().find(|c| c.name == args.name);
    let entry = match existing {
        Some(entry) => entry,
        None => {
            let Some(url) = args.url.clone() else {
                return Err(ContextsError::Write {
                    path: path.display().to_string(),
                    reason: format!("context `{}` is new: give its --url", args.name),
                }
                .into());
            };
            file.contexts.push(ContextEntry {
                name: args.name.clone(),
                admin_url: url,
                token: None,
                token_command: None,
                ca_file: None,
            });
            let last = file.contexts.len() - 1;
            &mut file.contexts[last]
        }
    };
    if let Some(url) = args.url {
        entry.admin_url = url;
    }
    if let Some(token) = args.set_token {
        entry.token = Some(token);
        entry.token_command = None;
    }
    if let Some(command) = args.token_command {
        entry.token_command = Some(command);
        entry.token = None;
    }
    if let Some(ca) = args.set_ca_file {
        entry.ca_file = Some(ca);
    }
    if file.current_context.is_none() {
        file.current_context = Some(args.name);
    }
    Ok(())
}

fn list(file: &ContextsFile, format: Format) -> Result<String, CommandError> {
    // Tokens never leave the file through this command.
    let items: Vec<_> = file
        .contexts
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "current": file.current_context.as_deref() == Some(c.name.as_str()),
                "admin_url": c.admin_url,
                "auth": if c.token.is_some() { "token" } else if c.token_command.is_some() { "token_command" } else { "none" },
                "ca_file": c.ca_file,
            })
        })
        .collect();
    match format {
        Format::Table => Ok(output::contexts_table(&items)),
        _ => Ok(output::document(format, &json!({"items": items}))?),
    }
}
