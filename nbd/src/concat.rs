//! [`ConcatExport`]: one export made of several remote NBD exports laid end
//! to end, the client-host side of a volume that spans SAN units.
//!
//! The volume-space arithmetic is pure and tested on its own: a [`Layout`]
//! splits a request into [`Piece`]s, one per extent it touches, and
//! [`merge_block_status`] joins the extents' block status back into volume
//! space.
//!
//! The server calls [`Export`] methods on its blocking worker threads, one
//! thread per request. Each call drives its remote requests with the
//! runtime's [`Handle::block_on`] from that thread, the pieces of one request
//! concurrently, so many requests are in flight at once and nothing is
//! serialised behind a lock: each remote has a small pool of pipelined
//! [`Client`] connections, picked round-robin, and a connection is only
//! locked while it is taken from or put back in its slot.
//!
//! A remote that fails (refuses, drops the connection, breaks the protocol
//! or does not answer in time) fails the requests that touch it with an I/O
//! error; its broken connection is dropped, and the next request that needs
//! it connects again.
//!
//! FLUSH reaches every remote. A remote that does not promise
//! `CAN_MULTI_CONN` is flushed on each of its pooled connections that
//! carried writes since their last flush, and a lost connection that still
//! had unflushed writes makes the next FLUSH fail; so a FLUSH on any client
//! connection covers writes completed on all of them, and the export
//! advertises multi-connection consistency itself.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::net::{TcpStream, UnixStream};
use tokio::runtime::Handle;
use tracing::{info, warn};

use crate::client::{Client, ClientOptions};
use crate::consts::{
    Errno, NBD_EINVAL, NBD_ENOMEM, NBD_ENOSPC, NBD_ENOTSUP, NBD_EPERM, StateFlags,
    TransmissionFlags,
};
use crate::error::Error;
use crate::export::{BlockSizes, Export, ExportFlags, Extent};
use crate::tls::ClientTls;

/// Where a remote export listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteAddr {
    /// A TCP endpoint: a host name or IP literal (IPv6 without brackets),
    /// and a port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix socket.
    Unix(PathBuf),
}

/// One extent of a concatenated export: a remote export and how many of its
/// bytes belong to the volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSpec {
    /// Where the remote listens.
    pub addr: RemoteAddr,
    /// The export name on the remote.
    pub export: String,
    /// Bytes of the volume this extent holds (its first `size` bytes; the
    /// remote export may be larger, never smaller).
    pub size: u64,
    /// Reached over TLS (`nbds://`), with [`ConcatOptions::tls`].
    pub tls: bool,
}

impl fmt::Display for RemoteSpec {
    /// The remote as an NBD URI, for logs and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "nbds" } else { "nbd" };
        match &self.addr {
            RemoteAddr::Tcp { host, port } if host.contains(':') => {
                write!(f, "{scheme}://[{host}]:{port}/{}", self.export)
            }
            RemoteAddr::Tcp { host, port } => {
                write!(f, "{scheme}://{host}:{port}/{}", self.export)
            }
            RemoteAddr::Unix(path) => {
                write!(
                    f,
                    "{scheme}+unix:///{}?socket={}",
                    self.export,
                    path.display()
                )
            }
        }
    }
}

/// Tuning of a [`ConcatExport`].
#[derive(Clone, Debug)]
pub struct ConcatOptions {
    /// Connections kept open to each remote (at least one), so that many
    /// requests to one remote are in flight on several TCP streams.
    pub connections_per_remote: usize,
    /// How long connecting and negotiating with a remote may take.
    pub connect_timeout: Duration,
    /// How long one remote request may take before it fails and its
    /// connection is dropped.
    pub request_timeout: Duration,
    /// TLS settings for the remotes marked [`RemoteSpec::tls`] (which
    /// cannot be reached without them).
    pub tls: Option<ClientTls>,
}

