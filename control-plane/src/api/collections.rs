//! The entity collections, `/v1/upstreams`, `/v1/routes` and `/v1/certificates`: one described endpoint per kind and
//! operation, each handing over to the handlers in [`super::entities`] that every kind shares.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gateway_config::{Certificate, Route, Upstream};

use super::auth::Caller;
use super::body::{ListQuery, Page};
use super::entities;
use super::error::ApiError;
use super::openapi::{
    BadRequest, CertificateWritten, Conflict, Internal, NotFound, PayloadTooLarge,
    PreconditionFailed, RouteWritten, Unavailable, Unprocessable, UpstreamWritten,
};
use super::schema::{CertificateResource, RouteResource, UpstreamResource};
use super::state::AppState;
use super::write::{DryRunAnswer, WriteHeaders, WriteQuery};

macro_rules! collection {
    (
        $module:ident,
        $entity:ty,
        $resource:ty,
        $written:ty,
        kind = $kind:literal,
        a_kind = $a_kind:literal,
        collection = $collection:literal,
        item = $item:literal $(,)?
    ) => {
        pub mod $module {
            use super::*;

            #[utoipa::path(
                get,
                path = $collection,
                tag = concat!($kind, "s"),
                operation_id = concat!("list_", $kind, "s"),
                summary = concat!("List ", $kind, "s"),
                description = "Reads fall back to this replica's latest config in memory when \
                    the database does not answer.",
                params(ListQuery),
                responses(
                    (status = 200, description = "One page", body = Page<$resource>),
                    (status = 422, response = Unprocessable),
                    (status = 500, response = Internal),
                )
            )]
            pub async fn list(
                state: State<AppState>,
                query: Result<Query<ListQuery>, QueryRejection>,
            ) -> Result<Response, ApiError> {
                entities::list::<$entity>(state, query).await
            }

            #[utoipa::path(
                get,
                path = $item,
                tag = concat!($kind, "s"),
                operation_id = concat!("get_", $kind),
                summary = concat!("Show one ", $kind),
                params(("name" = String, Path, description = concat!("The ", $kind, "'s name"))),
                responses(
                    (status = 200, description = concat!("The ", $kind), body = $resource),
                    (status = 404, response = NotFound),
                    (status = 500, response = Internal),
                )
            )]
            pub async fn get(
                state: State<AppState>,
                path: Result<Path<String>, PathRejection>,
            ) -> Result<Response, ApiError> {
                entities::get::<$entity>(state, path).await
            }

            #[utoipa::path(
                post,
                path = $collection,
                tag = concat!($kind, "s"),
                operation_id = concat!("create_", $kind),
                summary = concat!("Create ", $a_kind),
                description = "Keys set by the server (`created_at`, `updated_at`, `revision`) \
                    are ignored, so that a document fetched with GET can be sent back.",
                params(WriteQuery, WriteHeaders),
                request_body(content = $entity, content_type = "application/json"),
                responses(
                    (status = 201, description = "Created", body = $resource,
                     headers(
                         ("location" = String, description = "The new entity's path"),
                         ("x-gateway-revision" = i64, description = "The revision made"),
                     ),
                     links(
                         ("show" = (operation_id = concat!("get_", $kind),
                                    parameters(("name" = "$response.body#/name")))),
                         ("replace" = (operation_id = concat!("put_", $kind),
                                       parameters(("name" = "$response.body#/name")))),
                         ("delete" = (operation_id = concat!("delete_", $kind),
                                      parameters(("name" = "$response.body#/name")))),
                         ("revision" = (operation_id = "show_revision",
                                        parameters(("n" = "$response.body#/revision")))),
                     )),
                    (status = 200, description = "A dry run: what the write would change",
                     body = DryRunAnswer,
                     headers(("x-gateway-revision" = i64, description = "The latest revision"))),
                    (status = 400, response = BadRequest),
                    (status = 409, response = Conflict),
                    (status = 412, response = PreconditionFailed),
                    (status = 413, response = PayloadTooLarge),
                    (status = 422, response = Unprocessable),
                    (status = 500, response = Internal),
                    (status = 503, response = Unavailable),
                )
            )]
            pub async fn create(
                state: State<AppState>,
                headers: HeaderMap,
                caller: Caller,
                query: Result<Query<WriteQuery>, QueryRejection>,
                body: Result<Bytes, BytesRejection>,
            ) -> Result<Response, ApiError> {
                entities::create::<$entity>(state, headers, caller, query, body).await
            }

            #[utoipa::path(
                put,
                path = $item,
                tag = concat!($kind, "s"),
                operation_id = concat!("put_", $kind),
                summary = concat!("Create or replace ", $a_kind),
                description = "The body may leave out `name` (the path names the entity); a \
                    `name` in the body must equal the path's. Keys set by the server are ignored.",
                params(
                    ("name" = String, Path, description = concat!("The ", $kind, "'s name")),
                    WriteQuery,
                    WriteHeaders,
                ),
                request_body(content = $entity, content_type = "application/json"),
                responses(
                    (status = 200, description = "Replaced, or a dry run",
                     body = $written,
                     headers(("x-gateway-revision" = i64,
                              description = "The revision made, or the latest for a dry run"))),
                    (status = 201, description = "Created", body = $resource,
                     headers(
                         ("location" = String, description = "The new entity's path"),
                         ("x-gateway-revision" = i64, description = "The revision made"),
                     )),
                    (status = 400, response = BadRequest),
                    (status = 412, response = PreconditionFailed),
                    (status = 413, response = PayloadTooLarge),
                    (status = 422, response = Unprocessable),
                    (status = 500, response = Internal),
                    (status = 503, response = Unavailable),
                )
            )]
            pub async fn put(
                state: State<AppState>,
                path: Result<Path<String>, PathRejection>,
                headers: HeaderMap,
                caller: Caller,
                query: Result<Query<WriteQuery>, QueryRejection>,
                body: Result<Bytes, BytesRejection>,
            ) -> Result<Response, ApiError> {
                entities::put::<$entity>(state, path, headers, caller, query, body).await
            }

            #[utoipa::path(
                delete,
                path = $item,
                tag = concat!($kind, "s"),
                operation_id = concat!("delete_", $kind),
                summary = concat!("Delete ", $a_kind),
                params(
                    ("name" = String, Path, description = concat!("The ", $kind, "'s name")),
                    WriteQuery,
                    WriteHeaders,
                ),
                responses(
                    (status = 204, description = "Deleted",
                     headers(("x-gateway-revision" = i64, description = "The revision made"))),
                    (status = 200, description = "A dry run: what the write would change",
                     body = DryRunAnswer,
                     headers(("x-gateway-revision" = i64, description = "The latest revision"))),
                    (status = 400, response = BadRequest),
                    (status = 404, response = NotFound),
                    (status = 409, response = Conflict),
                    (status = 412, response = PreconditionFailed),
                    (status = 422, response = Unprocessable),
                    (status = 500, response = Internal),
                    (status = 503, response = Unavailable),
                )
            )]
            pub async fn delete(
                state: State<AppState>,
                path: Result<Path<String>, PathRejection>,
                headers: HeaderMap,
                caller: Caller,
                query: Result<Query<WriteQuery>, QueryRejection>,
            ) -> Result<Response, ApiError> {
                entities::delete::<$entity>(state, path, headers, caller, query).await
            }
        }
    };
}

collection!(
    upstreams,
    Upstream,
    UpstreamResource,
    UpstreamWritten,
    kind = "upstream",
    a_kind = "an upstream",
    collection = "/v1/upstreams",
    item = "/v1/upstreams/{name}",
);

collection!(
    routes,
    Route,
    RouteResource,
    RouteWritten,
    kind = "route",
    a_kind = "a route",
    collection = "/v1/routes",
    item = "/v1/routes/{name}",
);

collection!(
    certificates,
    Certificate,
    CertificateResource,
    CertificateWritten,
    kind = "certificate",
    a_kind = "a certificate",
    collection = "/v1/certificates",
    item = "/v1/certificates/{name}",
);
