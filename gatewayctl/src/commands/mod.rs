//! The subcommands: each one turns its arguments into admin API calls and prints the result in
//! the chosen format. Failures come back as [`CommandError`], which knows its exit code.

#[cfg(test)]
mod fake_api_tests;
mod revisions;
mod route;
mod status;
mod upstream;

use std::io::Write;

use gateway_config::Kind;
use serde_json::Value;

use crate::cli::{Cli, Command};
use crate::client::{ApiError, Client, ClientError, Written};
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
        }
    }

    /// The API's refusal, when that is what this is; it is printed with its details.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            CommandError::Client(ClientError::Api(error)) => Some(error),
            _ => None,
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

/// Runs the parsed command line.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CommandError> {
    let client = Client::new(&cli.admin_url, cli.token)?;
    let mut ctx = Context {
        client,
        format: cli.output,
        out,
    };
    match cli.command {
        Command::Upstream(command) => upstream::run(&mut ctx, command).await,
        Command::Route(command) => route::run(&mut ctx, command).await,
        Command::Status => status::run(&mut ctx).await,
        Command::Revisions(args) => revisions::run(&mut ctx, args).await,
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
