//! What goes wrong when rendering: a document from the admin API that this version cannot read,
//! or YAML that cannot be written. A leaf of its own, so that the renderers of `output` and of its
//! parts (`changes`) fail the same way without importing each other.

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("the admin API sent a {what} this version of gatewayctl cannot show: {message}")]
    Shape { what: &'static str, message: String },
    #[error("cannot render YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// A document that does not have the shape this version of gatewayctl expects; says which one.
pub(super) fn shape(what: &'static str, error: serde_json::Error) -> OutputError {
    OutputError::Shape {
        what,
        message: error.to_string(),
    }
}
