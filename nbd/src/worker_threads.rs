//! The transmission phase on a blocking socket (TCP or Unix), served the
//! way nbdkit serves it: a fixed set of worker threads per connection,
//! each taking the next request off the socket under the read lock,
//! running it against the export (`pread` straight into the reply's data
//! buffer) and sending the reply, header and data in one vectored write,
//! under the write lock. Replies go out in completion order. A request
//! never changes thread, so it costs its own syscalls and nothing more: no
//! task spawned, no channel, no other thread woken to send it.
//!
//! Reading is buffered: one `recv` brings in as many requests as the client
//! has queued, and the next workers take theirs from the buffer without a
//! syscall. A WRITE's payload goes from that buffer, then straight from the
//! socket, into the worker's own buffer, which it keeps for the next
//! request (up to [`KEEP_BUFFER`]).
//!
//! A byte budget bounds the payloads in flight: a worker that cannot get
//! its share waits holding the read lock, so nothing more is read and TCP
//! pushes back on the client.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use bytes::BytesMut;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::MAX_PAYLOAD;
use crate::codec::{self, FrameError, Request};
use crate::consts::*;
use crate::error::{Error, Result};
use crate::export::ExportStats;
use crate::transmission::{
    BUDGET_UNIT_SHIFT, BUDGET_UNITS, BufPool, Reply, Session, execute, shutdown_signal, validate,
};

/// Worker threads per connection: requests in flight at once (nbdkit's
/// default too). More than the client's queue depth only idles.
pub(crate) const WORKERS: usize = 16;
/// Socket read buffer: room for many queued requests per `recv`.
const READ_BUFFER: usize = 256 * 1024;
/// A worker keeps buffers up to this size for its next request; larger
/// ones (big requests are rare) are freed after use.
const KEEP_BUFFER: usize = 1 << 20;

/// A socket the workers share: reads under the read lock, writes under the
/// write lock, through `&S`.
pub(crate) trait BlockingSocket: Send + Sync + 'static {
    /// `read` on a shared reference.
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// `write_vectored` on a shared reference.
    fn write_some(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// `shutdown` (wakes a blocked reader on Linux).
    fn stop(&self, how: Shutdown) -> io::Result<()>;
}

impl BlockingSocket for TcpStream {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
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

/// Units of [`BUDGET_UNIT_SHIFT`] bytes that payloads in flight may hold.
struct Budget {
    free: Mutex<u32>,
    returned: Condvar,
}

impl Budget {
    fn acquire(&self, n: u32) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free < n {
            free = self.returned.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= n;
    }

    fn release(&self, n: u32) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += n;
        self.returned.notify_all();
    }
}

struct Shared<S> {
    socket: S,
    session: Session,
    size: u64,
    input: Mutex<Input>,
    output: Mutex<()>,
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
                input.buf.copy_within(input.start..input.end, 0);
                input.end -= input.start;
                input.start = 0;
                if input.buf.len() < want {
                    input.buf.resize(want, 0);
                }
            }
            let n = loop {
                match self.socket.read_some(&mut input.buf[input.end..]) {
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
        let cost = match req.cmd {
            NBD_CMD_READ | NBD_CMD_WRITE => (1 + (req.len >> BUDGET_UNIT_SHIFT)).min(BUDGET_UNITS),
            _ => 1,
        };
        self.budget.acquire(cost);
        if req.cmd == NBD_CMD_WRITE {
            // Read even a refused write's payload: the stream must stay in
            // step.
            let len = req.len as usize;
            payload.clear();
            let buffered = (input.end - input.start).min(len);
            payload.extend_from_slice(&input.buf[input.start..input.start + buffered]);
            input.start += buffered;
            if buffered < len {
                payload.resize(len, 0);
                let mut at = buffered;
                while at < len {
                    match self.socket.read_some(&mut payload[at..]) {
                        Ok(0) => {
                            self.budget.release(cost);
                            return Err(Error::Truncated);
                        }
                        Ok(n) => at += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            self.budget.release(cost);
                            return Err(e.into());
                        }
                    }
                }
            }
        }
        if input.start == input.end {
            input.start = 0;
            input.end = 0;
        }
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

    /// Sends one reply under the write lock.
    fn send(&self, reply: &Reply) -> io::Result<()> {
        let mut slices = [IoSlice::new(&reply.head), IoSlice::new(&[])];
        let mut count = 1;
        if let Some(d) = reply.data.as_deref().filter(|d| !d.is_empty()) {
            slices[1] = IoSlice::new(d);
            count = 2;
        }
        let mut slices = &mut slices[..count];
        let _out = self.output.lock().unwrap_or_else(|e| e.into_inner());
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
        loop {
            let next = {
                let mut input = self.lock_input();
                match self.next(&mut input, &mut payload) {
                    Ok(Next::Closed) => {
                        input.closed = true;
                        None
                    }
                    Ok(next) => Some(next),
                    Err(e) => {
                        input.closed = true;
                        self.fail(e);
                        None
                    }
                }
            };
            let Some(next) = next else { break };
            let sent = match next {
                Next::Request(req, cost) => {
                    let reply = execute(&*export, &stats, &pool, structured, &req, &payload);
                    let sent = self.send(&reply);
                    drop(reply);
                    self.budget.release(cost);
                    sent
                }
                Next::Refused(reply) => self.send(&reply),
                Next::Closed => break,
            };
            if payload.capacity() > KEEP_BUFFER {
                payload = Vec::new();
            }
            if let Err(e) = sent {
                // The client is gone: stop every worker.
                self.stopping.store(true, Ordering::Release);
                let _ = self.socket.stop(Shutdown::Both);
                self.fail(e.into());
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
        budget: Budget {
            free: Mutex::new(BUDGET_UNITS),
            returned: Condvar::new(),
        },
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
