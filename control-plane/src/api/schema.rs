//! Schemas of the JSON that the admin API reads and answers but that no Rust type of this crate
//! derives: entities with the keys the server sets, and the changes of a write or a diff. They
//! sit below both the handlers' answers ([`super::write`]) and the document ([`super::openapi`]),
//! which both refer to them.

use gateway_config::{Certificate, Route, Upstream};
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// Adds the server-set keys to an entity's schema: required in what the API answers; optional
/// in documents it reads, which may carry them (from an earlier GET) and where they are ignored.
pub(super) fn add_server_keys(object: &mut Object, kind: &str, answered: bool) {
    let timestamp = |what: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(format!(
                "When the {kind} was {what}: RFC 3339, UTC, milliseconds. Set by the server; \
                 ignored in writes."
            )))
            .read_only(true)
            .build()
    };
    object
        .properties
        .insert("created_at".into(), timestamp("created").into());
    object
        .properties
        .insert("updated_at".into(), timestamp("last changed").into());
    object.properties.insert(
        "revision".into(),
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .description(Some(format!(
                "The revision that last changed the {kind}. Set by the server; ignored in writes."
            )))
            .read_only(true)
            .into(),
    );
    if answered {
        object
            .required
            .extend(["created_at", "updated_at", "revision"].map(str::to_owned));
    }
}

/// An entity as the API answers it: its document plus the server-set keys.
fn resource(entity: RefOr<Schema>, kind: &str) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = entity else {
        return entity;
    };
    add_server_keys(&mut object, kind, true);
    object.description = Some(format!(
        "{}\n\nAs the API shows it, with the keys set by the server.",
        object.description.unwrap_or_default()
    ));
    RefOr::T(Schema::Object(object))
}

/// One schema type per entity kind, for an entity as the API answers it.
macro_rules! resources {
    ($($name:ident = $entity:ty, $kind:literal, $doc:literal;)*) => {$(
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                resource(<$entity>::schema(), $kind)
            }
        }

        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$entity>::schemas(schemas);
            }
        }
    )*};
}

resources! {
    UpstreamResource = Upstream, "upstream", "An upstream as the API answers it.";
    RouteResource = Route, "route", "A route as the API answers it.";
    CertificateResource = Certificate, "certificate",
        "A certificate as the API answers it: never with its private key.";
}

/// The document of an upstream, a route or a certificate in a change, or null.
fn entity_document(description: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .description(Some(description))
        .item(Ref::from_schema_name(Upstream::name()))
        .item(Ref::from_schema_name(Route::name()))
        .item(Ref::from_schema_name(Certificate::name()))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// The JSON of [`gateway_config::Change`], which has no schema of its own.
pub struct Change;

impl PartialSchema for Change {
    fn schema() -> RefOr<Schema> {
        let text_enum = |values: &[&str]| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(values.iter().copied()))
        };
        ObjectBuilder::new()
            .description(Some(
                "One entity's change; `before` and `after` are its documents (null when it \
                 did not or does not exist).",
            ))
            .property("kind", text_enum(&["upstream", "route"]))
            .property("name", ObjectBuilder::new().schema_type(Type::String))
            .property("op", text_enum(&["create", "update", "delete"]))
            .property("before", entity_document("The entity before the change"))
            .property("after", entity_document("The entity after the change"))
            .required("kind")
            .required("name")
            .required("op")
            .required("before")
            .required("after")
            .into()
    }
}

impl ToSchema for Change {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Upstream::name().into_owned(), Upstream::schema()));
        Upstream::schemas(schemas);
        schemas.push((Route::name().into_owned(), Route::schema()));
        Route::schemas(schemas);
    }
}
