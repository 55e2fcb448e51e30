//! Request routing: the conditions a route matches on ([`matcher`]), the compiled table that
//! finds the best route for a request by the gateway's precedence rules ([`table`]), the
//! compiled form of what a route does besides forwarding ([`actions`]), and the regexes kept
//! from one table build to the next (`regex_memo`).

pub mod actions;
pub mod matcher;
mod regex_memo;
pub mod table;

pub use actions::RouteActions;
pub use matcher::RequestInfo;
pub use table::{CompiledRoute, RouteError, RouteMatch, RouteTable};
