//! `gatewayctl revisions`: the configuration history, newest first; `revisions show N`, the
//! configuration at one revision; `revisions diff A B`, what changed between two.

use super::context::Context;
use super::exit::CommandError;
use crate::cli::{RevisionsArgs, RevisionsCommand};
use crate::output::{self, Format};

pub async fn run(ctx: &mut Context<'_>, args: RevisionsArgs) -> Result<(), CommandError> {
    match args.command {
        None => {
            let document = ctx.client.revisions(args.limit).await?;
            match ctx.format {
                Format::Table => {
                    let text = output::revisions_table(&document)?;
                    ctx.print(&text)
                }
                _ => ctx.print_document(&document),
            }
        }
        Some(RevisionsCommand::Show(arg)) => {
            let document = ctx.client.revision(arg.revision).await?;
            match ctx.format {
                Format::Table => {
                    let text = output::revision_config(&document)?;
                    ctx.print(&text)
                }
                _ => ctx.print_document(&document),
            }
        }
        Some(RevisionsCommand::Diff(args)) => {
            let document = ctx.client.revision_diff(args.from, args.to).await?;
            match ctx.format {
                Format::Table => {
                    let changes = output::parse_changes(&document)?;
                    ctx.print(&output::diff_lines(&changes))
                }
                _ => ctx.print_document(&document),
            }
        }
    }
}
