//! The two ways a message can fail to be read: its bytes break the rules ([`InvalidMessage`],
//! with a fixed phrase that also serves as a metrics label), or the connection ended before the
//! message did ([`Truncated`]). Small on purpose: the hot path passes them by value.

use std::fmt;

/// A message the codec refuses to read, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidMessage(&'static str);

impl InvalidMessage {
    pub(crate) const fn new(reason: &'static str) -> Self {
        InvalidMessage(reason)
    }

    /// What was wrong, as a short fixed phrase ("invalid chunk size", ...).
    pub const fn reason(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidMessage {}

/// The input ended before the message it carried did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the connection closed before the message ended")
    }
}

impl std::error::Error for Truncated {}
