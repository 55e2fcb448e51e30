//! Graceful shutdown of a worker: the first SIGTERM or SIGINT makes `/readyz` answer 503 at
//! once, so that load balancers take the worker out of rotation; after the drain delay the proxy
//! stops accepting and drains (see [`crate::listener::serve`]). A second signal means "now": the
//! process exits at once with the conventional status (130 for SIGINT, 143 for SIGTERM).

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{Signal as UnixSignal, SignalKind, signal};
use tokio::sync::oneshot;

use crate::served::State;

/// A shutdown signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Interrupt,
}

impl Signal {
    /// Exit status of a process stopped by this signal (128 + signal number).
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// The first and the second shutdown signal, each delivered once.
#[derive(Debug)]
pub struct Signals {
    pub first: oneshot::Receiver<Signal>,
    pub second: oneshot::Receiver<Signal>,
}

impl Signals {
    /// Installs the handlers now, so that a signal arriving during start-up is not lost, and
    /// watches for two signals in the background.
    pub fn install() -> std::io::Result<Signals> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (first_tx, first) = oneshot::channel();
        let (second_tx, second) = oneshot::channel();
        tokio::spawn(async move {
            let Some(signal) = next(&mut terminate, &mut interrupt).await else {
                return;
            };
            let _ = first_tx.send(signal);
            if let Some(signal) = next(&mut terminate, &mut interrupt).await {
                let _ = second_tx.send(signal);
            }
        });
        Ok(Signals { first, second })
    }
}

async fn next(terminate: &mut UnixSignal, interrupt: &mut UnixSignal) -> Option<Signal> {
    tokio::select! {
        received = terminate.recv() => received.map(|()| Signal::Terminate),
        received = interrupt.recv() => received.map(|()| Signal::Interrupt),
    }
}

/// Completes when the proxy should stop accepting: once `requested` completes, marks the
/// worker as draining (not ready) at once, then waits `delay` while still accepting, which
/// gives load balancers time to notice.
pub async fn stop_accepting(state: &State, requested: impl Future<Output = ()>, delay: Duration) {
    requested.await;
    state.start_draining();
    if delay.is_zero() {
        tracing::info!("draining: reporting not ready");
    } else {
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "draining: reporting not ready; still accepting until the drain delay passes"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests;
