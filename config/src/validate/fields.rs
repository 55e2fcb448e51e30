//! Checks of the fields that every kind of entity has or shares: names, tags, host names, token
//! names, text lengths, list counts, request paths and durations, so that a field of one sort
//! accepts exactly the same values wherever it appears. The bounds themselves are in
//! [`super::limits`].

use super::error::Report;
use super::limits::{
    MAX_DURATION_MS, MAX_HEADER_NAME_LEN, MAX_HOST_LEN, MAX_NAME_LEN, MAX_PATH_LEN, MAX_TAG_LEN,
    MAX_TAGS,
};
use crate::model::Duration;

/// Checks an entity name: 1–128 characters of letters, digits, `.`, `_`, `-`, starting with a
/// letter or digit. Names appear in URLs and files, so nothing else is allowed.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "contains `{}`; only letters, digits, `.`, `_` and `-` are allowed",
            c.escape_debug()
        ));
    }
    Ok(())
}

/// Reports `field` when its list is longer than `max`; says whether it is within the bound, so
/// that the items of an overlong list are not checked (and reported) one by one.
pub(crate) fn within_count(
    len: usize,
    max: usize,
    field: &str,
    items: &str,
    report: &mut Report<'_>,
) -> bool {
    if len <= max {
        return true;
    }
    report.invalid(
        field,
        format!("lists {len} {items}; at most {max} are allowed"),
    );
    false
}

/// A text field no longer than `max` bytes.
pub(crate) fn check_len(value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("must be at most {max} bytes"));
    }
    Ok(())
}

pub(crate) fn check_tags(tags: &[String], report: &mut Report<'_>) {
    if !within_count(tags.len(), MAX_TAGS, "tags", "tags", report) {
        return;
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.is_empty()
            || tag.len() > MAX_TAG_LEN
            || tag.chars().any(|c| c.is_whitespace() || c == ',')
        {
            report.invalid(
                format!("tags[{i}]"),
                format!("must be 1-{MAX_TAG_LEN} characters without spaces or commas"),
            );
        }
    }
}

pub(crate) fn check_hostname(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("host name must not be empty".into());
    }
    if host.len() > MAX_HOST_LEN {
        return Err(format!(
            "host name must be at most {MAX_HOST_LEN} characters"
        ));
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "`{}` is not a valid host name (empty or overlong label)",
                host.escape_debug()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{}` is not a valid host name (label starts or ends with `-`)",
                host.escape_debug()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "`{}` is not a valid host name (contains `{}`)",
                host.escape_debug(),
                c.escape_debug()
            ));
        }
    }
    Ok(())
}

/// An exact host name or a `*.suffix` wildcard, without a port (`what` says why: "hosts are
/// matched", "server names are sent").
pub(crate) fn check_name_pattern(pattern: &str, what: &str) -> Result<(), String> {
    if pattern.contains(':') {
        return Err(format!(
            "`{}`: {what} without a port; remove it",
            pattern.escape_debug()
        ));
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => check_hostname(suffix),
        None if pattern.contains('*') => Err(format!(
            "`{}`: a wildcard is only allowed as a leading `*.`",
            pattern.escape_debug()
        )),
        None => check_hostname(pattern),
    }
}

/// RFC 9110 token characters, the alphabet of header and cookie names.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header or cookie name (an RFC 9110 token); `what` says which, for the message.
pub(crate) fn check_token(name: &str, what: &str) -> Result<(), String> {
    check_len(name, MAX_HEADER_NAME_LEN)?;
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(format!(
            "`{}` is not a {what} (1-{MAX_HEADER_NAME_LEN} letters, digits or !#$%&'*+-.^_`|~)",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Whether a request path may go on with a query (`/health?deep=1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query {
    Refused,
    Allowed,
}

/// RFC 3986 `pchar` without the `%` of an escape: unreserved, sub-delims, `:` and `@`.
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// Checks that `path` is a path in the form requests carry it, the form workers compare it in:
/// RFC 3986's origin-form, `/` then `pchar`s and `/`s, anything else percent-encoded as `%XX`,
/// and with [`Query::Allowed`] a `?` and a query. A space, `#`, a control character or a
/// non-ASCII character never appears in a request target as sent, so a path holding one could
/// match no request and could not be sent.
pub(crate) fn check_request_path(path: &str, query: Query) -> Result<(), String> {
    if path.is_empty() {
        return Err("must not be empty; a path starts with `/`".into());
    }
    check_len(path, MAX_PATH_LEN)?;
    let shown = path.escape_debug();
    if !path.starts_with('/') {
        return Err(format!("`{shown}` must start with `/`"));
    }
    let bytes = path.as_bytes();
    let mut in_query = false;
    for (at, c) in path.char_indices() {
        match c {
            '%' => {
                let hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(at + 1) && hex(at + 2)) {
                    return Err(format!(
                        "`{shown}` has a `%` that does not start a `%XX` escape; write a \
                         literal `%` as `%25`"
                    ));
                }
            }
            '/' => {}
            '?' if in_query => {}
            '?' if query == Query::Allowed => in_query = true,
            '?' => {
                return Err(format!(
                    "`{shown}` contains `?`, which starts a query; a path cannot hold one"
                ));
            }
            '#' => {
                return Err(format!(
                    "`{shown}` contains `#`, which starts a fragment; requests never carry one"
                ));
            }
            c if c.is_ascii() && is_path_char(c as u8) => {}
            c => {
                let mut utf8 = [0; 4];
                let escaped: String = c
                    .encode_utf8(&mut utf8)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect();
                return Err(format!(
                    "`{shown}` contains `{}`, which requests carry percent-encoded; write \
                     `{escaped}`",
                    c.escape_debug()
                ));
            }
        }
    }
    Ok(())
}

