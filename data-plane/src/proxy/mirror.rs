//! Mirroring: a copy of a request, as the client sent it but without its body, goes to the
//! route's mirror upstream in the background, through that upstream's own transport (its
//! balancer, TLS, protocol, pool, circuit breaker and DNS), and its answer is read and dropped.
//! A copy never delays or fails the client's request: it is skipped when the mirror upstream is
//! at its limits or too many copies are in flight, and its failures are only logged.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::uri::PathAndQuery;
use http::{Request, Uri, request};
use http_body_util::{BodyExt, Either, Full};

use super::forwarding::remove_hop_by_hop_request;
use crate::upstream::body::UpstreamBody;
use crate::upstream::circuit::{Gauge, Slot};
use crate::upstream::in_flight::InFlight;
use crate::upstream::{Choice, UpstreamRuntime};

/// Mirrored requests in flight on one proxy; above the limit, copies are skipped so that a slow
/// mirror cannot pile up memory.
const MAX_MIRRORS_IN_FLIGHT: u32 = 1024;
/// A mirrored request (including reading its answer) is abandoned after this long.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(10);

/// The copies one proxy has in flight.
#[derive(Debug)]
pub struct Mirrors {
    in_flight: Arc<Gauge>,
}

impl Default for Mirrors {
    fn default() -> Self {
        Mirrors {
            in_flight: Arc::new(Gauge::new(Some(MAX_MIRRORS_IN_FLIGHT))),
        }
    }
}

impl Mirrors {
    /// Copies in flight now.
    #[cfg(test)]
    pub fn in_flight(&self) -> u32 {
        self.in_flight.get()
    }

    /// Sends a copy of the request `parts` describes to `upstream`, in the background.
    pub fn send(&self, upstream: &Arc<UpstreamRuntime>, parts: &request::Parts) {
        let Some(slot) = Slot::acquire(&self.in_flight) else {
            tracing::debug!("mirror skipped: too many mirrored requests in flight");
            return;
        };
        let Choice::Target(index) = upstream.choose(None, 0) else {
            tracing::debug!(upstream = %upstream.name, "mirror skipped: no healthy target");
            return;
        };
        let Some(mut in_flight) = InFlight::acquire(upstream, index) else {
            tracing::debug!(upstream = %upstream.name, "mirror skipped: the upstream is at its limits");
            return;
        };
        let Some(target) = upstream.targets().get(index) else {
            return;
        };
        let mut headers = parts.headers.clone();
        remove_hop_by_hop_request(&mut headers);
        headers.remove(CONTENT_LENGTH);
        headers.remove(TRANSFER_ENCODING);
        headers.insert(HOST, target.host_header.clone());
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut request = Request::new(Either::Right(Full::new(Bytes::new())));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = Uri::from(path);
        *request.version_mut() = upstream.version;
        *request.headers_mut() = headers;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let exchange = async {
                let target = &upstream.targets()[index];
                let answer = match upstream
                    .transport
                    .send(index, &target.authority, request, None)
                    .await
                {
                    Ok(answer) => answer,
                    Err(error) => {
                        upstream.record(index, true);
                        return Err(error.into());
                    }
                };
                in_flight.headers_received();
                upstream.record(index, answer.status().is_server_error());
                let response = UpstreamBody::response(answer, Some(in_flight));
                response.into_body().collect().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            };
            match tokio::time::timeout(MIRROR_TIMEOUT, exchange).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "mirrored request failed"),
                Err(_) => tracing::debug!("mirrored request timed out"),
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use gateway_config::{Target, Upstream, UpstreamTls};
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::upstream::Registry;
    use crate::upstream::test_support::{closed_authority, counting_upstream, tls_acceptor};

    fn parts(target: &str) -> request::Parts {
        let (parts, ()) = Request::get(target)
            .header("host", "h.com")
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    fn upstream(address: String, tls: Option<UpstreamTls>) -> Upstream {
        Upstream {
            name: "mirror".into(),
            targets: vec![Target { address, weight: 1 }],
            tls,
            ..Default::default()
        }
    }

    async fn until_no_copy_in_flight(mirrors: &Mirrors) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while mirrors.in_flight() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mirror slot never released"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_dead_mirror_costs_nothing_but_a_slot() {
        let registry = Registry::default();
        let dead = registry
            .runtime(&upstream(closed_authority().to_string(), None))
            .unwrap();
        let mirrors = Mirrors::default();
        mirrors.send(&dead, &parts("/x"));
        until_no_copy_in_flight(&mirrors).await;
    }

    #[tokio::test]
    async fn a_tls_mirror_gets_its_copies_over_tls() {
        let acceptor = tls_acceptor();
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let recorded = seen.clone();
        let (authority, _) = counting_upstream(move |stream| {
            let (acceptor, recorded) = (acceptor.clone(), recorded.clone());
            async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let recorded = recorded.clone();
                    async move {
                        recorded.lock().unwrap().push(request.uri().to_string());
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"seen"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            }
        })
        .await;
        let tls = UpstreamTls {
            enabled: true,
            verify: false,
            ..UpstreamTls::default()
        };
        let registry = Registry::default();
        let mirror = registry
            .runtime(&upstream(authority.to_string(), Some(tls)))
            .unwrap();
        let mirrors = Mirrors::default();
        mirrors.send(&mirror, &parts("/copied?k=v"));
        until_no_copy_in_flight(&mirrors).await;
        assert_eq!(*seen.lock().unwrap(), ["/copied?k=v"]);
    }
}
