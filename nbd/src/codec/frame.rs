//! Encoders and decoders for every NBD message, as pure functions over
//! bytes. All integers are big-endian ("network byte order").
//!
//! A decoder never allocates in proportion to a length field it has not yet
//! checked against a limit, and never panics on short or hostile input.

use bytes::{BufMut, BytesMut};

use crate::consts::*;
use crate::export::BlockSizes;

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not enough bytes yet: read more and try again.
    #[error("incomplete message")]
    Incomplete,
    /// The message does not start with the expected magic number.
    #[error("bad magic {found:#x} (expected {expected:#x})")]
    BadMagic {
        /// What the spec requires here.
        expected: u64,
        /// What arrived.
        found: u64,
    },
    /// An option whose data length exceeds the limit the caller set.
    #[error("{option} with {len} bytes of data is too large")]
    OversizedOption {
        /// The option code.
        option: OptType,
        /// Its announced data length.
        len: u32,
    },
    /// A request whose payload exceeds the limit the caller set; nothing
    /// of the payload was consumed, so the stream cannot be resynchronised.
    #[error("{} request with a {}-byte payload is too large", .0.cmd, .0.len)]
    OversizedRequest(Request),
    /// A reply or option reply whose length exceeds the caller's limit.
    #[error("reply of {0} bytes is too large")]
    OversizedReply(u64),
    /// The bytes are complete but do not make sense.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// A bounds-checked big-endian reader. Running short is `Incomplete` for
/// framing and is turned into `Malformed` by payload parsers, whose input is
/// already complete.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.pos.checked_add(n).ok_or(FrameError::Incomplete)?;
        let s = self.buf.get(self.pos..end).ok_or(FrameError::Incomplete)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// Turns "ran out of bytes" inside an already complete payload into a
/// malformed-message error.
fn complete<T>(r: Result<T, FrameError>, what: &'static str) -> Result<T, FrameError> {
    r.map_err(|e| match e {
        FrameError::Incomplete => FrameError::Malformed(what),
        e => e,
    })
}

fn string<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, FrameError> {
    if bytes.len() > NBD_MAX_STRING {
        return Err(FrameError::Malformed(what));
    }
    std::str::from_utf8(bytes).map_err(|_| FrameError::Malformed(what))
}

fn put_string32(buf: &mut BytesMut, s: &str) {
    buf.put_u32(s.len() as u32);
    buf.put_slice(s.as_bytes());
}

// ---------------------------------------------------------------------------
// Handshake

/// Server greeting: `NBDMAGIC`, `IHAVEOPT`, handshake flags (18 bytes).
pub fn encode_greeting(buf: &mut BytesMut, flags: HandshakeFlags) {
    buf.put_u64(NBD_MAGIC);
    buf.put_u64(NBD_OPTS_MAGIC);
    buf.put_u16(flags.bits());
}

/// Decodes the server greeting; returns the raw handshake flags.
pub fn decode_greeting(buf: &[u8]) -> Result<(u16, usize), FrameError> {
    let mut c = Cursor::new(buf);
    let magic = c.u64()?;
    if magic != NBD_MAGIC {
        return Err(FrameError::BadMagic {
            expected: NBD_MAGIC,
            found: magic,
        });
    }
    let magic = c.u64()?;
    if magic != NBD_OPTS_MAGIC {
        // Includes oldstyle servers, which this crate does not speak.
        return Err(FrameError::BadMagic {
            expected: NBD_OPTS_MAGIC,
            found: magic,
        });
    }
    Ok((c.u16()?, c.pos))
}

/// Client flags (4 bytes).
pub fn encode_client_flags(buf: &mut BytesMut, flags: ClientFlags) {
    buf.put_u32(flags.bits());
}

/// Decodes the client flags; returns them raw so that unknown bits can be
/// refused.
pub fn decode_client_flags(buf: &[u8]) -> Result<(u32, usize), FrameError> {
    let mut c = Cursor::new(buf);
    Ok((c.u32()?, c.pos))
}

/// An option sent by the client, borrowing its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionRequest<'a> {
    /// The option code.
    pub option: OptType,
    /// Its data.
    pub data: &'a [u8],
}

