//! `gatewayctl rollback N`: one new revision whose configuration equals the one at revision N.

use super::context::{Context, write_options};
use super::exit::CommandError;
use crate::cli::RollbackArgs;
use crate::output::{self, ChangeReport, Format};

pub async fn run(ctx: &mut Context<'_>, args: RollbackArgs) -> Result<(), CommandError> {
    let options = write_options(&args.write, args.dry_run);
    let document = ctx.client.rollback(args.revision, &options).await?;
    match ctx.format {
        Format::Table => {
            let report = ChangeReport::parse(&document)?;
            ctx.print(&output::rollback_summary(&report, args.revision))
        }
        _ => ctx.print_document(&document),
    }
}