impl Default for ConcatOptions {
    fn default() -> Self {
        ConcatOptions {
            connections_per_remote: 4,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// Why a [`ConcatExport`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConcatError {
    /// The extents do not form a volume.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A remote could not be reached or refused the export.
    #[error("connecting to {remote}")]
    Connect {
        /// The remote, as a URI.
        remote: String,
        /// What went wrong.
        #[source]
        source: Error,
    },
    /// A remote is to be reached over TLS and no TLS settings were given.
    #[error("{remote} is served over TLS only, and no CA to check it against was given")]
    NoTls {
        /// The remote, as a URI.
        remote: String,
    },
    /// A remote did not finish the handshake in time.
    #[error("connecting to {remote}: no answer within {timeout:?}")]
    ConnectTimeout {
        /// The remote, as a URI.
        remote: String,
        /// The bound that was exceeded.
        timeout: Duration,
    },
    /// A remote export is smaller than its extent.
    #[error("{remote} holds {actual} bytes, less than its extent of {expected} bytes")]
    RemoteTooSmall {
        /// The remote, as a URI.
        remote: String,
        /// The extent's size.
        expected: u64,
        /// The remote export's size.
        actual: u64,
    },
    /// A remote came back without a capability the export advertises.
    #[error("{remote} no longer offers what it did at attach time (flags {now:?}, were {then:?})")]
    CapabilitiesChanged {
        /// The remote, as a URI.
        remote: String,
        /// Flags at the first connection.
        then: TransmissionFlags,
        /// Flags now.
        now: TransmissionFlags,
    },
}

/// Why extent sizes do not form a [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// No extents at all.
    #[error("a volume needs at least one extent")]
    NoExtents,
    /// An extent of zero bytes.
    #[error("extent {0} has size 0")]
    EmptyExtent(usize),
    /// The sizes add up to more than a u64 holds.
    #[error("the extents add up to more than 2^64 bytes")]
    TooLarge,
}

/// A range that does not lie within the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes at offset {offset} reach beyond the volume's {size} bytes")]
pub struct OutOfRange {
    /// Start of the range.
    pub offset: u64,
    /// Length of the range.
    pub len: u64,
    /// The volume's size.
    pub size: u64,
}

/// Where each extent sits in volume space: extent `i` holds volume bytes
/// `end(i-1)..end(i)`, at the same offsets from its own start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Cumulative end of each extent, strictly increasing.
    ends: Vec<u64>,
}

/// The part of a volume-space range that lies in one extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Which extent.
    pub extent: usize,
    /// Offset within the extent.
    pub offset: u64,
    /// Length in bytes (never zero).
    pub len: u64,
    /// Offset of this piece from the start of the request, i.e. into the
    /// request's buffer.
    pub skip: u64,
}

impl Layout {
    /// The layout of extents of these sizes, in order.
    pub fn new(sizes: impl IntoIterator<Item = u64>) -> Result<Layout, LayoutError> {
        let mut ends = Vec::new();
        let mut end = 0u64;
        for (i, size) in sizes.into_iter().enumerate() {
            if size == 0 {
                return Err(LayoutError::EmptyExtent(i));
            }
            end = end.checked_add(size).ok_or(LayoutError::TooLarge)?;
            ends.push(end);
        }
        if ends.is_empty() {
            return Err(LayoutError::NoExtents);
        }
        Ok(Layout { ends })
    }

    /// The volume's size.
    pub fn size(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Number of extents.
    pub fn extents(&self) -> usize {
        self.ends.len()
    }

    /// Where extent `i` starts in volume space.
    pub fn start(&self, i: usize) -> u64 {
        match i {
            0 => 0,
            i => self.ends[i - 1],
        }
    }

    /// Splits `len` bytes at volume offset `offset` into pieces, one per
    /// extent touched, in volume order. An empty range has no pieces.
    pub fn split(&self, offset: u64, len: u64) -> Result<Vec<Piece>, OutOfRange> {
        let size = self.size();
        let end = offset
            .checked_add(len)
            .filter(|&end| end <= size)
            .ok_or(OutOfRange { offset, len, size })?;
        let mut pieces = Vec::new();
        // The first extent whose end lies beyond `offset`.
        let mut extent = self.ends.partition_point(|&e| e <= offset);
        let mut at = offset;
        while at < end {
            let start = self.start(extent);
            let stop = self.ends[extent].min(end);
            pieces.push(Piece {
                extent,
                offset: at - start,
                len: stop - at,
                skip: at - offset,
            });
            at = stop;
            extent += 1;
        }
        Ok(pieces)
    }
}

/// Joins per-piece block status into volume space: `replies[i]` describes
/// a prefix of piece `i` (of `piece_lens[i]` bytes), from the piece's start.
/// Extents are clipped to their piece; the result stops at the first piece
/// whose reply covers less than all of it, since what follows that gap is
/// not described; neighbours with equal flags are merged. The lengths add
/// up to at most the sum of `piece_lens`.
pub fn merge_block_status(piece_lens: &[u64], replies: &[Vec<Extent>]) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::new();
    for (&piece_len, reply) in piece_lens.iter().zip(replies) {
        let mut left = piece_len;
        for e in reply {
            let length = e.length.min(left);
            if length == 0 {
                continue;
            }
            left -= length;
            match out.last_mut() {
                Some(last) if last.flags == e.flags => last.length += length,
                _ => out.push(Extent {
                    length,
                    flags: e.flags,
                }),
            }
        }
        if left > 0 {
            break;
        }
    }
    out
}

/// Largest TRIM / WRITE_ZEROES / BLOCK_STATUS length sent in one remote
/// request (2 GiB: a u32 length, kept aligned).
const MAX_RANGE_REQUEST: u64 = 1 << 31;

