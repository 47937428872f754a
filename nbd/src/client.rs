//! The client half: fixed newstyle handshake (TLS if asked, structured
//! replies, `base:allocation`, `NBD_OPT_GO`), then pipelined requests.
//!
//! A [`Client`] is shared by reference: every call sends its request under
//! a short write lock and waits for its own reply, so concurrent calls (for
//! example `futures` joined together, or several tasks) are in flight at
//! once. A reader task matches replies to requests by handle, in whatever
//! order the server sends them.
//!
//! Dropping a call's future is safe: one dropped while its request was
//! half-written leaves the stream unusable, so the client is then marked
//! broken (every pending and later call fails) rather than letting the next
//! request's bytes be taken as the rest of the abandoned one.

use std::collections::HashMap;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::codec::{self, FrameError, Info, ReplyHeader, Request};
use crate::connection::{Connection, write_all_vectored};
use crate::consts::*;
use crate::error::{Error, Result};
use crate::export::{BlockSizes, Extent};
use crate::tls::ClientTls;

/// Largest option reply the client accepts.
const MAX_OPTION_REPLY: u32 = 64 * 1024;
/// Option replies one option may produce before the client gives up.
const MAX_OPTION_REPLIES: usize = 4096;

/// What to negotiate.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Export name (`""` for the server's default).
    pub export: String,
    /// Ask for structured replies.
    pub structured: bool,
    /// Ask for `base:allocation` (needs structured replies).
    pub block_status: bool,
    /// Start TLS before anything else, and fail if the server will not.
    pub tls: Option<TlsTarget>,
}

/// TLS for one connection: the client's settings and the name the server
/// must prove to have.
#[derive(Clone, Debug)]
pub struct TlsTarget {
    /// Trusted CAs and the client's own certificate, if any.
    pub tls: ClientTls,
    /// The host name or IP address dialled.
    pub server_name: String,
}

impl ClientOptions {
    /// Structured replies and block status on, for `export`, in the clear.
    pub fn new(export: impl Into<String>) -> Self {
        ClientOptions {
            export: export.into(),
            structured: true,
            block_status: true,
            tls: None,
        }
    }

    /// The same over TLS with a server that must prove to be
    /// `server_name`.
    pub fn with_tls(mut self, tls: ClientTls, server_name: impl Into<String>) -> Self {
        self.tls = Some(TlsTarget {
            tls,
            server_name: server_name.into(),
        });
        self
    }
}

/// What the server told the client about the export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportInfo {
    /// Size in bytes.
    pub size: u64,
    /// Transmission flags.
    pub flags: TransmissionFlags,
    /// Block size constraints, if the server sent them.
    pub block_sizes: Option<BlockSizes>,
    /// Description, if the server sent one.
    pub description: Option<String>,
    /// Structured replies are in use.
    pub structured: bool,
    /// The context id of `base:allocation`, if negotiated.
    pub base_allocation: Option<u32>,
}

async fn read_option_reply<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    option: OptType,
) -> Result<(RepType, BytesMut)> {
    let r = conn
        .read_frame(|buf| {
            let (reply, n) = codec::decode_option_reply(buf, MAX_OPTION_REPLY)?;
            let (opt, rep) = (reply.option, reply.reply);
            let mut frame = buf.split_to(n);
            frame.advance(OPTION_REPLY_HEADER_LEN);
            Ok((opt, rep, frame))
        })
        .await?;
    let Some((opt, rep, data)) = r else {
        return Err(Error::Disconnected);
    };
    if opt != option {
        return Err(Error::Protocol(format!(
            "reply to {opt} while waiting for {option}"
        )));
    }
    Ok((rep, data))
}

fn refused(option: OptType, reply: RepType, data: &[u8]) -> Error {
    Error::OptionRefused {
        option,
        reply,
        message: String::from_utf8_lossy(data).into_owned(),
    }
}

async fn send_option<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    option: OptType,
    data: &[u8],
) -> Result<()> {
    let mut out = BytesMut::new();
    codec::encode_option(&mut out, option, data);
    conn.write_all(&out).await
}

