//! The NBD protocol for dvsan: handshake, options and transmission, with
//! server and client halves. Knows nothing of storage engines or databases.
#![forbid(unsafe_code)]
