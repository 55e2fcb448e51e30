//! The subcommands: each one turns its arguments into admin API calls and prints the result in
//! the chosen format. Failures come back as [`CommandError`], which knows its exit code; a
//! success comes back as an [`Outcome`], because `diff` reports "there are changes" through its
//! exit code too.

mod apply;
mod export;
#[cfg(test)]
mod fake_api_tests;
mod revisions;
mod rollback;
mod route;
mod status;
mod upstream;

use std::io::Write;

use gateway_config::Kind;
use serde_json::Value;

use crate::cli::{Cli, Command, WriteArgs};
use crate::client::{ApiError, Client, ClientError, WriteOptions, Written};
use crate::input::InputError;
use crate::output::{self, Action, Format, OutputError};

/// Exit codes that scripts can rely on; documented in `--help`.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    /// The admin API answered with an error (4xx/5xx), or with something unreadable.
    pub const REFUSED: u8 = 1;
    /// Bad command line or input file; clap uses the same code for its own errors.
    pub const USAGE: u8 = 2;
    /// The admin API could not be reached.
    pub const UNREACHABLE: u8 = 3;
    /// `diff` found changes.
    pub const DIFF_CHANGES: u8 = 1;
    /// `diff` failed, whatever the reason.
    pub const DIFF_FAILED: u8 = 2;
}

/// How a command that did its job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// `diff` found that applying the file would change something.
    Changes,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => exit::SUCCESS,
            Outcome::Changes => exit::DIFF_CHANGES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
    /// Any failure of `diff`, which exits with 2 whatever went wrong (like diff(1)), so that 1
    /// can only mean "there are changes".
    #[error(transparent)]
    Diff(Box<CommandError>),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Client(ClientError::Api(_) | ClientError::InvalidResponse { .. }) => {
                exit::REFUSED
            }
            CommandError::Client(ClientError::Unreachable { .. }) => exit::UNREACHABLE,
            CommandError::Client(ClientError::InvalidUrl { .. }) | CommandError::Input(_) => {
                exit::USAGE
            }
            CommandError::Output(_) => exit::REFUSED,
            CommandError::Write(_) => exit::REFUSED,
            CommandError::Diff(_) => exit::DIFF_FAILED,
        }
    }

    /// The API's refusal, when that is what this is; it is printed with its details.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            CommandError::Client(ClientError::Api(error)) => Some(error),
            CommandError::Diff(inner) => inner.api_error(),
            _ => None,
        }
    }

    /// Whoever read the output went away (`gatewayctl ... | head`).
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            CommandError::Write(error) => error.kind() == std::io::ErrorKind::BrokenPipe,
            CommandError::Diff(inner) => inner.is_broken_pipe(),
            _ => false,
        }
    }

    /// The lines for stderr: `error: ...` and, for an API refusal, one line per detail.
    pub fn report(&self) -> String {
        let mut text = format!("error: {self}\n");
        if let Some(error) = self.api_error() {
            for detail in &error.details {
                text.push_str(&format!("  - {detail}\n"));
            }
        }
        text
    }
}

/// What every command needs: the client, the output format and where to print.
pub struct Context<'a> {
    pub client: Client,
    pub format: Format,
    pub out: &'a mut dyn Write,
}

impl Context<'_> {
    fn print(&mut self, text: &str) -> Result<(), CommandError> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }

    fn print_document(&mut self, value: &Value) -> Result<(), CommandError> {
        let text = output::document(self.format, value)?;
        self.print(&text)
    }

    /// A create/replace/delete result: one line in table mode, the stored resource otherwise.
    fn print_written(
        &mut self,
        kind: Kind,
        name: &str,
        action: Action,
        written: &Written,
    ) -> Result<(), CommandError> {
        match (self.format, &written.body) {
            (Format::Table, _) => {
                self.print(&output::write_summary(kind, name, action, written.revision))
            }
            (_, Some(body)) => self.print_document(body),
            // A delete has no body; scripts still get the revision it made.
            (_, None) => self.print_document(&serde_json::json!({
                "kind": kind.as_str(),
                "name": name,
                "action": action.as_str(),
                "revision": written.revision,
            })),
        }
    }
}

/// The client-side form of the write flags.
fn write_options(args: &WriteArgs, dry_run: bool) -> WriteOptions {
    WriteOptions {
        if_match: args.if_match,
        message: args.message.clone(),
        dry_run,
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome, CommandError> {
    let is_diff = matches!(cli.command, Command::Diff(_));
    let result = run_command(cli, out).await;
    match result {
        Err(error) if is_diff => Err(CommandError::Diff(Box::new(error))),
        other => other,
    }
}

async fn run_command(cli: Cli, out: &mut dyn Write) -> Result<Outcome, CommandError> {
    let client = Client::new(&cli.admin_url, cli.token)?;
    let mut ctx = Context {
        client,
        format: cli.output,
        out,
    };
    let done = |result: Result<(), CommandError>| result.map(|()| Outcome::Done);
    match cli.command {
        Command::Upstream(command) => done(upstream::run(&mut ctx, command).await),
        Command::Route(command) => done(route::run(&mut ctx, command).await),
        Command::Status => done(status::run(&mut ctx).await),
        Command::Revisions(args) => done(revisions::run(&mut ctx, args).await),
        Command::Apply(args) => done(apply::apply(&mut ctx, args).await),
        Command::Diff(args) => apply::diff(&mut ctx, args).await,
        Command::Export => done(export::run(&mut ctx).await),
        Command::Rollback(args) => done(rollback::run(&mut ctx, args).await),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