/// An option: `IHAVEOPT`, option code, data length, data.
pub fn encode_option(buf: &mut BytesMut, option: OptType, data: &[u8]) {
    buf.put_u64(NBD_OPTS_MAGIC);
    buf.put_u32(option.0);
    buf.put_u32(data.len() as u32);
    buf.put_slice(data);
}

/// Decodes an option whose data is at most `max_data` bytes.
pub fn decode_option(buf: &[u8], max_data: u32) -> Result<(OptionRequest<'_>, usize), FrameError> {
    let mut c = Cursor::new(buf);
    let magic = c.u64()?;
    if magic != NBD_OPTS_MAGIC {
        return Err(FrameError::BadMagic {
            expected: NBD_OPTS_MAGIC,
            found: magic,
        });
    }
    let option = OptType(c.u32()?);
    let len = c.u32()?;
    if len > max_data {
        return Err(FrameError::OversizedOption { option, len });
    }
    let data = c.take(len as usize)?;
    Ok((OptionRequest { option, data }, c.pos))
}

/// An option reply, borrowing its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionReply<'a> {
    /// The option answered.
    pub option: OptType,
    /// The reply type.
    pub reply: RepType,
    /// Its data.
    pub data: &'a [u8],
}

/// An option reply: magic, option, reply type, length, data.
pub fn encode_option_reply(buf: &mut BytesMut, option: OptType, reply: RepType, data: &[u8]) {
    buf.put_u64(NBD_REP_MAGIC);
    buf.put_u32(option.0);
    buf.put_u32(reply.0);
    buf.put_u32(data.len() as u32);
    buf.put_slice(data);
}

/// Decodes an option reply whose data is at most `max_data` bytes.
pub fn decode_option_reply(
    buf: &[u8],
    max_data: u32,
) -> Result<(OptionReply<'_>, usize), FrameError> {
    let mut c = Cursor::new(buf);
    let magic = c.u64()?;
    if magic != NBD_REP_MAGIC {
        return Err(FrameError::BadMagic {
            expected: NBD_REP_MAGIC,
            found: magic,
        });
    }
    let option = OptType(c.u32()?);
    let reply = RepType(c.u32()?);
    let len = c.u32()?;
    if len > max_data {
        return Err(FrameError::OversizedReply(len.into()));
    }
    let data = c.take(len as usize)?;
    Ok((
        OptionReply {
            option,
            reply,
            data,
        },
        c.pos,
    ))
}

/// The reply to `NBD_OPT_EXPORT_NAME`: size, transmission flags, and 124
/// zero bytes unless the client negotiated `NO_ZEROES`.
pub fn encode_export_name_reply(
    buf: &mut BytesMut,
    size: u64,
    flags: TransmissionFlags,
    zeroes: bool,
) {
    buf.put_u64(size);
    buf.put_u16(flags.bits());
    if zeroes {
        buf.put_bytes(0, 124);
    }
}

/// Decodes the reply to `NBD_OPT_EXPORT_NAME`: `(size, flags)`.
pub fn decode_export_name_reply(
    buf: &[u8],
    zeroes: bool,
) -> Result<((u64, u16), usize), FrameError> {
    let mut c = Cursor::new(buf);
    let size = c.u64()?;
    let flags = c.u16()?;
    if zeroes {
        c.take(124)?;
    }
    Ok(((size, flags), c.pos))
}

/// The data of `NBD_OPT_INFO` / `NBD_OPT_GO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoRequest<'a> {
    /// Export name.
    pub name: &'a str,
    /// Information types the client asks for.
    pub infos: Vec<InfoType>,
}

/// `NBD_OPT_INFO` / `NBD_OPT_GO` data: name length, name, count, info types.
pub fn encode_info_request(buf: &mut BytesMut, name: &str, infos: &[InfoType]) {
    put_string32(buf, name);
    buf.put_u16(infos.len() as u16);
    for i in infos {
        buf.put_u16(i.0);
    }
}