/// Runs the client side of the handshake on `conn` in the clear, ending in
/// transmission on `opts.export` (`opts.tls` is not looked at: TLS needs
/// [`Client::handshake`], which changes the stream). Exposed so tests can
/// drive the transmission phase with hand-made bytes.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    opts: &ClientOptions,
) -> Result<ExportInfo> {
    greet(conn).await?;
    haggle(conn, opts).await
}

/// The server's greeting and the client's flags.
async fn greet<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>) -> Result<()> {
    let Some(server_flags) = conn.read_decoded(codec::decode_greeting).await? else {
        return Err(Error::Disconnected);
    };
    let server_flags = HandshakeFlags::from_bits_truncate(server_flags);
    if !server_flags.contains(HandshakeFlags::FIXED_NEWSTYLE) {
        return Err(Error::Protocol(
            "server does not speak fixed newstyle".into(),
        ));
    }
    let mut cflags = ClientFlags::FIXED_NEWSTYLE;
    if server_flags.contains(HandshakeFlags::NO_ZEROES) {
        cflags |= ClientFlags::NO_ZEROES;
    }
    let mut out = BytesMut::new();
    codec::encode_client_flags(&mut out, cflags);
    conn.write_all(&out).await
}

/// `NBD_OPT_STARTTLS`, answered with an ACK: the TLS handshake comes next.
/// Any other answer is an error (the client does not go on in the clear).
async fn start_tls<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>) -> Result<()> {
    send_option(conn, NBD_OPT_STARTTLS, &[]).await?;
    match read_option_reply(conn, NBD_OPT_STARTTLS).await? {
        (rep, _) if rep == NBD_REP_ACK => Ok(()),
        (rep, data) if rep.is_error() => Err(refused(NBD_OPT_STARTTLS, rep, &data)),
        (rep, _) => Err(Error::Protocol(format!(
            "unexpected {rep} to NBD_OPT_STARTTLS"
        ))),
    }
}

/// Options after the greeting (or after TLS started), ending in GO.
async fn haggle<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    opts: &ClientOptions,
) -> Result<ExportInfo> {
    let mut structured = false;
    if opts.structured {
        send_option(conn, NBD_OPT_STRUCTURED_REPLY, &[]).await?;
        let (rep, _) = read_option_reply(conn, NBD_OPT_STRUCTURED_REPLY).await?;
        structured = rep == NBD_REP_ACK;
    }

    let mut base_allocation = None;
    if structured && opts.block_status {
        let mut data = BytesMut::new();
        codec::encode_meta_context_request(&mut data, &opts.export, &[BASE_ALLOCATION]);
        send_option(conn, NBD_OPT_SET_META_CONTEXT, &data).await?;
        for _ in 0..MAX_OPTION_REPLIES {
            let (rep, data) = read_option_reply(conn, NBD_OPT_SET_META_CONTEXT).await?;
            if rep == NBD_REP_META_CONTEXT {
                let (id, name) = codec::parse_meta_context_reply(&data)?;
                if name == BASE_ALLOCATION {
                    base_allocation = Some(id);
                }
                continue;
            }
            // ACK ends the list; an error means "no contexts", which is not
            // fatal for the session (GO reports access problems).
            break;
        }
    }

    let mut data = BytesMut::new();
    codec::encode_info_request(
        &mut data,
        &opts.export,
        &[NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE],
    );
    send_option(conn, NBD_OPT_GO, &data).await?;
    let mut export = None;
    let mut block_sizes = None;
    let mut description = None;
    for _ in 0..MAX_OPTION_REPLIES {
        let (rep, data) = read_option_reply(conn, NBD_OPT_GO).await?;
        match rep {
            NBD_REP_INFO => match codec::parse_info_reply(&data)? {
                Info::Export { size, flags } => export = Some((size, flags)),
                Info::BlockSize(b) => block_sizes = Some(b),
                Info::Description(d) => description = Some(d),
                Info::Name(_) | Info::Unknown(_) => {}
            },
            NBD_REP_ACK => {
                let Some((size, flags)) = export else {
                    return Err(Error::Protocol(
                        "GO acknowledged without NBD_INFO_EXPORT".into(),
                    ));
                };
                return Ok(ExportInfo {
                    size,
                    flags: TransmissionFlags::from_bits_retain(flags),
                    block_sizes,
                    description,
                    structured,
                    base_allocation,
                });
            }
            rep if rep.is_error() => return Err(refused(NBD_OPT_GO, rep, &data)),
            rep => return Err(Error::Protocol(format!("unexpected {rep} during GO"))),
        }
    }
    Err(Error::Protocol("too many replies to NBD_OPT_GO".into()))
}

