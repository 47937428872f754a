//! The storage-facing side of the server: the [`Export`] backend trait that
//! the storage engine implements, the [`ExportRegistry`] through which the
//! server finds exports and asks whether a peer may open them, and the
//! per-export [`ExportStats`] counters.
//!
//! Backend methods are blocking positioned I/O: the server calls them from
//! worker threads, never from the async reactor.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::consts::StateFlags;

/// What an export can do; the server derives the transmission flags it
/// advertises from this, so it must be truthful.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportFlags {
    /// Writes, trims and zeroes are refused with `EPERM`.
    pub read_only: bool,
    /// `trim` discards data (otherwise TRIM is not advertised).
    pub can_trim: bool,
    /// `write_zeroes` is implemented (otherwise WRITE_ZEROES is not advertised).
    pub can_zero: bool,
    /// `write_zeroes` honours `fast` by failing with `Unsupported` when it
    /// cannot zero faster than a write.
    pub fast_zero: bool,
    /// Flush and FUA on one connection are visible on every connection
    /// (one shared cache, or none): advertised as `CAN_MULTI_CONN`.
    pub multi_conn: bool,
    /// `cache` does something useful (prefetch).
    pub can_cache: bool,
}

/// Block size constraints, advertised with `NBD_INFO_BLOCK_SIZE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSizes {
    /// Smallest addressable unit (a power of two, at most 64 KiB).
    pub minimum: u32,
    /// Preferred size for efficient I/O.
    pub preferred: u32,
    /// Largest payload of a single request.
    pub maximum: u32,
}

impl Default for BlockSizes {
    fn default() -> Self {
        BlockSizes {
            minimum: 1,
            preferred: 4096,
            maximum: crate::MAX_PAYLOAD,
        }
    }
}

/// One run of `base:allocation` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Length in bytes.
    pub length: u64,
    /// Hole / zero flags.
    pub flags: StateFlags,
}

/// A block device as the NBD server sees it. All methods are blocking and
/// called from worker threads, concurrently: implementations use positioned
/// I/O and no shared file offset.
pub trait Export: Send + Sync + 'static {
    /// Size in bytes. Fixed for the lifetime of a connection.
    fn size(&self) -> u64;
    /// Capabilities; see [`ExportFlags`].
    fn flags(&self) -> ExportFlags;
    /// Block size constraints.
    fn block_sizes(&self) -> BlockSizes {
        BlockSizes::default()
    }
    /// Fills `buf` from `offset`. The server only asks for in-range bytes.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Fills `buf` from `offset` only if that needs no wait for a device
    /// (the data is in memory: page cache, never written): `Ok(true)`.
    /// `Ok(false)`: it would wait (or the export cannot tell), and the
    /// server calls [`Export::read_at`] instead, from a thread that may
    /// block; `buf` may then hold anything. Must never block on I/O: the
    /// server calls it on the thread that reads requests off the socket,
    /// to answer reads from memory without handing them to another
    /// thread.
    fn read_resident(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        let _ = (buf, offset);
        Ok(false)
    }
    /// Writes `buf` at `offset`; with `fua`, returns only once durable.
    fn write_at(&self, buf: &[u8], offset: u64, fua: bool) -> io::Result<()>;
    /// Makes every completed write durable.
    fn flush(&self) -> io::Result<()>;
    /// Discards a range (advisory; may do nothing).
    fn trim(&self, offset: u64, len: u64, fua: bool) -> io::Result<()>;
    /// Zeroes a range. `no_hole`: the range must stay allocated. `fast`:
    /// fail with [`io::ErrorKind::Unsupported`] instead of falling back to
    /// something as slow as writing zeroes.
    fn write_zeroes(
        &self,
        offset: u64,
        len: u64,
        no_hole: bool,
        fast: bool,
        fua: bool,
    ) -> io::Result<()>;
    /// Prefetch hint.
    fn cache(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// `base:allocation` extents covering a prefix (at least one byte) of
    /// `offset..offset+len`. Returning one extent of flags 0 is always
    /// correct.
    fn block_status(&self, offset: u64, len: u64) -> io::Result<Vec<Extent>> {
        let _ = offset;
        Ok(vec![Extent {
            length: len,
            flags: StateFlags::empty(),
        }])
    }
}

