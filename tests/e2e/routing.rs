//! Route matching and route actions through real workers: one conformance table of routes
//! (every match kind and every precedence rule) checked request by request on every worker, a
//! 5/95 canary split, sticky canaries, rewrites, redirects, direct responses, header transforms
//! and mirroring (including to a dead mirror target).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::http::{Reply, send};
use gateway_tests::upstream::EchoServer;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

/// One echo server and one upstream per name, so a reply names the route that served it.
async fn echo_upstreams(names: &[&str]) -> (Vec<EchoServer>, Vec<Value>) {
    let mut servers = Vec::new();
    let mut upstreams = Vec::new();
    for name in names {
        let server = EchoServer::start(name).await;
        upstreams.push(json!({"name": name, "targets": [{"address": server.address()}]}));
        servers.push(server);
    }
    (servers, upstreams)
}

/// A request through a worker: method, host, path with query, extra headers.
async fn request(
    cluster: &Cluster,
    worker: usize,
    method: &str,
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut builder = cluster
        .client
        .request(method, cluster.workers[worker].url(target))
        .header("host", host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(builder).await.unwrap()
}

#[tokio::test]
async fn conformance_table_on_every_worker() {
    let cluster = Cluster::start(2).await;
    // Each route with a backend sends to an echo server named after the route.
    let routes = json!([
        {"name": "any-root", "paths": [{"prefix": "/"}]},
        {"name": "exact-host", "hosts": ["api.example.com"], "paths": [{"prefix": "/"}]},
        {"name": "wild-long", "hosts": ["*.eu.example.com"]},
        {"name": "wild-short", "hosts": ["*.example.com"]},
        {"name": "prio", "priority": 10, "hosts": ["*.example.com"], "paths": [{"prefix": "/urgent"}]},
        {"name": "exact-path", "hosts": ["p.test"], "paths": [{"exact": "/p/exact"}]},
        {"name": "long-prefix", "hosts": ["p.test"], "paths": [{"prefix": "/p/long/er"}]},
        {"name": "short-prefix", "hosts": ["p.test"], "paths": [{"prefix": "/p"}]},
        {"name": "regex-num", "hosts": ["rx.test"], "paths": [{"regex": "/r/[0-9]+"}]},
        {"name": "rx-prefix", "hosts": ["rx.test"], "paths": [{"prefix": "/r/admin"}]},
        {"name": "method-get", "hosts": ["m.test"], "paths": [{"prefix": "/m"}], "methods": ["GET"]},
        {"name": "method-any", "hosts": ["m.test"], "paths": [{"prefix": "/m"}]},
        {"name": "hdr-two", "hosts": ["h.test"],
         "headers": [{"name": "x-env", "exact": "canary"}, {"name": "x-user", "regex": "[0-9]+"}]},
        {"name": "hdr-one", "hosts": ["h.test"], "headers": [{"name": "x-env", "exact": "canary"}]},
        {"name": "hdr-inverted", "hosts": ["h.test"], "paths": [{"prefix": "/inv"}],
         "headers": [{"name": "x-debug", "present": true, "invert": true}]},
        {"name": "hdr-none", "hosts": ["h.test"]},
        {"name": "q-two", "hosts": ["q.test"],
         "query": [{"name": "v", "exact": "2"}, {"name": "debug", "present": true}]},
        {"name": "q-one", "hosts": ["q.test"], "query": [{"name": "v", "exact": "2"}]},
        {"name": "q-hdr", "hosts": ["q.test"], "headers": [{"name": "x-a", "present": true}]},
        {"name": "q-none", "hosts": ["q.test"]},
        {"name": "tie-b", "hosts": ["tie.test"]},
        {"name": "tie-a", "hosts": ["tie.test"]}
    ]);
    let names: Vec<&str> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let (_servers, upstreams) = echo_upstreams(&names).await;
    let routes: Vec<Value> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["backends"] = json!([{"upstream": r["name"]}]);
            r
        })
        .collect();
    cluster
        .apply(&json!({"upstreams": upstreams, "routes": routes}))
        .await;
    // A route created later with the same conditions as `tie-b`: older wins before the name does.
    let (_late_server, late_upstream) = echo_upstreams(&["aaa-newer"]).await;
    let reply = cluster.admin.post("/v1/upstreams", &late_upstream[0]).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let reply = cluster
        .admin
        .post(
            "/v1/routes",
            &json!({"name": "aaa-newer", "hosts": ["tie.test"], "backends": [{"upstream": "aaa-newer"}]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    cluster
        .wait_for_revision(cluster.admin.latest_revision().await)
        .await;

    // (method, host, path, headers, expected route)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: &[Case] = &[
        ("GET", "other.test", "/anything", &[], "any-root"),
        // Hosts: exact over wildcard, longer wildcard suffix first, case and port ignored.
        ("GET", "api.example.com", "/x", &[], "exact-host"),
        ("GET", "API.Example.com:8080", "/x", &[], "exact-host"),
        ("GET", "a.eu.example.com", "/x", &[], "wild-long"),
        ("GET", "b.example.com", "/x", &[], "wild-short"),
        ("GET", "example.com", "/x", &[], "any-root"),
        // Priority first, even over an exact host.
        ("GET", "api.example.com", "/urgent/now", &[], "prio"),
        // Paths: exact, then the longest prefix (segment-aware).
        ("GET", "p.test", "/p/exact", &[], "exact-path"),
        ("GET", "p.test", "/p/exact/more", &[], "short-prefix"),
        ("GET", "p.test", "/p/long/er/x", &[], "long-prefix"),
        ("GET", "p.test", "/p/long/error", &[], "short-prefix"),
        ("GET", "p.test", "/px", &[], "any-root"),
        // Regex: whole path, after prefixes.
        ("GET", "rx.test", "/r/42", &[], "regex-num"),
        ("GET", "rx.test", "/r/admin", &[], "rx-prefix"),
        ("GET", "rx.test", "/r/42/x", &[], "any-root"),
        // A method match beats none.
        ("GET", "m.test", "/m", &[], "method-get"),
        ("POST", "m.test", "/m", &[], "method-any"),
        // More header conditions first; a failed condition falls through; invert negates.
        (
            "GET",
            "h.test",
            "/",
            &[("x-env", "canary"), ("x-user", "7")],
            "hdr-two",
        ),
        (
            "GET",
            "h.test",
            "/",
            &[("x-env", "canary"), ("x-user", "x")],
            "hdr-one",
        ),
        ("GET", "h.test", "/", &[("x-env", "stable")], "hdr-none"),
        ("GET", "h.test", "/inv", &[], "hdr-inverted"),
        ("GET", "h.test", "/inv", &[("x-debug", "1")], "hdr-none"),
        // More query conditions first; a header condition ranks before a query condition.
        ("GET", "q.test", "/?v=2&debug", &[], "q-two"),
        ("GET", "q.test", "/?v=2", &[], "q-one"),
        ("GET", "q.test", "/?v=%32", &[], "q-one"),
        ("GET", "q.test", "/?v=3", &[], "q-none"),
        ("GET", "q.test", "/?v=2", &[("x-a", "1")], "q-hdr"),
        // Then the older route, then the name.
        ("GET", "tie.test", "/", &[], "tie-a"),
    ];
    for worker in 0..cluster.workers.len() {
        for (method, host, path, headers, expected) in cases {
            let reply = request(&cluster, worker, method, host, path, headers).await;
            assert_eq!(
                (reply.status, reply.server()),
                (200, *expected),
                "worker {worker}: {method} {host}{path} {headers:?}: {}",
                reply.text
            );
        }
    }
}

/// Sends `total` GETs, `parallel` at a time, and counts the servers that answered.
async fn spread(
    cluster: &Cluster,
    path: &str,
    headers: Vec<(String, String)>,
    total: usize,
    parallel: usize,
) -> BTreeMap<String, usize> {
    let counts = Arc::new(Mutex::new(BTreeMap::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..parallel {
        let client = cluster.client.clone();
        let url = cluster.workers[lane % cluster.workers.len()].url(path);
        let counts = counts.clone();
        let headers = headers.clone();
        let share = total / parallel + usize::from(lane < total % parallel);
        tasks.spawn(async move {
            for _ in 0..share {
                let mut builder = client.get(&url);
                for (name, value) in &headers {
                    builder = builder.header(name, value);
                }
                let reply = send(builder).await.unwrap();
                assert_eq!(reply.status, 200, "{}", reply.text);
                *counts
                    .lock()
                    .unwrap()
                    .entry(reply.server().to_owned())
                    .or_insert(0) += 1;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    counts.lock().unwrap().clone()
}

#[tokio::test]
async fn canary_split_and_sticky_canary() {
    let cluster = Cluster::start(2).await;
    let (_servers, upstreams) = echo_upstreams(&["stable", "canary"]).await;
    let backends =
        json!([{"upstream": "stable", "weight": 95}, {"upstream": "canary", "weight": 5}]);
    cluster
        .apply(&json!({"upstreams": upstreams, "routes": [
            {"name": "split", "paths": [{"prefix": "/split"}], "backends": backends},
            {"name": "sticky", "paths": [{"prefix": "/sticky"}], "backends": backends,
             "sticky": {"header": "x-user"}}
        ]}))
        .await;

    let counts = spread(&cluster, "/split", vec![], 10_000, 32).await;
    let canary = counts.get("canary").copied().unwrap_or(0);
    assert_eq!(counts.values().sum::<usize>(), 10_000);
    assert!((400..=600).contains(&canary), "5% ± 1 point: {counts:?}");

    // The same user always lands on the same side, on every worker; users split by weight.
    let mut canary_users = 0;
    for user in 0..200 {
        let headers = vec![("x-user".to_owned(), format!("user-{user}"))];
        let seen = spread(&cluster, "/sticky", headers, 6, 2).await;
        assert_eq!(seen.len(), 1, "user-{user} moved: {seen:?}");
        canary_users += usize::from(seen.contains_key("canary"));
    }
    assert!((1..=30).contains(&canary_users), "{canary_users} of 200");
}

#[tokio::test]
async fn rewrites_redirects_direct_responses_and_header_transforms() {
    let cluster = Cluster::start(1).await;
    let (_servers, upstreams) = echo_upstreams(&["svc"]).await;
    cluster.apply(
        &json!({"upstreams": upstreams, "routes": [
            {"name": "prefix", "paths": [{"prefix": "/api/v1"}], "backends": [{"upstream": "svc"}],
             "rewrite": {"prefix": "/v2"}, "host_rewrite": "internal.svc"},
            {"name": "whole", "paths": [{"regex": "/item/[0-9]+"}], "backends": [{"upstream": "svc"}],
             "rewrite": {"path": "/item"}},
            {"name": "headers", "paths": [{"prefix": "/h"}], "backends": [{"upstream": "svc"}],
             "request_headers": {"add": {"x-added": "yes"}, "set": {"x-env": "prod"},
                                 "remove": ["x-secret"]},
             "response_headers": {"set": {"x-route": "headers"}, "remove": ["x-served-by"]}},
            {"name": "moved", "paths": [{"prefix": "/old"}],
             "redirect": {"scheme": "https", "host": "new.example.com", "prefix": "/new", "code": 301}},
            {"name": "found", "paths": [{"exact": "/go"}], "redirect": {"path": "/there"}},
            {"name": "teapot", "paths": [{"exact": "/tea"}],
             "direct_response": {"status": 418, "body": "short and stout", "content_type": "text/plain"},
             "response_headers": {"add": {"x-route": "teapot"}}}
        ]}),
    )
    .await;

    let reply = request(&cluster, 0, "GET", "a.test", "/api/v1/users?id=3", &[]).await;
    assert_eq!(reply.body["path"], "/v2/users?id=3", "{}", reply.text);
    assert_eq!(reply.body["headers"]["host"], json!(["internal.svc"]));
    let reply = request(&cluster, 0, "GET", "a.test", "/item/42?x=1", &[]).await;
    assert_eq!(reply.body["path"], "/item?x=1");

    let reply = request(
        &cluster,
        0,
        "GET",
        "a.test",
        "/h",
        &[("x-secret", "s"), ("x-env", "dev"), ("x-added", "client")],
    )
    .await;
    let headers = &reply.body["headers"];
    assert!(headers.get("x-secret").is_none(), "{headers}");
    assert_eq!(headers["x-env"], json!(["prod"]));
    assert_eq!(headers["x-added"], json!(["client", "yes"]));
    assert_eq!(reply.header("x-route"), Some("headers"));
    assert_eq!(reply.header("x-served-by"), None);

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let url = cluster.workers[0].url("/old/a/b?q=1");
    let reply = send(no_redirects.get(url)).await.unwrap();
    assert_eq!(reply.status, 301);
    assert_eq!(
        reply.header("location"),
        Some("https://new.example.com/new/a/b?q=1")
    );
    let reply = send(
        no_redirects
            .get(cluster.workers[0].url("/go"))
            .header("host", "h.test:8080"),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 302);
    assert_eq!(reply.header("location"), Some("http://h.test:8080/there"));

    let reply = request(&cluster, 0, "GET", "a.test", "/tea", &[]).await;
    assert_eq!(reply.status, 418);
    assert_eq!(reply.text, "short and stout");
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert_eq!(reply.header("x-route"), Some("teapot"));
}

/// A server that records the path of every request it gets.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                        record.lock().unwrap().push(path.to_owned());
                        async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new()))) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Recorder { addr, seen, task }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn mirroring_copies_requests_and_never_fails_the_client() {
    let cluster = Cluster::start(1).await;
    let (_servers, mut upstreams) = echo_upstreams(&["main"]).await;
    let recorder = Recorder::start().await;
    // Nothing listens on a port that was just released.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    upstreams.push(json!({"name": "shadow", "targets": [{"address": recorder.addr.to_string()}]}));
    upstreams.push(json!({"name": "dead", "targets": [{"address": dead.to_string()}]}));
    cluster
        .apply(&json!({"upstreams": upstreams, "routes": [
            {"name": "mirrored", "paths": [{"prefix": "/m"}], "backends": [{"upstream": "main"}],
             "mirror": {"upstream": "shadow"}},
            {"name": "to-dead", "paths": [{"prefix": "/d"}], "backends": [{"upstream": "main"}],
             "mirror": {"upstream": "dead", "percent": 100}}
        ]}))
        .await;

    for i in 0..5 {
        let reply = request(&cluster, 0, "GET", "a.test", &format!("/m/{i}?k=v"), &[]).await;
        assert_eq!((reply.status, reply.server()), (200, "main"));
    }
    eventually("the mirror saw every request", CONVERGE, || async {
        let seen = recorder.seen.lock().unwrap().clone();
        if (0..5).all(|i| seen.contains(&format!("/m/{i}?k=v"))) {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;

    for _ in 0..20 {
        let reply = request(&cluster, 0, "GET", "a.test", "/d", &[]).await;
        assert_eq!(
            (reply.status, reply.server()),
            (200, "main"),
            "{}",
            reply.text
        );
    }

    // A mirror to the route's only backend is refused, and so is one to a missing upstream.
    let reply = cluster
        .admin
        .post(
            "/v1/routes",
            &json!({"name": "loop", "backends": [{"upstream": "main"}], "mirror": {"upstream": "main"}}),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.body["error"]["field"], "mirror.upstream");
    let reply = cluster
        .admin
        .post(
            "/v1/routes",
            &json!({"name": "ghost", "backends": [{"upstream": "main"}], "mirror": {"upstream": "ghost"}}),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "unknown_reference");
    // An upstream used only as a mirror is still in use.
    let reply = cluster.admin.delete("/v1/upstreams/shadow").await;
    assert_eq!(reply.status, 409, "{}", reply.text);
}

#[tokio::test]
async fn bad_routing_input_names_the_field() {
    let cluster = Cluster::start(0).await;
    let cases = [
        (
            json!({"paths": [{"regex": "/(unclosed"}]}),
            "paths[0].regex",
        ),
        (
            json!({"paths": [{"regex": "(((a{100}){100}){100})"}]}),
            "paths[0].regex",
        ),
        (
            json!({"headers": [{"name": "x", "exact": "a", "regex": "b"}]}),
            "headers[0]",
        ),
        (
            json!({"query": [{"name": "q", "regex": "["}]}),
            "query[0].regex",
        ),
        (
            json!({"strip_prefix": true, "rewrite": {"prefix": "/v2"}}),
            "rewrite",
        ),
        (
            json!({"preserve_host": true, "host_rewrite": "a.test"}),
            "host_rewrite",
        ),
        (
            json!({"request_headers": {"set": {"content-length": "1"}}}),
            "request_headers.set.content-length",
        ),
        (
            json!({"mirror": {"upstream": "w", "percent": 150}}),
            "mirror.percent",
        ),
        (
            json!({"backends": [], "redirect": {"code": 200}}),
            "redirect.code",
        ),
        (
            json!({"backends": [], "direct_response": {"status": 42}}),
            "direct_response.status",
        ),
        (json!({"redirect": {"host": "a.test"}}), "backends"),
        (json!({"mirror": {"upstream": "u"}}), "mirror.upstream"),
    ];
    let reply = cluster
        .admin
        .post(
            "/v1/upstreams",
            &json!({"name": "u", "targets": [{"address": "127.0.0.1:9"}]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let revisions = cluster.admin.revision_count().await;
    for (extra, field) in cases {
        let mut route = json!({"name": "bad", "backends": [{"upstream": "u"}]});
        route
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let reply = cluster.admin.post("/v1/routes", &route).await;
        assert_eq!(reply.status, 422, "{extra}: {}", reply.text);
        assert_eq!(
            reply.body["error"]["field"], field,
            "{extra}: {}",
            reply.text
        );
    }
    let upstream_cases = [
        (json!({"balance": "fastest"}), "balance"),
        (
            json!({"health_check": {"active": {"path": "healthz"}}}),
            "health_check.active.path",
        ),
        (
            json!({"targets": [{"address": "127.0.0.1:9", "weight": 0}]}),
            "targets",
        ),
    ];
    for (extra, field) in upstream_cases {
        let mut upstream = json!({"name": "bad", "targets": [{"address": "127.0.0.1:9"}]});
        upstream
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let reply = cluster.admin.post("/v1/upstreams", &upstream).await;
        assert_eq!(reply.status, 422, "{extra}: {}", reply.text);
        let named = reply.body["error"]["field"].as_str().unwrap_or_default();
        assert!(named.starts_with(field), "{extra}: {}", reply.text);
    }
    assert_eq!(cluster.admin.revision_count().await, revisions);
}
