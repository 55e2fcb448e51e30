//! Request routing: the conditions a route matches on ([`matcher`]), the compiled table that
//! finds the best route for a request by the gateway's precedence rules ([`table`]), and the
//! compiled form of what a route does besides forwarding ([`actions`]).

pub mod actions;
pub mod matcher;
pub mod table;

pub use actions::RouteActions;
pub use matcher::RequestInfo;
pub use table::{CompiledRoute, RouteError, RouteMatch, RouteTable};
