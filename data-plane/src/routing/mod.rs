//! Request routing: the conditions a route matches on ([`matcher`]), a route as the request path
//! reads it ([`route`]), the precedence of route entries ([`rank`]), the table's index and lookup
//! ([`index`]), building and patching the table ([`build`]), and the regexes kept from one table
//! build to the next (`regex_memo`). Routing knows nothing of upstreams but their indices.

pub mod build;
pub mod host_map;
pub mod index;
pub mod matcher;
pub mod rank;
pub mod regex_memo;
pub mod route;

#[cfg(test)]
mod tests;

pub use index::RouteTable;
pub use matcher::RequestInfo;
pub use regex_memo::RegexMemo;
pub use route::RouteError;
