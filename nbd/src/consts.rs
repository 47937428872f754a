//! Protocol constants from the NBD specification (NetworkBlockDevice/nbd
//! `doc/proto.md`), under the spec's own names, typed so that an option code
//! cannot be passed where a reply type or a command is expected.
//!
//! Magic numbers are plain integers; codes are newtypes over the wire integer
//! (an unknown code received from a peer must still be representable, so
//! these are not closed enums); flag fields are `bitflags` types.

use std::fmt;

use bitflags::bitflags;

/// `NBDMAGIC`, the first 8 bytes the server sends.
pub const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: the newstyle magic, also prefixing every client option.
pub const NBD_OPTS_MAGIC: u64 = 0x4948_4156_454F_5054;
/// Magic prefixing every fixed-newstyle option reply.
pub const NBD_REP_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Magic prefixing every transmission request.
pub const NBD_REQUEST_MAGIC: u32 = 0x2560_9513;
/// Magic of a simple reply.
pub const NBD_SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// Magic of a structured reply chunk.
pub const NBD_STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// The spec's limit on strings (export names, messages, queries).
pub const NBD_MAX_STRING: usize = 4096;
/// The name of the one metadata context the spec defines.
pub const BASE_ALLOCATION: &str = "base:allocation";

/// Size of a request header on the wire.
pub const REQUEST_HEADER_LEN: usize = 28;
/// Size of a simple reply header on the wire.
pub const SIMPLE_REPLY_LEN: usize = 16;
/// Size of a structured reply chunk header on the wire.
pub const CHUNK_HEADER_LEN: usize = 20;
/// Size of an option header (magic, option, length).
pub const OPTION_HEADER_LEN: usize = 16;
/// Size of an option reply header (magic, option, type, length).
pub const OPTION_REPLY_HEADER_LEN: usize = 20;

bitflags! {
    /// Handshake flags, sent by the server after the two magics (16 bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HandshakeFlags: u16 {
        /// `NBD_FLAG_FIXED_NEWSTYLE`
        const FIXED_NEWSTYLE = 1 << 0;
        /// `NBD_FLAG_NO_ZEROES`
        const NO_ZEROES = 1 << 1;
    }
}

bitflags! {
    /// Client flags, the client's answer to the handshake flags (32 bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ClientFlags: u32 {
        /// `NBD_FLAG_C_FIXED_NEWSTYLE`
        const FIXED_NEWSTYLE = 1 << 0;
        /// `NBD_FLAG_C_NO_ZEROES`
        const NO_ZEROES = 1 << 1;
    }
}

bitflags! {
    /// Transmission flags, per export (16 bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TransmissionFlags: u16 {
        /// `NBD_FLAG_HAS_FLAGS`: always set.
        const HAS_FLAGS = 1 << 0;
        /// `NBD_FLAG_READ_ONLY`
        const READ_ONLY = 1 << 1;
        /// `NBD_FLAG_SEND_FLUSH`
        const SEND_FLUSH = 1 << 2;
        /// `NBD_FLAG_SEND_FUA`
        const SEND_FUA = 1 << 3;
        /// `NBD_FLAG_ROTATIONAL`
        const ROTATIONAL = 1 << 4;
        /// `NBD_FLAG_SEND_TRIM`
        const SEND_TRIM = 1 << 5;
        /// `NBD_FLAG_SEND_WRITE_ZEROES`
        const SEND_WRITE_ZEROES = 1 << 6;
        /// `NBD_FLAG_SEND_DF`
        const SEND_DF = 1 << 7;
        /// `NBD_FLAG_CAN_MULTI_CONN`
        const CAN_MULTI_CONN = 1 << 8;
        /// `NBD_FLAG_SEND_RESIZE`
        const SEND_RESIZE = 1 << 9;
        /// `NBD_FLAG_SEND_CACHE`
        const SEND_CACHE = 1 << 10;
        /// `NBD_FLAG_SEND_FAST_ZERO`
        const SEND_FAST_ZERO = 1 << 11;
    }
}

bitflags! {
    /// Command flags of a request (16 bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct CmdFlags: u16 {
        /// `NBD_CMD_FLAG_FUA`
        const FUA = 1 << 0;
        /// `NBD_CMD_FLAG_NO_HOLE`
        const NO_HOLE = 1 << 1;
        /// `NBD_CMD_FLAG_DF`
        const DF = 1 << 2;
        /// `NBD_CMD_FLAG_REQ_ONE`
        const REQ_ONE = 1 << 3;
        /// `NBD_CMD_FLAG_FAST_ZERO`
        const FAST_ZERO = 1 << 4;
    }
}

bitflags! {
    /// Structured reply chunk flags (16 bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ReplyFlags: u16 {
        /// `NBD_REPLY_FLAG_DONE`: last chunk of this reply.
        const DONE = 1 << 0;
    }
}

bitflags! {
    /// `base:allocation` status flags of an extent (32 bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct StateFlags: u32 {
        /// `NBD_STATE_HOLE`: not allocated.
        const HOLE = 1 << 0;
        /// `NBD_STATE_ZERO`: reads as zeroes.
        const ZERO = 1 << 1;
    }
}

