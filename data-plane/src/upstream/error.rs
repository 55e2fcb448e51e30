//! Why a request could not be sent to a target, whichever pool it went through.

use super::connector::ConnectError;
use super::exchange::ExchangeError;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection to the target could be made, so the request never reached it.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}