/// Parses `NBD_OPT_INFO` / `NBD_OPT_GO` data; the length must match exactly.
pub fn parse_info_request(data: &[u8]) -> Result<InfoRequest<'_>, FrameError> {
    const WHAT: &str = "INFO/GO data";
    let mut c = Cursor::new(data);
    let name_len = complete(c.u32(), WHAT)?;
    let name = string(complete(c.take(name_len as usize), WHAT)?, WHAT)?;
    let count = complete(c.u16(), WHAT)? as usize;
    if c.remaining() != count * 2 {
        return Err(FrameError::Malformed(WHAT));
    }
    let mut infos = Vec::with_capacity(count);
    for _ in 0..count {
        infos.push(InfoType(complete(c.u16(), WHAT)?));
    }
    Ok(InfoRequest { name, infos })
}

/// One item of an `NBD_REP_INFO` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Info {
    /// `NBD_INFO_EXPORT`: size and transmission flags.
    Export {
        /// Export size in bytes.
        size: u64,
        /// Raw transmission flags.
        flags: u16,
    },
    /// `NBD_INFO_NAME`.
    Name(String),
    /// `NBD_INFO_DESCRIPTION`.
    Description(String),
    /// `NBD_INFO_BLOCK_SIZE`.
    BlockSize(BlockSizes),
    /// An information type this crate does not know.
    Unknown(InfoType),
}

/// `NBD_REP_INFO` data for `NBD_INFO_EXPORT`.
pub fn put_info_export(buf: &mut BytesMut, size: u64, flags: TransmissionFlags) {
    buf.put_u16(NBD_INFO_EXPORT.0);
    buf.put_u64(size);
    buf.put_u16(flags.bits());
}

/// `NBD_REP_INFO` data for `NBD_INFO_NAME` or `NBD_INFO_DESCRIPTION`.
pub fn put_info_string(buf: &mut BytesMut, info: InfoType, s: &str) {
    buf.put_u16(info.0);
    buf.put_slice(s.as_bytes());
}

/// `NBD_REP_INFO` data for `NBD_INFO_BLOCK_SIZE`.
pub fn put_info_block_size(buf: &mut BytesMut, b: BlockSizes) {
    buf.put_u16(NBD_INFO_BLOCK_SIZE.0);
    buf.put_u32(b.minimum);
    buf.put_u32(b.preferred);
    buf.put_u32(b.maximum);
}

/// Parses the data of an `NBD_REP_INFO` reply.
pub fn parse_info_reply(data: &[u8]) -> Result<Info, FrameError> {
    const WHAT: &str = "NBD_REP_INFO data";
    let mut c = Cursor::new(data);
    let ty = InfoType(complete(c.u16(), WHAT)?);
    let info = match ty {
        NBD_INFO_EXPORT => {
            let size = complete(c.u64(), WHAT)?;
            let flags = complete(c.u16(), WHAT)?;
            Info::Export { size, flags }
        }
        NBD_INFO_NAME => Info::Name(string(c.rest(), WHAT)?.to_owned()),
        NBD_INFO_DESCRIPTION => Info::Description(string(c.rest(), WHAT)?.to_owned()),
        NBD_INFO_BLOCK_SIZE => Info::BlockSize(BlockSizes {
            minimum: complete(c.u32(), WHAT)?,
            preferred: complete(c.u32(), WHAT)?,
            maximum: complete(c.u32(), WHAT)?,
        }),
        other => return Ok(Info::Unknown(other)),
    };
    if c.remaining() != 0 {
        return Err(FrameError::Malformed(WHAT));
    }
    Ok(info)
}

/// The data of `NBD_OPT_LIST_META_CONTEXT` / `NBD_OPT_SET_META_CONTEXT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaContextRequest<'a> {
    /// Export name.
    pub export: &'a str,
    /// Queries (context names or namespace prefixes).
    pub queries: Vec<&'a str>,
}

/// Meta-context option data: export name, query count, queries.
pub fn encode_meta_context_request(buf: &mut BytesMut, export: &str, queries: &[&str]) {
    put_string32(buf, export);
    buf.put_u32(queries.len() as u32);
    for q in queries {
        put_string32(buf, q);
    }
}

