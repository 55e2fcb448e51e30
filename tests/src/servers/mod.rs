//! Upstream servers with special behaviour for the traffic-management and protocol tests (beyond
//! the plain echo server in `upstream.rs`): bulk bodies, killable targets, raw upgrades, gRPC and
//! WebSocket.

pub mod bulk;
pub mod grpc;
pub mod killable;
pub mod upgrade;
pub mod websocket;
