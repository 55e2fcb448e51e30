//! What validation reports: the kind of entity, the sort of problem, one error per field, and the
//! `Report` that collects them for one entity. A leaf of its own, so that the checks of each kind
//! of entity and the whole-config check in `mod.rs` all build errors the same way without
//! importing each other.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Upstream,
    Route,
    Certificate,
}

impl Kind {
    /// Every kind, in the order a config lists them.
    pub const ALL: [Kind; 3] = [Kind::Upstream, Kind::Route, Kind::Certificate];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Upstream => "upstream",
            Kind::Route => "route",
            Kind::Certificate => "certificate",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What sort of problem a field has; the admin API maps it to an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The value itself is malformed or out of range.
    Invalid,
    /// The value names an entity that does not exist.
    UnknownReference,
    /// The value is taken by another entity (a server name two certificates claim).
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub kind: Kind,
    pub name: String,
    /// Path of the field inside the entity, e.g. `backends[0].upstream`.
    pub field: String,
    pub message: String,
    #[serde(skip)]
    pub error: ErrorKind,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}`: {}: {}",
            self.kind, self.name, self.field, self.message
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// Collects the errors of one entity.
pub(crate) struct Report<'a> {
    pub(super) kind: Kind,
    pub(super) name: &'a str,
    pub(super) errors: &'a mut Vec<FieldError>,
}

impl Report<'_> {
    pub(crate) fn invalid(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(field, message, ErrorKind::Invalid);
    }

    pub(crate) fn push(
        &mut self,
        field: impl Into<String>,
        message: impl Into<String>,
        error: ErrorKind,
    ) {
        self.errors.push(FieldError {
            kind: self.kind,
            name: self.name.to_owned(),
            field: field.into(),
            message: message.into(),
            error,
        });
    }
}
