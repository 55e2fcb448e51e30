//! The worker's one rustls crypto provider, aws-lc-rs, for its TLS listeners, its TLS towards
//! upstreams and its ConfigSync channel. aws-lc-rs rather than ring: a full handshake with an
//! RSA-2048 key takes about half of the CPU time ring's takes (aws-lc signs with AVX-512 IFMA
//! where the CPU has it), one with a P-256 key somewhat less, and full handshakes are what a TLS
//! front door spends most on.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::ProducesTickets;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Makes [`provider`] the process default, for the libraries that take rustls's default rather
/// than a provider (tonic's TLS): with more than one provider built in, rustls cannot pick one
/// by itself and such a library would panic. A second call changes nothing.
pub fn install_process_default() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Session-ticket keys that rotate every 6 hours, the previous key kept to decrypt; `None` only
/// when the system's random source fails.
pub fn ticketer() -> Option<Arc<dyn ProducesTickets>> {
    rustls::crypto::aws_lc_rs::Ticketer::new().ok()
}
