//! The server side of the transmission phase.
//!
//! Per connection, three kinds of actors, so that blocking storage I/O never
//! runs on the async reactor and requests are never serialised behind each
//! other:
//!
//! * the **reader** (the connection's own task) parses requests from the
//!   socket, validates them, and answers invalid ones at once, and small
//!   READs whose data the export has in memory (see
//!   [`Export::read_resident`]; a page-cache copy costs less than the hop
//!   to a worker);
//! * **workers** (tokio's blocking pool, one `spawn_blocking` per request,
//!   many in flight) run the backend call, `pread`-ing straight into the
//!   reply's data buffer, and build the reply;
//! * the **writer** task takes finished replies from a channel, in
//!   completion order, and sends everything that is ready with one
//!   vectored write (headers and data, no copy).
//!
//! A byte budget (a semaphore) bounds the memory of requests in flight; the
//! reader stops reading when it is exhausted, which pushes back on the
//! client through TCP.

use std::io::IoSlice;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::{debug, warn};

use crate::MAX_PAYLOAD;
use crate::codec::{self, FrameError, Request};
use crate::connection::write_all_vectored;
use crate::consts::*;
use crate::error::Result;
use crate::export::{Export, ExportEntry, ExportStats, Extent, PeerAddr};
use crate::handshake::BASE_ALLOCATION_ID;

/// In-flight budget, in units of [`BUDGET_UNIT`] bytes (plus one unit per
/// request): about 128 MiB of payloads, or 2048 small requests.
pub(crate) const BUDGET_UNITS: u32 = 2048;
pub(crate) const BUDGET_UNIT_SHIFT: u32 = 16;
/// Units of the in-flight budget a request holds until answered: one, and
/// one more per [`BUDGET_UNIT_SHIFT`] bytes of a READ's or WRITE's payload.
pub(crate) fn budget_cost(req: &Request) -> u32 {
    match req.cmd {
        NBD_CMD_READ | NBD_CMD_WRITE => (1 + (req.len >> BUDGET_UNIT_SHIFT)).min(BUDGET_UNITS),
        _ => 1,
    }
}

/// READs of at most this many bytes are answered from memory by the
/// thread that takes them off the socket, when the export has the data
/// there (see [`Export::read_resident`]): no hop to another thread.
pub(crate) const RESIDENT_READ: u32 = 64 << 10;

/// A READ small enough to be answered from memory on the reading thread.
pub(crate) fn small_read(req: &Request) -> bool {
    req.cmd == NBD_CMD_READ && req.len <= RESIDENT_READ
}

/// Replies gathered into one vectored write at most.
const MAX_BATCH: usize = 64;
/// Least free space kept in the read buffer before a read.
const MIN_READ_SPACE: usize = 64 * 1024;

/// What the handshake settled for this connection.
pub(crate) struct Session {
    pub peer: PeerAddr,
    pub entry: ExportEntry,
    pub structured: bool,
    pub base_allocation: bool,
    pub flags: TransmissionFlags,
}

/// Read buffers kept for reuse per connection, and the largest kept.
const POOL_BUFFERS: usize = 64;
const POOL_MAX_CAPACITY: usize = 1 << 20;

/// Recycled READ buffers. Allocating a fresh zeroed buffer per READ costs
/// an mmap, page faults and a memset for every request of 128 KiB or more
/// (glibc's mmap threshold); reusing them leaves only the pread.
#[derive(Default)]
pub(crate) struct BufPool(Mutex<Vec<Vec<u8>>>);

impl BufPool {
    fn get(&self, len: usize) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        // Only growth is zeroed; a recycled buffer of the same size is
        // handed out as is, its stale bytes about to be overwritten by pread.
        v.resize(len, 0);
        v
    }

    fn put(&self, v: Vec<u8>) {
        if v.capacity() <= POOL_MAX_CAPACITY {
            let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOL_BUFFERS {
                pool.push(v);
            }
        }
    }
}

