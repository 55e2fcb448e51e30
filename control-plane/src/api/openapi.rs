//! The admin API's OpenAPI document, served at `GET /openapi.json`.
//!
//! Operations are described by `#[utoipa::path]` on the handlers themselves, and the router takes
//! each endpoint's method and path from that description (see `documented_routes` in the parent
//! module), so what is served and what is described cannot drift apart. This module holds what
//! the handlers share: the document's header, the error answers, the schemas of a write's two
//! possible answers, and fixes for what utoipa cannot derive. Schemas of JSON that no Rust type
//! derives are in [`super::schema`].

use std::sync::LazyLock;

use axum::Json;
use gateway_config::{Route, Upstream};
use utoipa::openapi::schema::{AdditionalProperties, Object, OneOfBuilder, Schema};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema, ToResponse, ToSchema};

use super::error::{Detail, ErrorBody, ErrorContent};
use super::schema::{RouteResource, UpstreamResource, add_server_keys};
use super::write::{AppliedAnswer, DryRunAnswer};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gateway admin API",
        description = "Routes, upstreams, config revisions and worker status of the gateway's \
            control plane. Each write that is stored makes exactly one new revision, whose \
            number is in the `x-gateway-revision` answer header; `If-Match: <revision>` makes a \
            write conditional and `?dry_run=true` previews it. Errors are JSON with a stable \
            `code`."
    ),
    tags(
        (name = "upstreams", description = "Groups of targets that routes send traffic to"),
        (name = "routes", description = "Which requests go where"),
        (name = "config", description = "The whole configuration as one document"),
        (name = "revisions", description = "The change log: show, diff, roll back"),
        (name = "nodes", description = "Data-plane workers and their sync status"),
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
            Unavailable
        )
    )
)]
struct Header;

/// The whole document: the header above plus every operation of the router.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = super::documented_routes().into_openapi();
    if let Some(components) = &mut document.components {
        for (name, kind) in [(Upstream::name(), "upstream"), (Route::name(), "route")] {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(&*name) {
                add_server_keys(object, kind, false);
            }
        }
        for schema in components.schemas.values_mut() {
            close_tagged_variants(schema);
        }
    }
    document
}

/// serde refuses any key besides the variant's in an externally tagged enum (`{"prefix": "/a"}`),
/// but utoipa leaves the variants' objects open; closes them.
fn close_tagged_variants(schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::OneOf(one_of)) = schema else {
        return;
    };
    let count = one_of.items.len();
    let variants: Vec<&mut Object> = one_of
        .items
        .iter_mut()
        .filter_map(|item| match item {
            RefOr::T(Schema::Object(object)) => Some(object),
            _ => None,
        })
        .collect();
    let externally_tagged = |object: &Object| {
        object.properties.len() == 1
            && object.required.len() == 1
            && object.properties.contains_key(&object.required[0])
    };
    if variants.len() == count && variants.iter().all(|o| externally_tagged(o)) {
        for object in variants {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}

/// The header, schemas and error answers that the operations refer to.
pub(super) fn header() -> utoipa::openapi::OpenApi {
    Header::openapi()
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(document);

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "probes",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API",
               content_type = "application/json", body = Object))
)]
pub async fn serve() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
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
        (`malformed_json`, `unreadable_body`).",
    NotFound => "No such entity, revision or path (`not_found`).",
    Conflict => "The name is taken (`already_exists`), or routes still send traffic to the \
        upstream (`in_use`, each such route in `details`).",
    PreconditionFailed => "`If-Match` names a revision that is not the latest; the message \
        says which one is (`precondition_failed`).",
    PayloadTooLarge => "The body is larger than the API takes (`body_too_large`).",
    Unprocessable => "A well-formed request with a wrong value (`invalid_field`, \
        `unknown_reference`, `name_mismatch`): `field` is the JSON path into the body, or the \
        query parameter or header; a whole-config document lists every problem in `details`.",
    Internal => "The database answered with an error or holds something unreadable \
        (`internal`).",
    Unavailable => "The database does not answer; nothing was stored (`database_unavailable`).",
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
    ConfigWritten = AppliedAnswer | DryRunAnswer,
}
