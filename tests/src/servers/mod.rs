//! Upstream servers with special behaviour for the traffic-management tests (beyond the plain
//! echo server in `upstream.rs`).

pub mod bulk;
pub mod killable;
pub mod upgrade;
