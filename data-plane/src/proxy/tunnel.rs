//! Upgraded connections (WebSocket and other protocols a route lets through): once the target
//! switched protocols, bytes are copied both ways between the client's and the target's
//! connections until either side closes, and the request keeps its slots meanwhile.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::upstream::in_flight::InFlight;

/// Copies bytes both ways between the client's and the target's upgraded connections until
/// either side closes; the request keeps its slots meanwhile.
pub async fn tunnel(client: OnUpgrade, server: OnUpgrade, in_flight: InFlight) {
    let (client, server) = match tokio::try_join!(client, server) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut server = TokioIo::new(server);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
        tracing::debug!(%error, "upgraded connection ended with an error");
    }
    drop(in_flight);
}