/// Parses meta-context option data; trailing bytes are an error.
pub fn parse_meta_context_request(data: &[u8]) -> Result<MetaContextRequest<'_>, FrameError> {
    const WHAT: &str = "META_CONTEXT data";
    let mut c = Cursor::new(data);
    let name_len = complete(c.u32(), WHAT)?;
    let export = string(complete(c.take(name_len as usize), WHAT)?, WHAT)?;
    let count = complete(c.u32(), WHAT)? as usize;
    // Each query takes at least 4 bytes: refuse counts the data cannot hold
    // before reserving anything for them.
    if count > c.remaining() / 4 {
        return Err(FrameError::Malformed(WHAT));
    }
    let mut queries = Vec::with_capacity(count);
    for _ in 0..count {
        let len = complete(c.u32(), WHAT)?;
        queries.push(string(complete(c.take(len as usize), WHAT)?, WHAT)?);
    }
    if c.remaining() != 0 {
        return Err(FrameError::Malformed(WHAT));
    }
    Ok(MetaContextRequest { export, queries })
}

/// `NBD_REP_META_CONTEXT` data: context id, name.
pub fn put_meta_context_reply(buf: &mut BytesMut, id: u32, name: &str) {
    buf.put_u32(id);
    buf.put_slice(name.as_bytes());
}

/// Parses `NBD_REP_META_CONTEXT` data.
pub fn parse_meta_context_reply(data: &[u8]) -> Result<(u32, &str), FrameError> {
    const WHAT: &str = "NBD_REP_META_CONTEXT data";
    let mut c = Cursor::new(data);
    let id = complete(c.u32(), WHAT)?;
    Ok((id, string(c.rest(), WHAT)?))
}

/// `NBD_REP_SERVER` data: name length, name, then a free-form description.
pub fn put_server_reply(buf: &mut BytesMut, name: &str, description: &str) {
    put_string32(buf, name);
    buf.put_slice(description.as_bytes());
}

/// Parses `NBD_REP_SERVER` data: `(name, description)`.
pub fn parse_server_reply(data: &[u8]) -> Result<(&str, &str), FrameError> {
    const WHAT: &str = "NBD_REP_SERVER data";
    let mut c = Cursor::new(data);
    let len = complete(c.u32(), WHAT)?;
    let name = string(complete(c.take(len as usize), WHAT)?, WHAT)?;
    Ok((name, string(c.rest(), WHAT)?))
}

// ---------------------------------------------------------------------------
// Transmission

/// A transmission request header (the WRITE payload travels separately).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Command flags, unknown bits kept so they can be refused.
    pub flags: CmdFlags,
    /// Command.
    pub cmd: Cmd,
    /// Opaque handle, echoed in the reply.
    pub handle: u64,
    /// Byte offset.
    pub offset: u64,
    /// Byte length.
    pub len: u32,
}

/// A request header (28 bytes); the caller appends a WRITE's payload.
pub fn encode_request(buf: &mut BytesMut, r: &Request) {
    buf.put_u32(NBD_REQUEST_MAGIC);
    buf.put_u16(r.flags.bits());
    buf.put_u16(r.cmd.0);
    buf.put_u64(r.handle);
    buf.put_u64(r.offset);
    buf.put_u32(r.len);
}

/// Decodes a request. A WRITE is only complete once its payload is in
/// `buf` too; the returned length covers header and payload, the payload
/// being `buf[REQUEST_HEADER_LEN..n]`. A WRITE payload above `max_payload`
/// is refused before waiting for (or allocating) any of it.
pub fn decode_request(buf: &[u8], max_payload: u32) -> Result<(Request, usize), FrameError> {
    let req = decode_request_header(buf, max_payload)?;
    let mut c = Cursor::new(buf);
    c.take(REQUEST_HEADER_LEN)?;
    if req.cmd == NBD_CMD_WRITE {
        c.take(req.len as usize)?;
    }
    Ok((req, c.pos))
}

