//! The subcommands: each one turns its arguments into admin API calls and prints the result in
//! the chosen format. Failures come back as [`CommandError`], which knows its exit code; a
//! success comes back as an [`Outcome`], because `diff` reports "there are changes" through its
//! exit code too.

mod apply;
mod certificate;
mod context;
mod contexts;
pub mod exit;
mod export;
#[cfg(test)]
mod fake_api_tests;
#[cfg(test)]
mod fake_certificates;
mod revisions;
mod rollback;
mod route;
mod status;
mod token;
mod upstream;

use std::io::Write;

use crate::cli::{Cli, Command};
use crate::client::Client;

pub use context::Context;
pub use exit::{CommandError, Outcome};

/// Runs the parsed command line, printing to `out` and warnings to `err`.
pub async fn run(
    cli: Cli,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let is_diff = matches!(cli.command, Command::Diff(_));
    let result = run_command(cli, out, err).await;
    match result {
        Err(error) if is_diff => Err(CommandError::Diff(Box::new(error))),
        other => other,
    }
}

async fn run_command(
    cli: Cli,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    // Commands that reach no admin API.
    match cli.command {
        Command::Context(command) => {
            let path = crate::contexts::path(cli.config.as_deref())?;
            contexts::run(&path, command, cli.output, out)?;
            return Ok(Outcome::Done);
        }
        Command::Completion(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut command, "gatewayctl", out);
            out.flush()?;
            return Ok(Outcome::Done);
        }
        _ => {}
    }
    let connection = crate::contexts::resolve(&crate::contexts::Given {
        config: cli.config.clone(),
        context: cli.context.clone(),
        admin_url: cli.admin_url.clone(),
        token: cli.token.clone(),
        ca_file: cli.ca_file.clone(),
    })?;
    let client = Client::new(
        &connection.admin_url,
        connection.token,
        connection.ca_file.as_deref(),
    )?;
    let mut ctx = Context {
        client,
        format: cli.output,
        out,
        err,
    };
    let done = |result: Result<(), CommandError>| result.map(|()| Outcome::Done);
    match cli.command {
        Command::Upstream(command) => done(upstream::run(&mut ctx, command).await),
        Command::Route(command) => done(route::run(&mut ctx, command).await),
        Command::Certificate(command) => done(certificate::run(&mut ctx, command).await),
        Command::Status => done(status::run(&mut ctx).await),
        Command::Revisions(args) => done(revisions::run(&mut ctx, args).await),
        Command::Apply(args) => done(apply::apply(&mut ctx, args).await),
        Command::Diff(args) => apply::diff(&mut ctx, args).await,
        Command::Export => done(export::run(&mut ctx).await),
        Command::Rollback(args) => done(rollback::run(&mut ctx, args).await),
        Command::Token(command) => done(token::run(&mut ctx, command).await),
        Command::Context(_) | Command::Completion(_) => Ok(Outcome::Done),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::{ApiError, ClientError};
    use crate::input::InputError;

    fn api_error() -> ApiError {
        ApiError::from_response(
            422,
            br#"{"error": {"code": "invalid_field", "message": "invalid upstream", "field": "targets[0].address",
                "details": [{"kind": "upstream", "name": "api", "field": "targets[0].address", "message": "has no port"},
                            {"kind": "upstream", "name": "api", "field": "targets[1].weight", "message": "too big"}]}}"#,
        )
    }

    #[test]
    fn exit_codes() {
        let refused = CommandError::from(ClientError::Api(api_error()));
        assert_eq!(refused.exit_code(), exit::REFUSED);
        let unreachable = CommandError::from(ClientError::Unreachable {
            url: "http://127.0.0.1:1/v1/nodes".into(),
            cause: "connection refused".into(),
        });
        assert_eq!(unreachable.exit_code(), exit::UNREACHABLE);
        let bad_url = CommandError::from(ClientError::InvalidUrl {
            url: "x".into(),
            reason: "y".into(),
        });
        assert_eq!(bad_url.exit_code(), exit::USAGE);
        let bad_file = CommandError::from(InputError::Syntax {
            path: "a.yaml".into(),
            message: "bad".into(),
        });
        assert_eq!(bad_file.exit_code(), exit::USAGE);
        let garbled = CommandError::from(ClientError::InvalidResponse {
            url: "u".into(),
            reason: "r".into(),
        });
        assert_eq!(garbled.exit_code(), exit::REFUSED);
        assert_eq!(Outcome::Done.exit_code(), exit::SUCCESS);
        assert_eq!(Outcome::Changes.exit_code(), 1);
    }

    #[test]
    fn every_diff_failure_exits_2_and_reports_the_same() {
        let refused =
            CommandError::Diff(Box::new(CommandError::from(ClientError::Api(api_error()))));
        assert_eq!(refused.exit_code(), 2);
        assert_eq!(refused.api_error(), Some(&api_error()));
        assert!(
            refused
                .report()
                .contains("  - upstream \"api\": targets[1].weight: too big\n")
        );
        let unreachable =
            CommandError::Diff(Box::new(CommandError::from(ClientError::Unreachable {
                url: "u".into(),
                cause: "c".into(),
            })));
        assert_eq!(unreachable.exit_code(), 2);
        let pipe = CommandError::Diff(Box::new(CommandError::Write(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        ))));
        assert!(pipe.is_broken_pipe());
        assert!(!unreachable.is_broken_pipe());
    }

    #[test]
    fn refusal_report_lists_details() {
        let report = CommandError::from(ClientError::Api(api_error())).report();
        assert_eq!(
            report,
            "error: invalid upstream (invalid_field, field targets[0].address)\n\
             \x20 - upstream \"api\": targets[0].address: has no port\n\
             \x20 - upstream \"api\": targets[1].weight: too big\n"
        );
    }

    #[test]
    fn unreachable_report_names_the_url() {
        let report = CommandError::from(ClientError::Unreachable {
            url: "http://127.0.0.1:1/v1/nodes".into(),
            cause: "connection refused".into(),
        })
        .report();
        assert_eq!(
            report,
            "error: could not reach the admin API at http://127.0.0.1:1/v1/nodes: connection refused\n"
        );
    }
}