/// What a request expects back.
enum Expect {
    Nothing,
    Read { offset: u64 },
    BlockStatus,
}

struct Pending {
    expect: Expect,
    data: Vec<u8>,
    extents: Vec<Extent>,
    error: Option<Error>,
    done: oneshot::Sender<Result<Done>>,
}

/// A successful reply's contents.
struct Done {
    data: Vec<u8>,
    extents: Vec<Extent>,
}

#[derive(Default)]
struct Table {
    pending: HashMap<u64, Pending>,
    closed: bool,
}

struct Shared {
    table: Mutex<Table>,
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    next_handle: AtomicU64,
    /// A request was left half-sent (its call dropped or its write failed):
    /// nothing more may be written, since the server would read the next
    /// request as the rest of that one.
    broken: AtomicBool,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere must not wedge every request.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the stream unusable and fails every pending request.
    fn poison(&self) {
        self.broken.store(true, Ordering::Release);
        let mut t = self.table();
        t.closed = true;
        for (_, p) in t.pending.drain() {
            let _ = p.done.send(Err(Error::Disconnected));
        }
    }
}

/// Poisons the client if dropped before [`SendGuard::sent`]: a request
/// write that did not finish, by error or by cancellation.
struct SendGuard<'a>(Option<&'a Shared>);

impl SendGuard<'_> {
    fn sent(mut self) {
        self.0 = None;
    }
}

impl Drop for SendGuard<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.poison();
        }
    }
}

/// A connected NBD client in the transmission phase.
pub struct Client {
    shared: Arc<Shared>,
    info: ExportInfo,
    reader: JoinHandle<()>,
}

