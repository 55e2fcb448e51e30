//! The worker's front door on its own: the listener and the proxy serving one config given in
//! process, with no control plane, cache or status port. For harnesses that drive the request
//! path with raw bytes over real sockets (the request-path fuzz target), exactly as a worker
//! serves them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gateway_config::Config;
use tokio::net::TcpListener;

use crate::listener::{self, ListenerSettings};
use crate::proxy::{Proxy, ProxySettings};
use crate::served::{Compiled, NodeIdentity, Source, State};

#[derive(Debug, thiserror::Error)]
pub enum FrontDoorError {
    #[error("the config is not valid: {0}")]
    Invalid(String),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// How the front door serves.
#[derive(Debug, Clone, Copy)]
pub struct FrontDoorSettings {
    /// Whether requests without a body are served by the listener's own HTTP/1 code.
    pub http1_fast_path: bool,
    /// The head, body and upstream timeouts alike.
    pub timeout: Duration,
}

/// Starts serving `config` on a loopback port of its own, on the current Tokio runtime, until
/// the runtime ends; returns the port's address.
pub async fn start_front_door(
    config: Config,
    settings: FrontDoorSettings,
) -> Result<SocketAddr, FrontDoorError> {
    config
        .validate()
        .map_err(|errors| FrontDoorError::Invalid(errors.to_string()))?;
    let digest = gateway_config::digest(&config);
    let compiled = Compiled::compile(1, digest, config)
        .map_err(|error| FrontDoorError::Invalid(error.to_string()))?;
    let node = NodeIdentity {
        id: "front-door".into(),
        group: "default".into(),
    };
    let state = Arc::new(State::with_control_planes(node, Vec::new()));
    state.store_from(compiled, Source::ControlPlane);
    let proxy = Arc::new(Proxy::new(
        state,
        ProxySettings {
            upstream_timeout: settings.timeout,
            body_read_timeout: settings.timeout,
            ..ProxySettings::default()
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener_settings = ListenerSettings {
        http1_fast_path: settings.http1_fast_path,
        header_read_timeout: settings.timeout,
        ..ListenerSettings::default()
    };
    tokio::spawn(listener::serve(
        listener,
        proxy,
        listener_settings,
        std::future::pending(),
    ));
    Ok(addr)
}
