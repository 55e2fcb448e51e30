//! End-to-end tests: real control-plane, worker and gatewayctl processes, real upstream servers
//! and a real Postgres database per test, all on loopback.

#![allow(clippy::unwrap_used)]

mod bad_input;
mod cli;
mod keepalive;
mod nack;
mod propagation;
mod restart;
mod sqlite;
