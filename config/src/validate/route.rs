//! Checks of a route on its own; references to upstreams, and the route table budget of the
//! whole config, are checked with the whole config.

use super::error::{ErrorKind, FieldError, Kind, Report, ValidationErrors};
use super::fields::{
    Floor, Query, check_duration, check_hostname, check_len, check_name_pattern,
    check_request_path, check_tags, check_token, validate_name, within_count,
};
use super::limits::{
    MAX_ADDRESS_LEN, MAX_BACKENDS_PER_ROUTE, MAX_BODY_LEN, MAX_HEADER_EDITS,
    MAX_HEADER_MATCHES_PER_ROUTE, MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, MAX_HOSTS_PER_ROUTE,
    MAX_METHOD_LEN, MAX_METHODS_PER_ROUTE, MAX_PATHS_PER_ROUTE, MAX_PREFIX_SEGMENTS,
    MAX_QUERY_MATCHES_PER_ROUTE, MAX_REGEX_LEN, MAX_REGEX_PATHS_PER_ROUTE, MAX_ROUTE_EXPANSION,
    MAX_UPGRADE_LEN, MAX_UPGRADES_PER_ROUTE, MAX_WEIGHT, REGEX_SIZE_LIMIT,
};
use crate::model::{
    DirectResponse, HeaderMatch, HeaderTransform, Mirror, PathMatch, QueryMatch, Redirect, Rewrite,
    Route, Sticky,
};

/// Headers a route may not edit: framing and connection management belong to the proxy, and
/// `host` has `host_rewrite`.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "via",
];

/// Compiles `pattern` as the gateway does: anchored at both ends, with the size limit.
pub fn compile_full_match(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(format!("must be at most {MAX_REGEX_LEN} bytes"));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("`{pattern}` compiles to more than {limit} bytes; simplify it")
            }
            other => format!("`{pattern}` is not a valid regex: {other}"),
        })
}