/// Decodes the 28-byte header of a request, whatever follows it (a
/// WRITE's payload is then the next `len` bytes of the stream). A WRITE
/// payload above `max_payload` is refused.
pub fn decode_request_header(buf: &[u8], max_payload: u32) -> Result<Request, FrameError> {
    let mut c = Cursor::new(buf);
    let magic = c.u32()?;
    if magic != NBD_REQUEST_MAGIC {
        return Err(FrameError::BadMagic {
            expected: NBD_REQUEST_MAGIC.into(),
            found: magic.into(),
        });
    }
    let flags = CmdFlags::from_bits_retain(c.u16()?);
    let cmd = Cmd(c.u16()?);
    let handle = c.u64()?;
    let offset = c.u64()?;
    let len = c.u32()?;
    let req = Request {
        flags,
        cmd,
        handle,
        offset,
        len,
    };
    if cmd == NBD_CMD_WRITE && len > max_payload {
        return Err(FrameError::OversizedRequest(req));
    }
    Ok(req)
}

/// How many bytes the request at the start of `buf` needs in total, once
/// its header is there (lets the reader reserve a WRITE's payload at once).
pub fn request_frame_len(buf: &[u8]) -> Option<usize> {
    let mut c = Cursor::new(buf);
    let _magic = c.u32().ok()?;
    let _flags = c.u16().ok()?;
    let cmd = Cmd(c.u16().ok()?);
    let _ = c.take(16).ok()?;
    let len = c.u32().ok()?;
    Some(
        REQUEST_HEADER_LEN
            + if cmd == NBD_CMD_WRITE {
                len as usize
            } else {
                0
            },
    )
}

/// A simple reply header; a successful READ's data follows it.
pub fn encode_simple_reply(buf: &mut BytesMut, error: Errno, handle: u64) {
    buf.put_u32(NBD_SIMPLE_REPLY_MAGIC);
    buf.put_u32(error.0);
    buf.put_u64(handle);
}

/// A structured reply chunk header; `len` bytes of payload follow it.
pub fn encode_chunk_header(
    buf: &mut BytesMut,
    flags: ReplyFlags,
    ty: ReplyType,
    handle: u64,
    len: u32,
) {
    buf.put_u32(NBD_STRUCTURED_REPLY_MAGIC);
    buf.put_u16(flags.bits());
    buf.put_u16(ty.0);
    buf.put_u64(handle);
    buf.put_u32(len);
}

/// A final `NBD_REPLY_TYPE_ERROR` chunk, message included (truncated to the
/// spec's string limit).
pub fn encode_error_chunk(buf: &mut BytesMut, handle: u64, error: Errno, message: &str) {
    let mut msg = &message.as_bytes()[..message.len().min(NBD_MAX_STRING)];
    // Do not cut a UTF-8 sequence in half.
    while std::str::from_utf8(msg).is_err() {
        msg = &msg[..msg.len() - 1];
    }
    encode_chunk_header(
        buf,
        ReplyFlags::DONE,
        NBD_REPLY_TYPE_ERROR,
        handle,
        6 + msg.len() as u32,
    );
    buf.put_u32(error.0);
    buf.put_u16(msg.len() as u16);
    buf.put_slice(msg);
}

/// A reply header as seen by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyHeader {
    /// A simple reply; a successful READ's data follows.
    Simple {
        /// Error value.
        error: Errno,
        /// Request handle.
        handle: u64,
    },
    /// A structured reply chunk; `len` bytes of payload follow.
    Chunk {
        /// Chunk flags.
        flags: ReplyFlags,
        /// Chunk type.
        ty: ReplyType,
        /// Request handle.
        handle: u64,
        /// Payload length.
        len: u32,
    },
}