impl Client {
    /// Connects over TCP (with `TCP_NODELAY`) and negotiates `export`.
    pub async fn connect(addr: impl ToSocketAddrs, export: &str) -> Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::handshake(stream, &ClientOptions::new(export)).await
    }

    /// Connects from a given local address (e.g. `127.0.0.2:0`).
    pub async fn connect_from(
        local: SocketAddr,
        remote: SocketAddr,
        export: &str,
    ) -> Result<Client> {
        let socket = if remote.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(local)?;
        let stream = socket.connect(remote).await?;
        stream.set_nodelay(true)?;
        Self::handshake(stream, &ClientOptions::new(export)).await
    }

    /// Negotiates over any stream (starting TLS first if `opts.tls` says
    /// so) and starts the reply reader.
    pub async fn handshake<S>(stream: S, opts: &ClientOptions) -> Result<Client>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut conn = Connection::new(stream);
        greet(&mut conn).await?;
        let Some(target) = &opts.tls else {
            let info = haggle(&mut conn, opts).await?;
            return Ok(Self::start(conn, info));
        };
        start_tls(&mut conn).await?;
        let (stream, leftover) = conn.into_parts();
        if !leftover.is_empty() {
            return Err(Error::Protocol(
                "server sent bytes after acknowledging NBD_OPT_STARTTLS".into(),
            ));
        }
        let stream = target.tls.connect(&target.server_name, stream).await?;
        let mut conn = Connection::new(stream);
        let info = haggle(&mut conn, opts).await?;
        Ok(Self::start(conn, info))
    }

    /// Transmission on a negotiated connection: the reply reader starts.
    fn start<S>(conn: Connection<S>, info: ExportInfo) -> Client
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (stream, leftover) = conn.into_parts();
        let (r, w): (ReadHalf<S>, WriteHalf<S>) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            table: Mutex::new(Table::default()),
            writer: tokio::sync::Mutex::new(Box::new(w)),
            next_handle: AtomicU64::new(1),
            broken: AtomicBool::new(false),
        });
        let reader = tokio::spawn(read_replies(r, leftover, shared.clone()));
        Client {
            shared,
            info,
            reader,
        }
    }

    /// What the server said about the export.
    pub fn info(&self) -> &ExportInfo {
        &self.info
    }

    /// Whether the connection is known to be unusable: the server closed
    /// it, it broke the protocol, or a request was left half-sent. Every
    /// call on a closed client fails; a caller keeping a pool reconnects.
    pub fn is_closed(&self) -> bool {
        self.shared.broken.load(Ordering::Acquire)
            || self.reader.is_finished()
            || self.shared.table().closed
    }

    async fn submit(
        &self,
        cmd: Cmd,
        flags: CmdFlags,
        offset: u64,
        len: u32,
        payload: &[u8],
        expect: Expect,
    ) -> Result<Done> {
        let handle = self.shared.next_handle.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let data = match expect {
            Expect::Read { .. } => vec![0u8; len as usize],
            _ => Vec::new(),
        };
        {
            let mut t = self.shared.table();
            if t.closed {
                return Err(Error::Disconnected);
            }
            t.pending.insert(
                handle,
                Pending {
                    expect,
                    data,
                    extents: Vec::new(),
                    error: None,
                    done: tx,
                },
            );
        }
        let req = Request {
            flags,
            cmd,
            handle,
            offset,
            len,
        };
        let mut head = BytesMut::with_capacity(REQUEST_HEADER_LEN);
        codec::encode_request(&mut head, &req);
        let sent = async {
            let mut w = self.shared.writer.lock().await;
            if self.shared.broken.load(Ordering::Acquire) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "an earlier request was left half-sent",
                ));
            }
            let guard = SendGuard(Some(&self.shared));
            write_all_vectored(&mut *w, &mut [IoSlice::new(&head), IoSlice::new(payload)]).await?;
            w.flush().await?;
            guard.sent();
            Ok(())
        }
        .await;
        if let Err(e) = sent {
            self.shared.table().pending.remove(&handle);
            return Err(e.into());
        }
        rx.await.map_err(|_| Error::Disconnected)?
    }

    /// Reads `len` bytes at `offset`.
    pub async fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>> {
        let p = self
            .submit(
                NBD_CMD_READ,
                CmdFlags::empty(),
                offset,
                len,
                &[],
                Expect::Read { offset },
            )
            .await?;
        Ok(p.data)
    }

    /// Writes `data` at `offset`; with `fua`, durably.
    pub async fn write(&self, offset: u64, data: &[u8], fua: bool) -> Result<()> {
        let len = u32::try_from(data.len())
            .map_err(|_| Error::Protocol("write larger than 4 GiB".into()))?;
        let flags = if fua {
            CmdFlags::FUA
        } else {
            CmdFlags::empty()
        };
        self.submit(NBD_CMD_WRITE, flags, offset, len, data, Expect::Nothing)
            .await
            .map(drop)
    }

    /// Makes completed writes durable.
    pub async fn flush(&self) -> Result<()> {
        self.submit(NBD_CMD_FLUSH, CmdFlags::empty(), 0, 0, &[], Expect::Nothing)
            .await
            .map(drop)
    }

    /// Discards a range.
    pub async fn trim(&self, offset: u64, len: u32) -> Result<()> {
        self.submit(
            NBD_CMD_TRIM,
            CmdFlags::empty(),
            offset,
            len,
            &[],
            Expect::Nothing,
        )
        .await
        .map(drop)
    }

    /// Zeroes a range; `no_hole` keeps it allocated, `fast` fails with
    /// `NBD_ENOTSUP` rather than writing zeroes slowly.
    pub async fn write_zeroes(
        &self,
        offset: u64,
        len: u32,
        no_hole: bool,
        fast: bool,
    ) -> Result<()> {
        let mut flags = CmdFlags::empty();
        flags.set(CmdFlags::NO_HOLE, no_hole);
        flags.set(CmdFlags::FAST_ZERO, fast);
        self.submit(
            NBD_CMD_WRITE_ZEROES,
            flags,
            offset,
            len,
            &[],
            Expect::Nothing,
        )
        .await
        .map(drop)
    }

    /// Asks the server to prefetch a range.
    pub async fn cache(&self, offset: u64, len: u32) -> Result<()> {
        self.submit(
            NBD_CMD_CACHE,
            CmdFlags::empty(),
            offset,
            len,
            &[],
            Expect::Nothing,
        )
        .await
        .map(drop)
    }

    /// `base:allocation` extents from `offset` (covering at most `len`).
    pub async fn block_status(&self, offset: u64, len: u32) -> Result<Vec<Extent>> {
        let p = self
            .submit(
                NBD_CMD_BLOCK_STATUS,
                CmdFlags::empty(),
                offset,
                len,
                &[],
                Expect::BlockStatus,
            )
            .await?;
        Ok(p.extents)
    }

    /// Sends `NBD_CMD_DISC` and closes the connection.
    pub async fn disconnect(mut self) -> Result<()> {
        let mut head = BytesMut::new();
        let req = Request {
            flags: CmdFlags::empty(),
            cmd: NBD_CMD_DISC,
            handle: self.shared.next_handle.fetch_add(1, Ordering::Relaxed),
            offset: 0,
            len: 0,
        };
        codec::encode_request(&mut head, &req);
        let mut w = self.shared.writer.lock().await;
        w.write_all(&head).await?;
        w.shutdown().await?;
        drop(w);
        // The server closes its side; the reader then ends by itself.
        let _ = (&mut self.reader).await;
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Buffered reading of the reply stream.
struct ReplyReader<R> {
    r: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> ReplyReader<R> {
    async fn header(&mut self) -> Result<Option<ReplyHeader>> {
        loop {
            match codec::decode_reply_header(&self.buf) {
                Ok((h, n)) => {
                    self.buf.advance(n);
                    return Ok(Some(h));
                }
                Err(FrameError::Incomplete) => {}
                Err(e) => return Err(e.into()),
            }
            self.buf.reserve(64 * 1024);
            if self.r.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::Truncated)
                };
            }
        }
    }

    /// Fills `out` exactly from the stream.
    async fn exact(&mut self, out: &mut [u8]) -> Result<()> {
        let here = self.buf.len().min(out.len());
        out[..here].copy_from_slice(&self.buf[..here]);
        self.buf.advance(here);
        if here < out.len() {
            self.r
                .read_exact(&mut out[here..])
                .await
                .map_err(|_| Error::Truncated)?;
        }
        Ok(())
    }
}

