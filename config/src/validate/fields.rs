//! Checks of the fields that every kind of entity has or shares: names, tags, host names and
//! weights, with their limits, so that a route and an upstream accept exactly the same values.

use super::error::Report;

pub(super) const MAX_WEIGHT: u32 = 10_000;
const MAX_NAME_LEN: usize = 128;

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
            "contains `{c}`; only letters, digits, `.`, `_` and `-` are allowed"
        ));
    }
    Ok(())
}

pub(crate) fn check_tags(tags: &[String], report: &mut Report<'_>) {
    for (i, tag) in tags.iter().enumerate() {
        if tag.is_empty() || tag.len() > 64 || tag.chars().any(|c| c.is_whitespace() || c == ',') {
            report.invalid(
                format!("tags[{i}]"),
                "must be 1-64 characters without spaces or commas",
            );
        }
    }
}

pub(crate) fn check_hostname(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("host name must not be empty".into());
    }
    if host.len() > 253 {
        return Err("host name must be at most 253 characters".into());
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "`{host}` is not a valid host name (empty or overlong label)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{host}` is not a valid host name (label starts or ends with `-`)"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "`{host}` is not a valid host name (contains `{c}`)"
            ));
        }
    }
    Ok(())
}
