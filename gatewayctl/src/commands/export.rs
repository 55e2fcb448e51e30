//! `gatewayctl export`: the whole running configuration as a file that `apply` takes back.

use super::context::Context;
use super::exit::CommandError;
use crate::output::{self, Format};

pub async fn run(ctx: &mut Context<'_>) -> Result<(), CommandError> {
    let (document, revision) = ctx.client.config().await?;
    let mut text = String::new();
    // YAML can say which revision this is, for a later `apply --if-match N`; JSON has no
    // comments, and a script asking for JSON wants the bare document.
    if let (Some(revision), Format::Table | Format::Yaml) = (revision, ctx.format) {
        text.push_str(&format!("# revision {revision}\n"));
    }
    text.push_str(&output::config_document(ctx.format, &document)?);
    ctx.print(&text)
}