impl Route {
    /// Errors in this route alone; references to upstreams and the config's route table budget
    /// are checked by [`Config::validate`](crate::Config::validate).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.collect_errors(&mut errors);
        ValidationErrors(errors).into_result()
    }

    /// Adds an error for each upstream the route names that `upstream_exists` does not know.
    pub fn reference_errors(
        &self,
        upstream_exists: impl Fn(&str) -> bool,
        errors: &mut Vec<FieldError>,
    ) {
        let mut report = Report {
            kind: Kind::Route,
            name: &self.name,
            errors,
        };
        for (i, backend) in self.backends.iter().enumerate() {
            if !backend.upstream.is_empty() && !upstream_exists(&backend.upstream) {
                report.push(
                    format!("backends[{i}].upstream"),
                    format!("upstream `{}` does not exist", backend.upstream),
                    ErrorKind::UnknownReference,
                );
            }
        }
        if let Some(mirror) = &self.mirror
            && !mirror.upstream.is_empty()
            && !upstream_exists(&mirror.upstream)
        {
            report.push(
                "mirror.upstream",
                format!("upstream `{}` does not exist", mirror.upstream),
                ErrorKind::UnknownReference,
            );
        }
    }

    pub(crate) fn collect_errors(&self, errors: &mut Vec<FieldError>) {
        let mut report = Report {
            kind: Kind::Route,
            name: &self.name,
            errors,
        };
        if let Err(message) = validate_name(&self.name) {
            report.invalid("name", message);
        }
        check_tags(&self.tags, &mut report);
        self.check_matches(&mut report);
        self.check_backends(&mut report);
        self.check_actions(&mut report);
        if let Some(timeout) = self.timeout {
            check_duration(timeout, "timeout", Floor::AboveZero, &mut report);
        }
        if let Some(retries) = &self.retries {
            retries.collect_errors(&mut report);
        }
        self.plugins.collect_errors(&mut report);
    }

    /// Hosts, paths, methods, header and query conditions, and the route table entries that
    /// hosts × paths make.
    fn check_matches(&self, report: &mut Report<'_>) {
        let hosts_counted = within_count(
            self.hosts.len(),
            MAX_HOSTS_PER_ROUTE,
            "hosts",
            "hosts",
            report,
        );
        if hosts_counted {
            for (i, host) in self.hosts.iter().enumerate() {
                if let Err(message) = check_host_pattern(host) {
                    report.invalid(format!("hosts[{i}]"), message);
                }
            }
        }
        let paths_counted = within_count(
            self.paths.len(),
            MAX_PATHS_PER_ROUTE,
            "paths",
            "paths",
            report,
        );
        if paths_counted {
            let regexes = self
                .paths
                .iter()
                .filter(|p| matches!(p, PathMatch::Regex(_)))
                .count();
            let compile_regexes = within_count(
                regexes,
                MAX_REGEX_PATHS_PER_ROUTE,
                "paths",
                "regex paths",
                report,
            );
            for (i, path) in self.paths.iter().enumerate() {
                let (field, result) = match path {
                    PathMatch::Prefix(p) => (format!("paths[{i}].prefix"), check_prefix(p)),
                    PathMatch::Exact(p) => (
                        format!("paths[{i}].exact"),
                        check_request_path(p, Query::Refused),
                    ),
                    PathMatch::Regex(_) if !compile_regexes => continue,
                    PathMatch::Regex(p) => (
                        format!("paths[{i}].regex"),
                        compile_full_match(p).map(|_| ()),
                    ),
                };
                if let Err(message) = result {
                    report.invalid(field, message);
                }
            }
        }
        let expansion = self.expansion();
        if expansion > MAX_ROUTE_EXPANSION {
            report.invalid(
                "paths",
                format!(
                    "{} hosts × {} paths make {expansion} route table entries; at most \
                     {MAX_ROUTE_EXPANSION} are allowed per route (split it into several routes)",
                    self.hosts.len().max(1),
                    self.paths.len().max(1),
                ),
            );
        }
        if within_count(
            self.methods.len(),
            MAX_METHODS_PER_ROUTE,
            "methods",
            "methods",
            report,
        ) {
            for (i, method) in self.methods.iter().enumerate() {
                if let Err(message) = check_method(method) {
                    report.invalid(format!("methods[{i}]"), message);
                }
            }
        }
        if within_count(
            self.upgrades.len(),
            MAX_UPGRADES_PER_ROUTE,
            "upgrades",
            "upgrade protocols",
            report,
        ) {
            for (i, protocol) in self.upgrades.iter().enumerate() {
                if let Err(message) = check_upgrade(protocol) {
                    report.invalid(format!("upgrades[{i}]"), message);
                }
            }
        }
        if within_count(
            self.headers.len(),
            MAX_HEADER_MATCHES_PER_ROUTE,
            "headers",
            "header conditions",
            report,
        ) {
            for (i, header) in self.headers.iter().enumerate() {
                check_header_match(header, &format!("headers[{i}]"), report);
            }
        }
        if within_count(
            self.query.len(),
            MAX_QUERY_MATCHES_PER_ROUTE,
            "query",
            "query conditions",
            report,
        ) {
            for (i, query) in self.query.iter().enumerate() {
                check_query_match(query, &format!("query[{i}]"), report);
            }
        }
    }

    fn check_backends(&self, report: &mut Report<'_>) {
        let answers_itself = self.redirect.is_some() || self.direct_response.is_some();
        if answers_itself {
            if !self.backends.is_empty() {
                report.invalid(
                    "backends",
                    "must be empty when `redirect` or `direct_response` answers the request",
                );
            }
            return;
        }
        if self.backends.is_empty() {
            report.invalid("backends", "must list at least one backend");
        }
        if !within_count(
            self.backends.len(),
            MAX_BACKENDS_PER_ROUTE,
            "backends",
            "backends",
            report,
        ) {
            return;
        }
        let mut total_weight = 0u64;
        for (i, backend) in self.backends.iter().enumerate() {
            if backend.upstream.is_empty() {
                report.invalid(format!("backends[{i}].upstream"), "must not be empty");
            } else if let Err(message) = validate_name(&backend.upstream) {
                report.invalid(format!("backends[{i}].upstream"), message);
            } else if self.backends[..i]
                .iter()
                .any(|b| b.upstream == backend.upstream)
            {
                report.invalid(
                    format!("backends[{i}].upstream"),
                    format!("`{}` is listed twice", backend.upstream),
                );
            }
            if backend.weight > MAX_WEIGHT {
                report.invalid(
                    format!("backends[{i}].weight"),
                    format!("must be at most {MAX_WEIGHT}"),
                );
            }
            total_weight += u64::from(backend.weight);
        }
        if !self.backends.is_empty() && total_weight == 0 {
            report.invalid(
                "backends",
                "at least one backend must have a weight above 0",
            );
        }
    }

    fn check_actions(&self, report: &mut Report<'_>) {
        match &self.sticky {
            Some(Sticky::Header(name)) => {
                if let Err(message) = check_token(name, "header name") {
                    report.invalid("sticky.header", message);
                }
            }
            Some(Sticky::Cookie(name)) => {
                if let Err(message) = check_token(name, "cookie name") {
                    report.invalid("sticky.cookie", message);
                }
            }
            None => {}
        }
        match &self.rewrite {
            Some(_) if self.strip_prefix => {
                report.invalid("rewrite", "cannot be combined with `strip_prefix`");
            }
            Some(Rewrite::Prefix(p)) => {
                if let Err(message) = check_request_path(p, Query::Refused) {
                    report.invalid("rewrite.prefix", message);
                }
            }
            Some(Rewrite::Path(p)) => {
                if let Err(message) = check_request_path(p, Query::Refused) {
                    report.invalid("rewrite.path", message);
                }
            }
            None => {}
        }
        if let Some(host) = &self.host_rewrite {
            if self.preserve_host {
                report.invalid("host_rewrite", "cannot be combined with `preserve_host`");
            } else if let Err(message) = check_host_with_port(host) {
                report.invalid("host_rewrite", message);
            }
        }
        check_transform(&self.request_headers, "request_headers", report);
        check_transform(&self.response_headers, "response_headers", report);
        if let Some(redirect) = &self.redirect {
            check_redirect(redirect, report);
        }
        if let Some(direct) = &self.direct_response {
            if self.redirect.is_some() {
                report.invalid("direct_response", "cannot be combined with `redirect`");
            }
            check_direct_response(direct, report);
        }
        if let Some(mirror) = &self.mirror {
            self.check_mirror(mirror, report);
        }
    }

    fn check_mirror(&self, mirror: &Mirror, report: &mut Report<'_>) {
        if self.redirect.is_some() || self.direct_response.is_some() {
            report.invalid(
                "mirror",
                "a route that answers by itself forwards nothing to mirror",
            );
        }
        if mirror.upstream.is_empty() {
            report.invalid("mirror.upstream", "must not be empty");
        } else if let Err(message) = validate_name(&mirror.upstream) {
            report.invalid("mirror.upstream", message);
        } else if matches!(&*self.backends, [only] if only.upstream == mirror.upstream) {
            report.invalid(
                "mirror.upstream",
                format!(
                    "`{}` is the route's only backend; mirroring to it would send every request twice",
                    mirror.upstream
                ),
            );
        }
        if mirror.percent > 100 {
            report.invalid("mirror.percent", "must be between 0 and 100");
        }
    }
}

