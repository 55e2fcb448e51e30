//! `gatewayctl upstream ...`: list, get, create (from flags or a file), replace and delete.

use gateway_config::{Kind, Upstream};

use super::context::{Context, write_options};
use super::exit::CommandError;
use crate::cli::{UpstreamCommand, UpstreamCreateArgs};
use crate::input::{self, InputError};
use crate::output::{self, Action, Format};

pub async fn run(ctx: &mut Context<'_>, command: UpstreamCommand) -> Result<(), CommandError> {
    match command {
        UpstreamCommand::List(args) => {
            let items = ctx.client.list(Kind::Upstream, args.tag.as_deref()).await?;
            match ctx.format {
                Format::Table => {
                    let text = output::upstreams_table(&items)?;
                    ctx.print(&text)
                }
                _ => ctx.print_document(&serde_json::Value::Array(items)),
            }
        }
        UpstreamCommand::Get(args) => {
            let item = ctx.client.get(Kind::Upstream, &args.name).await?;
            match ctx.format {
                Format::Table => {
                    let text = output::upstreams_table(std::slice::from_ref(&item))?;
                    ctx.print(&text)
                }
                _ => ctx.print_document(&item),
            }
        }
        UpstreamCommand::Create(args) => {
            let options = write_options(&args.write, false);
            let upstream = upstream_from_args(args)?;
            let written = ctx
                .client
                .create(Kind::Upstream, &upstream, &options)
                .await?;
            ctx.print_written(Kind::Upstream, &upstream.name, Action::Created, &written)
        }
        UpstreamCommand::Replace(args) => {
            let upstream: Upstream = input::read_document(&args.file)?;
            let options = write_options(&args.write, false);
            let written = ctx
                .client
                .replace(Kind::Upstream, &upstream.name, &upstream, &options)
                .await?;
            let action = if written.created {
                Action::Created
            } else {
                Action::Replaced
            };
            ctx.print_written(Kind::Upstream, &upstream.name, action, &written)
        }
        UpstreamCommand::Delete(args) => {
            let options = write_options(&args.write, false);
            let written = ctx
                .client
                .delete(Kind::Upstream, &args.name, &options)
                .await?;
            ctx.print_written(Kind::Upstream, &args.name, Action::Deleted, &written)
        }
    }
}

/// The request body of `upstream create`, from `-f` or from the flags (clap guarantees that
/// exactly one of the two was given).
pub fn upstream_from_args(args: UpstreamCreateArgs) -> Result<Upstream, InputError> {
    if let Some(file) = &args.file {
        return input::read_document(file);
    }
    Ok(Upstream {
        name: args.name.unwrap_or_default(),
        tags: args.tags,
        targets: args.targets,
        ..Default::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::cli::{Cli, Command};

    fn create_args(args: &[&str]) -> UpstreamCreateArgs {
        let cli = Cli::try_parse_from(
            ["gatewayctl", "upstream", "create"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .unwrap();
        match cli.command {
            Command::Upstream(UpstreamCommand::Create(args)) => args,
            other => panic!("unexpected command {other:?}"),
        }
    }

    #[test]
    fn body_from_flags() {
        let upstream = upstream_from_args(create_args(&[
            "api",
            "--target",
            "10.0.0.1:8080",
            "--target",
            "10.0.0.2:8080=3",
            "--tag",
            "blue",
        ]))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&upstream).unwrap(),
            json!({
                "name": "api",
                "tags": ["blue"],
                "targets": [
                    {"address": "10.0.0.1:8080", "weight": 1},
                    {"address": "10.0.0.2:8080", "weight": 3}
                ],
                "balance": "round_robin"
            })
        );
        assert!(upstream.validate().is_ok());
    }

    #[test]
    fn body_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("up.json");
        std::fs::write(
            &path,
            r#"{"name": "db", "targets": [{"address": "db:5432"}]}"#,
        )
        .unwrap();
        let upstream = upstream_from_args(create_args(&["-f", path.to_str().unwrap()])).unwrap();
        assert_eq!(upstream.name, "db");
        assert_eq!(upstream.targets[0].weight, 1);
    }
}
