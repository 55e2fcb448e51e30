//! Passing an upstream's informational (1xx) responses on to the client, on both server paths:
//! what of such a head goes on (not the upstream's hop-by-hop fields, nor a framing it does not
//! have), and, for requests hyper serves, the hand-over from the request's [`Interim`] slot to
//! hyper's sender after each poll of the request.

use std::future::Future;
use std::pin::Pin;

use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode, Version};
use hyper::ext::InformationalSender;

use crate::proxy::forwarding::remove_hop_by_hop;
use crate::upstream::exchange::Interim;

/// An informational head as it goes on to the client: without the upstream's hop-by-hop fields
/// (those `Connection` names included) and without framing fields.
pub fn cleaned(mut parts: http::response::Parts) -> http::response::Parts {
    remove_hop_by_hop(&mut parts.headers);
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(TRANSFER_ENCODING);
    parts
}

/// Which of the upstream's informational responses a client served by hyper gets.
#[derive(Debug, Clone, Copy)]
pub struct Relayed {
    /// The upstream's `100 Continue`. hyper answers an HTTP/1.1 client's `Expect: 100-continue`
    /// itself, as the proxy starts reading the body, so a second one would only repeat it; an
    /// HTTP/2 client that asked gets the upstream's.
    pub upstream_continue: bool,
}

impl Relayed {
    pub fn for_request(version: Version, headers: &HeaderMap) -> Relayed {
        let expects_continue = headers
            .get(EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        Relayed {
            upstream_continue: version == Version::HTTP_2 && expects_continue,
        }
    }
}

/// Runs `handled`, the request's answer, handing what it leaves in `interim` to `sender` after
/// each of its polls, so that the informational responses go out as they come and before the
/// final one. `handled` comes pinned by the caller, so that it is stored once (see
/// `proxy::attempts`' `wait_for_answer`).
pub async fn relay<F: Future>(
    mut handled: Pin<&mut F>,
    interim: &Interim,
    sender: &InformationalSender,
    relayed: Relayed,
) -> F::Output {
    std::future::poll_fn(|cx| {
        let polled = handled.as_mut().poll(cx);
        if interim.is_waiting() {
            for parts in interim.take() {
                if parts.status == StatusCode::CONTINUE && !relayed.upstream_continue {
                    continue;
                }
                let head = http::Response::from_parts(cleaned(parts), ());
                // Refused only once the answer has gone or too many wait: then they are late.
                let _ = sender.send(head);
            }
        }
        polled
    })
    .await
}