/// A reply ready to be sent: header bytes, then optional data.
pub(crate) struct Reply {
    pub(crate) head: BytesMut,
    pub(crate) data: Option<Vec<u8>>,
    /// Where `data` goes back once sent.
    pool: Option<Arc<BufPool>>,
    /// Returned to the budget once the reply is on the wire.
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let (Some(pool), Some(data)) = (self.pool.take(), self.data.take()) {
            pool.put(data);
        }
    }
}

impl Reply {
    pub(crate) fn error(structured: bool, handle: u64, errno: Errno, message: &str) -> Reply {
        let mut head = BytesMut::with_capacity(32 + message.len());
        if structured {
            codec::encode_error_chunk(&mut head, handle, errno, message);
        } else {
            codec::encode_simple_reply(&mut head, errno, handle);
        }
        Reply {
            head,
            data: None,
            pool: None,
            _permit: None,
        }
    }

    pub(crate) fn ok(handle: u64) -> Reply {
        let mut head = BytesMut::with_capacity(16);
        codec::encode_simple_reply(&mut head, NBD_SUCCESS, handle);
        Reply {
            head,
            data: None,
            pool: None,
            _permit: None,
        }
    }

    fn read(structured: bool, req: &Request, data: Vec<u8>) -> Reply {
        let mut head = BytesMut::with_capacity(32);
        if !structured {
            codec::encode_simple_reply(&mut head, NBD_SUCCESS, req.handle);
        } else if data.is_empty() {
            codec::encode_chunk_header(
                &mut head,
                ReplyFlags::DONE,
                NBD_REPLY_TYPE_NONE,
                req.handle,
                0,
            );
        } else {
            // The whole read succeeded before this chunk is sent, so it can
            // be the final one.
            codec::encode_chunk_header(
                &mut head,
                ReplyFlags::DONE,
                NBD_REPLY_TYPE_OFFSET_DATA,
                req.handle,
                8 + data.len() as u32,
            );
            head.put_u64(req.offset);
        }
        Reply {
            head,
            data: Some(data),
            pool: None,
            _permit: None,
        }
    }
}

fn out_of_range(size: u64, req: &Request) -> bool {
    req.offset
        .checked_add(req.len.into())
        .is_none_or(|end| end > size)
}

/// Checks a request against the negotiated session before any work.
pub(crate) fn validate(s: &Session, size: u64, req: &Request) -> Result<(), (Errno, &'static str)> {
    let read_only = s.flags.contains(TransmissionFlags::READ_ONLY);
    let allowed = match req.cmd {
        NBD_CMD_READ if s.structured => CmdFlags::FUA | CmdFlags::DF,
        NBD_CMD_WRITE_ZEROES => CmdFlags::FUA | CmdFlags::NO_HOLE | CmdFlags::FAST_ZERO,
        NBD_CMD_BLOCK_STATUS => CmdFlags::FUA | CmdFlags::REQ_ONE,
        _ => CmdFlags::FUA,
    };
    if !allowed.contains(req.flags) {
        return Err((NBD_EINVAL, "command flags not valid for this command"));
    }
    match req.cmd {
        NBD_CMD_READ => {
            if req.len > MAX_PAYLOAD {
                return Err((NBD_EOVERFLOW, "read larger than the maximum block size"));
            }
            if out_of_range(size, req) {
                return Err((NBD_EINVAL, "read beyond the end of the export"));
            }
        }
        NBD_CMD_WRITE | NBD_CMD_TRIM | NBD_CMD_WRITE_ZEROES => {
            if req.cmd == NBD_CMD_TRIM
                && !s.flags.contains(TransmissionFlags::SEND_TRIM)
                && !read_only
            {
                return Err((NBD_EINVAL, "TRIM was not negotiated"));
            }
            if req.cmd == NBD_CMD_WRITE_ZEROES {
                if !s.flags.contains(TransmissionFlags::SEND_WRITE_ZEROES) && !read_only {
                    return Err((NBD_EINVAL, "WRITE_ZEROES was not negotiated"));
                }
                if req.flags.contains(CmdFlags::FAST_ZERO)
                    && !s.flags.contains(TransmissionFlags::SEND_FAST_ZERO)
                    && !read_only
                {
                    return Err((NBD_EINVAL, "FAST_ZERO was not negotiated"));
                }
            }
            if read_only {
                return Err((NBD_EPERM, "the export is read-only"));
            }
            if out_of_range(size, req) {
                // The spec asks for ENOSPC on writes beyond the end.
                return Err((NBD_ENOSPC, "write beyond the end of the export"));
            }
        }
        NBD_CMD_FLUSH => {}
        NBD_CMD_CACHE => {
            if !s.flags.contains(TransmissionFlags::SEND_CACHE) {
                return Err((NBD_EINVAL, "CACHE was not negotiated"));
            }
            if out_of_range(size, req) {
                return Err((NBD_EINVAL, "cache beyond the end of the export"));
            }
        }
        NBD_CMD_BLOCK_STATUS => {
            if !s.base_allocation {
                return Err((NBD_EINVAL, "no metadata context was negotiated"));
            }
            if req.len == 0 {
                return Err((NBD_EINVAL, "zero-length block status"));
            }
            if out_of_range(size, req) {
                return Err((NBD_EINVAL, "block status beyond the end of the export"));
            }
        }
        _ => return Err((NBD_EINVAL, "unknown command")),
    }
    Ok(())
}

