//! A volume: a partition of a RAID group, served by NBD.
//!
//! A new volume reads as zeros everywhere without a byte written at
//! creation: the volume tracks which regions have been written since it was
//! created (the allocation map), and reads of the others return zeros. The
//! first write into a region zeroes what the write does not cover, so a
//! previous tenant's bytes are never readable. The map is made durable at
//! FLUSH (after the data), so every write acknowledged before a completed
//! FLUSH survives a crash. The same map answers NBD `base:allocation`.
//!
//! A deleted volume is retired: a client still connected to it (the
//! connection holds the volume) gets errors from then on, so its range,
//! which a new volume may take, is never read or written through the old
//! one. Every I/O holds the map's shared lock while it runs, and retiring
//! takes it exclusively, so I/O already under way finishes first.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use dvsan_nbd::consts::StateFlags;
use dvsan_nbd::{BlockSizes, Export, ExportFlags, Extent};

use crate::storage::layout::{Layout, zero_by_writing};
use crate::storage::metadata::VolumeRecord;
use crate::storage::{Core, StorageError};

/// Allocation granularity.
pub const REGION: u64 = 1 << 20;

/// An open volume.
#[derive(Debug)]
pub struct Volume {
    core: Arc<Core>,
    record: VolumeRecord,
    layout: Layout,
    /// One flag per region: written since creation. Read and written
    /// regions are checked without a lock (a flag only ever goes from
    /// false to true, after the region's zeroing); the lock is taken
    /// exclusively only to grow the map.
    allocated: RwLock<Vec<AtomicBool>>,
    /// Serialises a region's first write (its zeroing and its flag), so
    /// that a second writer never races the zeroing. Writes into written
    /// regions never take it.
    fresh: Mutex<()>,
    /// Whether the map changed since it was last made durable.
    dirty: AtomicBool,
    /// Serialises making the map durable.
    persisting: Mutex<()>,
    /// Its size in bytes (grows in place).
    size: AtomicU64,
    /// Deleted: every I/O fails (set under the map's exclusive lock).
    retired: AtomicBool,
}

impl Volume {
    pub(crate) fn new(core: Arc<Core>, record: VolumeRecord, layout: Layout) -> Self {
        let size = record.size;
        let regions = size.div_ceil(REGION) as usize;
        let bits: Vec<AtomicBool> = (0..regions).map(|_| AtomicBool::new(false)).collect();
        for &(first, end) in &record.allocated {
            for b in bits
                .iter()
                .take(end.min(regions as u64) as usize)
                .skip(first as usize)
            {
                b.store(true, Ordering::Relaxed);
            }
        }
        Volume {
            core,
            record,
            layout,
            allocated: RwLock::new(bits),
            fresh: Mutex::new(()),
            dirty: AtomicBool::new(false),
            persisting: Mutex::new(()),
            size: AtomicU64::new(size),
            retired: AtomicBool::new(false),
        }
    }

    /// Ends all I/O through this volume (it is being deleted), once what is
    /// under way has finished.
    pub(crate) fn retire(&self) {
        let _map = self.allocated.write().unwrap_or_else(|e| e.into_inner());
        self.retired.store(true, Ordering::Release);
    }

