//! The parts of the admin API's OpenAPI document that the handlers' descriptions share: the
//! document's header, the error answers, and the schemas of a write's two possible answers.
//!
//! Operations are described by `#[utoipa::path]` on the handlers themselves, and the router takes
//! each endpoint's method and path from that description (see [`super::endpoints`], which also
//! assembles and serves the whole document), so what is served and what is described cannot
//! drift apart. It imports no handler, so that every handler can name the answers it describes.
//! Schemas of JSON that no Rust type derives are in [`super::schema`].

use utoipa::openapi::schema::{OneOfBuilder, Schema};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema, ToResponse, ToSchema};

use super::error::{Detail, ErrorBody, ErrorContent};
use super::schema::{CertificateResource, RouteResource, UpstreamResource};
use super::write::{AppliedAnswer, DryRunAnswer};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gateway admin API",
        description = "Routes, upstreams, certificates, config revisions and worker status of the gateway's \
            control plane. Each write that is stored makes exactly one new revision, whose \
            number is in the `x-gateway-revision` answer header; `If-Match: <revision>` makes a \
            write conditional and `?dry_run=true` previews it. Errors are JSON with a stable \
            `code`."
    ),
    tags(
        (name = "upstreams", description = "Groups of targets that routes send traffic to"),
        (name = "routes", description = "Which requests go where"),
        (name = "certificates", description = "What the workers present to TLS clients, for \
            which server names; private keys are write-only"),
        (name = "config", description = "The whole configuration as one document"),
        (name = "revisions", description = "The change log: show, diff, roll back"),
        (name = "nodes", description = "Data-plane workers and their sync status"),
        (name = "tokens", description = "Admin API tokens (`admin` role only)"),
        (name = "probes", description = "Health, readiness, metrics and this document"),
    ),
    components(
        schemas(ErrorBody, ErrorContent, Detail),
        responses(
            BadRequest,
            NotFound,
            Conflict,
            PreconditionFailed,
            PayloadTooLarge,
            Unprocessable,
            Internal,
            Unavailable,
            Unauthorized,
            Forbidden,
            TooManyFailedAttempts
        )
    )
)]
struct Header;

/// The header, schemas and error answers that the operations refer to.
pub(super) fn header() -> utoipa::openapi::OpenApi {
    Header::openapi()
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name(ErrorBody::name()))),
        )
        .build()
}

/// Reusable error answers, one per status, each with the [`ErrorBody`] schema.
macro_rules! error_responses {
    ($($name:ident => $description:literal,)*) => {$(
        #[doc = $description]
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error_response($description).into())
            }
        }
    )*};
}

error_responses! {
    BadRequest => "The body is not JSON (nor YAML where YAML is taken), or could not be read \
        (`malformed_json`, `unreadable_body`); it gives a key twice in one mapping \
        (`duplicate_key`) or nests deeper than 64 levels (`too_deep`), `field` naming the path, \
        e.g. `routes[3].hosts`; or a header cannot be read, e.g. an `If-Match` that is not a \
        revision (`invalid_header`, `field` naming the header). Nothing was stored.",
    NotFound => "No such entity, revision or path (`not_found`).",
    Conflict => "The name is taken (`already_exists`), or routes still send traffic to the \
        upstream (`in_use`, each such route in `details`).",
    PreconditionFailed => "`If-Match` names a revision that is not the latest; the message \
        says which one is (`precondition_failed`).",
    PayloadTooLarge => "The body is larger than the endpoint takes (2 MiB for an entity, the \
        control plane's `--config-body-limit` for a whole config, 64 MiB unless set), or its \
        YAML aliases make it larger than that or than 16 times its text \
        (`body_too_large`; the message says the limit). Nothing was stored.",
    Unprocessable => "A well-formed request with a wrong value (`invalid_field`, \
        `unknown_reference`, `name_mismatch`): `field` is the JSON path into the body, or the \
        query parameter or header; a whole-config document lists every problem in `details`.",
    Internal => "The database answered with an error or holds something unreadable \
        (`internal`).",
    Unavailable => "The database does not answer; nothing was stored (`database_unavailable`).",
    Unauthorized => "No token (`unauthorized`), or one that is unknown, revoked or expired \
        (`invalid_token`, `field` naming `Authorization`); with a `WWW-Authenticate: Bearer` \
        challenge. Only once any token exists.",
    Forbidden => "The token's role may not do this (`forbidden`): reads need `viewer`, config \
        writes `editor`, `/v1/tokens` `admin`.",
    TooManyFailedAttempts => "Too many failed authentications from this address in the last \
        minute (`too_many_failed_attempts`); `Retry-After` says when to try again.",
}

/// Schemas of a write's answers: the write's own or a dry run's, told apart by their keys.
macro_rules! either_answer {
    ($($name:ident = $written:ty | $dry_run:ty,)*) => {$(
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                OneOfBuilder::new()
                    .item(Ref::from_schema_name(<$written>::name()))
                    .item(Ref::from_schema_name(<$dry_run>::name()))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push((<$written>::name().into_owned(), <$written>::schema()));
                <$written>::schemas(schemas);
                schemas.push((<$dry_run>::name().into_owned(), <$dry_run>::schema()));
                <$dry_run>::schemas(schemas);
            }
        }
    )*};
}

either_answer! {
    UpstreamWritten = UpstreamResource | DryRunAnswer,
    RouteWritten = RouteResource | DryRunAnswer,
    CertificateWritten = CertificateResource | DryRunAnswer,
    ConfigWritten = AppliedAnswer | DryRunAnswer,
}