/// Clips, merges and encodes extents as one `NBD_REPLY_TYPE_BLOCK_STATUS`
/// chunk.
fn block_status_reply(req: &Request, extents: Vec<Extent>) -> Reply {
    let mut descs: Vec<(u32, u32)> = Vec::new();
    let mut left = u64::from(req.len);
    for e in extents {
        if left == 0 {
            break;
        }
        let len = e.length.min(left);
        if len == 0 {
            continue;
        }
        left -= len;
        let flags = e.flags.bits();
        // len <= req.len, a u32.
        let len = len as u32;
        match descs.last_mut() {
            Some((l, f)) if *f == flags && l.checked_add(len).is_some() => *l += len,
            _ => descs.push((len, flags)),
        }
    }
    if descs.is_empty() {
        // "Unknown" is always a correct answer.
        descs.push((req.len, 0));
    }
    if req.flags.contains(CmdFlags::REQ_ONE) {
        descs.truncate(1);
    }
    let mut head = BytesMut::with_capacity(CHUNK_HEADER_LEN + 4 + 8 * descs.len());
    codec::encode_chunk_header(
        &mut head,
        ReplyFlags::DONE,
        NBD_REPLY_TYPE_BLOCK_STATUS,
        req.handle,
        4 + 8 * descs.len() as u32,
    );
    head.put_u32(BASE_ALLOCATION_ID);
    for (l, f) in descs {
        head.put_u32(l);
        head.put_u32(f);
    }
    Reply {
        head,
        data: None,
        pool: None,
        _permit: None,
    }
}

/// A READ's reply carrying `data`, counted.
fn read_reply(
    stats: &ExportStats,
    pool: &Arc<BufPool>,
    structured: bool,
    req: &Request,
    data: Vec<u8>,
) -> Reply {
    ExportStats::add(&stats.read_ops, 1);
    ExportStats::add(&stats.read_bytes, u64::from(req.len));
    let mut reply = Reply::read(structured, req, data);
    reply.pool = Some(pool.clone());
    reply
}

/// Answers a READ if the export has its data in memory (see
/// [`Export::read_resident`]); `None`: run it with [`execute`] (which also
/// reports any error).
pub(crate) fn execute_resident_read(
    export: &dyn Export,
    stats: &ExportStats,
    pool: &Arc<BufPool>,
    structured: bool,
    req: &Request,
) -> Option<Reply> {
    let mut data = pool.get(req.len as usize);
    match export.read_resident(&mut data, req.offset) {
        Ok(true) => Some(read_reply(stats, pool, structured, req, data)),
        Ok(false) | Err(_) => {
            pool.put(data);
            None
        }
    }
}