/// Decodes a simple reply or structured chunk header (not its payload).
pub fn decode_reply_header(buf: &[u8]) -> Result<(ReplyHeader, usize), FrameError> {
    let mut c = Cursor::new(buf);
    match c.u32()? {
        NBD_SIMPLE_REPLY_MAGIC => {
            let error = Errno(c.u32()?);
            let handle = c.u64()?;
            Ok((ReplyHeader::Simple { error, handle }, c.pos))
        }
        NBD_STRUCTURED_REPLY_MAGIC => {
            let flags = ReplyFlags::from_bits_retain(c.u16()?);
            let ty = ReplyType(c.u16()?);
            let handle = c.u64()?;
            let len = c.u32()?;
            Ok((
                ReplyHeader::Chunk {
                    flags,
                    ty,
                    handle,
                    len,
                },
                c.pos,
            ))
        }
        other => Err(FrameError::BadMagic {
            expected: NBD_SIMPLE_REPLY_MAGIC.into(),
            found: other.into(),
        }),
    }
}

/// Parses an error chunk's payload: `(error, message)`.
pub fn parse_error_payload(data: &[u8]) -> Result<(Errno, &str), FrameError> {
    const WHAT: &str = "error chunk";
    let mut c = Cursor::new(data);
    let error = Errno(complete(c.u32(), WHAT)?);
    let len = complete(c.u16(), WHAT)?;
    let msg = complete(c.take(len.into()), WHAT)?;
    Ok((error, std::str::from_utf8(msg).unwrap_or("(invalid UTF-8)")))
}

