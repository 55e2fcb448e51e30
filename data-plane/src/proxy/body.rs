//! The body of every response the proxy gives: the upstream's, streamed through, or one of the
//! worker's own answers (errors, redirects, fixed responses), built in memory. It names the
//! upstream's body type, so it lives here rather than among the leaves.

use http_body_util::Either;

use crate::body::LocalBody;
use crate::upstream::body::UpstreamBody;

pub type ProxyBody = Either<UpstreamBody, LocalBody>;