/// Runs one validated request against the backend (on a worker thread).
pub(crate) fn execute(
    export: &dyn Export,
    stats: &ExportStats,
    pool: &Arc<BufPool>,
    structured: bool,
    req: &Request,
    payload: &[u8],
) -> Reply {
    let fua = req.flags.contains(CmdFlags::FUA);
    let (off, len) = (req.offset, u64::from(req.len));
    let result = match req.cmd {
        NBD_CMD_READ => {
            let mut data = pool.get(req.len as usize);
            match export.read_at(&mut data, off) {
                Ok(()) => return read_reply(stats, pool, structured, req, data),
                Err(e) => {
                    pool.put(data);
                    Err(e)
                }
            }
        }
        NBD_CMD_WRITE => export.write_at(payload, off, fua).inspect(|_| {
            ExportStats::add(&stats.write_ops, 1);
            ExportStats::add(&stats.write_bytes, len);
        }),
        NBD_CMD_FLUSH => export
            .flush()
            .inspect(|_| ExportStats::add(&stats.flush_ops, 1)),
        NBD_CMD_TRIM => export
            .trim(off, len, fua)
            .inspect(|_| ExportStats::add(&stats.zero_trim_ops, 1)),
        NBD_CMD_WRITE_ZEROES => export
            .write_zeroes(
                off,
                len,
                req.flags.contains(CmdFlags::NO_HOLE),
                req.flags.contains(CmdFlags::FAST_ZERO),
                fua,
            )
            .inspect(|_| ExportStats::add(&stats.zero_trim_ops, 1)),
        NBD_CMD_CACHE => export.cache(off, len),
        NBD_CMD_BLOCK_STATUS => match export.block_status(off, len) {
            Ok(extents) => return block_status_reply(req, extents),
            Err(e) => Err(e),
        },
        // validate() lets nothing else through.
        _ => Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
    };
    match result {
        Ok(()) => Reply::ok(req.handle),
        Err(e) => {
            ExportStats::add(&stats.errors, 1);
            let errno = Errno::from(&e);
            // Fast-zero refusals are expected traffic, not failures.
            if errno != NBD_ENOTSUP {
                warn!(cmd = %req.cmd, offset = off, len, error = %e, "backend error");
            }
            Reply::error(structured, req.handle, errno, &e.to_string())
        }
    }
}

/// Runs contiguous WRITEs (no FUA) whose payloads lie end to end in
/// `data`, starting at `offset`, as one write to the export, and answers
/// each: all succeed or all fail alike.
pub(crate) fn execute_writes(
    export: &dyn Export,
    stats: &ExportStats,
    structured: bool,
    reqs: &[Request],
    offset: u64,
    data: &[u8],
) -> Vec<Reply> {
    match export.write_at(data, offset, false) {
        Ok(()) => {
            ExportStats::add(&stats.write_ops, reqs.len() as u64);
            ExportStats::add(&stats.write_bytes, data.len() as u64);
            reqs.iter().map(|r| Reply::ok(r.handle)).collect()
        }
        Err(e) => {
            ExportStats::add(&stats.errors, reqs.len() as u64);
            let errno = Errno::from(&e);
            warn!(
                cmd = %NBD_CMD_WRITE,
                offset,
                len = data.len(),
                requests = reqs.len(),
                error = %e,
                "backend error"
            );
            let message = e.to_string();
            reqs.iter()
                .map(|r| Reply::error(structured, r.handle, errno, &message))
                .collect()
        }
    }
}

async fn write_replies<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<Reply>,
) -> std::io::Result<()> {
    let mut batch: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        {
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(batch.len() * 2);
            for r in &batch {
                slices.push(IoSlice::new(&r.head));
                if let Some(d) = r.data.as_deref().filter(|d| !d.is_empty()) {
                    slices.push(IoSlice::new(d));
                }
            }
            write_all_vectored(&mut w, &mut slices).await?;
        }
        w.flush().await?;
        batch.clear();
    }
    w.shutdown().await
}

/// Resolves when the server is shutting down (never, without a receiver).
pub(crate) async fn shutdown_signal(rx: &mut Option<watch::Receiver<bool>>) {
    match rx {
        Some(rx) => {
            // A dropped sender also means the server is gone.
            let _ = rx.wait_for(|stop| *stop).await;
        }
        None => std::future::pending().await,
    }
}