/// Per-export operation counters, cheap enough for the data path (relaxed
/// atomics) and monotonic, so they can be published as SNMP Counter64.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Completed READ requests.
    pub read_ops: AtomicU64,
    /// Bytes returned by READ.
    pub read_bytes: AtomicU64,
    /// Completed WRITE requests.
    pub write_ops: AtomicU64,
    /// Bytes written by WRITE.
    pub write_bytes: AtomicU64,
    /// Completed FLUSH requests.
    pub flush_ops: AtomicU64,
    /// Completed TRIM and WRITE_ZEROES requests.
    pub zero_trim_ops: AtomicU64,
    /// Requests answered with an error.
    pub errors: AtomicU64,
    /// Connections that entered transmission on this export.
    pub connections: AtomicU64,
}

impl ExportStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            read_ops: l(&self.read_ops),
            read_bytes: l(&self.read_bytes),
            write_ops: l(&self.write_ops),
            write_bytes: l(&self.write_bytes),
            flush_ops: l(&self.flush_ops),
            zero_trim_ops: l(&self.zero_trim_ops),
            errors: l(&self.errors),
            connections: l(&self.connections),
        }
    }
}

/// Plain copy of [`ExportStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StatsSnapshot {
    pub read_ops: u64,
    pub read_bytes: u64,
    pub write_ops: u64,
    pub write_bytes: u64,
    pub flush_ops: u64,
    pub zero_trim_ops: u64,
    pub errors: u64,
    pub connections: u64,
}

/// Who is connecting, for access control and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix-socket peer (path of the peer socket, if it has one).
    Unix(Option<PathBuf>),
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "{a}"),
            PeerAddr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

/// What the registry hands the server for an export name.
#[derive(Clone)]
pub struct ExportEntry {
    /// The backend.
    pub export: Arc<dyn Export>,
    /// Human-readable description (`NBD_INFO_DESCRIPTION`, `NBD_OPT_LIST`).
    pub description: String,
    /// Counters the server updates.
    pub stats: Arc<ExportStats>,
}

/// The application's catalogue of exports and its access policy.
pub trait ExportRegistry: Send + Sync + 'static {
    /// The export called `name` (`""` is the default export, if any), as
    /// `peer` sees it (a registry may hand a read-only view to some peers).
    fn lookup(&self, peer: &PeerAddr, name: &str) -> Option<ExportEntry>;
    /// `(name, description)` of every export.
    fn list(&self) -> Vec<(String, String)>;
    /// Whether `peer` may open (or see) the export `name`.
    fn allow(&self, peer: &PeerAddr, name: &str) -> bool;
}

/// Which peers a [`StaticRegistry`] export admits.
#[derive(Clone, Debug, Default)]
pub enum Access {
    /// Anyone (including Unix-socket peers).
    #[default]
    Everyone,
    /// Only TCP peers from these addresses (Unix-socket peers are admitted:
    /// file permissions guard the socket).
    Addresses(Vec<IpAddr>),
}

struct StaticEntry {
    entry: ExportEntry,
    access: Access,
}

/// A fixed in-memory [`ExportRegistry`]: for tests, examples and the CLI.
#[derive(Default)]
pub struct StaticRegistry {
    exports: BTreeMap<String, StaticEntry>,
    default_name: Option<String>,
}

impl StaticRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an export; returns its counters.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        export: Arc<dyn Export>,
        access: Access,
    ) -> Arc<ExportStats> {
        let stats = Arc::new(ExportStats::default());
        let entry = ExportEntry {
            export,
            description: description.into(),
            stats: stats.clone(),
        };
        self.exports
            .insert(name.into(), StaticEntry { entry, access });
        stats
    }

    /// Makes `name` the export served for the empty name.
    pub fn set_default(&mut self, name: impl Into<String>) {
        self.default_name = Some(name.into());
    }

    fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        match (name, &self.default_name) {
            ("", Some(d)) => d,
            _ => name,
        }
    }
}

impl ExportRegistry for StaticRegistry {
    fn lookup(&self, _peer: &PeerAddr, name: &str) -> Option<ExportEntry> {
        self.exports
            .get(self.resolve(name))
            .map(|e| e.entry.clone())
    }

    fn list(&self) -> Vec<(String, String)> {
        self.exports
            .iter()
            .map(|(n, e)| (n.clone(), e.entry.description.clone()))
            .collect()
    }

    fn allow(&self, peer: &PeerAddr, name: &str) -> bool {
        let Some(e) = self.exports.get(self.resolve(name)) else {
            return false;
        };
        match (&e.access, peer) {
            (Access::Everyone, _) => true,
            (Access::Addresses(_), PeerAddr::Unix(_)) => true,
            (Access::Addresses(list), PeerAddr::Tcp(a)) => list.contains(&a.ip()),
        }
    }
}
