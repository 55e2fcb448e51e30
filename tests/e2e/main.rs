//! End-to-end tests: real control-plane, worker and gatewayctl processes, real upstream servers
//! and a real Postgres database per test, all on loopback.

#![allow(clippy::unwrap_used)]

mod admin_tokens;
mod auth;
mod bad_input;
mod cli;
mod database_outage;
mod drain;
mod grpc;
mod keepalive;
mod large_config;
mod limits;
mod nack;
mod offline;
mod policies;
mod propagation;
mod protocols;
mod reload;
mod replicas;
mod restart;
mod revisions;
mod routing;
mod slow_clients;
mod sqlite;
mod tls;
mod tls_rotation;
mod upstreams;
