use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Most informational responses that may wait to be written at once; a service sending more
/// before the connection has taken them gets them back.
const MAX_WAITING: usize = 16;

/// Sends informational (1xx) responses ahead of the final response to a request a server is
/// answering: 103 Early Hints, for instance, or a 1xx an upstream sent to a proxy.
///
/// A server connection puts one in the extensions of each request that can take them: HTTP/1.1
/// requests (never HTTP/1.0 ones, RFC 9110 §15.2) and HTTP/2 requests.
///
/// # Example
///
/// ```
/// # fn handle(req: http::Request<()>) {
/// if let Some(informational) = req.extensions().get::<hyper::ext::InformationalSender>() {
///     let hints = http::Response::builder()
///         .status(103)
///         .header("link", "</style.css>; rel=preload; as=style")
///         .body(())
///         .unwrap();
///     let _ = informational.send(hints);
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct InformationalSender(Arc<Slot>);

/// The connection's side of an [`InformationalSender`].
pub(crate) struct InformationalReceiver(Arc<Slot>);

struct Slot(Mutex<State>);

struct State {
    waiting: Vec<http::Response<()>>,
    waker: Option<Waker>,
    /// Set once the final response head has been taken or the request is gone.
    closed: bool,
}

impl InformationalSender {
    /// Queues `response` to be written before the final response. It comes back when it is not
    /// informational, is a `101 Switching Protocols` (upgrades have their own way), when the final
    /// response has already been sent or the request has gone, or when too many wait already.
    pub fn send(&self, response: http::Response<()>) -> Result<(), http::Response<()>> {
        let status = response.status();
        if !status.is_informational() || status == http::StatusCode::SWITCHING_PROTOCOLS {
            return Err(response);
        }
        let Ok(mut state) = self.0 .0.lock() else {
            return Err(response);
        };
        if state.closed || state.waiting.len() >= MAX_WAITING {
            return Err(response);
        }
        state.waiting.push(response);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        Ok(())
    }
}

impl fmt::Debug for InformationalSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InformationalSender").finish()
    }
}

/// A sender for a request, and the receiver its connection keeps.
pub(crate) fn informational_pair() -> (InformationalSender, InformationalReceiver) {
    let slot = Arc::new(Slot(Mutex::new(State {
        waiting: Vec::new(),
        waker: None,
        closed: false,
    })));
    (
        InformationalSender(slot.clone()),
        InformationalReceiver(slot),
    )
}

impl InformationalReceiver {
    /// The responses waiting, oldest first; when there are none, the task is woken when one
    /// comes.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Vec<http::Response<()>>> {
        let Ok(mut state) = self.0 .0.lock() else {
            return Poll::Pending;
        };
        if state.waiting.is_empty() {
            match &state.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => state.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        Poll::Ready(std::mem::take(&mut state.waiting))
    }

    /// Refuses what comes from now on; those still waiting are dropped.
    pub(crate) fn close(&self) {
        if let Ok(mut state) = self.0 .0.lock() {
            state.closed = true;
            state.waiting.clear();
            state.waker = None;
        }
    }
}

impl Drop for InformationalReceiver {
    fn drop(&mut self) {
        self.close();
    }
}
