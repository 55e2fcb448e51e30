//! Harness for the end-to-end tests: starts the real `control-plane`, `data-plane` and
//! `gatewayctl` binaries on loopback ports chosen at run time, fake upstream servers, and throwaway
//! Postgres databases, and polls with deadlines instead of sleeping.

pub mod binaries;
pub mod certs;
pub mod clients;
pub mod cluster;
pub mod database;
pub mod eventually;
pub mod fault;
pub mod http;
pub mod process;
pub mod servers;
pub mod topology;
pub mod upstream;

pub use eventually::eventually;
