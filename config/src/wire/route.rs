//! Routes on the wire.

use gateway_proto::v1;

use super::WireError;
use crate::Kind;
use crate::model::{
    Backend, DirectResponse, Duration, HeaderMatch, HeaderTransform, IpRestriction, Mirror,
    PathMatch, Plugins, QueryMatch, Redirect, RequestId, RequestSizeLimit, Retries, Rewrite, Route,
    Sticky,
};

impl From<&Route> for v1::Route {
    fn from(r: &Route) -> Self {
        v1::Route {
            name: r.name.clone(),
            tags: r.tags.clone(),
            hosts: r.hosts.clone(),
            paths: r
                .paths
                .iter()
                .map(|p| v1::PathMatch {
                    kind: Some(match p {
                        PathMatch::Prefix(v) => v1::path_match::Kind::Prefix(v.clone()),
                        PathMatch::Exact(v) => v1::path_match::Kind::Exact(v.clone()),
                        PathMatch::Regex(v) => v1::path_match::Kind::Regex(v.clone()),
                    }),
                })
                .collect(),
            methods: r.methods.clone(),
            strip_prefix: r.strip_prefix,
            preserve_host: r.preserve_host,
            upgrades: r.upgrades.clone(),
            backends: r
                .backends
                .iter()
                .map(|b| v1::Backend {
                    upstream: b.upstream.clone(),
                    weight: b.weight,
                })
                .collect(),
            priority: r.priority,
            created_at_unix_ms: r.created_at_unix_ms,
            timeout_ms: r.timeout.map(Duration::as_millis),
            retries: r.retries.as_ref().map(v1::Retries::from),
            headers: r
                .headers
                .iter()
                .map(|h| v1::HeaderMatch {
                    name: h.name.clone(),
                    exact: h.exact.clone(),
                    regex: h.regex.clone(),
                    present: h.present,
                    invert: h.invert,
                })
                .collect(),
            query: r
                .query
                .iter()
                .map(|q| v1::QueryMatch {
                    name: q.name.clone(),
                    exact: q.exact.clone(),
                    regex: q.regex.clone(),
                    present: q.present,
                })
                .collect(),
            rewrite: r.rewrite.as_ref().map(|rewrite| v1::Rewrite {
                kind: Some(match rewrite {
                    Rewrite::Prefix(p) => v1::rewrite::Kind::Prefix(p.clone()),
                    Rewrite::Path(p) => v1::rewrite::Kind::Path(p.clone()),
                }),
            }),
            host_rewrite: r.host_rewrite.clone(),
            sticky: r.sticky.as_ref().map(|sticky| v1::Sticky {
                key: Some(match sticky {
                    Sticky::Header(n) => v1::sticky::Key::Header(n.clone()),
                    Sticky::Cookie(n) => v1::sticky::Key::Cookie(n.clone()),
                }),
            }),
            request_headers: transform_to_wire(&r.request_headers),
            response_headers: transform_to_wire(&r.response_headers),
            redirect: r.redirect.as_ref().map(|d| v1::Redirect {
                scheme: d.scheme.clone(),
                host: d.host.clone(),
                port: d.port.map(u32::from),
                path: d.path.clone(),
                prefix: d.prefix.clone(),
                code: u32::from(d.code),
            }),
            direct_response: r.direct_response.as_ref().map(|d| v1::DirectResponse {
                status: u32::from(d.status),
                body: d.body.clone(),
                content_type: d.content_type.clone(),
            }),
            mirror: r.mirror.as_ref().map(|m| v1::Mirror {
                upstream: m.upstream.clone(),
                percent: m.percent,
            }),
            plugins: plugins_to_wire(&r.plugins),
        }
    }
}

fn plugins_to_wire(p: &Plugins) -> Option<v1::Plugins> {
    (!p.is_empty()).then(|| v1::Plugins {
        request_id: p.request_id.as_ref().map(|r| v1::RequestId {
            header: r.header.clone(),
            keep_incoming: r.keep_incoming,
            echo: r.echo,
        }),
        ip_restriction: p.ip_restriction.as_ref().map(|r| v1::IpRestriction {
            allow: r.allow.clone(),
            deny: r.deny.clone(),
        }),
        request_size_limit: p.request_size_limit.as_ref().map(|l| v1::RequestSizeLimit {
            max_bytes: l.max_bytes,
        }),
    })
}