fn check_method(method: &str) -> Result<(), String> {
    check_len(method, MAX_METHOD_LEN)?;
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "`{}` is not an HTTP method; use upper case, e.g. GET",
            method.escape_debug()
        ));
    }
    Ok(())
}

fn check_header_match(header: &HeaderMatch, at: &str, report: &mut Report<'_>) {
    if let Err(message) = check_token(&header.name, "header name") {
        report.invalid(format!("{at}.name"), message);
    }
    check_value_match(
        at,
        header.exact.as_deref(),
        header.regex.as_deref(),
        header.present,
        report,
    );
}

fn check_query_match(query: &QueryMatch, at: &str, report: &mut Report<'_>) {
    if query.name.is_empty() || query.name.len() > MAX_HEADER_NAME_LEN {
        report.invalid(
            format!("{at}.name"),
            format!("must be 1-{MAX_HEADER_NAME_LEN} characters"),
        );
    }
    check_value_match(
        at,
        query.exact.as_deref(),
        query.regex.as_deref(),
        query.present,
        report,
    );
}

fn check_value_match(
    at: &str,
    exact: Option<&str>,
    regex: Option<&str>,
    present: Option<bool>,
    report: &mut Report<'_>,
) {
    let kinds = usize::from(exact.is_some())
        + usize::from(regex.is_some())
        + usize::from(present.is_some());
    if kinds != 1 {
        report.invalid(at, "set exactly one of `exact`, `regex` or `present`");
    }
    if let Some(value) = exact
        && let Err(message) = check_header_value(value)
    {
        report.invalid(format!("{at}.exact"), message);
    }
    if let Some(pattern) = regex
        && let Err(message) = compile_full_match(pattern)
    {
        report.invalid(format!("{at}.regex"), message);
    }
    if present == Some(false) {
        report.invalid(
            format!("{at}.present"),
            "must be true; use `invert` to require absence",
        );
    }
}