/// Transmission flags whose loss on reconnection would make the export's
/// advertised behaviour untrue.
const RELIED_ON: TransmissionFlags = TransmissionFlags::SEND_FLUSH
    .union(TransmissionFlags::SEND_TRIM)
    .union(TransmissionFlags::SEND_WRITE_ZEROES)
    .union(TransmissionFlags::SEND_FAST_ZERO)
    .union(TransmissionFlags::SEND_CACHE)
    .union(TransmissionFlags::CAN_MULTI_CONN);

/// One pooled connection.
struct Conn {
    client: Client,
    /// Writes (or trims, zeroes) completed on this connection since the last
    /// FLUSH sent on it.
    dirty: AtomicBool,
}

impl Conn {
    fn flags(&self) -> TransmissionFlags {
        self.client.info().flags
    }

    /// Largest READ or WRITE the remote accepts.
    fn max_io(&self) -> usize {
        let max = self
            .client
            .info()
            .block_sizes
            .map_or(crate::MAX_PAYLOAD, |b| b.maximum.min(crate::MAX_PAYLOAD));
        max.max(1) as usize
    }
}

/// How a remote request failed.
enum Failure {
    /// The remote answered with an error: the connection is fine.
    Refused(Errno, String),
    /// The connection is unusable (or the remote unreachable).
    Broken(String),
}

/// One remote export and its connection pool.
struct Remote {
    spec: RemoteSpec,
    /// `spec` as a URI, for logs and errors.
    uri: String,
    /// Flags of the first connection: what the export's flags were built on.
    flags: TransmissionFlags,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
    /// A connection with unflushed writes was lost (on a remote without
    /// `CAN_MULTI_CONN`); the next FLUSH reports it.
    lost_writes: AtomicBool,
    opts: ConcatOptions,
}

