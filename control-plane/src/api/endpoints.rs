//! Every endpoint of the admin API, and the OpenAPI document made from them, served at
//! `GET /openapi.json`. The two live together because each needs the other: the table registers
//! the handler that serves the document, and the document is read off the table.

use std::sync::LazyLock;

use axum::Json;
use gateway_config::{Certificate, Route, Upstream};
use utoipa::ToSchema;
use utoipa::openapi::schema::{AdditionalProperties, Object, Schema};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::add_server_keys;
use super::state::AppState;
use super::{collections, config, health, metrics, nodes, openapi, revisions, tokens};

/// Every endpoint, with its description. `routes!` takes each endpoint's method and path from
/// the handler's `#[utoipa::path]`, so what is served and what is described cannot differ;
/// register endpoints here only that way.
pub(super) fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::header())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(serve))
        .routes(routes!(
            collections::upstreams::list,
            collections::upstreams::create
        ))
        .routes(routes!(
            collections::upstreams::get,
            collections::upstreams::put,
            collections::upstreams::delete
        ))
        .routes(routes!(
            collections::routes::list,
            collections::routes::create
        ))
        .routes(routes!(
            collections::routes::get,
            collections::routes::put,
            collections::routes::delete
        ))
        .routes(routes!(
            collections::certificates::list,
            collections::certificates::create
        ))
        .routes(routes!(
            collections::certificates::get,
            collections::certificates::put,
            collections::certificates::delete
        ))
        .routes(routes!(config::get, config::put))
        .routes(routes!(revisions::list))
        .routes(routes!(revisions::show))
        .routes(routes!(revisions::diff))
        .routes(routes!(revisions::rollback))
        .routes(routes!(nodes::list))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::get, tokens::revoke))
}

/// The whole document: the header of [`super::openapi`] plus every operation of the router.
fn document() -> utoipa::openapi::OpenApi {
    let mut document = documented_routes().into_openapi();
    add_authentication(&mut document);
    if let Some(components) = &mut document.components {
        let kinds = [
            (Upstream::name(), "upstream"),
            (Route::name(), "route"),
            (Certificate::name(), "certificate"),
        ];
        for (name, kind) in kinds {
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

/// Every operation but the probes takes a bearer token once tokens exist, and may answer 401,
/// 403 or 429 for it; added here so that no handler's description can leave them out.
fn add_authentication(document: &mut utoipa::openapi::OpenApi) {
    const SCHEME: &str = "bearer";
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SCHEME,
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (path, item) in document.paths.paths.iter_mut() {
        if matches!(path.as_str(), "/healthz" | "/readyz") {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            operation.security = Some(vec![
                SecurityRequirement::new(SCHEME, Vec::<String>::new()),
                // Open until the first token exists (and /metrics and /openapi.json by default).
                SecurityRequirement::default(),
            ]);
            for (status, name) in [
                ("401", "Unauthorized"),
                ("403", "Forbidden"),
                ("429", "TooManyFailedAttempts"),
            ] {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
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
