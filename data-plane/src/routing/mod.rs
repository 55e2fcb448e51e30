//! Request routing: the conditions a route matches on ([`matcher`]) and the compiled table that
//! finds the best route for a request by the gateway's precedence rules ([`table`]).

pub mod matcher;
pub mod table;

pub use table::{CompiledRoute, RouteError, RouteMatch, RouteTable};
