//! The `mirror` filter's decision: whether this request is copied, and to which upstream. The
//! copy itself goes through that upstream's own transport, which the proxy owns.

/// A route's mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorAction {
    /// Index of the mirror upstream in the compiled config.
    pub upstream: usize,
    /// 0–100.
    pub percent: u32,
}

impl MirrorAction {
    /// The upstream this request is copied to, after the route's `percent` draw.
    pub fn draw(&self) -> Option<usize> {
        (self.percent >= 100 || fastrand::u32(0..100) < self.percent).then_some(self.upstream)
    }
}
