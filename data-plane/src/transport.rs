//! How requests reach an upstream's targets: HTTP/1 over the worker's own pool of kept-alive
//! connections ([`crate::pool`]), HTTP/2 (over TLS or h2c) over hyper-util's client, which
//! multiplexes requests on one connection per target.

use std::sync::Arc;

use http::uri::{Parts, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::{self, Client};

use crate::connector::{ConnectError, UpstreamConnector};
use crate::pool::{self, Http1Pool, Pooled};
use crate::registry::{ForwardBody, RuntimeTarget};

pub enum Transport {
    Http1(Arc<Http1Pool>),
    Http2 {
        client: Box<Client<UpstreamConnector, ForwardBody>>,
        scheme: Scheme,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Http1(pool) => f.debug_tuple("Http1").field(pool).finish(),
            Transport::Http2 { scheme, .. } => {
                f.debug_struct("Http2").field("scheme", scheme).finish()
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Http1(#[from] pool::SendError),
    #[error(transparent)]
    Http2(#[from] legacy::Error),
}

impl SendError {
    /// Why no connection to the target could be used, when that is what failed.
    pub fn connect_error(&self) -> Option<&ConnectError> {
        match self {
            SendError::Http1(pool::SendError::Connect(error)) => Some(error),
            SendError::Http1(pool::SendError::Http(_)) => None,
            SendError::Http2(error) => find(error),
        }
    }

    /// No connection to the target was made (so the request never reached it).
    pub fn is_connect(&self) -> bool {
        match self {
            SendError::Http1(error) => matches!(error, pool::SendError::Connect(_)),
            SendError::Http2(error) => error.is_connect(),
        }
    }
}

fn find<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

impl Transport {
    /// Sends `request`, whose URI is in origin form and which carries its `Host`, to the target
    /// at `index`. The HTTP/1 connection comes with the response, to be given back when the
    /// response body has ended.
    pub async fn send(
        &self,
        index: usize,
        target: &RuntimeTarget,
        mut request: Request<ForwardBody>,
    ) -> Result<(Response<Incoming>, Option<Pooled>), SendError> {
        match self {
            Transport::Http1(pool) => {
                let (response, pooled) = pool.send(index, &target.authority, request).await?;
                Ok((response, Some(pooled)))
            }
            Transport::Http2 { client, scheme } => {
                // hyper-util's client picks the connection by the URI's scheme and authority.
                let mut parts = Parts::default();
                parts.scheme = Some(scheme.clone());
                parts.authority = Some(target.authority.clone());
                parts.path_and_query = request.uri().path_and_query().cloned();
                if let Ok(uri) = Uri::from_parts(parts) {
                    *request.uri_mut() = uri;
                }
                Ok((client.request(request).await?, None))
            }
        }
    }
}
