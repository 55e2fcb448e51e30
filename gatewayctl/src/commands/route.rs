//! `gatewayctl route ...`: list, get, create (from flags or a file), replace and delete.

use gateway_config::{Kind, PathMatch, Route};

use super::context::{Context, write_options};
use super::exit::CommandError;
use crate::cli::{RouteCommand, RouteCreateArgs};
use crate::input::{self, InputError};
use crate::output::{self, Action, Format};

pub async fn run(ctx: &mut Context<'_>, command: RouteCommand) -> Result<(), CommandError> {
    match command {
        RouteCommand::List(args) => {
            let items = ctx.client.list(Kind::Route, args.tag.as_deref()).await?;
            match ctx.format {
                Format::Table => {
                    let text = output::routes_table(&items)?;
                    ctx.print(&text)
                }
                _ => ctx.print_document(&serde_json::Value::Array(items)),
            }
        }
        RouteCommand::Get(args) => {
            let item = ctx.client.get(Kind::Route, &args.name).await?;
            match ctx.format {
                Format::Table => {
                    let text = output::routes_table(std::slice::from_ref(&item))?;
                    ctx.print(&text)
                }
                _ => ctx.print_document(&item),
            }
        }
        RouteCommand::Create(args) => {
            let options = write_options(&args.write, false);
            let route = route_from_args(args)?;
            let written = ctx.client.create(Kind::Route, &route, &options).await?;
            ctx.print_written(Kind::Route, &route.name, Action::Created, &written)
        }
        RouteCommand::Replace(args) => {
            let route: Route = input::read_document(&args.file)?;
            let options = write_options(&args.write, false);
            let written = ctx
                .client
                .replace(Kind::Route, &route.name, &route, &options)
                .await?;
            let action = if written.created {
                Action::Created
            } else {
                Action::Replaced
            };
            ctx.print_written(Kind::Route, &route.name, action, &written)
        }
        RouteCommand::Delete(args) => {
            let options = write_options(&args.write, false);
            let written = ctx.client.delete(Kind::Route, &args.name, &options).await?;
            ctx.print_written(Kind::Route, &args.name, Action::Deleted, &written)
        }
    }
}

/// The request body of `route create`, from `-f` or from the flags (clap guarantees that
/// exactly one of the two was given). Methods are upper-cased because the model only accepts
/// upper case and people type `get`.
pub fn route_from_args(args: RouteCreateArgs) -> Result<Route, InputError> {
    if let Some(file) = &args.file {
        return input::read_document(file);
    }
    let paths = args
        .paths
        .into_iter()
        .map(PathMatch::Prefix)
        .chain(args.exact_paths.into_iter().map(PathMatch::Exact))
        .collect();
    Ok(Route {
        name: args.name.unwrap_or_default(),
        tags: args.tags,
        hosts: args.hosts,
        paths,
        methods: args
            .methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect(),
        strip_prefix: args.strip_prefix,
        preserve_host: args.preserve_host,
        backends: args.backends,
        priority: args.priority.unwrap_or(0),
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

    fn create_args(args: &[&str]) -> RouteCreateArgs {
        let cli = Cli::try_parse_from(
            ["gatewayctl", "route", "create"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .unwrap();
        match cli.command {
            Command::Route(RouteCommand::Create(args)) => args,
            other => panic!("unexpected command {other:?}"),
        }
    }

    #[test]
    fn body_from_flags() {
        let route = route_from_args(create_args(&[
            "web",
            "--host",
            "example.com",
            "--path",
            "/api",
            "--exact-path",
            "/health",
            "--method",
            "get",
            "--method",
            "Post",
            "--backend",
            "api=9",
            "--backend",
            "canary",
            "--strip-prefix",
            "--preserve-host",
            "--priority",
            "10",
            "--tag",
            "team-a",
        ]))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&route).unwrap(),
            json!({
                "name": "web",
                "tags": ["team-a"],
                "hosts": ["example.com"],
                "paths": [{"prefix": "/api"}, {"exact": "/health"}],
                "methods": ["GET", "POST"],
                "strip_prefix": true,
                "preserve_host": true,
                "backends": [
                    {"upstream": "api", "weight": 9},
                    {"upstream": "canary", "weight": 1}
                ],
                "priority": 10
            })
        );
        assert!(route.validate().is_ok());
    }

    #[test]
    fn minimal_route_matches_everything() {
        let route = route_from_args(create_args(&["all", "--backend", "api"])).unwrap();
        assert!(route.hosts.is_empty() && route.paths.is_empty() && route.methods.is_empty());
        assert_eq!(route.priority, 0);
        assert!(!route.strip_prefix && !route.preserve_host);
    }
}
