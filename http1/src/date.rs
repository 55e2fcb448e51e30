//! The `Date` field value (RFC 9110 §6.6.1) a server adds to every response, formatted once per
//! second per thread rather than once per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// The value of the current second.
struct CachedDate {
    second: u64,
    value: Vec<u8>,
}

impl CachedDate {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second != self.second || self.value.is_empty() {
            self.second = second;
            self.value = httpdate::fmt_http_date(now).into_bytes();
        }
        &self.value
    }
}

thread_local! {
    // Per thread, so that workers on several threads never contend for it.
    static CACHED_DATE: RefCell<CachedDate> = const {
        RefCell::new(CachedDate { second: 0, value: Vec::new() })
    };
}

/// Appends the current `Date` value (`Sun, 06 Nov 1994 08:49:37 GMT`), without the field name.
pub fn push_date(out: &mut Vec<u8>) {
    CACHED_DATE.with_borrow_mut(|date| out.extend_from_slice(date.now()));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_an_http_date_of_now() {
        let mut out = Vec::new();
        push_date(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(text.len(), 29, "{text}");
        assert!(text.ends_with(" GMT"), "{text}");
        let parsed = httpdate::parse_http_date(text).unwrap();
        let age = SystemTime::now().duration_since(parsed).unwrap_or_default();
        assert!(age.as_secs() < 5, "{text}");
        // The second call within the same second reuses the value.
        let mut again = Vec::new();
        push_date(&mut again);
        assert!(again.len() == 29);
    }
}