    /// The map, shared, for one I/O: fails once the volume is retired.
    fn bits_for_io(&self) -> Result<RwLockReadGuard<'_, Vec<AtomicBool>>, StorageError> {
        let bits = self.bits();
        if self.retired.load(Ordering::Acquire) {
            return Err(StorageError::Io {
                context: format!("volume {} was deleted", self.record.name),
                source: io::Error::from_raw_os_error(rustix::io::Errno::SHUTDOWN.raw_os_error()),
            });
        }
        Ok(bits)
    }

    /// The volume's index in the unit's volume table.
    pub fn index(&self) -> u32 {
        self.record.index
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Takes a larger size recorded by the unit: the new regions read as
    /// zeros until written.
    pub(crate) fn grown(&self, size: u64) {
        let mut bits = self.allocated.write().unwrap_or_else(|e| e.into_inner());
        bits.resize_with(size.div_ceil(REGION) as usize, || AtomicBool::new(false));
        self.size.fetch_max(size, Ordering::AcqRel);
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(StorageError::Invalid(format!(
                "{len} bytes at {offset} lie past volume {} ({} bytes)",
                self.record.name,
                self.size()
            ))),
        }
    }

    /// The allocation map, shared.
    fn bits(&self) -> RwLockReadGuard<'_, Vec<AtomicBool>> {
        self.allocated.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        self.check(offset, buf.len() as u64)?;
        let bits = self.bits_for_io()?;
        self.read_with(&bits, buf, offset, |piece, at| {
            self.layout.read(piece, at).map(|()| true)
        })?;
        Ok(())
    }

    /// Reads as [`Volume::read`] only if that needs no wait for a device
    /// (never-written regions read as zeros, the rest in the members' page
    /// cache): `false` when it would, or on any error (then [`Volume::read`]
    /// reports it).
    pub fn read_resident(&self, buf: &mut [u8], offset: u64) -> bool {
        if self.check(offset, buf.len() as u64).is_err() {
            return false;
        }
        let Ok(bits) = self.bits_for_io() else {
            return false;
        };
        let read = |piece: &mut [u8], at| Ok(self.layout.read_resident(piece, at));
        matches!(self.read_with(&bits, buf, offset, read), Ok(true))
    }

    /// Fills `buf` from `offset` run by run of regions in the same state:
    /// a never-written run with zeros, a written one by `read(piece,
    /// group_offset)`, which may answer `false` to stop there (returned).
    fn read_with<F>(
        &self,
        bits: &[AtomicBool],
        buf: &mut [u8],
        offset: u64,
        mut read: F,
    ) -> Result<bool, StorageError>
    where
        F: FnMut(&mut [u8], u64) -> Result<bool, StorageError>,
    {
        let len = buf.len() as u64;
        let written = |region: u64| bits[region as usize].load(Ordering::Acquire);
        let mut pos = 0u64;
        while pos < len {
            let at = offset + pos;
            let region = at / REGION;
            let state = written(region);
            let mut end = (region + 1) * REGION;
            while end < offset + len && written(end / REGION) == state {
                end += REGION;
            }
            let n = end.min(offset + len) - at;
            let piece = &mut buf[pos as usize..(pos + n) as usize];
            if !state {
                piece.fill(0);
            } else if !read(piece, self.record.offset + at)? {
                return Ok(false);
            }
            pos += n;
        }
        Ok(true)
    }

    /// Writes `buf` at `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        let len = buf.len() as u64;
        self.check(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        let first = offset / REGION;
        let last = (offset + len - 1) / REGION;
        let bits = self.bits_for_io()?;
        let written = |region: u64| bits[region as usize].load(Ordering::Acquire);
        if !(first..=last).all(written) {
            let _fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
            for region in first..=last {
                if written(region) {
                    continue;
                }
                // Zero what this write leaves of a fresh region, before the
                // region counts as written (under the lock, so a second
                // writer never races the zeroing).
                let r_start = region * REGION;
                let r_end = (r_start + REGION).min(self.size());
                if offset > r_start {
                    self.layout
                        .zero(self.record.offset + r_start, offset - r_start)?;
                }
                if offset + len < r_end {
                    self.layout
                        .zero(self.record.offset + offset + len, r_end - (offset + len))?;
                }
                // Set after the zeroing, so a reader that sees the flag sees
                // the zeros too.
                bits[region as usize].store(true, Ordering::Release);
                self.dirty.store(true, Ordering::Release);
            }
        }
        // The shared lock is held through the write: a retirement waits.
        let written = self.layout.write(buf, self.record.offset + offset);
        drop(bits);
        written
    }

    /// Makes `[offset, offset + len)` read as zeros. Regions never written
    /// already do and stay unwritten; in written ones the range is zeroed
    /// by the group (a hole punched in each member's file where it can,
    /// written zeros through parity for RAID 5 and 6).
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.check(offset, len)?;
        let bits = self.bits_for_io()?;
        let written = |region: u64| bits[region as usize].load(Ordering::Acquire);
        let end = offset + len;
        let mut at = offset;
        while at < end {
            let state = written(at / REGION);
            let mut run_end = (at / REGION + 1) * REGION;
            while run_end < end && written(run_end / REGION) == state {
                run_end += REGION;
            }
            let run_end = run_end.min(end);
            if state {
                self.layout.zero(self.record.offset + at, run_end - at)?;
            }
            at = run_end;
        }
        Ok(())
    }

    /// Makes every acknowledged write durable: data first, then the map.
    pub fn flush(&self) -> Result<(), StorageError> {
        drop(self.bits_for_io()?);
        self.layout.sync()?;
        // Never held together with the map's lock in the other order: a
        // writer only reads `allocated` and stores to the atomic flag.
        let _persisting = self.persisting.lock().unwrap_or_else(|e| e.into_inner());
        if self.dirty.swap(false, Ordering::AcqRel) {
            let ranges = self.ranges();
            let uuid = self.record.uuid;
            let result = self.core.update(|meta| {
                let v = meta
                    .volumes
                    .iter_mut()
                    .find(|v| v.uuid == uuid)
                    .ok_or_else(|| StorageError::Invalid(format!("volume {uuid} was deleted")))?;
                v.allocated = ranges;
                Ok(())
            });
            if let Err(e) = result {
                self.dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The written regions as `[first, end)` ranges.
    fn ranges(&self) -> Vec<(u64, u64)> {
        let bits = self.bits();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (i, b) in bits.iter().enumerate() {
            if b.load(Ordering::Acquire) {
                match out.last_mut() {
                    Some((_, end)) if *end == i as u64 => *end += 1,
                    _ => out.push((i as u64, i as u64 + 1)),
                }
            }
        }
        out
    }

    /// Extents of `[offset, offset + len)`: written regions, or holes that
    /// read as zeros.
    pub fn extents(&self, offset: u64, len: u64) -> Result<Vec<Extent>, StorageError> {
        self.check(offset, len)?;
        let bits = self.bits_for_io()?;
        let mut out: Vec<Extent> = Vec::new();
        let mut at = offset;
        while at < offset + len {
            let region = at / REGION;
            let n = ((region + 1) * REGION).min(offset + len) - at;
            let flags = if bits[region as usize].load(Ordering::Acquire) {
                StateFlags::empty()
            } else {
                StateFlags::HOLE | StateFlags::ZERO
            };
            match out.last_mut() {
                Some(e) if e.flags == flags => e.length += n,
                _ => out.push(Extent { length: n, flags }),
            }
            at += n;
        }
        Ok(out)
    }
}

impl Export for Volume {
    fn size(&self) -> u64 {
        Volume::size(self)
    }

    fn flags(&self) -> ExportFlags {
        ExportFlags {
            read_only: false,
            // TRIM zeroes: the range is punched out of the members' files
            // like WRITE_ZEROES does.
            can_trim: true,
            can_zero: true,
            fast_zero: false,
            // Every connection sees every other's writes (one map, one
            // page cache) and FLUSH covers them all.
            multi_conn: true,
            can_cache: false,
        }
    }

    fn block_sizes(&self) -> BlockSizes {
        BlockSizes::default()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        Ok(self.read(buf, offset)?)
    }

    fn read_resident(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        Ok(Volume::read_resident(self, buf, offset))
    }

    fn write_at(&self, buf: &[u8], offset: u64, fua: bool) -> io::Result<()> {
        self.write(buf, offset)?;
        if fua {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(Volume::flush(self)?)
    }

    fn trim(&self, offset: u64, len: u64, fua: bool) -> io::Result<()> {
        self.zero(offset, len)?;
        if fua {
            self.flush()?;
        }
        Ok(())
    }

    fn write_zeroes(
        &self,
        offset: u64,
        len: u64,
        no_hole: bool,
        _fast: bool,
        fua: bool,
    ) -> io::Result<()> {
        if no_hole {
            // The client wants the range allocated: zeros written.
            zero_by_writing(offset, len, |b, o| self.write(b, o))?;
        } else {
            self.zero(offset, len)?;
        }
        if fua {
            self.flush()?;
        }
        Ok(())
    }

    fn block_status(&self, offset: u64, len: u64) -> io::Result<Vec<Extent>> {
        Ok(self.extents(offset, len)?)
    }
}
