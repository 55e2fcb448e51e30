//! Generated types for the ConfigSync protocol (`gateway.config.v1`): the bidirectional stream over
//! which the control plane pushes numbered config revisions and workers answer with ACK or NACK.
//! The validated domain model lives in `gateway-config`; these are only the wire shapes, and the
//! size limits both ends of the stream agree on.

#![allow(clippy::all, clippy::pedantic)]

pub mod config {
    pub mod v1 {
        tonic::include_proto!("gateway.config.v1");
    }
}

pub use config::v1;

impl std::fmt::Debug for v1::Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("name", &self.name)
            .field("tags", &self.tags)
            .field("cert", &self.cert)
            .field(
                "key",
                &format_args!("<{} bytes, not shown>", self.key.len()),
            )
            .field("snis", &self.snis)
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// The largest `ConfigPush` the control plane ever sends, in bytes of its protobuf encoding
/// (before any transport compression): 256 MiB.
///
/// The control plane refuses to commit a config whose full push would be larger, and encodes no
/// larger message; a worker decodes pushes up to this size by default (more if told to) and
/// reads a cache file up to the same size. A plain route encodes to about 70 bytes, so this holds
/// over three million of them, or 100,000 routes that each carry a fixed response of about
/// 2.5 KiB. It stays far below protobuf's 2 GiB ceiling, and low enough that a worker, which holds
/// a push a few times over while it applies it (the received bytes, the decoded message, the
/// served form and the cache file's copy), needs on the order of a gigabyte at worst.
pub const MAX_CONFIG_PUSH_BYTES: usize = 256 * 1024 * 1024;

/// The largest message a worker sends on the stream (Hello, ACK or NACK), in bytes: 1 MiB.
///
/// A worker keeps its NACKs far below it (their text and details are cut short), and the control
/// plane decodes nothing larger, so a worker cannot make it buffer more than this per stream.
pub const MAX_WORKER_MESSAGE_BYTES: usize = 1024 * 1024;

/// The ceiling of any size limit on the stream: protobuf refuses to encode or decode a message of
/// 2 GiB or more.
pub const PROTOBUF_MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024 * 1024 - 1;

/// How pushes are compressed on the wire: zstd, which shrinks a full push of 100,000 routes about
/// tenfold for a fraction of what encoding it costs (gzip saves less for nine times the CPU).
///
/// A worker that accepts it says so in `grpc-accept-encoding` when it opens the stream, and the
/// control plane compresses only for such workers, so either side may be older than the other.
/// Workers send their own messages uncompressed: they are small, and the control plane's
/// encodings are not known before it answers. Size limits apply to the decompressed message.
pub const PUSH_COMPRESSION: tonic::codec::CompressionEncoding =
    tonic::codec::CompressionEncoding::Zstd;
