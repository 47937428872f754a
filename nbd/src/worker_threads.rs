//! The transmission phase on a blocking socket (TCP or Unix), served the
//! way nbdkit serves it: a fixed set of worker threads per connection,
//! each taking the next request off the socket under the read lock and
//! running it against the export (`pread` straight into the reply's data
//! buffer). Replies go out in completion order. A request never changes
//! thread on its way in, and no thread is ever woken to send a reply: no
//! task spawned, no channel.
//!
//! Small replies are combined: a finished worker puts its reply in the
//! outbox and tries the socket's write lock; if it gets it, it sends
//! everything the outbox holds (header and data of each reply) in one
//! vectored write, and again until the outbox is empty; if another worker
//! holds the lock, it goes back to work at once and the holder takes its
//! reply along. Under load one `writev` carries many small replies, where
//! one per reply would cost a full trip through the TCP stack each (on
//! loopback, the receiver's side too). A worker with a big reply (READ
//! data of [`WAIT_FOR_SEND`] bytes or more) waits for the write lock and
//! sends it itself (with any small ones queued): the copy into the socket
//! dominates there anyway, and workers running ahead would only fill
//! memory with reply buffers that have long left the CPU cache by the
//! time they are sent.
//!
//! Reading is buffered: one `recv` brings in as many requests as the client
//! has queued, and the next workers take theirs from the buffer without a
//! syscall. A worker whose request is a WRITE takes the WRITEs that
//! continue it, as far as they have arrived (up to 512 KiB), and writes
//! them to the export at once (see `Shared::next_contiguous_write`). A
//! WRITE's payload goes from that buffer, then straight from the socket,
//! into the worker's own buffer, which it keeps for the next request (up
//! to [`KEEP_BUFFER`]).
//!
//! A small READ whose data the export has in memory (see
//! [`crate::Export::read_resident`]) is answered by the worker that takes
//! it off the socket, still holding the read lock, along with the small
//! READs queued behind it, and sent; the worker then reads on. While a
//! client reads from the page cache, one thread serves the connection and
//! no other is woken. A READ whose data is not in memory goes to a worker
//! that may wait on the device, as every other request does.
//!
//! A byte budget bounds the payloads in flight: a worker that cannot get
//! its share waits holding the read lock, so nothing more is read and TCP
//! pushes back on the client.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};

use bytes::BytesMut;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::MAX_PAYLOAD;
use crate::codec::{self, FrameError, Request};
use crate::consts::*;
use crate::error::{Error, Result};
use crate::export::ExportStats;
use crate::transmission::{
    BUDGET_UNITS, BufPool, Reply, Session, budget_cost, execute, execute_resident_read,
    execute_writes, shutdown_signal, small_read, validate,
};

/// Worker threads per connection: requests in flight at once (nbdkit's
/// default too). More than the client's queue depth only idles.
pub(crate) const WORKERS: usize = 16;
/// Socket read buffer: room for many queued requests per `recv`.
const READ_BUFFER: usize = 256 * 1024;
/// Most bytes one `recv` into the read buffer asks for: enough for a few
/// hundred queued requests, or eight 4 KiB writes, while a big WRITE's
/// payload is mostly read straight into the worker's buffer rather than
/// through this one (a copy more).
const FILL: usize = 32 * 1024;
/// A worker keeps buffers up to this size for its next request; larger
/// ones (big requests are rare) are freed after use.
const KEEP_BUFFER: usize = 1 << 20;
/// Most replies one vectored write carries (two slices each, well under
/// the kernel's limit of 1024).
const BATCH: usize = 128;
/// Most reply bytes one vectored write carries (beyond its first reply):
/// combining saves a syscall per reply, which matters for small ones; big
/// ones go a few at a time, so that their buffers and budget come back
/// as soon as each is on the wire.
const BATCH_BYTES: usize = 128 * 1024;
/// Replies with this much data or more are waited for (see the module
/// doc).
const WAIT_FOR_SEND: usize = 64 * 1024;
/// Most bytes of contiguous WRITEs a worker joins into one (see
/// `Shared::next_contiguous_write`).
const JOINED_WRITE: usize = 512 << 10;
/// Most READs answered that way in one go.
const RESIDENT_BATCH: usize = 64;