async fn read_replies<R: AsyncRead + Unpin>(r: R, leftover: BytesMut, shared: Arc<Shared>) {
    let mut rr = ReplyReader { r, buf: leftover };
    let end = reply_loop(&mut rr, &shared).await;
    let mut t = shared.table();
    t.closed = true;
    for (_, p) in t.pending.drain() {
        let e = match &end {
            Err(e) => Error::Protocol(format!("connection failed: {e}")),
            Ok(()) => Error::Disconnected,
        };
        let _ = p.done.send(Err(e));
    }
}

/// Largest chunk payload accepted (a maximal READ plus its offset).
const MAX_CHUNK: u32 = crate::MAX_PAYLOAD + 8;

async fn reply_loop<R: AsyncRead + Unpin>(rr: &mut ReplyReader<R>, shared: &Shared) -> Result<()> {
    loop {
        let Some(h) = rr.header().await? else {
            return Ok(());
        };
        match h {
            ReplyHeader::Simple { error, handle } => {
                let Some(mut p) = shared.table().pending.remove(&handle) else {
                    return Err(Error::Protocol(format!(
                        "reply for unknown handle {handle}"
                    )));
                };
                let result = if error != NBD_SUCCESS {
                    Err(Error::Request {
                        errno: error,
                        message: String::new(),
                    })
                } else {
                    if let Expect::Read { .. } = p.expect {
                        let mut data = std::mem::take(&mut p.data);
                        rr.exact(&mut data).await?;
                        p.data = data;
                    }
                    Ok(())
                };
                complete(p, result);
            }
            ReplyHeader::Chunk {
                flags,
                ty,
                handle,
                len,
            } => {
                if len > MAX_CHUNK {
                    return Err(FrameError::OversizedReply(len.into()).into());
                }
                let mut payload = vec![0u8; len as usize];
                rr.exact(&mut payload).await?;
                let mut t = shared.table();
                let Some(p) = t.pending.get_mut(&handle) else {
                    return Err(Error::Protocol(format!(
                        "chunk for unknown handle {handle}"
                    )));
                };
                apply_chunk(p, ty, &payload)?;
                if flags.contains(ReplyFlags::DONE)
                    && let Some(mut p) = t.pending.remove(&handle)
                {
                    drop(t);
                    let result = match p.error.take() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    };
                    complete(p, result);
                }
            }
        }
    }
}

