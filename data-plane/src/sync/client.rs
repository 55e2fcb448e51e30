//! The ConfigSync stream, worker side: connect, say Hello with the served revision, answer every
//! push with exactly one ACK or NACK, and reconnect with jittered exponential backoff when the
//! stream fails or ends. The served config survives reconnects untouched.

use std::sync::Arc;
use std::time::Duration;

use gateway_proto::v1;
use gateway_proto::v1::config_sync_client::ConfigSyncClient;
use gateway_proto::v1::worker_message::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use crate::state::State;
use crate::sync::apply::handle_push;

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub endpoint: Endpoint,
    /// Build string reported in Hello.
    pub build: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("invalid control-plane address `{0}`: expected http://host:port")]
    InvalidEndpoint(String),
    /// The transport error with its causes, which alone say what went wrong.
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("stream failed: {0}")]
    Stream(#[from] tonic::Status),
    #[error("the control plane closed the stream")]
    Closed,
}

impl SyncSettings {
    /// Checks the control-plane address up front so that a typo fails at start, not in a loop.
    pub fn new(control_plane: &str, build: impl Into<String>) -> Result<Self, SyncError> {
        let invalid = || SyncError::InvalidEndpoint(control_plane.to_owned());
        let uri: http::Uri = control_plane.parse().map_err(|_| invalid())?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(invalid());
        }
        let endpoint = Endpoint::from_shared(control_plane.to_owned())
            .map_err(|_| invalid())?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        Ok(SyncSettings {
            endpoint,
            build: build.into(),
        })
    }
}

/// Keeps a stream to the control plane open for as long as the worker runs.
pub async fn run(state: Arc<State>, settings: SyncSettings) {
    let mut backoff = Backoff::default();
    loop {
        let mut delivered = false;
        let result = session(&state, &settings, &mut delivered).await;
        state.set_connected(false);
        if delivered {
            backoff.reset();
        }
        let error = match result {
            Ok(()) => SyncError::Closed,
            Err(error) => error,
        };
        let delay = backoff.next_delay();
        tracing::warn!(
            control_plane = %settings.endpoint.uri(),
            %error,
            retry_in_ms = delay.as_millis() as u64,
            "config sync stream down"
        );
        if state.current().is_none() {
            state.set_last_error(Some(format!("config sync: {error}")));
        }
        tokio::time::sleep(delay).await;
    }
}

/// One stream, from connect to its end. Sets `delivered` once a push arrived.
async fn session(
    state: &Arc<State>,
    settings: &SyncSettings,
    delivered: &mut bool,
) -> Result<(), SyncError> {
    let channel = settings
        .endpoint
        .connect()
        .await
        .map_err(|error| SyncError::Connect(error_chain(&error)))?;
    let mut client = ConfigSyncClient::new(channel);
    let (outbound, receiver) = mpsc::channel(4);
    // Queued before the call so it is the first message on the stream; cannot fail, the
    // receiver is alive and the channel empty.
    let _ = outbound.try_send(hello(state, &settings.build));
    let mut inbound = client
        .stream(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    state.set_connected(true);
    tracing::info!(control_plane = %settings.endpoint.uri(), "connected to the control plane");
    while let Some(push) = inbound.message().await? {
        *delivered = true;
        tracing::debug!(
            revision = push.revision,
            base_revision = push.base_revision,
            "received configuration push"
        );
        let worker_state = state.clone();
        // Validation and compilation are CPU work; keep them off the runtime's I/O threads.
        let reply = tokio::task::spawn_blocking(move || handle_push(&worker_state, push))
            .await
            .map_err(|error| tonic::Status::internal(format!("apply task failed: {error}")))?;
        if outbound.send(reply).await.is_err() {
            return Err(SyncError::Closed);
        }
    }
    Ok(())
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn hello(state: &State, build: &str) -> v1::WorkerMessage {
    let current = state.current();
    v1::WorkerMessage {
        message: Some(Message::Hello(v1::Hello {
            node: Some(v1::Node {
                id: state.node().id.clone(),
                group: state.node().group.clone(),
                build: build.to_owned(),
                labels: Default::default(),
            }),
            applied_revision: current.as_ref().map_or(0, |c| c.revision),
            applied_digest: current
                .as_ref()
                .map_or_else(String::new, |c| c.digest.clone()),
        })),
    }
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random, so that many
/// workers that lost the same control plane do not reconnect in lockstep.
#[derive(Debug, Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let ceiling = INITIAL_BACKOFF
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(MAX_BACKOFF);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::NodeIdentity;

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let mut backoff = Backoff::default();
        let first = backoff.next_delay();
        assert!(first >= INITIAL_BACKOFF / 2 && first <= INITIAL_BACKOFF);
        for _ in 0..20 {
            assert!(backoff.next_delay() <= MAX_BACKOFF);
        }
        assert!(backoff.next_delay() >= MAX_BACKOFF / 2);
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL_BACKOFF);
    }

    #[test]
    fn endpoints_are_checked_at_start() {
        assert!(SyncSettings::new("http://127.0.0.1:8005", "1").is_ok());
        assert!(SyncSettings::new("https://cp:8005", "1").is_err());
        assert!(SyncSettings::new("127.0.0.1:8005", "1").is_err());
        assert!(SyncSettings::new("not a url", "1").is_err());
    }

    #[test]
    fn hello_reports_nothing_on_a_fresh_worker() {
        let state = State::new(NodeIdentity {
            id: "n1".into(),
            group: "g".into(),
        });
        let Some(Message::Hello(hello)) = hello(&state, "0.1.0").message else {
            panic!("not a hello");
        };
        assert_eq!(hello.applied_revision, 0);
        assert_eq!(hello.applied_digest, "");
        assert_eq!(hello.node.unwrap().id, "n1");
    }
}
