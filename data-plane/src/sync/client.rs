//! The ConfigSync stream, worker side: connect to one of the configured control planes (plain on
//! loopback, or TLS with a given CA, optionally with a client certificate and a cluster token),
//! say Hello with the served revision, answer every push with exactly one ACK or NACK, keep the
//! cache file up to date, and move on to the next control plane with jittered exponential backoff
//! when the stream fails or ends. The served config survives reconnects untouched.
//!
//! Pushes are decoded up to the configured limit (by default the most a control plane sends) and
//! may arrive compressed; the worker's own messages stay far below what a control plane decodes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gateway_proto::v1::config_sync_client::ConfigSyncClient;
use gateway_proto::v1::worker_message::Message;
use gateway_proto::{MAX_CONFIG_PUSH_BYTES, MAX_WORKER_MESSAGE_BYTES, PUSH_COMPRESSION, v1};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::served::State;
use crate::sync::apply::handle_push;
use crate::sync::persist::CacheWriter;

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One control plane the worker may sync from.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// As configured; reported on the status port.
    pub url: String,
    pub endpoint: Endpoint,
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Tried in turn; never empty.
    pub control_planes: Vec<ControlPlane>,
    /// Build string reported in Hello.
    pub build: String,
    /// Sent as `authorization: Bearer <token>` on every stream.
    pub authorization: Option<AsciiMetadataValue>,
    /// Writes every applied config to the cache file; `None` disables the cache.
    pub cache: Option<CacheWriter>,
    /// Largest push decoded; a larger one fails the stream.
    pub max_push_bytes: usize,
}

/// How the worker proves itself to the control plane and checks the control plane's identity.
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    /// PEM CA bundle that signs the control planes' certificates (required for `https://`).
    pub ca: Option<Certificate>,
    /// PEM certificate chain and key presented to the control plane (mTLS).
    pub identity: Option<Identity>,
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("invalid control-plane address `{0}`: expected http://host:port or https://host:port")]
    InvalidEndpoint(String),
    #[error("no control-plane address given")]
    NoControlPlane,
    #[error(
        "control plane `{0}` uses https, which needs --control-plane-ca (system roots are not used)"
    )]
    MissingCa(String),
    #[error("--sync-client-cert and --sync-client-key must be given together")]
    IncompleteIdentity,
    #[error("cannot read {what} {path}: {error}")]
    ReadFile {
        what: &'static str,
        path: String,
        error: std::io::Error,
    },
    #[error("{what} {path} holds no PEM block")]
    NotPem { what: &'static str, path: String },
    #[error("cannot set up TLS for `{url}`: {reason}")]
    Tls { url: String, reason: String },
    #[error("the cluster token must be non-empty visible ASCII")]
    InvalidToken,
    /// The transport error with its causes, which alone say what went wrong.
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("stream failed: {0}")]
    Stream(#[from] tonic::Status),
    #[error("the control plane closed the stream")]
    Closed,
}

impl ClientSecurity {
    /// Reads the PEM files named by the flags; fails at start rather than on every connect.
    pub fn load(
        ca: Option<&Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
        token: Option<String>,
    ) -> Result<Self, SyncError> {
        let ca = ca
            .map(|path| read_pem("control-plane CA", path).map(Certificate::from_pem))
            .transpose()?;
        let identity = match (client_cert, client_key) {
            (Some(cert), Some(key)) => Some(Identity::from_pem(
                read_pem("client certificate", cert)?,
                read_pem("client key", key)?,
            )),
            (None, None) => None,
            _ => return Err(SyncError::IncompleteIdentity),
        };
        Ok(ClientSecurity {
            ca,
            identity,
            token: token.filter(|t| !t.is_empty()),
        })
    }
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, SyncError> {
    let bytes = std::fs::read(path).map_err(|error| SyncError::ReadFile {
        what,
        path: path.display().to_string(),
        error,
    })?;
    // rustls would otherwise report an empty file only when the first connection is made.
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(SyncError::NotPem {
            what,
            path: path.display().to_string(),
        });
    }
    Ok(bytes)
}

impl SyncSettings {
    /// Checks every control-plane address and the TLS material up front, so that a typo fails at
    /// start, not in a reconnect loop.
    pub fn new(
        urls: &[String],
        build: impl Into<String>,
        security: &ClientSecurity,
    ) -> Result<Self, SyncError> {
        let control_planes = urls
            .iter()
            .map(|url| url.trim())
            .filter(|url| !url.is_empty())
            .map(|url| control_plane(url, security))
            .collect::<Result<Vec<_>, _>>()?;
        if control_planes.is_empty() {
            return Err(SyncError::NoControlPlane);
        }
        let authorization = security
            .token
            .as_ref()
            .map(|token| {
                if token.bytes().any(|b| !b.is_ascii_graphic()) {
                    return Err(SyncError::InvalidToken);
                }
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| SyncError::InvalidToken)
            })
            .transpose()?;
        Ok(SyncSettings {
            control_planes,
            build: build.into(),
            authorization,
            cache: None,
            max_push_bytes: MAX_CONFIG_PUSH_BYTES,
        })
    }

    pub fn with_cache(mut self, cache: Option<CacheWriter>) -> Self {
        self.cache = cache;
        self
    }

    pub fn with_max_push_bytes(mut self, max_push_bytes: usize) -> Self {
        self.max_push_bytes = max_push_bytes;
        self
    }

    pub fn urls(&self) -> Vec<String> {
        self.control_planes.iter().map(|c| c.url.clone()).collect()
    }
}

