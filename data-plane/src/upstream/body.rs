//! An upstream's response body as the client gets it, streamed through: it holds the request's
//! slots and its HTTP/1 connection until it ends, and the connection goes back to the pool then.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::exchange::{ExchangeError, ResponseBody};
use super::in_flight::InFlight;
use super::pool::http1::{Lender, Pooled};
use super::transport::Answer;

#[derive(Debug)]
pub struct UpstreamBody {
    inner: Received,
    in_flight: Option<InFlight>,
}

#[derive(Debug)]
enum Received {
    Hyper(Incoming, Option<Pooled>),
    /// Gives its connection back by itself.
    Exchange(ResponseBody<Lender>),
}

/// Why a response body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

impl UpstreamBody {
    /// The response of `answer`, its body holding `in_flight` until it ends.
    pub fn response(answer: Answer, in_flight: Option<InFlight>) -> Response<UpstreamBody> {
        let (parts, inner) = match answer {
            Answer::Hyper(response, pooled) => {
                let (parts, body) = response.into_parts();
                (parts, Received::Hyper(body, pooled))
            }
            Answer::Exchange(response) => {
                let (parts, body) = response.into_parts();
                (parts, Received::Exchange(body))
            }
        };
        Response::from_parts(parts, UpstreamBody { inner, in_flight })
    }

    fn ended(&mut self) {
        self.in_flight = None;
        if let Received::Hyper(_, pooled) = &mut self.inner
            && let Some(pooled) = pooled.take()
        {
            pooled.give_back();
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A server that knows the body is over (its length is reached) stops polling it.
        if self.is_end_stream() {
            self.ended();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Received::Hyper(body, _) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Received::Exchange(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        };
        if matches!(polled, Poll::Ready(None)) {
            this.ended();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Received::Hyper(body, _) => body.is_end_stream(),
            Received::Exchange(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Received::Hyper(body, _) => body.size_hint(),
            Received::Exchange(body) => body.size_hint(),
        }
    }
}