impl Remote {
    /// Opens one connection and checks it against the extent.
    async fn open(
        spec: &RemoteSpec,
        uri: &str,
        timeout: Duration,
        tls: Option<&ClientTls>,
    ) -> Result<Client, ConcatError> {
        let mut opts = ClientOptions::new(spec.export.clone());
        if spec.tls {
            let Some(tls) = tls else {
                return Err(ConcatError::NoTls {
                    remote: uri.to_owned(),
                });
            };
            let server_name = match &spec.addr {
                RemoteAddr::Tcp { host, .. } => host.clone(),
                RemoteAddr::Unix(_) => "localhost".to_owned(),
            };
            opts = opts.with_tls(tls.clone(), server_name);
        }
        let connect = async {
            match &spec.addr {
                RemoteAddr::Tcp { host, port } => {
                    let stream = TcpStream::connect((host.as_str(), *port)).await?;
                    stream.set_nodelay(true)?;
                    Client::handshake(stream, &opts).await
                }
                RemoteAddr::Unix(path) => {
                    let stream = UnixStream::connect(path).await?;
                    Client::handshake(stream, &opts).await
                }
            }
        };
        let client = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(source)) => {
                return Err(ConcatError::Connect {
                    remote: uri.to_owned(),
                    source,
                });
            }
            Err(_) => {
                return Err(ConcatError::ConnectTimeout {
                    remote: uri.to_owned(),
                    timeout,
                });
            }
        };
        let actual = client.info().size;
        if actual < spec.size {
            return Err(ConcatError::RemoteTooSmall {
                remote: uri.to_owned(),
                expected: spec.size,
                actual,
            });
        }
        Ok(client)
    }

    /// A connection from the pool, opening one if its slot is empty or
    /// holds a closed one.
    async fn conn(&self) -> Result<Arc<Conn>, Failure> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.client.is_closed() {
                return Ok(c.clone());
            }
            let c = slot.take();
            self.lost(c.as_deref(), "connection closed");
        }
        let client = Remote::open(
            &self.spec,
            &self.uri,
            self.opts.connect_timeout,
            self.opts.tls.as_ref(),
        )
        .await
        .and_then(|c| self.check_capabilities(c))
        .map_err(|e| Failure::Broken(error_chain(&e)))?;
        info!(remote = %self.uri, slot = i, "connected");
        let c = Arc::new(Conn {
            client,
            dirty: AtomicBool::new(false),
        });
        *slot = Some(c.clone());
        Ok(c)
    }

    fn check_capabilities(&self, c: Client) -> Result<Client, ConcatError> {
        let now = c.info().flags;
        let lost_caps = !now.contains(self.flags & RELIED_ON);
        let became_read_only = now.contains(TransmissionFlags::READ_ONLY)
            && !self.flags.contains(TransmissionFlags::READ_ONLY);
        if lost_caps || became_read_only {
            return Err(ConcatError::CapabilitiesChanged {
                remote: self.uri.clone(),
                then: self.flags,
                now,
            });
        }
        Ok(c)
    }

    /// Takes `conn` out of the pool (if it is still there).
    async fn discard(&self, conn: &Arc<Conn>, why: &str) {
        for slot in &self.slots {
            let mut slot = slot.lock().await;
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                let c = slot.take();
                self.lost(c.as_deref(), why);
                return;
            }
        }
    }

    /// Accounts for a connection leaving the pool.
    fn lost(&self, conn: Option<&Conn>, why: &str) {
        let Some(conn) = conn else { return };
        warn!(remote = %self.uri, reason = why, "dropping connection to remote");
        if conn.dirty.load(Ordering::Acquire)
            && !self.flags.contains(TransmissionFlags::CAN_MULTI_CONN)
        {
            self.lost_writes.store(true, Ordering::Release);
        }
    }

    /// Runs `op` on a pooled connection within the request timeout,
    /// dropping the connection if it turns out broken.
    async fn run<T>(&self, op: impl AsyncFnOnce(&Conn) -> Result<T, Error>) -> io::Result<T> {
        let conn = self.conn().await.map_err(|f| self.io_error(f))?;
        let result = tokio::time::timeout(self.opts.request_timeout, op(&conn)).await;
        let failure = match result {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(Error::Request { errno, message })) => Failure::Refused(errno, message),
            Ok(Err(e)) => Failure::Broken(e.to_string()),
            Err(_) => Failure::Broken(format!("no reply within {:?}", self.opts.request_timeout)),
        };
        if let Failure::Broken(why) = &failure {
            self.discard(&conn, why).await;
        }
        Err(self.io_error(failure))
    }

    fn io_error(&self, f: Failure) -> io::Error {
        match f {
            Failure::Refused(errno, message) => {
                let kind = match errno {
                    NBD_EPERM => io::ErrorKind::PermissionDenied,
                    NBD_ENOSPC => io::ErrorKind::StorageFull,
                    NBD_EINVAL => io::ErrorKind::InvalidInput,
                    NBD_ENOMEM => io::ErrorKind::OutOfMemory,
                    NBD_ENOTSUP => io::ErrorKind::Unsupported,
                    _ => io::ErrorKind::Other,
                };
                let message = if message.is_empty() {
                    format!("{}: {errno}", self.uri)
                } else {
                    format!("{}: {errno} ({message})", self.uri)
                };
                io::Error::new(kind, message)
            }
            Failure::Broken(why) => io::Error::other(format!("{}: {why}", self.uri)),
        }
    }

    /// Reads into `buf`, in requests no larger than the remote accepts,
    /// pipelined on one connection.
    async fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.run(async |c| {
            let max = c.max_io();
            let reads = buf
                .chunks_mut(max)
                .enumerate()
                .map(|(i, chunk)| async move {
                    // chunk.len() <= max, a u32.
                    let data = c
                        .client
                        .read(offset + (i * max) as u64, chunk.len() as u32)
                        .await?;
                    if data.len() != chunk.len() {
                        return Err(Error::Protocol("read reply of the wrong length".into()));
                    }
                    chunk.copy_from_slice(&data);
                    Ok(())
                });
            join_all(reads).await.into_iter().collect()
        })
        .await
    }

    /// Writes `data`, in requests no larger than the remote accepts; FUA
    /// is emulated with a FLUSH where the remote lacks it.
    async fn write(&self, offset: u64, data: &[u8], fua: bool) -> io::Result<()> {
        self.run(async |c| {
            let native_fua = c.flags().contains(TransmissionFlags::SEND_FUA);
            let max = c.max_io();
            let writes = data.chunks(max).enumerate().map(|(i, chunk)| {
                c.client
                    .write(offset + (i * max) as u64, chunk, fua && native_fua)
            });
            let written: Result<(), Error> = join_all(writes).await.into_iter().collect();
            // Even a partly failed write may have changed the remote.
            c.dirty.store(true, Ordering::Release);
            written?;
            if fua && !native_fua {
                c.client.flush().await?;
            }
            Ok(())
        })
        .await
    }

    /// Runs a range command (TRIM, WRITE_ZEROES) in requests of at most
    /// [`MAX_RANGE_REQUEST`] bytes, then flushes that connection for FUA.
    async fn range_op(
        &self,
        offset: u64,
        len: u64,
        fua: bool,
        op: impl AsyncFn(&Client, u64, u32) -> Result<(), Error>,
    ) -> io::Result<()> {
        self.run(async |c| {
            let mut at = offset;
            let end = offset + len;
            while at < end {
                let n = (end - at).min(MAX_RANGE_REQUEST);
                // n <= 2^31.
                op(&c.client, at, n as u32).await?;
                c.dirty.store(true, Ordering::Release);
                at += n;
            }
            if fua && c.flags().contains(TransmissionFlags::SEND_FLUSH) {
                c.client.flush().await?;
            }
            Ok(())
        })
        .await
    }

    async fn block_status(&self, offset: u64, len: u64) -> io::Result<Vec<Extent>> {
        // len <= MAX_RANGE_REQUEST after the clamp.
        let len = len.min(MAX_RANGE_REQUEST) as u32;
        self.run(async |c| {
            if c.client.info().base_allocation.is_none() {
                // "Allocated data" is always a correct answer.
                return Ok(vec![Extent {
                    length: len.into(),
                    flags: StateFlags::empty(),
                }]);
            }
            c.client.block_status(offset, len).await
        })
        .await
    }

    async fn cache(&self, offset: u64, len: u64) -> io::Result<()> {
        self.run(async |c| {
            if !c.flags().contains(TransmissionFlags::SEND_CACHE) {
                return Ok(());
            }
            let mut at = offset;
            while at < offset + len {
                let n = (offset + len - at).min(MAX_RANGE_REQUEST);
                c.client.cache(at, n as u32).await?;
                at += n;
            }
            Ok(())
        })
        .await
    }

    /// Makes every write completed on any pooled connection durable.
    async fn flush(&self) -> io::Result<()> {
        let flushed = if !self.flags.contains(TransmissionFlags::SEND_FLUSH) {
            Ok(())
        } else if self.flags.contains(TransmissionFlags::CAN_MULTI_CONN) {
            self.run(async |c| c.client.flush().await).await
        } else {
            self.flush_each_dirty().await
        };
        // Taken after the flushes, which may lose connections themselves;
        // a loss is reported by exactly one FLUSH.
        if self.lost_writes.swap(false, Ordering::AcqRel) {
            return Err(io::Error::other(format!(
                "{}: a connection with unflushed writes was lost",
                self.uri
            )));
        }
        flushed
    }

    async fn flush_each_dirty(&self) -> io::Result<()> {
        let mut dirty = Vec::new();
        for slot in &self.slots {
            if let Some(c) = slot.lock().await.as_ref()
                && c.dirty.load(Ordering::Acquire)
            {
                dirty.push(c.clone());
            }
        }
        let flushes = dirty.iter().map(|c| async move {
            // Cleared before the FLUSH is sent: a write completing later
            // marks the connection again.
            c.dirty.store(false, Ordering::Release);
            let r = tokio::time::timeout(self.opts.request_timeout, c.client.flush()).await;
            let failure = match r {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(Error::Request { errno, message })) => Failure::Refused(errno, message),
                Ok(Err(e)) => Failure::Broken(e.to_string()),
                Err(_) => Failure::Broken(format!(
                    "no reply to FLUSH within {:?}",
                    self.opts.request_timeout
                )),
            };
            c.dirty.store(true, Ordering::Release);
            if let Failure::Broken(why) = &failure {
                self.discard(c, why).await;
            }
            Err(self.io_error(failure))
        });
        first_error(join_all(flushes).await)
    }

    /// Closes every pooled connection politely.
    async fn disconnect(&self) {
        for slot in &self.slots {
            let conn = slot.lock().await.take();
            if let Some(client) = conn.and_then(Arc::into_inner).map(|c| c.client) {
                let _ = tokio::time::timeout(self.opts.connect_timeout, client.disconnect()).await;
            }
        }
    }
}

