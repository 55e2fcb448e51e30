//! What the admin API takes in: how large a body may be, and how many documents it parses at
//! once. Parsing a large document is CPU work of seconds, so it runs on tokio's blocking threads,
//! never on the threads that answer requests (`/healthz` answers however large the apply), and
//! only a few at a time, so that concurrent applies cannot take every blocking thread.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::strict;

/// The largest entity body (`POST`/`PUT` of one route or upstream, a rollback): axum's
/// default, kept. One entity is a few hundred bytes; this leaves room for thousands of hosts
/// or header rules, and it is parsed on the request threads, which it keeps to milliseconds.
pub const ENTITY_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Called on the blocking thread just before a document is parsed; tests use it to hold a
/// parse while they check that the API still answers.
#[cfg(test)]
pub type ParseHook = Arc<dyn Fn() + Send + Sync>;

/// The admin API's limits, shared by every request (a request extension).
#[derive(Clone)]
pub struct Limits {
    config_body: usize,
    parsing: Arc<Semaphore>,
    #[cfg(test)]
    pub(super) on_parse: Option<ParseHook>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("config_body", &self.config_body)
            .field("parsing", &self.parsing.available_permits())
            .finish()
    }
}

impl Limits {
    /// `config_body`: the largest body of `PUT /v1/config`, in bytes. Documents are parsed
    /// one per two cores (at least one) at a time: the rest of the machine keeps serving.
    pub fn new(config_body: usize) -> Limits {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limits {
            config_body,
            parsing: Arc::new(Semaphore::new(cores.div_ceil(2))),
            #[cfg(test)]
            on_parse: None,
        }
    }

    pub fn config_body(&self) -> usize {
        self.config_body
    }

    /// What a whole-config document may cost.
    pub fn document(&self) -> strict::Limits {
        strict::Limits::new(self.config_body)
    }

    /// Runs `parse` on a blocking thread once one of the parsing permits is free. A request
    /// that goes away while it waits gives up its place; one that goes away while its document
    /// is parsed keeps the permit until the parse ends, so the bound is on real work.
    pub async fn parse<T: Send + 'static>(
        &self,
        parse: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = Arc::clone(&self.parsing)
            .acquire_owned()
            .await
            .map_err(|_| internal("the document parser has stopped"))?;
        #[cfg(test)]
        let hook = self.on_parse.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            if let Some(hook) = hook {
                hook();
            }
            parse()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "parsing a document failed");
            internal("parsing the document failed")
        })?
    }
}

fn internal(message: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// Entity bodies are read by axum's `Bytes`, and so limited by it, to [`ENTITY_BODY_LIMIT`].
impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::body_too_large(ENTITY_BODY_LIMIT);
        }
        ApiError::new(status, "unreadable_body", rejection.body_text())
    }
}