fn complete(p: Pending, result: Result<()>) {
    let r = result.map(|()| Done {
        data: p.data,
        extents: p.extents,
    });
    let _ = p.done.send(r);
}

fn apply_chunk(p: &mut Pending, ty: ReplyType, payload: &[u8]) -> Result<()> {
    match ty {
        NBD_REPLY_TYPE_NONE => {}
        NBD_REPLY_TYPE_OFFSET_DATA | NBD_REPLY_TYPE_OFFSET_HOLE => {
            let Expect::Read { offset: base } = p.expect else {
                return Err(Error::Protocol("data chunk for a non-read".into()));
            };
            if payload.len() < 8 {
                return Err(FrameError::Malformed("data chunk").into());
            }
            let (off_bytes, rest) = payload.split_at(8);
            let mut off = [0u8; 8];
            off.copy_from_slice(off_bytes);
            let start = u64::from_be_bytes(off)
                .checked_sub(base)
                .ok_or(FrameError::Malformed("chunk before the read"))?;
            let start =
                usize::try_from(start).map_err(|_| FrameError::Malformed("chunk offset"))?;
            if ty == NBD_REPLY_TYPE_OFFSET_DATA {
                let dst = p
                    .data
                    .get_mut(start..start.saturating_add(rest.len()))
                    .ok_or(FrameError::Malformed("chunk beyond the read"))?;
                dst.copy_from_slice(rest);
            } else {
                if rest.len() != 4 {
                    return Err(FrameError::Malformed("hole chunk").into());
                }
                let mut l = [0u8; 4];
                l.copy_from_slice(rest);
                let hole = u32::from_be_bytes(l) as usize;
                let dst = p
                    .data
                    .get_mut(start..start.saturating_add(hole))
                    .ok_or(FrameError::Malformed("hole beyond the read"))?;
                dst.fill(0);
            }
        }
        NBD_REPLY_TYPE_BLOCK_STATUS => {
            let (_id, descs) = codec::parse_block_status_payload(payload)?;
            p.extents
                .extend(descs.into_iter().map(|(length, flags)| Extent {
                    length: length.into(),
                    flags: StateFlags::from_bits_retain(flags),
                }));
        }
        ty if ty.is_error() => {
            let (errno, message) = codec::parse_error_payload(payload)?;
            p.error.get_or_insert(Error::Request {
                errno,
                message: message.to_owned(),
            });
        }
        ty => return Err(Error::Protocol(format!("unexpected chunk type {ty}"))),
    }
    Ok(())
}
