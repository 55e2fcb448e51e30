//! `/v1/tokens`: admin API tokens, for `admin` tokens only. A token's secret is in the answer
//! that creates it and nowhere else: lists and reads show its name, role and times.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::{parse_entity, timestamp};
use super::error::ApiError;
use super::openapi::{BadRequest, Conflict, Internal, NotFound, Unavailable, Unprocessable};
use super::state::AppState;
use crate::store::{StoreError, TokenRow, now_ms};
use crate::tokens::Role;
use crate::tokens::registry::RevokeError;

/// The shortest and longest `expires_in`.
const EXPIRY_RANGE: (Duration, Duration) = (
    Duration::from_secs(1),
    Duration::from_secs(10 * 366 * 24 * 60 * 60),
);

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Unique; recorded as the actor of every revision the token makes.
    #[schema(example = "ci-deploy")]
    pub name: String,
    pub role: Role,
    /// How long the token is valid (`30d`, `12h`, …; 1 second to 10 years); without it the
    /// token is valid until revoked.
    #[schema(example = "30d")]
    pub expires_in: Option<String>,
}

/// A stored token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenItem {
    pub name: String,
    pub role: Role,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `null`: valid until revoked.
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
    pub expired: bool,
    /// The token that created it (`bootstrap` for the first one, `anonymous` while the API had
    /// no tokens).
    pub created_by: String,
}

/// A new token, with its secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub item: TokenItem,
    /// Send as `Authorization: Bearer <token>`.
    #[schema(example = "gwt_3f5c…")]
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenItem>,
}

fn item_of(row: TokenRow, now: i64) -> Result<TokenItem, ApiError> {
    let role = Role::parse(&row.role).ok_or_else(|| {
        ApiError::from(StoreError::Corrupt {
            kind: "token".into(),
            name: row.name.clone(),
            message: format!("unknown role `{}`", row.role),
        })
    })?;
    Ok(TokenItem {
        expired: row.expires_at.is_some_and(|at| at <= now),
        name: row.name,
        role,
        created_at: timestamp(row.created_at),
        expires_at: row.expires_at.map(timestamp),
        created_by: row.created_by,
    })
}

/// The name a caller's actions are recorded under.
pub fn actor_of(caller: &Caller) -> &str {
    caller
        .token
        .as_ref()
        .map_or("anonymous", |known| known.name.as_str())
}

fn expires_at(expires_in: Option<&str>, now: i64) -> Result<Option<i64>, ApiError> {
    let Some(text) = expires_in else {
        return Ok(None);
    };
    let refused = |why: String| ApiError::invalid_field(Some("expires_in".into()), why);
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| refused(format!("`{text}` is not a duration: {e}")))?;
    let (least, most) = EXPIRY_RANGE;
    if duration < least || duration > most {
        return Err(refused(format!(
            "must be between {} and {}",
            humantime::format_duration(least),
            humantime::format_duration(most)
        )));
    }
    let millis = i64::try_from(duration.as_millis()).map_err(|_| refused("too long".into()))?;
    Ok(Some(now.saturating_add(millis)))
}

/// Create a token
#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    operation_id = "create_token",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created; `token` is the secret, shown only here",
         body = CreatedToken),
        (status = 400, response = BadRequest),
        (status = 409, response = Conflict),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let new: NewToken = parse_entity(&body?, None)?;
    gateway_config::validate_name(&new.name)
        .map_err(|why| ApiError::invalid_field(Some("name".into()), why))?;
    let now = now_ms();
    let expires_at = expires_at(new.expires_in.as_deref(), now)?;
    let actor = actor_of(&caller);
    let (row, secret) = state
        .tokens
        .create(&new.name, new.role, expires_at, actor)
        .await?;
    tracing::info!(
        target: "audit",
        actor,
        client = %client_of(&caller),
        token = %row.name,
        role = new.role.as_str(),
        "admin token created"
    );
    let item = item_of(row, now)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            item,
            token: secret,
        }),
    )
        .into_response())
}

/// List tokens
#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "tokens",
    operation_id = "list_tokens",
    responses(
        (status = 200, description = "Every token, by name, without secrets", body = TokenList),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let now = now_ms();
    let items = state
        .tokens
        .list()
        .await?
        .into_iter()
        .map(|row| item_of(row, now))
        .collect::<Result<_, _>>()?;
    Ok(Json(TokenList { items }))
}

fn token_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|e| ApiError::not_found(e.body_text()))?;
    Ok(name)
}

/// Show one token
#[utoipa::path(
    get,
    path = "/v1/tokens/{name}",
    tag = "tokens",
    operation_id = "get_token",
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 200, description = "The token, without its secret", body = TokenItem),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TokenItem>, ApiError> {
    let name = token_name(path)?;
    let row = state
        .tokens
        .get(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("token `{name}` does not exist")))?;
    Ok(Json(item_of(row, now_ms())?))
}

/// Revoke a token
#[utoipa::path(
    delete,
    path = "/v1/tokens/{name}",
    tag = "tokens",
    operation_id = "revoke_token",
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 204, description = "Revoked: this replica refuses it at once, the others \
            within 2 s"),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let name = token_name(path)?;
    state
        .tokens
        .revoke(&name)
        .await
        .map_err(|error| match error {
            RevokeError::Store(error) => ApiError::from(error),
            RevokeError::LastAdmin(_) => {
                ApiError::new(StatusCode::CONFLICT, "last_admin_token", error.to_string())
            }
        })?;
    tracing::info!(
        target: "audit",
        actor = actor_of(&caller),
        client = %client_of(&caller),
        token = %name,
        "admin token revoked"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The client address for a log line.
pub fn client_of(caller: &Caller) -> String {
    caller
        .client
        .map_or_else(|| "-".to_owned(), |client| client.ip().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_a_duration_within_bounds() {
        assert_eq!(expires_at(None, 1_000).ok(), Some(None));
        assert_eq!(
            expires_at(Some("30d"), 1_000).ok(),
            Some(Some(1_000 + 30 * 86_400_000))
        );
        for bad in ["soon", "500ms", "0s", "11y", "-1d", ""] {
            let error = expires_at(Some(bad), 0).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("expires_in"), "{bad}");
        }
    }
}
