//! The wire format, with no I/O: decoders take a byte slice and either
//! return a message plus the number of bytes it used, or say
//! [`FrameError::Incomplete`] when more bytes are needed; encoders append to
//! a `BytesMut`. Server and client, handshake and transmission, all share it,
//! and so do the unit tests and the fuzz target.

pub mod frame;

pub use frame::*;