/// The least a duration field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Floor {
    /// Zero means something (no wait, say).
    Zero,
    /// Zero would mean nothing, or a timer that fires at once.
    AboveZero,
    /// At least this many milliseconds.
    Millis(u64),
}

/// Checks a duration field: a whole number of milliseconds (the wire's unit, so that a worker
/// rebuilds exactly the value that was accepted), at most [`MAX_DURATION_MS`], and at least
/// `floor`.
pub(crate) fn check_duration(value: Duration, field: &str, floor: Floor, report: &mut Report<'_>) {
    if !value.is_whole_millis() {
        report.invalid(
            field,
            format!("must be a whole number of milliseconds (`{value}` is not)"),
        );
    } else if value.as_std() > std::time::Duration::from_millis(MAX_DURATION_MS) {
        report.invalid(
            field,
            format!(
                "must be at most {} ({MAX_DURATION_MS}ms)",
                Duration::from_millis(MAX_DURATION_MS)
            ),
        );
    } else {
        match floor {
            Floor::AboveZero if value.as_std().is_zero() => {
                report.invalid(field, "must be above 0");
            }
            Floor::Millis(least) if value.as_millis() < least => {
                report.invalid(field, format!("must be at least {least}ms"));
            }
            Floor::Zero | Floor::AboveZero | Floor::Millis(_) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_are_origin_form() {
        for ok in [
            "/",
            "/api",
            "/api/v1/",
            "/a//b",
            "/caf%C3%A9",
            "/a%2fb",
            "/-._~!$&'()*+,;=:@",
            "/users/%7Bid%7D",
        ] {
            assert_eq!(check_request_path(ok, Query::Refused), Ok(()), "{ok}");
        }
        let refused = |path: &str| check_request_path(path, Query::Refused).unwrap_err();
        assert!(refused("").contains("must not be empty"));
        assert!(refused("api").contains("must start with `/`"));
        assert!(
            refused("/café").contains("write `%C3%A9`"),
            "{}",
            refused("/café")
        );
        assert!(refused("/a b").contains("write `%20`"));
        assert!(refused("/a\tb").contains("write `%09`"));
        assert!(refused("/a\u{7f}").contains("write `%7F`"));
        for bad in [
            "/{id}", "/a|b", "/a\"", "/a<b>", "/a\\b", "/a^b", "/a`b", "/[x]",
        ] {
            assert!(refused(bad).contains("percent-encoded"), "{bad}");
        }
        assert!(refused("/100%").contains("`%XX`"));
        assert!(refused("/%4").contains("`%XX`"));
        assert!(refused("/%zz").contains("`%XX`"));
        assert!(refused("/a?b").contains("query"));
        assert!(refused("/a#b").contains("fragment"));
        assert!(refused(&format!("/{}", "a".repeat(MAX_PATH_LEN))).contains("at most"));
        assert_eq!(
            check_request_path(
                &format!("/{}", "a".repeat(MAX_PATH_LEN - 1)),
                Query::Refused
            ),
            Ok(())
        );
        assert!(
            refused("/a\nb").contains("`/a\\nb`"),
            "control characters are shown escaped"
        );
    }

    #[test]
    fn request_paths_with_a_query() {
        for ok in ["/health?deep=1", "/h?a=1&b=%20/?x", "/h?"] {
            assert_eq!(check_request_path(ok, Query::Allowed), Ok(()), "{ok}");
        }
        for bad in ["/h?a b", "/h?a#b", "/h?é", "/h?%g0"] {
            assert!(check_request_path(bad, Query::Allowed).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(check_token("x-user_1", "header name"), Ok(()));
        assert!(check_token("", "header name").is_err());
        assert!(
            check_token("a b", "cookie name")
                .unwrap_err()
                .contains("cookie name")
        );
        assert_eq!(
            check_token(&"a".repeat(MAX_HEADER_NAME_LEN), "header name"),
            Ok(())
        );
        assert_eq!(
            check_token(&"a".repeat(MAX_HEADER_NAME_LEN + 1), "header name"),
            Err(format!("must be at most {MAX_HEADER_NAME_LEN} bytes"))
        );
    }
}
