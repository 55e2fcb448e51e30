//! What every command is given to work with: the admin API client, the output format and where
//! to print (the output, and warnings apart from it), with the printing every command shares, and
//! the client-side form of the write flags. A leaf of its own, so that the commands take it from
//! here and the module that dispatches to them is imported by none of them.

use std::io::Write;

use gateway_config::Kind;
use serde_json::Value;

use super::exit::CommandError;
use crate::cli::WriteArgs;
use crate::client::{Client, WriteOptions, Written};
use crate::output::{self, Action, Format};

/// What every command needs: the client, the output format and where to print.
pub struct Context<'a> {
    pub client: Client,
    pub format: Format,
    pub out: &'a mut dyn Write,
    /// Warnings (stderr): kept out of `out` so that `-o json` stays a document for scripts.
    pub err: &'a mut dyn Write,
}

impl Context<'_> {
    pub(super) fn print(&mut self, text: &str) -> Result<(), CommandError> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }

    /// One `warning: ...` line per entry. A warning that cannot be written is dropped: it must
    /// not turn a command that did its job into a failure.
    pub(super) fn warn(&mut self, warnings: &[String]) {
        for warning in warnings {
            let _ = writeln!(self.err, "warning: {warning}");
        }
        let _ = self.err.flush();
    }

    pub(super) fn print_document(&mut self, value: &Value) -> Result<(), CommandError> {
        let text = output::document(self.format, value)?;
        self.print(&text)
    }

    /// A create/replace/delete result: one line in table mode, the stored resource otherwise.
    pub(super) fn print_written(
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
pub(super) fn write_options(args: &WriteArgs, dry_run: bool) -> WriteOptions {
    WriteOptions {
        if_match: args.if_match,
        message: args.message.clone(),
        dry_run,
    }
}
