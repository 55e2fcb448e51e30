//! Connection pools, one per upstream and protocol: kept-alive HTTP/1 connections per target
//! ([`http1`]) and one shared HTTP/2 connection per target ([`http2`]).

pub mod http1;
pub mod http2;