fn plugins_from_wire(p: Option<v1::Plugins>) -> Plugins {
    let Some(p) = p else {
        return Plugins::default();
    };
    Plugins {
        request_id: p.request_id.map(|r| RequestId {
            header: r.header,
            keep_incoming: r.keep_incoming,
            echo: r.echo,
        }),
        ip_restriction: p.ip_restriction.map(|r| IpRestriction {
            allow: r.allow,
            deny: r.deny,
        }),
        request_size_limit: p.request_size_limit.map(|l| RequestSizeLimit {
            max_bytes: l.max_bytes,
        }),
    }
}

fn transform_to_wire(t: &HeaderTransform) -> Option<v1::HeaderTransform> {
    (!t.is_empty()).then(|| v1::HeaderTransform {
        add: t.add.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        set: t.set.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        remove: t.remove.clone(),
    })
}

fn transform_from_wire(t: Option<v1::HeaderTransform>) -> HeaderTransform {
    t.map(|t| HeaderTransform {
        add: t.add.into_iter().collect(),
        set: t.set.into_iter().collect(),
        remove: t.remove,
    })
    .unwrap_or_default()
}

/// A wire number that must fit the model's `u16`.
fn narrow(name: &str, field: &'static str, value: u32) -> Result<u16, WireError> {
    u16::try_from(value).map_err(|_| WireError::Invalid {
        kind: Kind::Route,
        name: name.to_owned(),
        field,
        message: format!("{value} is out of range"),
    })
}

fn empty_oneof(name: &str, field: &'static str) -> WireError {
    WireError::Invalid {
        kind: Kind::Route,
        name: name.to_owned(),
        field,
        message: "no kind set".into(),
    }
}

impl TryFrom<v1::Route> for Route {
    type Error = WireError;

