//! What the store answers when a request cannot be served, and how database errors map onto it
//! ("try later" or "your request is wrong"). A leaf of its own, so that every part of the store,
//! and the handle that connects to the database, report failures the same way without importing
//! each other.

use gateway_config::{FieldError, ValidationErrors};

/// The oldest and the latest revision still kept. It lives with the errors because a request
/// for a revision outside it answers with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptRange {
    pub oldest: i64,
    pub latest: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("cannot reach the database: {0}")]
    Unavailable(String),
    #[error("{kind} `{name}` already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{kind} `{name}` does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("upstream `{name}` is used by routes {}", routes.join(", "))]
    InUse {
        name: String,
        routes: Vec<String>,
        /// Each reference: the route and the field that names the upstream.
        references: Vec<(String, String)>,
    },
    #[error("the config would take {bytes} bytes to send to a worker, over the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("invalid configuration: {0}")]
    Invalid(ValidationErrors),
    #[error("stored {kind} `{name}` is unreadable: {message}")]
    Corrupt {
        kind: String,
        name: String,
        message: String,
    },
    #[error("database error: {0}")]
    Database(String),
    #[error(
        "the control plane has no key-encryption key, so it cannot store or read private keys; \
         start it with --key-encryption-key-file (GATEWAY_KEY_ENCRYPTION_KEY_FILE)"
    )]
    NoKeyring,
    #[error("private key sealing failed: {0}")]
    Sealing(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("the latest revision is {current}, not {expected}")]
    PreconditionFailed { expected: i64, current: i64 },
    #[error("revision {revision} {}", describe_kept(*.kept))]
    RevisionNotKept {
        revision: i64,
        kept: Option<KeptRange>,
    },
}

fn describe_kept(kept: Option<KeptRange>) -> String {
    match kept {
        Some(KeptRange { oldest, latest }) => {
            format!("does not exist or is no longer kept; kept revisions are {oldest} to {latest}")
        }
        None => "does not exist; no revisions have been made yet".to_owned(),
    }
}

impl StoreError {
    /// Whether the error is about reaching the database rather than about the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub fn validation_errors(&self) -> Option<&[FieldError]> {
        match self {
            StoreError::Invalid(errors) => Some(&errors.0),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(error.to_string()),
            sqlx::Error::Database(db) if is_busy(db.code().as_deref()) => {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

/// SQLite's "busy"/"locked" codes and Postgres' connection and shutdown classes mean "try later",
/// not "your request is wrong".
fn is_busy(code: Option<&str>) -> bool {
    match code {
        Some(code) => {
            matches!(code, "5" | "6" | "517" | "261" | "262")
                || code.starts_with("08")
                || code.starts_with("57P")
        }
        None => false,
    }
}