/// Serves requests until the client disconnects, breaks the protocol, or
/// the server shuts down; in-flight requests are answered before return.
pub(crate) async fn run<R, W>(
    mut reader: R,
    mut buf: BytesMut,
    writer: W,
    s: Session,
    mut shutdown: Option<watch::Receiver<bool>>,
) -> Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Reply>();
    let writer = tokio::spawn(write_replies(writer, rx));
    let budget = Arc::new(Semaphore::new(BUDGET_UNITS as usize));
    let pool = Arc::new(BufPool::default());
    let export = s.entry.export.clone();
    let size = export.size();
    ExportStats::add(&s.entry.stats.connections, 1);

    let outcome: Result<()> = async {
        loop {
            match codec::decode_request(&buf, MAX_PAYLOAD) {
                Ok((req, n)) => {
                    let mut frame = buf.split_to(n);
                    if req.cmd == NBD_CMD_DISC {
                        debug!(peer = %s.peer, "client disconnected (NBD_CMD_DISC)");
                        return Ok(());
                    }
                    frame.advance(REQUEST_HEADER_LEN);
                    if let Err((errno, msg)) = validate(&s, size, &req) {
                        debug!(cmd = %req.cmd, offset = req.offset, len = req.len, %errno, msg, "request refused");
                        ExportStats::add(&s.entry.stats.errors, 1);
                        if tx.send(Reply::error(s.structured, req.handle, errno, msg)).is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    let cost = budget_cost(&req);
                    let permit = budget
                        .clone()
                        .acquire_many_owned(cost)
                        .await
                        .map_err(|_| crate::Error::Protocol("request budget closed".into()))?;
                    if small_read(&req) {
                        // From memory, it is answered here: a page-cache
                        // copy costs less than the hop to a worker.
                        let stats = &s.entry.stats;
                        if let Some(mut reply) =
                            execute_resident_read(&*export, stats, &pool, s.structured, &req)
                        {
                            reply._permit = Some(permit);
                            if tx.send(reply).is_err() {
                                return Ok(());
                            }
                            continue;
                        }
                    }
                    let payload = frame.freeze();
                    let (export, stats, tx) = (export.clone(), s.entry.stats.clone(), tx.clone());
                    let pool = pool.clone();
                    let structured = s.structured;
                    tokio::task::spawn_blocking(move || {
                        let mut reply = execute(&*export, &stats, &pool, structured, &req, &payload);
                        reply._permit = Some(permit);
                        // The writer is gone only if the connection is.
                        let _ = tx.send(reply);
                    });
                }
                Err(FrameError::Incomplete) => {
                    let need = codec::request_frame_len(&buf).unwrap_or(REQUEST_HEADER_LEN);
                    let want = need.saturating_sub(buf.len()).max(MIN_READ_SPACE);
                    if buf.capacity() - buf.len() < want {
                        buf.reserve(want);
                    }
                    let n = tokio::select! {
                        r = reader.read_buf(&mut buf) => r?,
                        _ = shutdown_signal(&mut shutdown) => {
                            debug!(peer = %s.peer, "server shutting down; closing");
                            return Ok(());
                        }
                    };
                    if n == 0 {
                        if buf.is_empty() {
                            debug!(peer = %s.peer, "client closed the connection");
                            return Ok(());
                        }
                        return Err(crate::Error::Truncated);
                    }
                }
                Err(FrameError::OversizedRequest(req)) => {
                    // The payload cannot be skipped safely: answer and hang up.
                    warn!(peer = %s.peer, cmd = %req.cmd, len = req.len, "request too large; closing");
                    ExportStats::add(&s.entry.stats.errors, 1);
                    let _ = tx.send(Reply::error(
                        s.structured,
                        req.handle,
                        NBD_EOVERFLOW,
                        "request larger than the maximum block size",
                    ));
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    .await;

    // Workers hold their own senders; the writer ends once the last reply
    // of every in-flight request has been sent.
    drop(tx);
    let written = writer
        .await
        .map_err(|e| crate::Error::Protocol(format!("reply writer failed: {e}")))?;
    outcome?;
    written?;
    Ok(())
}
