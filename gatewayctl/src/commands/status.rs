//! `gatewayctl status`: the data-plane nodes and how far each is from the latest revision.

use super::context::Context;
use super::exit::CommandError;
use crate::output::{self, Format};

pub async fn run(ctx: &mut Context<'_>) -> Result<(), CommandError> {
    let document = ctx.client.nodes().await?;
    match ctx.format {
        Format::Table => {
            let text = output::nodes_table(&document)?;
            ctx.print(&text)
        }
        _ => ctx.print_document(&document),
    }
}