/// A socket the workers share: reads under the read lock, writes under the
/// write lock, through `&S`.
pub(crate) trait BlockingSocket: Send + Sync + 'static {
    /// `read` on a shared reference.
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// `write_vectored` on a shared reference.
    fn write_some(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// `shutdown` (wakes a blocked reader on Linux).
    fn stop(&self, how: Shutdown) -> io::Result<()>;
    /// `read` of what has arrived, without waiting: `Ok(0)` when nothing
    /// has (or the stream ended; the next blocking read tells).
    fn read_ready(&self, buf: &mut [u8]) -> io::Result<usize>;
}

/// `recv` with `MSG_DONTWAIT`: no bytes yet is `Ok(0)`.
fn recv_ready(socket: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    match rustix::net::recv(socket, buf, rustix::net::RecvFlags::DONTWAIT) {
        Ok((n, _)) => Ok(n),
        Err(rustix::io::Errno::AGAIN) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

impl BlockingSocket for TcpStream {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_ready(&self, buf: &mut [u8]) -> io::Result<usize> {
        recv_ready(self, buf)
    }
    fn write_some(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn stop(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

impl BlockingSocket for UnixStream {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_ready(&self, buf: &mut [u8]) -> io::Result<usize> {
        recv_ready(self, buf)
    }
    fn write_some(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn stop(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

/// The read side: buffered bytes `buf[start..end]` not yet taken.
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// No more requests are read (DISC, EOF, an error, shutdown).
    closed: bool,
}

impl Input {
    /// Moves the buffered bytes to the front of the buffer.
    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// Starts from the front again once everything buffered is taken.
    fn rewind_if_empty(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// Small replies waiting for the wire.
struct Outbox {
    /// Each with the budget it returns once sent, in the order queued.
    queue: VecDeque<(Reply, u32)>,
    /// A write failed: nothing more goes out.
    broken: bool,
}

/// Bytes a reply puts on the wire.
fn reply_bytes(reply: &Reply) -> usize {
    reply.head.len() + reply.data.as_ref().map_or(0, Vec::len)
}

/// Units of the in-flight budget (see `transmission::budget_cost`) that
/// requests in flight may hold.
struct Budget {
    state: Mutex<BudgetState>,
    returned: Condvar,
}

struct BudgetState {
    free: u32,
    /// Workers waiting in `acquire`: only then does `release` wake anyone
    /// (a condition variable's notify is a syscall even with no waiter).
    waiting: u32,
}

impl Budget {
    fn new(units: u32) -> Self {
        Budget {
            state: Mutex::new(BudgetState {
                free: units,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn acquire(&self, n: u32) {
        let mut state = self.lock();
        while state.free < n {
            state.waiting += 1;
            state = self.returned.wait(state).unwrap_or_else(|e| e.into_inner());
            state.waiting -= 1;
        }
        state.free -= n;
    }

    /// Takes `n` units if they are free now.
    fn try_acquire(&self, n: u32) -> bool {
        let mut state = self.lock();
        if state.free < n {
            return false;
        }
        state.free -= n;
        true
    }

    fn release(&self, n: u32) {
        if n == 0 {
            return;
        }
        let mut state = self.lock();
        state.free += n;
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.returned.notify_all();
        }
    }
}

struct Shared<S> {
    socket: S,
    session: Session,
    size: u64,
    input: Mutex<Input>,
    /// The write lock: held while writing to the socket.
    output: Mutex<()>,
    outbox: Mutex<Outbox>,
    budget: Budget,
    /// Set by the server's shutdown: read nothing more.
    stopping: AtomicBool,
    /// The first error that ended the connection.
    failure: Mutex<Option<Error>>,
}

/// What a worker took off the socket.
enum Next {
    /// A request (a WRITE's payload in the worker's buffer) and the budget
    /// it holds.
    Request(Request, u32),
    /// A request refused before any work, to answer.
    Refused(Reply),
    /// Nothing more will be read.
    Closed,
}

impl<S: BlockingSocket> Shared<S> {
    fn fail(&self, e: Error) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            *failure = Some(e);
        }
    }

    fn lock_input(&self) -> MutexGuard<'_, Input> {
        self.input.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes at least `want` bytes available in `input` (compacting and
    /// growing the buffer as needed). `Ok(false)`: the stream ended first.
    fn fill(&self, input: &mut Input, want: usize) -> io::Result<bool> {
        while input.end - input.start < want {
            if self.stopping.load(Ordering::Acquire) {
                return Ok(false);
            }
            if input.buf.len() - input.start < want {
                input.compact();
                if input.buf.len() < want {
                    input.buf.resize(want, 0);
                }
            }
            let n = loop {
                let room = (input.end + FILL.max(want)).min(input.buf.len());
                match self.socket.read_some(&mut input.buf[input.end..room]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                return Ok(false);
            }
            input.end += n;
        }
        Ok(true)
    }

    /// The next request's header if it has arrived (read without waiting
    /// if not yet buffered) and is well formed; not taken. `None` also
    /// once nothing more is to be read. Call with the read lock.
    fn peek_request(&self, input: &mut Input) -> Result<Option<Request>> {
        if input.closed || self.stopping.load(Ordering::Acquire) {
            return Ok(None);
        }
        if input.end - input.start < REQUEST_HEADER_LEN {
            // Whatever has arrived, without waiting for more.
            if input.buf.len() - input.end < REQUEST_HEADER_LEN {
                input.compact();
            }
            let room = (input.end + FILL).min(input.buf.len());
            input.end += self.socket.read_ready(&mut input.buf[input.end..room])?;
            if input.end - input.start < REQUEST_HEADER_LEN {
                return Ok(None);
            }
        }
        let header = &input.buf[input.start..input.start + REQUEST_HEADER_LEN];
        Ok(codec::decode_request_header(header, MAX_PAYLOAD).ok())
    }

    /// Takes the next request off the socket if it is a small READ (see
    /// [`crate::transmission::RESIDENT_READ`]) that has arrived, is valid and gets its budget
    /// now. Call with the read lock.
    fn next_small_read(&self, input: &mut Input) -> Result<Option<(Request, u32)>> {
        let Some(req) = self.peek_request(input)? else {
            return Ok(None);
        };
        if !small_read(&req) || validate(&self.session, self.size, &req).is_err() {
            return Ok(None);
        }
        let cost = budget_cost(&req);
        if !self.budget.try_acquire(cost) {
            return Ok(None);
        }
        input.start += REQUEST_HEADER_LEN;
        input.rewind_if_empty();
        Ok(Some((req, cost)))
    }

    /// Holding the read lock: answers `first` (a small READ) and the small
    /// READs after it that have arrived, as long as the export has their
    /// data in memory, into `answered` (at most [`RESIDENT_BATCH`]).
    /// Returns the one whose data is not in memory, for the worker to run
    /// once it has let go of the lock. Reads from the page cache cost
    /// about what handing them to another thread does; this way a client's
    /// queue of reads is taken, answered and sent by one thread, in one
    /// `writev`, and the other workers are not woken for them.
    fn answer_resident(
        &self,
        input: &mut Input,
        first: (Request, u32),
        pool: &Arc<BufPool>,
        answered: &mut Vec<(Reply, u32)>,
    ) -> Option<(Request, u32)> {
        let s = &self.session;
        let mut next = first;
        let mut bytes = 0;
        loop {
            match execute_resident_read(
                &*s.entry.export,
                &s.entry.stats,
                pool,
                s.structured,
                &next.0,
            ) {
                Some(reply) => {
                    bytes += reply_bytes(&reply);
                    answered.push((reply, next.1));
                }
                None => return Some(next),
            }
            if answered.len() >= RESIDENT_BATCH || bytes >= BATCH_BYTES {
                return None;
            }
            match self.next_small_read(input) {
                Ok(Some(more)) => next = more,
                Ok(None) => return None,
                Err(e) => {
                    // What was answered still goes out; nothing more is
                    // read.
                    input.closed = true;
                    self.fail(e);
                    return None;
                }
            }
        }
    }

    /// Takes the next request off the socket if it is a WRITE (no FUA) that
    /// continues where the worker's current one ends (`at`), its header
    /// already arrived, and its payload fits in `payload` after `filled`
    /// bytes within [`JOINED_WRITE`]; its payload goes right after those.
    /// A sequential writer's WRITEs then reach the export as one larger
    /// write: fewer calls, and a file system's per-call work over each
    /// page-cache folio done once rather than once per request. Call with
    /// the read lock.
    fn next_contiguous_write(
        &self,
        input: &mut Input,
        payload: &mut Vec<u8>,
        at: u64,
        filled: usize,
    ) -> Result<Option<(Request, u32)>> {
        let Some(req) = self.peek_request(input)? else {
            return Ok(None);
        };
        let len = req.len as usize;
        if req.cmd != NBD_CMD_WRITE
            || req.offset != at
            || !req.flags.is_empty()
            || len == 0
            || filled + len > JOINED_WRITE
            || validate(&self.session, self.size, &req).is_err()
        {
            return Ok(None);
        }
        let cost = budget_cost(&req);
        if !self.budget.try_acquire(cost) {
            return Ok(None);
        }
        input.start += REQUEST_HEADER_LEN;
        if let Err(e) = self.read_payload(input, payload, filled, len) {
            self.budget.release(cost);
            return Err(e);
        }
        Ok(Some((req, cost)))
    }

    /// Reads a WRITE's `len`-byte payload into `payload[at..at + len]`:
    /// what the read buffer holds, then the rest straight from the socket.
    fn read_payload(
        &self,
        input: &mut Input,
        payload: &mut Vec<u8>,
        at: usize,
        len: usize,
    ) -> Result<()> {
        // The buffer only grows (zeroed once), so a kept buffer is not
        // cleared per request.
        if payload.len() < at + len {
            payload.resize(at + len, 0);
        }
        let buffered = (input.end - input.start).min(len);
        payload[at..at + buffered].copy_from_slice(&input.buf[input.start..input.start + buffered]);
        input.start += buffered;
        let mut got = buffered;
        while got < len {
            match self.socket.read_some(&mut payload[at + got..at + len]) {
                Ok(0) => return Err(Error::Truncated),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        input.rewind_if_empty();
        Ok(())
    }

    /// Takes the next request off the socket; call with the read lock.
    fn next(&self, input: &mut Input, payload: &mut Vec<u8>) -> Result<Next> {
        let s = &self.session;
        if input.closed {
            return Ok(Next::Closed);
        }
        if !self.fill(input, REQUEST_HEADER_LEN)? {
            if input.start != input.end && !self.stopping.load(Ordering::Acquire) {
                return Err(Error::Truncated);
            }
            debug!(peer = %s.peer, "client closed the connection");
            return Ok(Next::Closed);
        }
        let header = &input.buf[input.start..input.start + REQUEST_HEADER_LEN];
        let req = match codec::decode_request_header(header, MAX_PAYLOAD) {
            Ok(req) => req,
            Err(FrameError::OversizedRequest(req)) => {
                // The payload cannot be skipped safely: answer and hang up.
                warn!(peer = %s.peer, cmd = %req.cmd, len = req.len, "request too large; closing");
                ExportStats::add(&s.entry.stats.errors, 1);
                input.closed = true;
                return Ok(Next::Refused(Reply::error(
                    s.structured,
                    req.handle,
                    NBD_EOVERFLOW,
                    "request larger than the maximum block size",
                )));
            }
            Err(e) => return Err(e.into()),
        };
        input.start += REQUEST_HEADER_LEN;
        if req.cmd == NBD_CMD_DISC {
            debug!(peer = %s.peer, "client disconnected (NBD_CMD_DISC)");
            return Ok(Next::Closed);
        }
        let cost = budget_cost(&req);
        self.budget.acquire(cost);
        if req.cmd == NBD_CMD_WRITE {
            // Read even a refused write's payload: the stream must stay in
            // step.
            if let Err(e) = self.read_payload(input, payload, 0, req.len as usize) {
                self.budget.release(cost);
                return Err(e);
            }
        }
        input.rewind_if_empty();
        if let Err((errno, msg)) = validate(s, self.size, &req) {
            self.budget.release(cost);
            debug!(cmd = %req.cmd, offset = req.offset, len = req.len, %errno, msg, "request refused");
            ExportStats::add(&s.entry.stats.errors, 1);
            return Ok(Next::Refused(Reply::error(
                s.structured,
                req.handle,
                errno,
                msg,
            )));
        }
        Ok(Next::Request(req, cost))
    }

    fn lock_outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `reply` (holding `cost` of the budget). A small one goes to the
    /// outbox and is sent now only if nobody holds the write lock (whoever
    /// does takes it along); a big one waits for the write lock. `Err`:
    /// the socket failed (now or before); the connection is over.
    fn send(&self, reply: Reply, cost: u32) -> io::Result<()> {
        let big = reply
            .data
            .as_ref()
            .is_some_and(|d| d.len() >= WAIT_FOR_SEND);
        if big {
            let wire = self.output.lock().unwrap_or_else(|e| e.into_inner());
            return self.send_locked(wire, Some((reply, cost)));
        }
        self.send_small(vec![(reply, cost)])
    }

    /// Queues small replies and sends the outbox unless another worker
    /// holds the write lock (it then takes them along).
    fn send_small(&self, replies: Vec<(Reply, u32)>) -> io::Result<()> {
        {
            let mut outbox = self.lock_outbox();
            if outbox.broken {
                drop(outbox);
                let cost: u32 = replies.iter().map(|(_, c)| c).sum();
                drop(replies);
                self.budget.release(cost);
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            outbox.queue.extend(replies);
        }
        match self.output.try_lock() {
            Ok(wire) => self.send_locked(wire, None),
            Err(TryLockError::Poisoned(e)) => self.send_locked(e.into_inner(), None),
            // The holder sends it.
            Err(TryLockError::WouldBlock) => Ok(()),
        }
    }

    /// Holding the write lock: sends `own` and whatever the outbox holds,
    /// in batches, until the outbox is empty; then lets go of the lock and
    /// takes it again if a reply was queued meanwhile (its worker found the
    /// lock held and left the reply to the holder).
    fn send_locked<'a>(
        &'a self,
        mut wire: MutexGuard<'a, ()>,
        mut own: Option<(Reply, u32)>,
    ) -> io::Result<()> {
        let mut batch: Vec<(Reply, u32)> = Vec::new();
        loop {
            let mut bytes = 0;
            if let Some(mine) = own.take() {
                bytes += reply_bytes(&mine.0);
                batch.push(mine);
            }
            {
                let mut outbox = self.lock_outbox();
                if outbox.broken {
                    let cost: u32 = batch.drain(..).map(|(_, c)| c).sum();
                    drop(outbox);
                    self.budget.release(cost);
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                while let Some(next) = outbox.queue.front() {
                    let more = reply_bytes(&next.0);
                    if batch.len() >= BATCH || (!batch.is_empty() && bytes + more > BATCH_BYTES) {
                        break;
                    }
                    bytes += more;
                    batch.extend(outbox.queue.pop_front());
                }
            }
            if batch.is_empty() {
                drop(wire);
                if self.lock_outbox().queue.is_empty() {
                    return Ok(());
                }
                wire = match self.output.try_lock() {
                    Ok(wire) => wire,
                    Err(TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(TryLockError::WouldBlock) => return Ok(()),
                };
                continue;
            }
            let sent = self.write_batch(&batch);
            // Buffers back to their workers' pools, budget back.
            let cost: u32 = batch.drain(..).map(|(_, c)| c).sum();
            self.budget.release(cost);
            if let Err(e) = sent {
                let mut outbox = self.lock_outbox();
                outbox.broken = true;
                let cost: u32 = outbox.queue.drain(..).map(|(_, c)| c).sum();
                drop(outbox);
                self.budget.release(cost);
                return Err(e);
            }
        }
    }

    /// Writes the replies, header and data of each, in as few vectored
    /// writes as the socket takes.
    fn write_batch(&self, batch: &[(Reply, u32)]) -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * batch.len());
        for (reply, _) in batch {
            slices.push(IoSlice::new(&reply.head));
            if let Some(d) = reply.data.as_deref().filter(|d| !d.is_empty()) {
                slices.push(IoSlice::new(d));
            }
        }
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            match self.socket.write_some(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The socket failed: every worker stops.
    fn broken(&self, e: io::Error) {
        self.stopping.store(true, Ordering::Release);
        let _ = self.socket.stop(Shutdown::Both);
        self.fail(e.into());
    }

    /// Takes what the worker runs next off the socket, under the read
    /// lock: a request (a WRITE with the contiguous WRITEs after it in
    /// `joined`, their payloads in `payload`), with replies still to send
    /// first in `answered`; `None` once the connection is over.
    ///
    /// Small READs whose data the export has in memory are answered here
    /// and their replies sent, and the worker reads on, holding the lock:
    /// while a client's reads come from the page cache, one thread takes
    /// them, answers and sends, with no other thread woken and no sleep
    /// between (on a machine with few CPUs, handing each to another
    /// thread made the client wait for replies and sleep, and the two
    /// sides took turns on the CPUs instead of running side by side).
    fn take(
        &self,
        payload: &mut Vec<u8>,
        joined: &mut Vec<(Request, u32)>,
        pool: &Arc<BufPool>,
        answered: &mut Vec<(Reply, u32)>,
    ) -> Option<Next> {
        let mut input = self.lock_input();
        loop {
            let next = match self.next(&mut input, payload) {
                Ok(Next::Closed) => {
                    input.closed = true;
                    return None;
                }
                Ok(next) => next,
                Err(e) => {
                    input.closed = true;
                    self.fail(e);
                    return None;
                }
            };
            match next {
                Next::Request(req, cost) if small_read(&req) => {
                    if let Some((req, cost)) =
                        self.answer_resident(&mut input, (req, cost), pool, answered)
                    {
                        // Not in memory: the worker reads it once the lock
                        // is free, and sends what was answered first.
                        return Some(Next::Request(req, cost));
                    }
                    if let Err(e) = self.send_small(std::mem::take(answered)) {
                        input.closed = true;
                        self.broken(e);
                        return None;
                    }
                }
                Next::Request(req, cost) if req.cmd == NBD_CMD_WRITE && req.flags.is_empty() => {
                    let mut at = req.offset + u64::from(req.len);
                    let mut filled = req.len as usize;
                    loop {
                        match self.next_contiguous_write(&mut input, payload, at, filled) {
                            Ok(Some((r, c))) => {
                                at += u64::from(r.len);
                                filled += r.len as usize;
                                joined.push((r, c));
                            }
                            Ok(None) => break,
                            Err(e) => {
                                // What was taken whole is still answered;
                                // nothing more is read.
                                input.closed = true;
                                self.fail(e);
                                break;
                            }
                        }
                    }
                    return Some(Next::Request(req, cost));
                }
                next => return Some(next),
            }
        }
    }

    /// One worker: take a request, run it, send its reply, until the
    /// connection closes.
    fn work(&self) {
        let export = self.session.entry.export.clone();
        let stats = self.session.entry.stats.clone();
        let structured = self.session.structured;
        // This worker's READ buffers: one in use at a time, kept between
        // requests.
        let pool = Arc::new(BufPool::default());
        let mut payload: Vec<u8> = Vec::new();
        let mut joined: Vec<(Request, u32)> = Vec::new();
        let mut answered: Vec<(Reply, u32)> = Vec::new();
        loop {
            let next = self.take(&mut payload, &mut joined, &pool, &mut answered);
            let Some(next) = next else { break };
            if !answered.is_empty()
                && let Err(e) = self.send_small(std::mem::take(&mut answered))
            {
                self.broken(e);
                break;
            }
            let sent = match next {
                Next::Request(req, cost) if !joined.is_empty() => {
                    let offset = req.offset;
                    let mut total = req.len as usize;
                    let mut budget = cost;
                    let mut reqs = vec![req];
                    for (r, c) in joined.drain(..) {
                        total += r.len as usize;
                        budget += c;
                        reqs.push(r);
                    }
                    let replies = execute_writes(
                        &*export,
                        &stats,
                        structured,
                        &reqs,
                        offset,
                        &payload[..total],
                    );
                    // The whole budget comes back with the first reply.
                    let replies = replies
                        .into_iter()
                        .enumerate()
                        .map(|(i, r)| (r, if i == 0 { budget } else { 0 }))
                        .collect();
                    self.send_small(replies)
                }
                Next::Request(req, cost) => {
                    let data = match req.cmd {
                        NBD_CMD_WRITE => &payload[..req.len as usize],
                        _ => &[],
                    };
                    let reply = execute(&*export, &stats, &pool, structured, &req, data);
                    self.send(reply, cost)
                }
                Next::Refused(reply) => self.send(reply, 0),
                Next::Closed => break,
            };
            if payload.capacity() > KEEP_BUFFER {
                payload = Vec::new();
            }
            if let Err(e) = sent {
                // The client is gone: stop every worker.
                self.broken(e);
                break;
            }
        }
    }
}

/// Serves requests on `socket` (in blocking mode) with [`WORKERS`] threads
/// until the client disconnects, breaks the protocol, or the server shuts
/// down; in-flight requests are answered before return.
pub(crate) async fn run<S: BlockingSocket>(
    socket: S,
    leftover: BytesMut,
    session: Session,
    mut shutdown: Option<watch::Receiver<bool>>,
) -> Result<()> {
    let mut buf = vec![0u8; READ_BUFFER.max(leftover.len())];
    buf[..leftover.len()].copy_from_slice(&leftover);
    let size = session.entry.export.size();
    ExportStats::add(&session.entry.stats.connections, 1);
    let shared = Arc::new(Shared {
        socket,
        size,
        input: Mutex::new(Input {
            buf,
            start: 0,
            end: leftover.len(),
            closed: false,
        }),
        output: Mutex::new(()),
        outbox: Mutex::new(Outbox {
            queue: VecDeque::with_capacity(WORKERS),
            broken: false,
        }),
        budget: Budget::new(BUDGET_UNITS),
        stopping: AtomicBool::new(false),
        failure: Mutex::new(None),
        session,
    });
    // Each worker holds a sender; `recv` ends once every worker has.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let span = tracing::Span::current();
    for i in 0..WORKERS {
        let (shared, done, span) = (shared.clone(), done_tx.clone(), span.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("nbd-worker-{i}"))
            .spawn(move || {
                let _span = span.enter();
                shared.work();
                drop(done);
            });
        if let Err(e) = spawned {
            // Fewer workers still serve; none at all is an error.
            if i == 0 {
                return Err(e.into());
            }
            warn!(error = %e, workers = i, "could not start every NBD worker thread");
            break;
        }
    }
    drop(done_tx);
    tokio::select! {
        _ = done_rx.recv() => {}
        _ = shutdown_signal(&mut shutdown) => {
            debug!(peer = %shared.session.peer, "server shutting down; closing");
            shared.stopping.store(true, Ordering::Release);
            // Wakes the worker blocked in recv; the others finish what they
            // hold, answer it and stop.
            let _ = shared.socket.stop(Shutdown::Read);
            done_rx.recv().await;
        }
    }
    let failure = shared
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_worker_short_of_budget_waits_until_it_is_returned() {
        let budget = Arc::new(Budget::new(4));
        budget.acquire(4);
        assert!(!budget.try_acquire(1));
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                budget.acquire(3);
                budget.release(3);
            })
        };
        // Bounded: the waiter must be asleep in `acquire` before the release.
        let deadline = Instant::now() + Duration::from_secs(10);
        while budget.lock().waiting == 0 {
            assert!(Instant::now() < deadline, "the waiter never waited");
            std::thread::sleep(Duration::from_millis(1));
        }
        budget.release(4);
        waiter.join().expect("waiter");
        let state = budget.lock();
        assert_eq!((state.free, state.waiting), (4, 0));
    }
}
