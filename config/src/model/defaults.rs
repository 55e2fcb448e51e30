//! Values that fields of the model take when a file or an API request leaves them out, shared by
//! routes and upstreams so that a backend and a target without a `weight` weigh the same.

/// An unweighted backend or target counts as one share of the traffic.
pub(super) fn default_weight() -> u32 {
    1
}