/// Parses an `NBD_REPLY_TYPE_BLOCK_STATUS` payload: context id and
/// `(length, flags)` descriptors.
pub fn parse_block_status_payload(data: &[u8]) -> Result<(u32, Vec<(u32, u32)>), FrameError> {
    const WHAT: &str = "block status chunk";
    let mut c = Cursor::new(data);
    let id = complete(c.u32(), WHAT)?;
    if c.remaining() == 0 || !c.remaining().is_multiple_of(8) {
        return Err(FrameError::Malformed(WHAT));
    }
    let mut v = Vec::with_capacity(c.remaining() / 8);
    while c.remaining() > 0 {
        v.push((complete(c.u32(), WHAT)?, complete(c.u32(), WHAT)?));
    }
    Ok((id, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_from_annotated_bytes() {
        let wire: &[u8] = &[
            b'N', b'B', b'D', b'M', b'A', b'G', b'I', b'C', // NBDMAGIC
            b'I', b'H', b'A', b'V', b'E', b'O', b'P', b'T', // IHAVEOPT
            0x00, 0x03, // handshake flags: FIXED_NEWSTYLE | NO_ZEROES
        ];
        let mut buf = BytesMut::new();
        encode_greeting(
            &mut buf,
            HandshakeFlags::FIXED_NEWSTYLE | HandshakeFlags::NO_ZEROES,
        );
        assert_eq!(&buf[..], wire);
        assert_eq!(decode_greeting(wire), Ok((3, 18)));
        assert_eq!(decode_greeting(&wire[..17]), Err(FrameError::Incomplete));
    }

    #[test]
    fn option_from_annotated_bytes() {
        let wire: &[u8] = &[
            0x49, 0x48, 0x41, 0x56, 0x45, 0x4f, 0x50, 0x54, // IHAVEOPT
            0x00, 0x00, 0x00, 0x07, // option: NBD_OPT_GO
            0x00, 0x00, 0x00, 0x0b, // data length: 11
            0x00, 0x00, 0x00, 0x03, // export name length: 3
            b'v', b'o', b'l', // export name "vol"
            0x00, 0x01, // one info request
            0x00, 0x03, // NBD_INFO_BLOCK_SIZE
            0xff, // first byte of the next message
        ];
        let (opt, n) = decode_option(wire, 4096).expect("decodes");
        assert_eq!(n, wire.len() - 1);
        assert_eq!(opt.option, NBD_OPT_GO);
        let info = parse_info_request(opt.data).expect("parses");
        assert_eq!(info.name, "vol");
        assert_eq!(info.infos, vec![NBD_INFO_BLOCK_SIZE]);

        let mut data = BytesMut::new();
        encode_info_request(&mut data, "vol", &[NBD_INFO_BLOCK_SIZE]);
        let mut buf = BytesMut::new();
        encode_option(&mut buf, NBD_OPT_GO, &data);
        assert_eq!(&buf[..], &wire[..n]);

        for cut in 0..n {
            assert_eq!(
                decode_option(&wire[..cut], 4096),
                Err(FrameError::Incomplete)
            );
        }
        assert_eq!(
            decode_option(wire, 10),
            Err(FrameError::OversizedOption {
                option: NBD_OPT_GO,
                len: 11
            })
        );
    }

    #[test]
    fn option_with_bad_magic() {
        let wire = [0u8; 16];
        assert!(matches!(
            decode_option(&wire, 10),
            Err(FrameError::BadMagic { .. })
        ));
    }

    #[test]
    fn info_request_length_must_match() {
        let mut data = BytesMut::new();
        encode_info_request(&mut data, "x", &[NBD_INFO_NAME]);
        data.put_u8(0); // a stray byte
        assert!(matches!(
            parse_info_request(&data),
            Err(FrameError::Malformed(_))
        ));
        // A name length pointing past the end.
        assert!(matches!(
            parse_info_request(&[0xff, 0xff, 0xff, 0xff, 0, 0]),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn option_reply_from_annotated_bytes() {
        let wire: &[u8] = &[
            0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9, // NBD_REP_MAGIC
            0x00, 0x00, 0x00, 0x63, // option 99 (unknown to the server)
            0x80, 0x00, 0x00, 0x01, // NBD_REP_ERR_UNSUP
            0x00, 0x00, 0x00, 0x00, // no data
        ];
        let (r, n) = decode_option_reply(wire, 0).expect("decodes");
        assert_eq!(n, 20);
        assert_eq!(r.option, OptType(99));
        assert_eq!(r.reply, NBD_REP_ERR_UNSUP);
        let mut buf = BytesMut::new();
        encode_option_reply(&mut buf, OptType(99), NBD_REP_ERR_UNSUP, &[]);
        assert_eq!(&buf[..], wire);
    }

    #[test]
    fn meta_context_request_round_trip() {
        let wire: &[u8] = &[
            0x00, 0x00, 0x00, 0x01, // export name length 1
            b'e', // export "e"
            0x00, 0x00, 0x00, 0x01, // one query
            0x00, 0x00, 0x00, 0x0f, // query length 15
            b'b', b'a', b's', b'e', b':', b'a', b'l', b'l', b'o', b'c', b'a', b't', b'i', b'o',
            b'n', // "base:allocation"
        ];
        let m = parse_meta_context_request(wire).expect("parses");
        assert_eq!(m.export, "e");
        assert_eq!(m.queries, vec![BASE_ALLOCATION]);
        let mut buf = BytesMut::new();
        encode_meta_context_request(&mut buf, "e", &[BASE_ALLOCATION]);
        assert_eq!(&buf[..], wire);
        // A query count the data cannot hold is refused without allocating.
        assert!(matches!(
            parse_meta_context_request(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn request_from_annotated_bytes() {
        let wire: &[u8] = &[
            0x25, 0x60, 0x95, 0x13, // NBD_REQUEST_MAGIC
            0x00, 0x01, // flags: FUA
            0x00, 0x01, // type: NBD_CMD_WRITE
            0, 0, 0, 0, 0, 0, 0, 0x2a, // handle 42
            0, 0, 0, 0, 0, 0, 0x10, 0x00, // offset 4096
            0x00, 0x00, 0x00, 0x04, // length 4
            0xde, 0xad, 0xbe, 0xef, // payload
        ];
        let (r, n) = decode_request(wire, 1024).expect("decodes");
        assert_eq!(n, 32);
        assert_eq!(
            r,
            Request {
                flags: CmdFlags::FUA,
                cmd: NBD_CMD_WRITE,
                handle: 42,
                offset: 4096,
                len: 4
            }
        );
        assert_eq!(request_frame_len(wire), Some(32));
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &r);
        assert_eq!(&buf[..], &wire[..28]);
        // Header complete, payload not: incomplete.
        assert_eq!(
            decode_request(&wire[..30], 1024),
            Err(FrameError::Incomplete)
        );
        // Payload over the limit: refused from the header alone.
        assert_eq!(
            decode_request(&wire[..28], 3),
            Err(FrameError::OversizedRequest(r))
        );
    }

    #[test]
    fn four_gib_write_is_refused_from_the_header() {
        let mut buf = BytesMut::new();
        let r = Request {
            flags: CmdFlags::empty(),
            cmd: NBD_CMD_WRITE,
            handle: 1,
            offset: 0,
            len: u32::MAX,
        };
        encode_request(&mut buf, &r);
        assert_eq!(
            decode_request(&buf, crate::MAX_PAYLOAD),
            Err(FrameError::OversizedRequest(r))
        );
    }

    #[test]
    fn read_request_has_no_payload() {
        let r = Request {
            flags: CmdFlags::empty(),
            cmd: NBD_CMD_READ,
            handle: 7,
            offset: 0,
            len: u32::MAX,
        };
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &r);
        assert_eq!(decode_request(&buf, 0), Ok((r, 28)));
    }

    #[test]
    fn replies_from_annotated_bytes() {
        let simple: &[u8] = &[
            0x67, 0x44, 0x66, 0x98, // NBD_SIMPLE_REPLY_MAGIC
            0x00, 0x00, 0x00, 0x16, // error: EINVAL (22)
            0, 0, 0, 0, 0, 0, 0, 0x09, // handle 9
        ];
        let mut buf = BytesMut::new();
        encode_simple_reply(&mut buf, NBD_EINVAL, 9);
        assert_eq!(&buf[..], simple);
        assert_eq!(
            decode_reply_header(simple),
            Ok((
                ReplyHeader::Simple {
                    error: NBD_EINVAL,
                    handle: 9
                },
                16
            ))
        );

        let chunk: &[u8] = &[
            0x66, 0x8e, 0x33, 0xef, // NBD_STRUCTURED_REPLY_MAGIC
            0x00, 0x01, // flags: DONE
            0x80, 0x01, // NBD_REPLY_TYPE_ERROR
            0, 0, 0, 0, 0, 0, 0, 0x05, // handle 5
            0x00, 0x00, 0x00, 0x08, // payload length 8
            0x00, 0x00, 0x00, 0x4b, // error: EOVERFLOW (75)
            0x00, 0x02, // message length 2
            b'h', b'i', // message
        ];
        let mut buf = BytesMut::new();
        encode_error_chunk(&mut buf, 5, NBD_EOVERFLOW, "hi");
        assert_eq!(&buf[..], chunk);
        let (h, n) = decode_reply_header(chunk).expect("decodes");
        assert_eq!(n, 20);
        assert_eq!(
            h,
            ReplyHeader::Chunk {
                flags: ReplyFlags::DONE,
                ty: NBD_REPLY_TYPE_ERROR,
                handle: 5,
                len: 8
            }
        );
        assert_eq!(parse_error_payload(&chunk[20..]), Ok((NBD_EOVERFLOW, "hi")));
    }

    #[test]
    fn info_replies_round_trip() {
        let flags = TransmissionFlags::HAS_FLAGS | TransmissionFlags::SEND_FLUSH;
        let mut b = BytesMut::new();
        put_info_export(&mut b, 1 << 30, flags);
        assert_eq!(
            parse_info_reply(&b),
            Ok(Info::Export {
                size: 1 << 30,
                flags: flags.bits()
            })
        );
        let mut b = BytesMut::new();
        put_info_block_size(&mut b, BlockSizes::default());
        assert_eq!(
            parse_info_reply(&b),
            Ok(Info::BlockSize(BlockSizes::default()))
        );
        let mut b = BytesMut::new();
        put_info_string(&mut b, NBD_INFO_DESCRIPTION, "disk");
        assert_eq!(parse_info_reply(&b), Ok(Info::Description("disk".into())));
        let mut b = BytesMut::new();
        put_server_reply(&mut b, "a", "desc");
        assert_eq!(parse_server_reply(&b), Ok(("a", "desc")));
        let mut b = BytesMut::new();
        put_meta_context_reply(&mut b, 1, BASE_ALLOCATION);
        assert_eq!(parse_meta_context_reply(&b), Ok((1, BASE_ALLOCATION)));
    }
}
