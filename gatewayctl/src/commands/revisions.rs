//! `gatewayctl revisions`: the configuration history, newest first.

use super::{CommandError, Context};
use crate::cli::RevisionsArgs;
use crate::output::{self, Format};

pub async fn run(ctx: &mut Context<'_>, args: RevisionsArgs) -> Result<(), CommandError> {
    let document = ctx.client.revisions(args.limit).await?;
    match ctx.format {
        Format::Table => {
            let text = output::revisions_table(&document)?;
            ctx.print(&text)
        }
        _ => ctx.print_document(&document),
    }
}
