//! TLS at the proxy's front door: the certificates of a revision made ready for handshakes and
//! looked up by the name a client sends ([`table`]), and one connection's handshake with them
//! ([`handshake`]). Below the served config, which builds a table with each revision, and the
//! listener, which runs the handshakes.

pub mod handshake;
pub mod table;

pub use handshake::{TlsPeer, accept};
pub use table::{CertTable, Fallback, Sessions, TableError};