/// Declares a newtype over a wire integer, with spec-named constants and a
/// `Display` that prints the spec name (or the number, when unknown).
macro_rules! wire_code {
    ($(#[$doc:meta])* $name:ident($repr:ty) { $($(#[$cdoc:meta])* $konst:ident = $val:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub $repr);

        $(
            $(#[$cdoc])*
            #[doc = concat!("`", stringify!($konst), "` (", stringify!($val), ") from the NBD specification.")]
            pub const $konst: $name = $name($val);
        )*

        impl $name {
            /// The spec's name for this code, if it is one the spec defines.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $konst => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

wire_code! {
    /// An option code sent by the client during option haggling.
    OptType(u32) {
        NBD_OPT_EXPORT_NAME = 1,
        NBD_OPT_ABORT = 2,
        NBD_OPT_LIST = 3,
        NBD_OPT_STARTTLS = 5,
        NBD_OPT_INFO = 6,
        NBD_OPT_GO = 7,
        NBD_OPT_STRUCTURED_REPLY = 8,
        NBD_OPT_LIST_META_CONTEXT = 9,
        NBD_OPT_SET_META_CONTEXT = 10,
    }
}

/// Bit 31 marks an option reply type as an error.
const REP_ERR: u32 = 1 << 31;

wire_code! {
    /// An option reply type sent by the server.
    RepType(u32) {
        NBD_REP_ACK = 1,
        NBD_REP_SERVER = 2,
        NBD_REP_INFO = 3,
        NBD_REP_META_CONTEXT = 4,
        NBD_REP_ERR_UNSUP = REP_ERR | 1,
        NBD_REP_ERR_POLICY = REP_ERR | 2,
        NBD_REP_ERR_INVALID = REP_ERR | 3,
        NBD_REP_ERR_PLATFORM = REP_ERR | 4,
        NBD_REP_ERR_TLS_REQD = REP_ERR | 5,
        NBD_REP_ERR_UNKNOWN = REP_ERR | 6,
        NBD_REP_ERR_SHUTDOWN = REP_ERR | 7,
        NBD_REP_ERR_BLOCK_SIZE_REQD = REP_ERR | 8,
        NBD_REP_ERR_TOO_BIG = REP_ERR | 9,
    }
}

impl RepType {
    /// Whether this reply type is an error (bit 31 set).
    pub fn is_error(self) -> bool {
        self.0 & REP_ERR != 0
    }
}

wire_code! {
    /// An information type inside `NBD_REP_INFO` (and requested by
    /// `NBD_OPT_INFO` / `NBD_OPT_GO`).
    InfoType(u16) {
        NBD_INFO_EXPORT = 0,
        NBD_INFO_NAME = 1,
        NBD_INFO_DESCRIPTION = 2,
        NBD_INFO_BLOCK_SIZE = 3,
    }
}

wire_code! {
    /// A transmission command (request type).
    Cmd(u16) {
        NBD_CMD_READ = 0,
        NBD_CMD_WRITE = 1,
        NBD_CMD_DISC = 2,
        NBD_CMD_FLUSH = 3,
        NBD_CMD_TRIM = 4,
        NBD_CMD_CACHE = 5,
        NBD_CMD_WRITE_ZEROES = 6,
        NBD_CMD_BLOCK_STATUS = 7,
    }
}

/// Bit 15 marks a structured reply chunk type as an error chunk.
const REPLY_TYPE_ERR: u16 = 1 << 15;

wire_code! {
    /// A structured reply chunk type.
    ReplyType(u16) {
        NBD_REPLY_TYPE_NONE = 0,
        NBD_REPLY_TYPE_OFFSET_DATA = 1,
        NBD_REPLY_TYPE_OFFSET_HOLE = 2,
        NBD_REPLY_TYPE_BLOCK_STATUS = 5,
        NBD_REPLY_TYPE_ERROR = REPLY_TYPE_ERR | 1,
        NBD_REPLY_TYPE_ERROR_OFFSET = REPLY_TYPE_ERR | 2,
    }
}

impl ReplyType {
    /// Whether this chunk type is an error chunk (bit 15 set).
    pub fn is_error(self) -> bool {
        self.0 & REPLY_TYPE_ERR != 0
    }
}

wire_code! {
    /// An error value in a reply. The spec restricts these to a fixed set
    /// whose numbers happen to match Linux errno values.
    Errno(u32) {
        NBD_SUCCESS = 0,
        NBD_EPERM = 1,
        NBD_EIO = 5,
        NBD_ENOMEM = 12,
        NBD_EINVAL = 22,
        NBD_ENOSPC = 28,
        NBD_EOVERFLOW = 75,
        NBD_ENOTSUP = 95,
        NBD_ESHUTDOWN = 108,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_spell_their_ascii_names() {
        assert_eq!(&NBD_MAGIC.to_be_bytes(), b"NBDMAGIC");
        assert_eq!(&NBD_OPTS_MAGIC.to_be_bytes(), b"IHAVEOPT");
    }

    #[test]
    fn error_bits_and_names() {
        assert!(NBD_REP_ERR_UNSUP.is_error());
        assert_eq!(NBD_REP_ERR_UNSUP.0, 0x8000_0001);
        assert!(!NBD_REP_ACK.is_error());
        assert!(NBD_REPLY_TYPE_ERROR.is_error());
        assert_eq!(NBD_REPLY_TYPE_ERROR.0, 0x8001);
        assert_eq!(NBD_OPT_GO.to_string(), "NBD_OPT_GO");
        assert_eq!(OptType(99).to_string(), "OptType(0x63)");
    }
}