    fn try_from(r: v1::Route) -> Result<Self, WireError> {
        let mut paths = Vec::with_capacity(r.paths.len());
        for (index, path) in r.paths.into_iter().enumerate() {
            paths.push(match path.kind {
                Some(v1::path_match::Kind::Prefix(v)) => PathMatch::Prefix(v),
                Some(v1::path_match::Kind::Exact(v)) => PathMatch::Exact(v),
                Some(v1::path_match::Kind::Regex(v)) => PathMatch::Regex(v),
                None => {
                    return Err(WireError::EmptyPathMatch {
                        name: r.name,
                        index,
                    });
                }
            });
        }
        let retries = match r.retries {
            Some(retries) => {
                Some(
                    Retries::try_from(retries).map_err(|message| WireError::Invalid {
                        kind: Kind::Route,
                        name: r.name.clone(),
                        field: "retries.on",
                        message,
                    })?,
                )
            }
            None => None,
        };
        let rewrite = match r.rewrite.map(|w| w.kind) {
            Some(Some(v1::rewrite::Kind::Prefix(p))) => Some(Rewrite::Prefix(p)),
            Some(Some(v1::rewrite::Kind::Path(p))) => Some(Rewrite::Path(p)),
            Some(None) => return Err(empty_oneof(&r.name, "rewrite")),
            None => None,
        };
        let sticky = match r.sticky.map(|s| s.key) {
            Some(Some(v1::sticky::Key::Header(n))) => Some(Sticky::Header(n)),
            Some(Some(v1::sticky::Key::Cookie(n))) => Some(Sticky::Cookie(n)),
            Some(None) => return Err(empty_oneof(&r.name, "sticky")),
            None => None,
        };
        let redirect = match r.redirect {
            Some(d) => Some(Redirect {
                scheme: d.scheme,
                host: d.host,
                port: d
                    .port
                    .map(|p| narrow(&r.name, "redirect.port", p))
                    .transpose()?,
                path: d.path,
                prefix: d.prefix,
                code: narrow(&r.name, "redirect.code", d.code)?,
            }),
            None => None,
        };
        let direct_response = match r.direct_response {
            Some(d) => Some(DirectResponse {
                status: narrow(&r.name, "direct_response.status", d.status)?,
                body: d.body,
                content_type: d.content_type,
            }),
            None => None,
        };
        Ok(Route {
            name: r.name,
            tags: r.tags,
            hosts: r.hosts,
            paths,
            methods: r.methods,
            headers: r
                .headers
                .into_iter()
                .map(|h| HeaderMatch {
                    name: h.name,
                    exact: h.exact,
                    regex: h.regex,
                    present: h.present,
                    invert: h.invert,
                })
                .collect(),
            query: r
                .query
                .into_iter()
                .map(|q| QueryMatch {
                    name: q.name,
                    exact: q.exact,
                    regex: q.regex,
                    present: q.present,
                })
                .collect(),
            strip_prefix: r.strip_prefix,
            rewrite,
            preserve_host: r.preserve_host,
            upgrades: r.upgrades,
            host_rewrite: r.host_rewrite,
            backends: r
                .backends
                .into_iter()
                .map(|b| Backend {
                    upstream: b.upstream,
                    weight: b.weight,
                })
                .collect(),
            sticky,
            request_headers: transform_from_wire(r.request_headers),
            response_headers: transform_from_wire(r.response_headers),
            redirect,
            direct_response,
            mirror: r.mirror.map(|m| Mirror {
                upstream: m.upstream,
                percent: m.percent,
            }),
            priority: r.priority,
            created_at_unix_ms: r.created_at_unix_ms,
            timeout: r.timeout_ms.map(Duration::from_millis),
            retries,
            plugins: plugins_from_wire(r.plugins),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn through_the_wire(route: &Route) -> Route {
        Route::try_from(v1::Route::from(route)).unwrap()
    }

    #[test]
    fn every_routing_field_survives_the_wire() {
        let full: Route = serde_json::from_value(serde_json::json!({
            "name": "full",
            "hosts": ["a.example.com"],
            "paths": [{"prefix": "/a"}, {"exact": "/b"}, {"regex": "/c/[0-9]+"}],
            "methods": ["GET"],
            "headers": [{"name": "x-a", "exact": "1"}, {"name": "x-b", "regex": "v.*"},
                        {"name": "x-c", "present": true, "invert": true}],
            "query": [{"name": "q", "exact": "1"}, {"name": "r", "regex": "[a-z]+"},
                      {"name": "s", "present": true}],
            "rewrite": {"prefix": "/v2"},
            "host_rewrite": "internal.example.com",
            "backends": [{"upstream": "a", "weight": 5}, {"upstream": "b", "weight": 95}],
            "sticky": {"cookie": "session"},
            "request_headers": {"add": {"x-add": "1"}, "set": {"x-set": "2"}, "remove": ["x-rm"]},
            "response_headers": {"set": {"x-route": "full"}},
            "mirror": {"upstream": "shadow", "percent": 25},
            "priority": 3,
            "plugins": {
                "request_id": {"header": "x-trace-id", "keep_incoming": false, "echo": false},
                "ip_restriction": {"allow": ["10.0.0.0/8"], "deny": ["10.1.0.0/16", "::1"]},
                "request_size_limit": {"max_bytes": 4096}
            }
        }))
        .unwrap();
        assert_eq!(through_the_wire(&full), full);

        let answers: Route = serde_json::from_value(serde_json::json!({
            "name": "redirect",
            "sticky": {"header": "x-user"},
            "rewrite": {"path": "/fixed"},
            "redirect": {"scheme": "https", "host": "b.example.com", "port": 8443,
                         "prefix": "/new", "code": 308}
        }))
        .unwrap();
        assert_eq!(through_the_wire(&answers), answers);

        let direct: Route = serde_json::from_value(serde_json::json!({
            "name": "direct",
            "redirect": {"path": "/x"},
            "direct_response": {"status": 418, "body": "teapot", "content_type": "text/plain"}
        }))
        .unwrap();
        assert_eq!(through_the_wire(&direct), direct);
        // The document keeps its shape, with the redirect code made explicit.
        let json = serde_json::to_value(&direct).unwrap();
        assert_eq!(json["redirect"]["code"], 302);
        assert!(json.get("backends").is_none());
    }

    #[test]
    fn malformed_wire_values_are_refused() {
        let mut wire = v1::Route::from(&Route {
            name: "r".into(),
            ..Default::default()
        });
        wire.redirect = Some(v1::Redirect {
            port: Some(70_000),
            code: 302,
            ..Default::default()
        });
        assert!(matches!(
            Route::try_from(wire.clone()),
            Err(WireError::Invalid {
                field: "redirect.port",
                ..
            })
        ));
        wire.redirect = None;
        wire.sticky = Some(v1::Sticky { key: None });
        assert!(matches!(
            Route::try_from(wire),
            Err(WireError::Invalid {
                field: "sticky",
                ..
            })
        ));
    }
}
