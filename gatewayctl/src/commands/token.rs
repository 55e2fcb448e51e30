//! `gatewayctl token create|list|revoke`: the admin API's tokens.

use serde_json::json;

use super::context::Context;
use super::exit::CommandError;
use crate::cli::{TokenCommand, TokenCreateArgs};
use crate::output::{self, Format};

pub async fn run(ctx: &mut Context<'_>, command: TokenCommand) -> Result<(), CommandError> {
    match command {
        TokenCommand::Create(args) => create(ctx, args).await,
        TokenCommand::List => {
            let document = ctx.client.tokens().await?;
            match ctx.format {
                Format::Table => {
                    let text = output::tokens_table(&document)?;
                    ctx.print(&text)
                }
                _ => ctx.print_document(&document),
            }
        }
        TokenCommand::Revoke(name) => {
            ctx.client.revoke_token(&name.name).await?;
            match ctx.format {
                Format::Table => ctx.print(&format!("token {} revoked\n", name.name)),
                _ => ctx.print_document(&json!({"name": name.name, "revoked": true})),
            }
        }
    }
}

async fn create(ctx: &mut Context<'_>, args: TokenCreateArgs) -> Result<(), CommandError> {
    let mut body = json!({"name": args.name, "role": args.role});
    if let Some(expires) = &args.expires {
        body["expires_in"] = json!(expires);
    }
    let created = ctx.client.create_token(&body).await?;
    match ctx.format {
        Format::Table => {
            let secret = created["token"].as_str().unwrap_or_default();
            let expires = created["expires_at"].as_str().unwrap_or("never");
            ctx.print(&format!(
                "token {} created (role {}, expires {expires}); it is shown only now:\n{secret}\n",
                args.name, args.role
            ))
        }
        _ => ctx.print_document(&created),
    }
}
