//! `gatewayctl apply` and `gatewayctl diff`: the whole configuration from one file, applied as one
//! revision (`PUT /v1/config`) or only compared with the running one (the same with
//! `?dry_run=true`).

use super::context::{Context, write_options};
use super::exit::{CommandError, Outcome};
use crate::cli::{ApplyArgs, DiffArgs};
use crate::client::WriteOptions;
use crate::input;
use crate::output::{self, ChangeReport, Format};

pub async fn apply(ctx: &mut Context<'_>, args: ApplyArgs) -> Result<(), CommandError> {
    let config = input::read_config(&args.file)?;
    let options = write_options(&args.write, args.dry_run);
    let document = ctx.client.apply_config(&config, &options).await?;
    match ctx.format {
        Format::Table => {
            let report = ChangeReport::parse(&document)?;
            ctx.print(&output::apply_summary(&report))
        }
        _ => ctx.print_document(&document),
    }
}

/// Prints what applying the file would change; [`Outcome::Changes`] when anything would.
pub async fn diff(ctx: &mut Context<'_>, args: DiffArgs) -> Result<Outcome, CommandError> {
    let config = input::read_config(&args.file)?;
    let options = WriteOptions {
        dry_run: true,
        ..WriteOptions::default()
    };
    let document = ctx.client.apply_config(&config, &options).await?;
    // Parsed in every format: the exit code depends on it.
    let report = ChangeReport::parse(&document)?;
    match ctx.format {
        Format::Table => ctx.print(&output::diff_lines(&report.changes))?,
        _ => ctx.print_document(&document)?,
    }
    Ok(if report.changed() {
        Outcome::Changes
    } else {
        Outcome::Done
    })
}