/// The first error of several results, after all of them finished.
fn first_error<T>(results: Vec<io::Result<T>>) -> io::Result<()> {
    results
        .into_iter()
        .find_map(Result::err)
        .map_or(Ok(()), Err)
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Several remote exports served as one, end to end. See the module
/// documentation.
pub struct ConcatExport {
    layout: Layout,
    remotes: Vec<Remote>,
    flags: ExportFlags,
    block_sizes: BlockSizes,
    /// The runtime whose reactor drives the remote connections; the
    /// server's worker threads block on it.
    runtime: Handle,
}

impl ConcatExport {
    /// Connects to every remote once (to learn and check what it offers)
    /// and builds the export. Must run on a tokio runtime with I/O and time
    /// enabled; that runtime then carries the remote connections, and the
    /// export's blocking methods must be called from threads outside its
    /// async context (the server's blocking workers are).
    pub async fn connect(
        specs: Vec<RemoteSpec>,
        opts: ConcatOptions,
    ) -> Result<ConcatExport, ConcatError> {
        let layout = Layout::new(specs.iter().map(|s| s.size))?;
        let opts = ConcatOptions {
            connections_per_remote: opts.connections_per_remote.max(1),
            ..opts
        };
        let opened = join_all(specs.iter().map(|spec| async {
            let uri = spec.to_string();
            let client = Remote::open(spec, &uri, opts.connect_timeout, opts.tls.as_ref()).await?;
            Ok::<_, ConcatError>((uri, client))
        }))
        .await;
        let mut remotes = Vec::with_capacity(specs.len());
        let mut block_sizes = Vec::with_capacity(specs.len());
        for (spec, opened) in specs.into_iter().zip(opened) {
            let (uri, client) = opened?;
            let flags = client.info().flags;
            block_sizes.push(client.info().block_sizes);
            if client.info().size != spec.size {
                warn!(
                    remote = %uri,
                    remote_size = client.info().size,
                    extent_size = spec.size,
                    "remote export is larger than its extent; only the extent is used"
                );
            }
            let mut first = Some(Arc::new(Conn {
                client,
                dirty: AtomicBool::new(false),
            }));
            let slots = (0..opts.connections_per_remote)
                .map(|_| tokio::sync::Mutex::new(first.take()))
                .collect();
            remotes.push(Remote {
                spec,
                uri,
                flags,
                slots,
                next: AtomicUsize::new(0),
                lost_writes: AtomicBool::new(false),
                opts: opts.clone(),
            });
        }
        Ok(ConcatExport {
            layout,
            flags: combined_flags(remotes.iter().map(|r| r.flags)),
            block_sizes: combined_block_sizes(block_sizes),
            remotes,
            runtime: Handle::current(),
        })
    }

    /// Where the extents sit in the volume.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Closes every remote connection politely (`NBD_CMD_DISC`), once the
    /// server has stopped using the export.
    pub async fn disconnect(&self) {
        join_all(self.remotes.iter().map(Remote::disconnect)).await;
    }

    fn pieces(&self, offset: u64, len: u64) -> io::Result<Vec<Piece>> {
        self.layout
            .split(offset, len)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}

/// What the volume can do, given what its remotes advertise: read-only if
/// any is; TRIM, WRITE_ZEROES, fast zero and CACHE only if all offer them.
/// Multi-connection consistency does not depend on the remotes: FLUSH
/// reaches every connection that carried writes (see the module docs).
pub fn combined_flags(remotes: impl IntoIterator<Item = TransmissionFlags>) -> ExportFlags {
    let mut any = TransmissionFlags::empty();
    let mut all = TransmissionFlags::all();
    for f in remotes {
        any |= f;
        all &= f;
    }
    let can_zero = all.contains(TransmissionFlags::SEND_WRITE_ZEROES);
    ExportFlags {
        read_only: any.contains(TransmissionFlags::READ_ONLY),
        can_trim: all.contains(TransmissionFlags::SEND_TRIM),
        can_zero,
        fast_zero: can_zero && all.contains(TransmissionFlags::SEND_FAST_ZERO),
        multi_conn: true,
        can_cache: all.contains(TransmissionFlags::SEND_CACHE),
    }
}

/// Block sizes every remote accepts: the largest minimum and preferred
/// size, the smallest maximum (and never above [`crate::MAX_PAYLOAD`]).
pub fn combined_block_sizes(remotes: impl IntoIterator<Item = Option<BlockSizes>>) -> BlockSizes {
    let mut b = BlockSizes::default();
    for r in remotes.into_iter().flatten() {
        b.minimum = b.minimum.max(r.minimum);
        b.preferred = b.preferred.max(r.preferred);
        b.maximum = b.maximum.min(r.maximum);
    }
    b.maximum = b.maximum.max(b.minimum);
    b.preferred = b.preferred.clamp(b.minimum, b.maximum);
    b
}

impl Export for ConcatExport {
    fn size(&self) -> u64 {
        self.layout.size()
    }

    fn flags(&self) -> ExportFlags {
        self.flags
    }

    fn block_sizes(&self) -> BlockSizes {
        self.block_sizes
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let pieces = self.pieces(offset, buf.len() as u64)?;
        let mut rest = buf;
        let mut reads = Vec::with_capacity(pieces.len());
        for p in &pieces {
            // Pieces are contiguous and cover the buffer, each len < buf.len().
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(p.len as usize);
            rest = tail;
            reads.push(self.remotes[p.extent].read(p.offset, head));
        }
        first_error(self.runtime.block_on(join_all(reads)))
    }

    fn write_at(&self, buf: &[u8], offset: u64, fua: bool) -> io::Result<()> {
        let pieces = self.pieces(offset, buf.len() as u64)?;
        let writes = pieces.iter().map(|p| {
            let data = &buf[p.skip as usize..(p.skip + p.len) as usize];
            self.remotes[p.extent].write(p.offset, data, fua)
        });
        first_error(self.runtime.block_on(join_all(writes)))
    }

    fn flush(&self) -> io::Result<()> {
        let flushes = self.remotes.iter().map(Remote::flush);
        first_error(self.runtime.block_on(join_all(flushes)))
    }

    fn trim(&self, offset: u64, len: u64, fua: bool) -> io::Result<()> {
        let pieces = self.pieces(offset, len)?;
        let trims = pieces.iter().map(|p| {
            self.remotes[p.extent]
                .range_op(p.offset, p.len, fua, async |c, at, n| c.trim(at, n).await)
        });
        first_error(self.runtime.block_on(join_all(trims)))
    }

    fn write_zeroes(
        &self,
        offset: u64,
        len: u64,
        no_hole: bool,
        fast: bool,
        fua: bool,
    ) -> io::Result<()> {
        let pieces = self.pieces(offset, len)?;
        let zeroes = pieces.iter().map(|p| {
            self.remotes[p.extent].range_op(p.offset, p.len, fua, async |c, at, n| {
                c.write_zeroes(at, n, no_hole, fast).await
            })
        });
        first_error(self.runtime.block_on(join_all(zeroes)))
    }

    fn cache(&self, offset: u64, len: u64) -> io::Result<()> {
        let pieces = self.pieces(offset, len)?;
        let caches = pieces
            .iter()
            .map(|p| self.remotes[p.extent].cache(p.offset, p.len));
        first_error(self.runtime.block_on(join_all(caches)))
    }

    fn block_status(&self, offset: u64, len: u64) -> io::Result<Vec<Extent>> {
        let pieces = self.pieces(offset, len)?;
        let queries = pieces
            .iter()
            .map(|p| self.remotes[p.extent].block_status(p.offset, p.len));
        let replies = self
            .runtime
            .block_on(join_all(queries))
            .into_iter()
            .collect::<io::Result<Vec<_>>>()?;
        let lens: Vec<u64> = pieces.iter().map(|p| p.len).collect();
        Ok(merge_block_status(&lens, &replies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ext(length: u64, flags: u16) -> Extent {
        Extent {
            length,
            flags: StateFlags::from_bits_retain(flags.into()),
        }
    }

    #[test]
    fn a_range_inside_one_extent_is_one_piece() {
        let l = Layout::new([40, 24, 16]).unwrap();
        assert_eq!(l.size(), 80);
        assert_eq!(
            l.split(45, 10).unwrap(),
            [Piece {
                extent: 1,
                offset: 5,
                len: 10,
                skip: 0
            }]
        );
    }

    #[test]
    fn a_range_across_every_boundary_is_split_at_each() {
        let l = Layout::new([40, 24, 16]).unwrap();
        assert_eq!(
            l.split(30, 45).unwrap(),
            [
                Piece {
                    extent: 0,
                    offset: 30,
                    len: 10,
                    skip: 0
                },
                Piece {
                    extent: 1,
                    offset: 0,
                    len: 24,
                    skip: 10
                },
                Piece {
                    extent: 2,
                    offset: 0,
                    len: 11,
                    skip: 34
                },
            ]
        );
    }

    #[test]
    fn a_range_starting_on_a_boundary_begins_in_the_next_extent() {
        let l = Layout::new([40, 24, 16]).unwrap();
        let p = l.split(40, 24).unwrap();
        assert_eq!(
            p,
            [Piece {
                extent: 1,
                offset: 0,
                len: 24,
                skip: 0
            }]
        );
        assert_eq!(l.split(80, 0).unwrap(), []);
    }

    #[test]
    fn ranges_beyond_the_end_are_refused() {
        let l = Layout::new([40, 24]).unwrap();
        let e = OutOfRange {
            offset: 60,
            len: 5,
            size: 64,
        };
        assert_eq!(l.split(60, 5), Err(e));
        assert!(l.split(u64::MAX, 2).is_err());
        assert!(l.split(0, 65).is_err());
    }

    #[test]
    fn bad_extent_lists_are_refused() {
        assert_eq!(Layout::new([]), Err(LayoutError::NoExtents));
        assert_eq!(Layout::new([1, 0]), Err(LayoutError::EmptyExtent(1)));
        assert_eq!(Layout::new([u64::MAX, 1]), Err(LayoutError::TooLarge));
    }

    #[test]
    fn block_status_is_clipped_joined_and_merged() {
        // Pieces of 10, 24 and 11 bytes.
        let lens = [10, 24, 11];
        let replies = vec![
            vec![ext(4, 0), ext(100, 3)], // clipped to the piece
            vec![ext(20, 3), ext(4, 0)],  // first merges with the 3 before
            vec![ext(11, 0)],
        ];
        assert_eq!(
            merge_block_status(&lens, &replies),
            [ext(4, 0), ext(26, 3), ext(15, 0)]
        );
    }

    #[test]
    fn block_status_stops_at_a_short_piece() {
        let lens = [10, 24, 11];
        let replies = vec![vec![ext(10, 3)], vec![ext(8, 0)], vec![ext(11, 3)]];
        assert_eq!(merge_block_status(&lens, &replies), [ext(10, 3), ext(8, 0)]);
    }

    #[test]
    fn flags_are_the_intersection_and_read_only_wins() {
        use TransmissionFlags as T;
        let full = T::SEND_FLUSH | T::SEND_TRIM | T::SEND_WRITE_ZEROES | T::SEND_FAST_ZERO;
        let f = combined_flags([full, full | T::SEND_CACHE]);
        assert!(f.can_trim && f.can_zero && f.fast_zero && !f.can_cache && !f.read_only);
        let f = combined_flags([full, T::SEND_FLUSH | T::READ_ONLY]);
        assert!(f.read_only && !f.can_trim && !f.can_zero && !f.fast_zero);
        assert!(f.multi_conn);
    }

    #[test]
    fn block_sizes_satisfy_every_remote() {
        let a = BlockSizes {
            minimum: 512,
            preferred: 4096,
            maximum: 32 << 20,
        };
        let b = BlockSizes {
            minimum: 1,
            preferred: 65536,
            maximum: 1 << 20,
        };
        assert_eq!(
            combined_block_sizes([Some(a), None, Some(b)]),
            BlockSizes {
                minimum: 512,
                preferred: 65536,
                maximum: 1 << 20
            }
        );
    }

    fn layout_and_range() -> impl Strategy<Value = (Vec<u64>, u64, u64)> {
        proptest::collection::vec(1u64..1000, 1..8).prop_flat_map(|sizes| {
            let total: u64 = sizes.iter().sum();
            (Just(sizes), 0..=total).prop_flat_map(move |(sizes, offset)| {
                (Just(sizes), Just(offset), 0..=total - offset)
            })
        })
    }

    proptest! {
        #[test]
        fn pieces_cover_the_range_exactly_and_map_back((sizes, offset, len) in layout_and_range()) {
            let l = Layout::new(sizes.iter().copied()).unwrap();
            let pieces = l.split(offset, len).unwrap();
            let mut at = offset;
            let mut last_extent = None;
            for p in &pieces {
                prop_assert!(p.len > 0);
                prop_assert_eq!(p.skip, at - offset);
                // Inside its extent, and at the right volume offset.
                prop_assert!(p.offset + p.len <= sizes[p.extent]);
                prop_assert_eq!(l.start(p.extent) + p.offset, at);
                // Extents strictly increase, so no piece could be merged
                // with the next.
                prop_assert!(last_extent.is_none_or(|e| e + 1 == p.extent));
                last_extent = Some(p.extent);
                at += p.len;
            }
            prop_assert_eq!(at, offset + len);
            // Every piece but the first starts its extent; every piece but
            // the last ends its extent.
            for p in pieces.iter().skip(1) {
                prop_assert_eq!(p.offset, 0);
            }
            if let Some((_, init)) = pieces.split_last() {
                for p in init {
                    prop_assert_eq!(p.offset + p.len, sizes[p.extent]);
                }
            }
        }

        #[test]
        fn ranges_past_the_end_never_split(sizes in proptest::collection::vec(1u64..1000, 1..8), over in 1u64..100, offset in 0u64..10_000) {
            let l = Layout::new(sizes.iter().copied()).unwrap();
            let total = l.size();
            let len = (total + over).saturating_sub(offset.min(total));
            prop_assert!(l.split(offset.min(total), len).is_err());
        }

        #[test]
        fn merged_block_status_is_a_prefix_of_the_request(
            lens in proptest::collection::vec(1u64..100, 1..6),
            seeds in proptest::collection::vec(proptest::collection::vec((0u64..120, 0u16..4), 0..5), 6),
        ) {
            let replies: Vec<Vec<Extent>> = seeds.iter().map(|r| r.iter().map(|&(l, f)| ext(l, f)).collect()).collect();
            let merged = merge_block_status(&lens, &replies);
            let total: u64 = merged.iter().map(|e| e.length).sum();
            prop_assert!(total <= lens.iter().sum::<u64>());
            prop_assert!(merged.iter().all(|e| e.length > 0));
            prop_assert!(merged.windows(2).all(|w| w[0].flags != w[1].flags));
            // Byte by byte, the merged status says what the piece's reply said.
            let mut expect = Vec::new();
            for (len, reply) in lens.iter().zip(&replies) {
                let mut left = *len;
                for e in reply {
                    let n = e.length.min(left);
                    expect.extend(std::iter::repeat_n(e.flags, n as usize));
                    left -= n;
                }
                if left > 0 { break; }
            }
            let got: Vec<StateFlags> = merged.iter().flat_map(|e| std::iter::repeat_n(e.flags, e.length as usize)).collect();
            prop_assert_eq!(got, expect);
        }
    }
}
