//! The crate's error type, and the mapping from backend I/O errors to the
//! restricted set of NBD error values a reply may carry.

use std::io;

use crate::codec::FrameError;
use crate::consts::{
    Errno, NBD_EINVAL, NBD_EIO, NBD_ENOMEM, NBD_ENOSPC, NBD_ENOTSUP, NBD_EOVERFLOW, NBD_EPERM,
    NBD_ESHUTDOWN, OptType, RepType,
};

/// Everything that can go wrong in a session, on either side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The peer sent bytes that do not parse (bad magic, oversized frame).
    #[error("protocol error: {0}")]
    Frame(#[from] FrameError),
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed in the middle of a message")]
    Truncated,
    /// The peer closed the connection (between messages).
    #[error("connection closed by peer")]
    Disconnected,
    /// The peer broke the protocol in a way that is not a framing error.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server answered an option with an error reply.
    #[error("server refused {option}: {reply}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    OptionRefused {
        /// The option that was refused.
        option: OptType,
        /// The error reply type (e.g. `NBD_REP_ERR_POLICY`).
        reply: RepType,
        /// The server's human-readable message, possibly empty.
        message: String,
    },
    /// The server answered a transmission request with an error.
    #[error("request failed with {errno}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    Request {
        /// The NBD error value.
        errno: Errno,
        /// The server's human-readable message (structured replies only).
        message: String,
    },
}

/// Crate-wide result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<&io::Error> for Errno {
    /// Maps a backend error to the NBD error set, as the spec asks: `EDQUOT`
    /// and `EFBIG` become `ENOSPC`, permission errors `EPERM`, anything
    /// unrecognised `EIO` (never a silent success).
    fn from(e: &io::Error) -> Self {
        use rustix::io::Errno as E;
        if let Some(raw) = e.raw_os_error() {
            let m = |x: E| x.raw_os_error() == raw;
            if m(E::PERM) || m(E::ACCESS) || m(E::ROFS) {
                return NBD_EPERM;
            }
            if m(E::NOSPC) || m(E::DQUOT) || m(E::FBIG) {
                return NBD_ENOSPC;
            }
            if m(E::INVAL) {
                return NBD_EINVAL;
            }
            if m(E::NOMEM) {
                return NBD_ENOMEM;
            }
            if m(E::OVERFLOW) {
                return NBD_EOVERFLOW;
            }
            if m(E::OPNOTSUPP) || m(E::NOSYS) {
                return NBD_ENOTSUP;
            }
            if m(E::SHUTDOWN) {
                return NBD_ESHUTDOWN;
            }
            return NBD_EIO;
        }
        match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => NBD_EPERM,
            io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge => NBD_ENOSPC,
            io::ErrorKind::InvalidInput => NBD_EINVAL,
            io::ErrorKind::OutOfMemory => NBD_ENOMEM,
            io::ErrorKind::Unsupported => NBD_ENOTSUP,
            _ => NBD_EIO,
        }
    }
}

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Self {
        Errno::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_map_to_the_spec_set() {
        let os = |e: rustix::io::Errno| io::Error::from_raw_os_error(e.raw_os_error());
        assert_eq!(Errno::from(os(rustix::io::Errno::DQUOT)), NBD_ENOSPC);
        assert_eq!(Errno::from(os(rustix::io::Errno::FBIG)), NBD_ENOSPC);
        assert_eq!(Errno::from(os(rustix::io::Errno::ROFS)), NBD_EPERM);
        assert_eq!(Errno::from(os(rustix::io::Errno::OPNOTSUPP)), NBD_ENOTSUP);
        assert_eq!(Errno::from(os(rustix::io::Errno::NXIO)), NBD_EIO);
        assert_eq!(
            Errno::from(io::Error::from(io::ErrorKind::Unsupported)),
            NBD_ENOTSUP
        );
        assert_eq!(Errno::from(io::Error::other("x")), NBD_EIO);
    }
}
