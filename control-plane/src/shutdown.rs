//! The control plane's shutdown flag as its long-running tasks (the snapshot poller, config
//! sync sessions) wait on it.

use tokio::sync::watch;

/// Completes once the shutdown flag is set (or its sender is gone).
pub async fn stopping(stopped: &mut watch::Receiver<bool>) {
    // The guard returned by `wait_for` is not `Send`; drop it before the caller's next await.
    let _ = stopped.wait_for(|stop| *stop).await;
}
