//! The store's clock. Rows and revisions are stamped in unix milliseconds, the one timestamp type
//! that Postgres and SQLite store alike as a BIGINT.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
