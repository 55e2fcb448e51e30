//! OpenAPI schemas for the strings of the model that have a format of their own (tags, HTTP
//! methods), so that the admin API's document states the pattern and length a field accepts
//! instead of a bare `string`. Built only with the `openapi` feature.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

fn text(description: &str, pattern: &str, max_length: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(Some(1))
        .max_length(Some(max_length))
        .into()
}

/// A label to filter lists by.
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> RefOr<Schema> {
        text(
            "A label to filter lists by: no whitespace or commas.",
            r"^[^\s,]+$",
            64,
        )
    }
}

impl utoipa::ToSchema for Tag {}

/// An HTTP method.
pub struct Method;

impl utoipa::PartialSchema for Method {
    fn schema() -> RefOr<Schema> {
        text("An HTTP method, upper case.", "^[A-Z_-]+$", 32)
    }
}

impl utoipa::ToSchema for Method {}