fn check_transform(transform: &HeaderTransform, at: &str, report: &mut Report<'_>) {
    for (kind, map) in [("add", &transform.add), ("set", &transform.set)] {
        let items = format!("headers to {kind}");
        if !within_count(
            map.len(),
            MAX_HEADER_EDITS,
            &format!("{at}.{kind}"),
            &items,
            report,
        ) {
            continue;
        }
        for (name, value) in map {
            // The field is named by the header; one too long to check is named by its kind.
            let field = if name.len() <= MAX_HEADER_NAME_LEN {
                format!("{at}.{kind}.{name}")
            } else {
                format!("{at}.{kind}")
            };
            if let Err(message) = check_editable_header(name) {
                report.invalid(field, message);
            } else if let Err(message) = check_header_value(value) {
                report.invalid(field, message);
            }
        }
    }
    if !within_count(
        transform.remove.len(),
        MAX_HEADER_EDITS,
        &format!("{at}.remove"),
        "headers to remove",
        report,
    ) {
        return;
    }
    for (i, name) in transform.remove.iter().enumerate() {
        if let Err(message) = check_editable_header(name) {
            report.invalid(format!("{at}.remove[{i}]"), message);
        }
    }
}

fn check_redirect(redirect: &Redirect, report: &mut Report<'_>) {
    if let Some(scheme) = &redirect.scheme
        && !matches!(scheme.as_str(), "http" | "https")
    {
        report.invalid("redirect.scheme", "must be `http` or `https`");
    }
    if let Some(host) = &redirect.host
        && let Err(message) = check_hostname(host)
    {
        report.invalid("redirect.host", message);
    }
    if redirect.port == Some(0) {
        report.invalid("redirect.port", "must be between 1 and 65535");
    }
    if redirect.path.is_some() && redirect.prefix.is_some() {
        report.invalid("redirect", "set `path` or `prefix`, not both");
    }
    for (field, value) in [
        ("redirect.path", &redirect.path),
        ("redirect.prefix", &redirect.prefix),
    ] {
        if let Some(path) = value
            && let Err(message) = check_request_path(path, Query::Refused)
        {
            report.invalid(field, message);
        }
    }
    if !matches!(redirect.code, 301 | 302 | 303 | 307 | 308) {
        report.invalid("redirect.code", "must be 301, 302, 303, 307 or 308");
    }
}

fn check_direct_response(direct: &DirectResponse, report: &mut Report<'_>) {
    if !(200..=599).contains(&direct.status) {
        report.invalid("direct_response.status", "must be between 200 and 599");
    }
    if let Err(message) = check_len(&direct.body, MAX_BODY_LEN) {
        report.invalid("direct_response.body", message);
    }
    if let Some(content_type) = &direct.content_type
        && let Err(message) = check_header_value(content_type)
    {
        report.invalid("direct_response.content_type", message);
    }
}

pub(super) fn check_editable_header(name: &str) -> Result<(), String> {
    check_token(name, "header name")?;
    if RESERVED_HEADERS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "`{name}` is managed by the proxy and cannot be edited"
        ));
    }
    Ok(())
}

fn check_header_value(value: &str) -> Result<(), String> {
    check_len(value, MAX_HEADER_VALUE_LEN)?;
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err("must not contain control characters (CR, LF, NUL, ...)".into());
    }
    Ok(())
}

fn check_host_with_port(host: &str) -> Result<(), String> {
    check_len(host, MAX_ADDRESS_LEN)?;
    match host.rsplit_once(':') {
        Some((name, port)) => {
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(format!(
                    "`{}`: the port must be between 1 and 65535",
                    host.escape_debug()
                ));
            }
            check_hostname(name)
        }
        None => check_hostname(host),
    }
}

fn check_host_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("must not be empty; leave `hosts` out to match any host".into());
    }
    check_name_pattern(pattern, "hosts are matched")
}

/// A path prefix: a request path, with few enough segments for the worker's trie. The worker
/// drops a prefix's trailing `/`s, so they are not segments.
fn check_prefix(prefix: &str) -> Result<(), String> {
    check_request_path(prefix, Query::Refused)?;
    let segments = prefix.trim_end_matches('/').matches('/').count();
    if segments > MAX_PREFIX_SEGMENTS {
        return Err(format!(
            "has {segments} segments; at most {MAX_PREFIX_SEGMENTS} are allowed in a prefix"
        ));
    }
    Ok(())
}

