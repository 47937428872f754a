//! The NBD protocol for dvsan: handshake, options and transmission, with
//! server and client halves. Knows nothing of storage engines or databases:
//! storage plugs in through the [`Export`] and [`ExportRegistry`] traits.
//!
//! Layout:
//! * [`consts`]: the spec's constants, typed;
//! * [`codec`]: pure encoders/decoders (no I/O);
//! * [`connection`]: a stream plus read buffer, generic over
//!   `AsyncRead + AsyncWrite` (TLS-ready);
//! * `handshake` / `transmission`: the server's two phases;
//! * `worker_threads`: the transmission phase of TCP and Unix sockets,
//!   nbdkit-style worker threads on the blocking socket;
//! * [`server`]: accept loops and the per-connection driver;
//! * [`tls`]: `NBD_OPT_STARTTLS` with rustls (X.509, optional or required,
//!   client certificates if asked);
//! * [`client`]: the client half;
//! * [`export`] and [`file_export`]: the backend traits and a file backend;
//! * [`concat`]: an export made of remote exports end to end (a volume
//!   spanning units), served through the client half.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod codec;
pub mod concat;
pub mod connection;
pub mod consts;
pub mod error;
pub mod export;
pub mod file_export;
mod handshake;
pub mod server;
pub mod tls;
mod transmission;
mod worker_threads;

pub use client::{Client, ClientOptions, ExportInfo, TlsTarget};
pub use concat::{ConcatExport, ConcatOptions, RemoteAddr, RemoteSpec};
pub use error::{Error, Result};
pub use export::{
    Access, BlockSizes, Export, ExportEntry, ExportFlags, ExportRegistry, ExportStats, Extent,
    PeerAddr, StaticRegistry, StatsSnapshot,
};
pub use file_export::FileExport;
pub use server::{serve, serve_connection, serve_tcp_connection, serve_unix, serve_with_tls};
pub use tls::{ClientTls, TlsError, TlsMode, TlsPolicy};

/// Largest READ or WRITE payload the server accepts (32 MiB), checked
/// before anything is allocated for a request; advertised as the maximum
/// block size.
pub const MAX_PAYLOAD: u32 = 32 * 1024 * 1024;
