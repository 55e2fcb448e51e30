//! How a command ends, as the process reports it: the exit codes that scripts can rely on
//! (documented in `--help`), the [`Outcome`] of a command that did its job and the
//! [`CommandError`] of one that did not, each knowing its code. A leaf of its own, so that every
//! command returns these without importing the module that dispatches to it.

use crate::client::{ApiError, ClientError};
use crate::contexts::ContextsError;
use crate::input::InputError;
use crate::output::OutputError;

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
            Outcome::Done => SUCCESS,
            Outcome::Changes => DIFF_CHANGES,
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
    Contexts(#[from] ContextsError),
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
                REFUSED
            }
            CommandError::Client(ClientError::Unreachable { .. }) => UNREACHABLE,
            CommandError::Client(
                ClientError::InvalidUrl { .. } | ClientError::InvalidCa { .. },
            )
            | CommandError::Input(_)
            | CommandError::Contexts(_) => USAGE,
            CommandError::Output(_) => REFUSED,
            CommandError::Write(_) => REFUSED,
            CommandError::Diff(_) => DIFF_FAILED,
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