/// An `Upgrade` protocol a route allows: `name` or `name/version` of token characters
/// (RFC 9110 §7.8); WebSocket is always allowed and `h2c` never is.
fn check_upgrade(protocol: &str) -> Result<(), String> {
    if protocol.is_empty() || protocol.len() > MAX_UPGRADE_LEN {
        return Err(format!("must be 1 to {MAX_UPGRADE_LEN} characters"));
    }
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let fine = match protocol.split_once('/') {
        Some((name, version)) => token(name) && token(version),
        None => token(protocol),
    };
    if !fine {
        return Err("must be a protocol name, optionally with `/version` (RFC 9110 §7.8)".into());
    }
    let name = protocol.split('/').next().unwrap_or(protocol);
    if name.eq_ignore_ascii_case("h2c") {
        return Err(
            "`h2c` would carry requests past the route table; it is never switched to".into(),
        );
    }
    if name.eq_ignore_ascii_case("websocket") {
        return Err("WebSocket is always allowed; list only other protocols".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Backend;

    fn route(json: serde_json::Value) -> Route {
        let mut base = serde_json::json!({"name": "r", "backends": [{"upstream": "api"}]});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), json.as_object()) {
            for (key, value) in extra {
                base.insert(key.clone(), value.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn fields(route: &Route) -> Vec<String> {
        match route.validate() {
            Ok(()) => vec![],
            Err(errors) => errors.0.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn regex_paths_are_compiled_with_a_size_limit() {
        let ok = route(serde_json::json!({"paths": [{"regex": "/users/[0-9]+"}]}));
        assert!(fields(&ok).is_empty());
        let bad = route(serde_json::json!({"paths": [
            {"prefix": "/ok"}, {"regex": "/(unclosed"}, {"regex": "(((a{100}){100}){100})"}
        ]}));
        assert_eq!(fields(&bad), ["paths[1].regex", "paths[2].regex"]);
        let err = bad.validate().unwrap_err();
        assert!(
            err.0[1].message.contains("simplify"),
            "{}",
            err.0[1].message
        );
        let long = route(serde_json::json!({"paths": [{"regex": "a".repeat(2000)}]}));
        assert_eq!(fields(&long), ["paths[0].regex"]);
        let re = compile_full_match("/a|/b").unwrap();
        assert!(re.is_match("/a") && re.is_match("/b") && !re.is_match("/a/b"));
    }

    #[test]
    fn header_and_query_conditions() {
        let ok = route(serde_json::json!({
            "headers": [{"name": "x-env", "exact": "canary"}, {"name": "x-id", "regex": "[0-9]+"},
                        {"name": "x-debug", "present": true, "invert": true}],
            "query": [{"name": "v", "exact": "2"}, {"name": "q", "present": true}]
        }));
        assert!(fields(&ok).is_empty(), "{:?}", ok.validate());
        let bad = route(serde_json::json!({
            "headers": [{"name": "bad name", "exact": "x"}, {"name": "a"},
                        {"name": "b", "exact": "x", "present": true}, {"name": "c", "regex": "("},
                        {"name": "d", "exact": "a\nb"}, {"name": "e", "present": false}],
            "query": [{"name": "", "present": true}, {"name": "q", "regex": "["}]
        }));
        assert_eq!(
            fields(&bad),
            [
                "headers[0].name",
                "headers[1]",
                "headers[2]",
                "headers[3].regex",
                "headers[4].exact",
                "headers[5].present",
                "query[0].name",
                "query[1].regex"
            ]
        );
    }

    #[test]
    fn exclusive_actions() {
        let both = route(serde_json::json!({
            "strip_prefix": true, "rewrite": {"prefix": "/v2"},
            "preserve_host": true, "host_rewrite": "internal"
        }));
        assert_eq!(fields(&both), ["rewrite", "host_rewrite"]);
        let ok =
            route(serde_json::json!({"rewrite": {"path": "/fixed"}, "host_rewrite": "a.b:8080"}));
        assert!(fields(&ok).is_empty());
        let bad = route(serde_json::json!({"rewrite": {"prefix": "v2"}, "host_rewrite": "a b"}));
        assert_eq!(fields(&bad), ["rewrite.prefix", "host_rewrite"]);
        let redirect_and_direct = route(serde_json::json!({
            "backends": [], "redirect": {"host": "x.com"}, "direct_response": {"status": 200}
        }));
        assert_eq!(fields(&redirect_and_direct), ["direct_response"]);
        let redirect_with_backends = route(serde_json::json!({"redirect": {"host": "x.com"}}));
        assert_eq!(fields(&redirect_with_backends), ["backends"]);
        let nothing = route(serde_json::json!({"backends": []}));
        assert_eq!(fields(&nothing), ["backends"]);
    }

    #[test]
    fn redirects_and_direct_responses() {
        let ok = route(serde_json::json!({"backends": [],
            "redirect": {"scheme": "https", "host": "example.com", "port": 8443, "prefix": "/new"}}));
        assert!(fields(&ok).is_empty());
        assert_eq!(ok.redirect.as_ref().unwrap().code, 302);
        let bad = route(serde_json::json!({"backends": [],
            "redirect": {"scheme": "ftp", "host": "-x", "port": 0, "path": "/a", "prefix": "b",
                         "code": 200}}));
        assert_eq!(
            fields(&bad),
            [
                "redirect.scheme",
                "redirect.host",
                "redirect.port",
                "redirect",
                "redirect.prefix",
                "redirect.code"
            ]
        );
        let direct = route(serde_json::json!({"backends": [],
            "direct_response": {"status": 99, "body": "x".repeat(70_000), "content_type": "a\r\nb"}}));
        assert_eq!(
            fields(&direct),
            [
                "direct_response.status",
                "direct_response.body",
                "direct_response.content_type"
            ]
        );
    }

    #[test]
    fn header_transforms_sticky_and_mirror() {
        let ok = route(serde_json::json!({
            "request_headers": {"add": {"x-a": "1"}, "set": {"x-b": "2"}, "remove": ["x-c"]},
            "response_headers": {"set": {"cache-control": "no-store"}},
            "sticky": {"cookie": "session"},
            "mirror": {"upstream": "shadow", "percent": 10}
        }));
        assert!(fields(&ok).is_empty(), "{:?}", ok.validate());
        assert_eq!(ok.mirror.as_ref().unwrap().percent, 10);
        let bad = route(serde_json::json!({
            "request_headers": {"add": {"bad name": "1"}, "set": {"host": "x"}, "remove": ["Content-Length"]},
            "response_headers": {"set": {"x-ok": "a\u{0}b"}},
            "sticky": {"header": "x y"},
            "mirror": {"upstream": "api", "percent": 101}
        }));
        assert_eq!(
            fields(&bad),
            [
                "sticky.header",
                "request_headers.add.bad name",
                "request_headers.set.host",
                "request_headers.remove[0]",
                "response_headers.set.x-ok",
                "mirror.upstream",
                "mirror.percent"
            ]
        );
        let mut two = route(serde_json::json!({"mirror": {"upstream": "api"}}));
        two.backends.push(Backend {
            upstream: "other".into(),
            weight: 1,
        });
        assert!(fields(&two).is_empty());
        let cookie = route(serde_json::json!({"sticky": {"cookie": "a=b"}}));
        assert_eq!(fields(&cookie), ["sticky.cookie"]);
    }

    #[test]
    fn mirror_references_are_checked_with_the_config() {
        let mut config = crate::model::Config::default();
        for name in ["api", "shadow"] {
            let upstream: crate::model::Upstream = serde_json::from_value(
                serde_json::json!({"name": name, "targets": [{"address": "127.0.0.1:1"}]}),
            )
            .unwrap();
            config.upstreams.insert(name.into(), upstream);
        }
        let mirrored = route(serde_json::json!({"mirror": {"upstream": "shadow"}}));
        config.routes.insert("r".into(), mirrored);
        assert!(config.validate().is_ok());
        assert_eq!(config.routes_using("shadow"), ["r"]);
        assert_eq!(
            config.references_to("shadow"),
            [("r", "mirror.upstream".to_owned())]
        );
        config.upstreams.remove("shadow");
        let errors = config.validate().unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "mirror.upstream");
        assert_eq!(errors.0[0].error, super::super::ErrorKind::UnknownReference);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = r#"{"name": "r", "backends": [{"upstream": "a"}], "headers": [{"name": "x", "exakt": "1"}]}"#;
        assert!(serde_json::from_str::<Route>(json).is_err());
        let json = r#"{"name": "r", "backends": [{"upstream": "a"}], "sticky": {"ip": true}}"#;
        assert!(serde_json::from_str::<Route>(json).is_err());
    }
}