fn control_plane(url: &str, security: &ClientSecurity) -> Result<ControlPlane, SyncError> {
    let invalid = || SyncError::InvalidEndpoint(url.to_owned());
    let uri: http::Uri = url.parse().map_err(|_| invalid())?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(invalid()),
    };
    if uri.host().is_none() {
        return Err(invalid());
    }
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|_| invalid())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if tls {
        let ca = security
            .ca
            .clone()
            .ok_or_else(|| SyncError::MissingCa(url.to_owned()))?;
        let mut config = ClientTlsConfig::new().ca_certificate(ca);
        if let Some(identity) = &security.identity {
            config = config.identity(identity.clone());
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|error| SyncError::Tls {
                url: url.to_owned(),
                reason: error_chain(&error),
            })?;
    }
    Ok(ControlPlane {
        url: url.to_owned(),
        endpoint,
    })
}

/// Keeps a stream to one of the control planes open for as long as the worker runs, moving to
/// the next one on every failed attempt or dropped stream.
pub async fn run(state: Arc<State>, settings: SyncSettings) {
    let mut rotation = Rotation::new(
        settings.control_planes.len(),
        fastrand::usize(..settings.control_planes.len()),
    );
    loop {
        let control_plane = &settings.control_planes[rotation.current()];
        let mut delivered = false;
        let result = session(
            &state,
            &settings,
            control_plane,
            &mut delivered,
            settings.cache.as_ref(),
        )
        .await;
        state.set_connected_to(None);
        let error = match result {
            Ok(()) => SyncError::Closed,
            Err(error) => error,
        };
        let delay = rotation.failed(delivered);
        let next = &settings.control_planes[rotation.current()].url;
        let retry_in_ms = delay.as_millis() as u64;
        let code = match &error {
            SyncError::Stream(status) => Some(status.code()),
            _ => None,
        };
        if code == Some(tonic::Code::Unauthenticated) {
            tracing::error!(
                control_plane = %control_plane.url,
                %error,
                %next,
                retry_in_ms,
                "the control plane refused this worker; check the cluster token and client certificate"
            );
        } else if matches!(
            code,
            Some(tonic::Code::OutOfRange | tonic::Code::ResourceExhausted)
        ) {
            // tonic's codes for a message over a size limit. Every retry gets the same push, so
            // this worker stays where it is until a limit changes.
            tracing::error!(
                control_plane = %control_plane.url,
                %error,
                max_config_push = settings.max_push_bytes,
                %next,
                retry_in_ms,
                "a config push is larger than the stream allows; if the limit is this worker's, raise --max-config-push"
            );
            state.set_last_error(Some(format!("config sync: {error}")));
        } else {
            tracing::warn!(
                control_plane = %control_plane.url,
                %error,
                %next,
                retry_in_ms,
                "config sync stream down"
            );
        }
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
    control_plane: &ControlPlane,
    delivered: &mut bool,
    cache_writer: Option<&CacheWriter>,
) -> Result<(), SyncError> {
    let channel = control_plane
        .endpoint
        .connect()
        .await
        .map_err(|error| SyncError::Connect(error_chain(&error)))?;
    let mut client = ConfigSyncClient::new(channel)
        .max_decoding_message_size(settings.max_push_bytes)
        .max_encoding_message_size(MAX_WORKER_MESSAGE_BYTES)
        .accept_compressed(PUSH_COMPRESSION);
    let (outbound, receiver) = mpsc::channel(4);
    // Queued before the call so it is the first message on the stream; cannot fail, the
    // receiver is alive and the channel empty.
    let _ = outbound.try_send(hello(state, &settings.build));
    let mut request = tonic::Request::new(ReceiverStream::new(receiver));
    if let Some(authorization) = &settings.authorization {
        request
            .metadata_mut()
            .insert("authorization", authorization.clone());
    }
    let mut inbound = client.stream(request).await?.into_inner();
    state.set_connected_to(Some(control_plane.url.clone()));
    tracing::info!(control_plane = %control_plane.url, "connected to the control plane");
    while let Some(push) = inbound.message().await? {
        *delivered = true;
        tracing::debug!(
            revision = push.revision,
            base_revision = push.base_revision,
            "received configuration push"
        );
        let committed_at = push.committed_at_unix_ms;
        let worker_state = state.clone();
        // Validation and compilation are CPU work; keep them off the runtime's I/O threads.
        let reply = tokio::task::spawn_blocking(move || handle_push(&worker_state, push))
            .await
            .map_err(|error| tonic::Status::internal(format!("apply task failed: {error}")))?;
        let acked = matches!(reply.message, Some(Message::Ack(_)));
        if outbound.send(reply).await.is_err() {
            return Err(SyncError::Closed);
        }
        // After the ACK, and in the background, so that the disk never delays convergence.
        if acked && let (Some(writer), Some(current)) = (cache_writer, state.current()) {
            writer.offer(current, committed_at);
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

/// Which control plane to try next and how long to wait first.
///
/// Every failed attempt or dropped stream moves on to the next URL. The wait grows
/// exponentially per full round over the list ("equal jitter": half fixed, half random, so that
/// many workers that lost the same control plane do not reconnect in lockstep), and starts over
/// once a stream delivered a push.
#[derive(Debug)]
struct Rotation {
    len: usize,
    current: usize,
    failures: u32,
}

impl Rotation {
    fn new(len: usize, start: usize) -> Self {
        let len = len.max(1);
        Rotation {
            len,
            current: start % len,
            failures: 0,
        }
    }

    fn current(&self) -> usize {
        self.current
    }

    /// Records that the stream to the current URL failed (after delivering pushes or not),
    /// moves to the next URL and returns how long to wait before trying it.
    fn failed(&mut self, delivered: bool) -> Duration {
        if delivered {
            self.failures = 0;
        }
        self.current = (self.current + 1) % self.len;
        let round = self.failures / u32::try_from(self.len).unwrap_or(u32::MAX);
        self.failures = self.failures.saturating_add(1);
        jittered(round)
    }
}

fn jittered(round: u32) -> Duration {
    let ceiling = INITIAL_BACKOFF
        .saturating_mul(1u32 << round.min(16))
        .min(MAX_BACKOFF);
    let half = ceiling / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::served::NodeIdentity;

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let mut rotation = Rotation::new(1, 0);
        let first = rotation.failed(false);
        assert!(first >= INITIAL_BACKOFF / 2 && first <= INITIAL_BACKOFF);
        for _ in 0..20 {
            assert!(rotation.failed(false) <= MAX_BACKOFF);
        }
        assert!(rotation.failed(false) >= MAX_BACKOFF / 2);
        assert!(rotation.failed(true) <= INITIAL_BACKOFF);
        assert_eq!(rotation.current(), 0);
    }

    #[test]
    fn rotation_visits_every_url_in_turn_and_backs_off_per_round() {
        let mut rotation = Rotation::new(3, 4);
        assert_eq!(rotation.current(), 1, "the start wraps around");
        let mut visited = vec![rotation.current()];
        for _ in 0..5 {
            let delay = rotation.failed(false);
            // The first round over the list waits only the initial delay.
            if visited.len() < 3 {
                assert!(delay <= INITIAL_BACKOFF);
            }
            visited.push(rotation.current());
        }
        assert_eq!(visited, [1, 2, 0, 1, 2, 0]);
        // Sixth failure, still in the second round: twice the initial delay at most.
        let delay = rotation.failed(false);
        assert!(
            delay >= INITIAL_BACKOFF && delay <= INITIAL_BACKOFF * 2,
            "{delay:?}"
        );
        // A dropped stream that had delivered moves on without penalty.
        assert!(rotation.failed(true) <= INITIAL_BACKOFF);
        assert_eq!(rotation.current(), 2);
    }

    fn settings(urls: &[&str], security: &ClientSecurity) -> Result<SyncSettings, SyncError> {
        let urls: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
        SyncSettings::new(&urls, "1", security)
    }

    #[test]
    fn endpoints_are_checked_at_start() {
        let plain = ClientSecurity::default();
        let two = settings(&["http://127.0.0.1:8005", " http://cp2:8005"], &plain).unwrap();
        assert_eq!(two.urls(), ["http://127.0.0.1:8005", "http://cp2:8005"]);
        assert!(matches!(
            settings(&["https://cp:8005"], &plain),
            Err(SyncError::MissingCa(_))
        ));
        assert!(settings(&["127.0.0.1:8005"], &plain).is_err());
        assert!(settings(&["not a url"], &plain).is_err());
        assert!(matches!(
            settings(&[""], &plain),
            Err(SyncError::NoControlPlane)
        ));
        let bad_token = ClientSecurity {
            token: Some("two words".into()),
            ..ClientSecurity::default()
        };
        assert!(matches!(
            settings(&["http://cp:1"], &bad_token),
            Err(SyncError::InvalidToken)
        ));
    }

    #[test]
    fn security_files_are_read_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            ClientSecurity::load(Some(&empty), None, None, None),
            Err(SyncError::NotPem { .. })
        ));
        assert!(matches!(
            ClientSecurity::load(Some(&dir.path().join("missing.pem")), None, None, None),
            Err(SyncError::ReadFile { .. })
        ));
        assert!(matches!(
            ClientSecurity::load(None, Some(&empty), None, None),
            Err(SyncError::IncompleteIdentity)
        ));
        let none = ClientSecurity::load(None, None, None, Some(String::new())).unwrap();
        assert!(none.token.is_none());
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
