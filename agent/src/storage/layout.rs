//! RAID layouts: the rules every level follows (member counts, chunk,
//! capacity, how many lost members it survives), the member set a layout
//! reads and writes through (which takes a member out of service at its
//! first I/O error and records that in the metadata before the member misses
//! a write), and [`Layout`], one group's address map whatever its level.
//!
//! One `Layout` is built per group and shared by all its volumes (RAID 5
//! and 6 serialise writes per stripe, and a stripe can hold the edges of two
//! volumes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use uuid::Uuid;

use crate::storage::bitmap::{self, Bitmap};
use crate::storage::disk::{BITMAP_SIZE, Disk};
use crate::storage::linear::Linear;
use crate::storage::metadata::{GroupRecord, Level};
use crate::storage::raid0::Raid0;
use crate::storage::raid1::Raid1;
use crate::storage::raid5::Raid5;
use crate::storage::raid6::Raid6;
use crate::storage::raid10::Raid10;
use crate::storage::{ALIGNMENT, Core, StorageError, gf256};

/// Stripe chunk of the striped levels when the group asks for none.
pub const DEFAULT_CHUNK: u64 = 64 << 10;
/// Smallest stripe chunk.
pub const MIN_CHUNK: u64 = 4 << 10;
/// Largest stripe chunk.
pub const MAX_CHUNK: u64 = 16 << 20;
/// Most members in a group.
pub const MAX_MEMBERS: usize = 256;

/// Whether `level` stripes data in chunks.
pub fn is_striped(level: Level) -> bool {
    !matches!(level, Level::Linear | Level::Raid1)
}

/// The chunk a group of `level` asking for `chunk` uses: the default for 0,
/// and for linear and RAID 1 (which have no chunk) what was asked, unchecked.
pub fn chunk_size(level: Level, chunk: u64) -> Result<u64, StorageError> {
    if !is_striped(level) {
        return Ok(chunk);
    }
    if chunk == 0 {
        return Ok(DEFAULT_CHUNK);
    }
    if !chunk.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) {
        return Err(StorageError::Invalid(format!(
            "chunk {chunk} bytes: a stripe chunk is a power of two from 4 KiB to 16 MiB (0 for 64 KiB)"
        )));
    }
    Ok(chunk)
}

/// Checks the member count `n` for `level`.
pub fn check_members(level: Level, n: usize) -> Result<(), StorageError> {
    let rule = match level {
        Level::Linear if n < 1 => "a linear group needs at least 1 member",
        Level::Raid0 if n < 2 => "RAID 0 needs at least 2 members",
        Level::Raid1 if n < 2 => "RAID 1 needs at least 2 members",
        Level::Raid10 if n < 4 || !n.is_multiple_of(2) => {
            "RAID 10 needs an even number of members, at least 4 (adjacent members mirror each other)"
        }
        Level::Raid5 if n < 3 => "RAID 5 needs at least 3 members",
        Level::Raid6 if n < 4 => "RAID 6 needs at least 4 members",
        _ if n > MAX_MEMBERS => "a group has at most 256 members",
        _ => return Ok(()),
    };
    Err(StorageError::Invalid(format!("{rule}, got {n}")))
}

/// How many members' worth of data a group of `n` members holds (for
/// linear, the members differ in size and this is `n`).
pub fn data_members(level: Level, n: usize) -> usize {
    match level {
        Level::Linear | Level::Raid0 => n,
        Level::Raid1 => 1,
        Level::Raid10 => n / 2,
        Level::Raid5 => n.saturating_sub(1),
        Level::Raid6 => n.saturating_sub(2),
    }
}

/// Whether a group of `level` still serves its data with the members that
/// `lost` marks out of service.
pub fn tolerates(level: Level, lost: &[bool]) -> bool {
    let count = lost.iter().filter(|l| **l).count();
    match level {
        Level::Linear | Level::Raid0 => count == 0,
        Level::Raid1 => count < lost.len(),
        Level::Raid10 => lost.chunks(2).all(|pair| pair.iter().any(|l| !l)),
        Level::Raid5 => count <= 1,
        Level::Raid6 => count <= 2,
    }
}

/// Usable bytes of a group of `level` with stripe `chunk` over members
/// whose data areas hold `sizes` bytes. Striped levels use the same amount
/// of every member: the smallest, aligned down to whole chunks and to
/// [`ALIGNMENT`]; so is RAID 1. The result is a multiple of [`ALIGNMENT`].
pub fn capacity(level: Level, chunk: u64, sizes: &[u64]) -> Result<u64, StorageError> {
    check_members(level, sizes.len())?;
    let too_big = || StorageError::Invalid("the members add up to more than 2^64 bytes".into());
    if level == Level::Linear {
        return sizes
            .iter()
            .try_fold(0u64, |acc, s| acc.checked_add(s / ALIGNMENT * ALIGNMENT))
            .ok_or_else(too_big);
    }
    let unit = chunk_size(level, chunk)?.max(ALIGNMENT);
    let smallest = sizes.iter().copied().min().unwrap_or(0);
    let per_member = smallest / unit * unit;
    if per_member == 0 {
        return Err(StorageError::Invalid(format!(
            "the smallest member holds {smallest} data bytes, less than one {unit}-byte unit of the layout"
        )));
    }
    per_member
        .checked_mul(data_members(level, sizes.len()) as u64)
        .ok_or_else(too_big)
}

/// A member slot's `synced_to` when all of it holds good data.
pub(crate) const IN_SYNC: u64 = u64::MAX;

/// Mirrored levels copy (rebuild, resync) in pieces of at most this many
/// bytes of a member, each under its copy lock.
pub(crate) const COPY_UNIT: u64 = 1 << 20;

/// Copy locks per group (units share them modulo this).
const COPY_LOCKS: usize = 256;

/// One member position of a group.
#[derive(Debug)]
struct Slot {
    /// `None`: not found at startup. Changes when a replacement takes the
    /// slot.
    disk: RwLock<Option<Arc<Disk>>>,
    uuid: RwLock<Uuid>,
    /// Whether the metadata records the member as failed.
    recorded: AtomicBool,
    /// Bytes of the member's data area that hold good data: [`IN_SYNC`]
    /// but while a rebuild writes it, and then the rebuild's progress.
    synced_to: AtomicU64,
    /// The member came back to its own slot: its rebuild copies only the
    /// regions the bitmap has as missed (beyond `synced_to` the rest is
    /// good too, but is served from it only once the rebuild has passed).
    partial: AtomicBool,
}

/// A group's members as its layout sees them: present or missing, in
/// service or failed, in sync or being rebuilt; with the group's
/// write-intent bitmap (levels with redundancy).
#[derive(Debug)]
pub(crate) struct Members {
    core: Arc<Core>,
    group: u32,
    level: Level,
    slots: Vec<Slot>,
    /// Bytes used on every member.
    per_member: u64,
    /// Serialises recording.
    recording: Mutex<()>,
    /// Writers hold it shared for the whole write; a member changing role
    /// (a replacement taking a slot) takes it exclusively, so that no
    /// write sees half the change.
    gate: RwLock<()>,
    /// Mirrored levels: while maintenance copies between members (see
    /// `busy`), writers and the copier hold the lock of every
    /// [`COPY_UNIT`] they touch, so that a copy never interleaves with a
    /// write.
    copy_locks: Vec<Mutex<()>>,
    /// Whether a rebuild or resync may be copying: set under `gate`.
    busy: AtomicBool,
    /// Bytes rebuilds have written to members since the group was
    /// assembled.
    rebuilt: AtomicU64,
    pub(crate) bitmap: Option<Bitmap>,
}

/// A write under way on a group with redundancy: holds the gate shared and
/// its regions counted in the write-intent bitmap.
pub(crate) struct WriteIntent<'a> {
    members: &'a Members,
    span: (u64, u64),
    _gate: RwLockReadGuard<'a, ()>,
}

impl WriteIntent<'_> {
    /// The write is done: if a member is out now (lost on the way, or
    /// being rebuilt), its range is marked missed before the write is
    /// acknowledged (a member that went out during the write may have been
    /// passed over without a word, e.g. its parity chunk).
    pub(crate) fn end(self) -> Result<(), StorageError> {
        if self.members.lost().contains(&true) {
            self.members.missed(self.span.0, self.span.1)?;
        }
        Ok(())
    }
}

impl Drop for WriteIntent<'_> {
    fn drop(&mut self) {
        if let Some(b) = &self.members.bitmap {
            b.finish(self.span.0, self.span.1);
        }
    }
}

impl Members {
    pub(crate) fn new(core: Arc<Core>, group: &GroupRecord, chunk: u64, per_member: u64) -> Self {
        let slots: Vec<Slot> = group
            .members
            .iter()
            .map(|u| {
                let disk = core
                    .disks
                    .iter()
                    .find(|d| d.superblock().disk == *u)
                    .cloned();
                let rebuild = group.rebuilding.iter().find(|r| r.member == *u);
                Slot {
                    disk: RwLock::new(disk),
                    uuid: RwLock::new(*u),
                    recorded: AtomicBool::new(group.failed.contains(u)),
                    synced_to: AtomicU64::new(rebuild.map_or(IN_SYNC, |r| r.done.min(per_member))),
                    partial: AtomicBool::new(rebuild.is_some_and(|r| r.partial)),
                }
            })
            .collect();
        let mut members = Members {
            core,
            group: group.index,
            level: group.level,
            slots,
            per_member,
            recording: Mutex::new(()),
            gate: RwLock::new(()),
            copy_locks: (0..COPY_LOCKS).map(|_| Mutex::new(())).collect(),
            busy: AtomicBool::new(false),
            rebuilt: AtomicU64::new(0),
            bitmap: None,
        };
        if has_redundancy(group.level) {
            let region = bitmap::region_size(group.bitmap_region, chunk, per_member);
            let regions = per_member.div_ceil(region) as usize;
            let mut pending = vec![false; regions];
            let mut missed = vec![false; regions];
            let mut buf = vec![0u8; BITMAP_SIZE as usize];
            for m in 0..members.len() {
                let Some(d) = members.available(m) else {
                    continue;
                };
                let copy = match d.read_bitmap(&mut buf) {
                    Ok(()) => bitmap::decode(&buf, group.index, region, regions),
                    Err(e) => {
                        tracing::warn!(disk = %d.path().display(), error = %e, "bitmap unreadable");
                        bitmap::Copy::Damaged
                    }
                };
                match copy {
                    bitmap::Copy::Absent => {}
                    bitmap::Copy::Damaged => {
                        pending.fill(true);
                        missed.fill(true);
                    }
                    bitmap::Copy::Bits(bits, gone) => {
                        for (p, b) in pending.iter_mut().zip(bits) {
                            *p |= b;
                        }
                        for (p, b) in missed.iter_mut().zip(gone) {
                            *p |= b;
                        }
                    }
                }
            }
            // A write under way at a crash may have reached the members in
            // service and not yet been marked missed for one that is out.
            if members.lost().contains(&true) {
                for (p, m) in pending.iter().zip(missed.iter_mut()) {
                    *m |= *p;
                }
            }
            let dirty = pending.iter().filter(|p| **p).count();
            if dirty > 0 {
                tracing::warn!(
                    group = group.index,
                    regions = dirty,
                    region_bytes = region,
                    "RAID group was not stopped cleanly: regions to resynchronise"
                );
            }
            members.bitmap = Some(Bitmap::new(group.index, region, pending, missed));
        }
        let busy = members.rebuilding().is_some()
            || members
                .bitmap
                .as_ref()
                .is_some_and(|b| b.pending_count() > 0);
        members.busy.store(busy, Ordering::Release);
        members
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The group's index.
    pub(crate) fn group(&self) -> u32 {
        self.group
    }

    /// Bytes used on every member.
    pub(crate) fn per_member(&self) -> u64 {
        self.per_member
    }

    /// The member's disk, when present (failed or not).
    pub(crate) fn disk(&self, m: usize) -> Option<Arc<Disk>> {
        self.slots
            .get(m)?
            .disk
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The member's disk UUID.
    pub(crate) fn uuid(&self, m: usize) -> Uuid {
        *self.slots[m].uuid.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The member's disk when it is in service (rebuilt or not).
    fn available(&self, m: usize) -> Option<Arc<Disk>> {
        if self.slots[m].recorded.load(Ordering::Acquire) {
            return None;
        }
        self.disk(m).filter(|d| !d.is_failed())
    }

    /// Whether member `m` is in service (perhaps still being rebuilt).
    pub(crate) fn in_service(&self, m: usize) -> bool {
        self.available(m).is_some()
    }

    /// Bytes of member `m` holding good data ([`IN_SYNC`]: all).
    pub(crate) fn synced_to(&self, m: usize) -> u64 {
        self.slots[m].synced_to.load(Ordering::Acquire)
    }

    /// Whether member `m` is in service and holds good data at `at`.
    pub(crate) fn in_sync_at(&self, m: usize, at: u64) -> bool {
        at < self.synced_to(m) && self.in_service(m)
    }

    /// The members being rebuilt (in service, not yet in sync).
    pub(crate) fn rebuilding_all(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&m| self.synced_to(m) != IN_SYNC && self.in_service(m))
            .collect()
    }

    /// The member being rebuilt, if any (the first, when several are).
    pub(crate) fn rebuilding(&self) -> Option<usize> {
        (0..self.len()).find(|&m| self.synced_to(m) != IN_SYNC && self.in_service(m))
    }

    /// Which members are out of service or not yet rebuilt: what the
    /// group must do without.
    pub(crate) fn lost(&self) -> Vec<bool> {
        (0..self.len())
            .map(|m| !self.in_service(m) || self.synced_to(m) != IN_SYNC)
            .collect()
    }

    /// The error for I/O on a group that lost more than it survives.
    pub(crate) fn failed_error(&self) -> StorageError {
        let lost = self.lost();
        let names: Vec<String> = lost
            .iter()
            .enumerate()
            .filter(|(_, l)| **l)
            .map(|(m, _)| match self.disk(m) {
                Some(d) => format!("disk {} ({})", d.superblock().index, d.path().display()),
                None => format!("missing disk {}", self.uuid(m)),
            })
            .collect();
        StorageError::Io {
            context: format!(
                "RAID group {} ({:?}) has failed: lost {} of {} members ({})",
                self.group,
                self.level,
                names.len(),
                self.len(),
                names.join(", ")
            ),
            source: std::io::Error::other("too many members lost"),
        }
    }

    /// Fails unless the group can serve I/O.
    pub(crate) fn check(&self) -> Result<(), StorageError> {
        // Every member in service and in sync, the common case: decided
        // without building the list of lost members.
        if (0..self.len()).all(|m| self.synced_to(m) == IN_SYNC && self.in_service(m))
            || tolerates(self.level, &self.lost())
        {
            Ok(())
        } else {
            Err(self.failed_error())
        }
    }

    /// Takes member `m` out of service after an I/O error.
    fn lose(&self, m: usize, error: &StorageError) {
        if let Some(d) = self.disk(m)
            && !d.is_failed()
        {
            tracing::warn!(
                group = self.group,
                member = m,
                disk = %d.path().display(),
                error = %error,
                "RAID member failed; serving from the others"
            );
            d.mark_failed();
        }
        if let Some(b) = &self.bitmap {
            b.member_out();
        }
    }

    /// Runs one I/O on member `m` if it is in service: `Ok(false)` when it
    /// is not or fails now (it is then taken out of service).
    fn io(
        &self,
        m: usize,
        op: impl FnOnce(&Disk) -> Result<(), StorageError>,
    ) -> Result<bool, StorageError> {
        let Some(disk) = self.available(m) else {
            return Ok(false);
        };
        match op(&disk) {
            Ok(()) => Ok(true),
            Err(e @ StorageError::Io { .. }) => {
                self.lose(m, &e);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads from member `m`'s data area; `Ok(false)` if it is lost or the
    /// range is not rebuilt yet.
    pub(crate) fn read(&self, m: usize, buf: &mut [u8], offset: u64) -> Result<bool, StorageError> {
        if offset + buf.len() as u64 > self.synced_to(m) {
            return Ok(false);
        }
        self.io(m, |d| d.read_data(buf, offset))
    }

    /// Starts reading a range of member `m`'s data area into the page
    /// cache (what of it is rebuilt), if the member is in service.
    pub(crate) fn prefetch(&self, m: usize, offset: u64, len: u64) {
        let end = (offset + len).min(self.synced_to(m));
        if let Some(disk) = self.available(m).filter(|_| end > offset) {
            disk.prefetch(offset, end - offset);
        }
    }

    /// Reads as [`Members::read`] only if that needs no wait for the
    /// device (see [`Disk::read_data_resident`]); `false` otherwise, also
    /// when the member is out of service.
    pub(crate) fn read_resident(&self, m: usize, buf: &mut [u8], offset: u64) -> bool {
        offset + buf.len() as u64 <= self.synced_to(m)
            && self
                .available(m)
                .is_some_and(|d| d.read_data_resident(buf, offset))
    }

    /// Reads as [`Members::read`], without read-ahead: what a parity
    /// update reads of the chunks it is about to overwrite or combine.
    pub(crate) fn read_exact(
        &self,
        m: usize,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<bool, StorageError> {
        if offset + buf.len() as u64 > self.synced_to(m) {
            return Ok(false);
        }
        self.io(m, |d| d.read_data_exact(buf, offset))
    }

    /// Writes to member `m`'s data area, up to where it is rebuilt (a
    /// rebuild writes the rest later); `Ok(false)` if it is lost or the
    /// range is not rebuilt yet.
    pub(crate) fn write(&self, m: usize, buf: &[u8], offset: u64) -> Result<bool, StorageError> {
        let upto = self
            .synced_to(m)
            .saturating_sub(offset)
            .min(buf.len() as u64) as usize;
        if upto == 0 {
            return Ok(false);
        }
        self.io(m, |d| d.write_data(&buf[..upto], offset))
    }

    /// Member range `[lo, hi)` of a write may not reach a member out of
    /// service: marked missed (durably, before the write can be
    /// acknowledged), so that the member, back in its slot, gets it
    /// rebuilt. Writes call it through [`Members::start_write`] and
    /// [`WriteIntent::end`]; a member lost outside a write takes the
    /// marked regions along (`Bitmap::member_out`).
    fn missed(&self, lo: u64, hi: u64) -> Result<(), StorageError> {
        match &self.bitmap {
            Some(b) if hi > lo => b.mark_missed(lo, hi, |image| self.store_bitmap(image)),
            _ => Ok(()),
        }
    }

    /// Zeroes part of member `m`'s data area (as [`Members::write`]).
    pub(crate) fn zero(&self, m: usize, offset: u64, len: u64) -> Result<bool, StorageError> {
        let upto = self.synced_to(m).saturating_sub(offset).min(len);
        if upto == 0 {
            return Ok(false);
        }
        // A hole punched in a file reads as zeros at the cost of a metadata
        // update; a device (or a file system without holes) is written.
        self.io(m, |d| d.discard_data(offset, upto))
    }

    /// Writes rebuilt data to member `m` wherever it is not in sync yet.
    pub(crate) fn rebuild_write(
        &self,
        m: usize,
        buf: &[u8],
        offset: u64,
    ) -> Result<bool, StorageError> {
        self.rebuilt.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.io(m, |d| d.write_data(buf, offset))
    }

    /// Bytes rebuilds have written to members since the group was
    /// assembled.
    pub(crate) fn rebuilt_bytes(&self) -> u64 {
        self.rebuilt.load(Ordering::Relaxed)
    }

    /// Records how far member `m` is rebuilt (call holding the locks that
    /// keep writers out of what was just rebuilt); [`IN_SYNC`] once the
    /// rebuild is recorded as finished.
    pub(crate) fn set_synced_to(&self, m: usize, to: u64) {
        self.slots[m].synced_to.store(to, Ordering::Release);
    }

    /// Makes every member's writes durable; a member whose sync fails is
    /// lost (and recorded).
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        self.sync_disks()?;
        self.settle()
    }

    fn sync_disks(&self) -> Result<(), StorageError> {
        for m in 0..self.len() {
            self.io(m, Disk::sync)?;
        }
        Ok(())
    }

    /// Starts a write into member range `[lo, hi)`: holds the gate shared
    /// and, for levels with redundancy, marks its regions in the bitmap on
    /// every member before any data is written.
    pub(crate) fn start_write(&self, lo: u64, hi: u64) -> Result<WriteIntent<'_>, StorageError> {
        let gate = self.gate.read().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = &self.bitmap {
            b.start(lo, hi, |image| self.store_bitmap(image))?;
            // A member out (or being rebuilt) misses this write, or part
            // of it: marked before any data is written, so that a rebuild
            // passing over the range under its lock sees it.
            if self.lost().contains(&true) {
                self.missed(lo, hi)?;
            }
        }
        Ok(WriteIntent {
            members: self,
            span: (lo, hi),
            _gate: gate,
        })
    }

    /// Writes the bitmap image to every member in service.
    fn store_bitmap(&self, image: &[u8]) -> Result<(), StorageError> {
        for m in 0..self.len() {
            self.io(m, |d| d.write_bitmap(image))?;
        }
        Ok(())
    }

    /// Clears the bitmap's regions quiet for `delay` (after syncing the
    /// members), so that a clean stop leaves nothing to resync.
    pub(crate) fn clear_bitmap(&self, delay: Duration) -> Result<(), StorageError> {
        match &self.bitmap {
            Some(b) => {
                b.clear_quiet(delay, || self.sync_disks(), |i| self.store_bitmap(i))?;
                b.clear_missed(|| self.lost().contains(&true), |i| self.store_bitmap(i))
            }
            None => Ok(()),
        }
    }

    /// Whether a rebuild of member `m` may pass over member range
    /// `[lo, hi)` without copying it: the member came back to its own
    /// slot and nothing was written there since it went. Call holding the
    /// lock that keeps writers out of the range (a writer that skips the
    /// member marks the range missed under it).
    pub(crate) fn rebuild_skips(&self, m: usize, lo: u64, hi: u64) -> bool {
        self.slots[m].partial.load(Ordering::Acquire)
            && self.bitmap.as_ref().is_some_and(|b| !b.is_missed(lo, hi))
    }

    /// Whether a rebuild or resync may be copying between mirrors.
    pub(crate) fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Nothing copies any more (set by maintenance when it is done).
    pub(crate) fn set_idle(&self) {
        if self.rebuilding().is_none()
            && self.bitmap.as_ref().is_none_or(|b| b.pending_count() == 0)
        {
            self.busy.store(false, Ordering::Release);
        }
    }

    /// Calls `f(at, pos, n)` over member range `[at, at + len)`: in one go
    /// when nothing copies, else piece by piece at [`COPY_UNIT`]
    /// boundaries, each under its copy lock.
    pub(crate) fn with_copy_locks(
        &self,
        at: u64,
        len: u64,
        mut f: impl FnMut(u64, usize, usize) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        if !self.busy() {
            return f(at, 0, len as usize);
        }
        let mut done = 0u64;
        while done < len {
            let here = at + done;
            let n = (COPY_UNIT - here % COPY_UNIT).min(len - done);
            let _unit = self.copy_lock(here);
            f(here, done as usize, n as usize)?;
            done += n;
        }
        Ok(())
    }

    /// The copy lock of the unit holding member offset `at`.
    pub(crate) fn copy_lock(&self, at: u64) -> MutexGuard<'_, ()> {
        self.copy_locks[((at / COPY_UNIT) % COPY_LOCKS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `disk` in slot `m` to be rebuilt from the start (its data is
    /// not trusted anywhere but, with `partial`, where the bitmap marks
    /// nothing). The metadata must say so already.
    pub(crate) fn install(&self, m: usize, disk: Arc<Disk>, partial: bool) {
        let _no_writes = self.gate.write().unwrap_or_else(|e| e.into_inner());
        let slot = &self.slots[m];
        slot.synced_to.store(0, Ordering::Release);
        slot.partial.store(partial, Ordering::Release);
        *slot.uuid.write().unwrap_or_else(|e| e.into_inner()) = disk.superblock().disk;
        *slot.disk.write().unwrap_or_else(|e| e.into_inner()) = Some(disk);
        slot.recorded.store(false, Ordering::Release);
        self.busy.store(true, Ordering::Release);
    }

    /// Makes sure the metadata records every member out of service before
    /// the group's next write (a member not recorded would be trusted after
    /// a restart though it missed writes), and fails if the group has lost
    /// more than it survives. Write paths call it before writing and again
    /// before reporting success.
    pub(crate) fn settle(&self) -> Result<(), StorageError> {
        loop {
            if !tolerates(self.level, &self.lost()) {
                return Err(self.failed_error());
            }
            let unrecorded: Vec<usize> = (0..self.len())
                .filter(|&m| !self.in_service(m) && !self.slots[m].recorded.load(Ordering::Acquire))
                .collect();
            if unrecorded.is_empty() {
                return Ok(());
            }
            let _one_at_a_time = self.recording.lock().unwrap_or_else(|e| e.into_inner());
            if unrecorded
                .iter()
                .all(|&m| self.slots[m].recorded.load(Ordering::Acquire))
            {
                continue;
            }
            let uuids: Vec<Uuid> = unrecorded.iter().map(|&m| self.uuid(m)).collect();
            if let Some(b) = &self.bitmap {
                b.member_out();
            }
            // Those that went out in sync may come back for a partial
            // rebuild: the bitmap keeps what they miss from here on.
            let in_sync: Vec<Uuid> = unrecorded
                .iter()
                .filter(|&&m| {
                    self.synced_to(m) == IN_SYNC
                        && self.bitmap.as_ref().is_some_and(Bitmap::tracks_missed)
                })
                .map(|&m| self.uuid(m))
                .collect();
            self.core.update(|meta| {
                if let Some(g) = meta.groups.iter_mut().find(|g| g.index == self.group) {
                    for u in &uuids {
                        // A member replaced meanwhile is no longer the
                        // group's business.
                        if g.members.contains(u) && !g.failed.contains(u) {
                            g.failed.push(*u);
                            if in_sync.contains(u) && !g.readd.contains(u) {
                                g.readd.push(*u);
                            }
                        }
                    }
                    // A replacement failing ends its rebuild.
                    g.rebuilding.retain(|r| !uuids.contains(&r.member));
                }
                Ok(())
            })?;
            for &m in &unrecorded {
                self.slots[m].recorded.store(true, Ordering::Release);
            }
            tracing::warn!(
                group = self.group,
                members = ?unrecorded,
                "RAID members recorded as failed; the group runs degraded"
            );
            // Writing the metadata may itself have lost a disk: go round.
        }
    }
}

/// Whether `level` keeps redundancy (and so a write-intent bitmap).
pub fn has_redundancy(level: Level) -> bool {
    matches!(
        level,
        Level::Raid1 | Level::Raid10 | Level::Raid5 | Level::Raid6
    )
}

/// Copies member range `[lo, hi)` among the mirrors `set` (RAID 1: every
/// member; RAID 10: a pair), piece by piece under the copy locks: to
/// `target` alone from another mirror in sync (a rebuild, which then
/// counts `target` rebuilt up to `hi`), or, with no target, from the first
/// mirror in sync to the others (a resync).
pub(crate) fn copy_mirrors(
    members: &Members,
    set: &[usize],
    target: Option<usize>,
    lo: u64,
    hi: u64,
) -> Result<(), StorageError> {
    let mut buf = vec![0u8; COPY_UNIT.min(hi - lo) as usize];
    let mut at = lo;
    while at < hi {
        let n = (COPY_UNIT - at % COPY_UNIT).min(hi - at);
        let piece = &mut buf[..n as usize];
        let _unit = members.copy_lock(at);
        if let Some(t) = target
            && members.rebuild_skips(t, at, at + n)
        {
            members.set_synced_to(t, at + n);
            at += n;
            continue;
        }
        let mut source = None;
        for &m in set {
            if Some(m) != target && members.read(m, piece, at)? {
                source = Some(m);
                break;
            }
        }
        let Some(source) = source else {
            return Err(members.failed_error());
        };
        match target {
            Some(t) => {
                if !members.rebuild_write(t, piece, at)? {
                    return Err(StorageError::Io {
                        context: format!("rebuilding member {t} of group {}", members.group()),
                        source: std::io::Error::other("the new member failed"),
                    });
                }
                members.set_synced_to(t, at + n);
            }
            None => {
                for &m in set {
                    if m != source {
                        members.write(m, piece, at)?;
                    }
                }
            }
        }
        at += n;
    }
    Ok(())
}

/// A layout that keeps each byte on exactly one member (linear, RAID 0):
/// reading, writing and zeroing are one walk over its map.
pub(crate) trait SingleCopy {
    /// The members.
    fn members(&self) -> &Members;

    /// Calls `f(member, member_offset, position_in_request, len)` for each
    /// piece of the group range `[offset, offset + len)`; `f` returning
    /// false means the member is out of service.
    fn map<F>(&self, offset: u64, len: u64, f: F) -> Result<(), StorageError>
    where
        F: FnMut(usize, u64, usize, usize) -> Result<bool, StorageError>;

    /// Reads into `buf` from the group range at `offset`. A read over
    /// several members asks each for its pieces first, at once, so that
    /// they do not wait for their devices one after another.
    fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        let mut pieces = Vec::new();
        self.map(offset, buf.len() as u64, |m, at, _, n| {
            pieces.push((m, at, n as u64));
            Ok(true)
        })?;
        if pieces.len() > 1 {
            for (m, at, n) in pieces {
                self.members().prefetch(m, at, n);
            }
        }
        self.map(offset, buf.len() as u64, |m, at, pos, n| {
            self.members().read(m, &mut buf[pos..pos + n], at)
        })
    }

    /// Reads as [`SingleCopy::read`] only if no piece needs a wait for a
    /// device; `false` otherwise.
    fn read_resident(&self, buf: &mut [u8], offset: u64) -> bool {
        let mut resident = true;
        let mapped = self.map(offset, buf.len() as u64, |m, at, pos, n| {
            resident = resident && self.members().read_resident(m, &mut buf[pos..pos + n], at);
            Ok(true)
        });
        mapped.is_ok() && resident
    }

    /// Writes `buf` to the group range at `offset`.
    fn write(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        self.map(offset, buf.len() as u64, |m, at, pos, n| {
            self.members().write(m, &buf[pos..pos + n], at)
        })
    }

    /// Writes zeros over the group range.
    fn zero(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.map(offset, len, |m, at, _, n| {
            self.members().zero(m, at, n as u64)
        })
    }
}

/// A group's address map.
#[derive(Debug, Clone)]
pub enum Layout {
    /// Members one after the other.
    Linear(Arc<Linear>),
    /// Striped.
    Raid0(Arc<Raid0>),
    /// Mirrored.
    Raid1(Arc<Raid1>),
    /// Striped over mirrored pairs.
    Raid10(Arc<Raid10>),
    /// Striped with rotating parity.
    Raid5(Arc<Raid5>),
    /// Striped with P and Q.
    Raid6(Arc<Raid6>),
}

macro_rules! each {
    ($self:expr, $l:ident => $e:expr) => {
        match $self {
            Layout::Linear($l) => $e,
            Layout::Raid0($l) => $e,
            Layout::Raid1($l) => $e,
            Layout::Raid10($l) => $e,
            Layout::Raid5($l) => $e,
            Layout::Raid6($l) => $e,
        }
    };
}

impl Layout {
    /// The map of `group`, over the disks of `core` (members not found are
    /// missing; the group may be degraded or failed).
    pub(crate) fn build(core: &Arc<Core>, group: &GroupRecord) -> Result<Layout, StorageError> {
        let n = group.members.len();
        let bad = |why: String| {
            StorageError::Corrupt(format!("group {} ({}): {why}", group.index, group.name))
        };
        check_members(group.level, n).map_err(|e| bad(e.to_string()))?;
        let chunk = chunk_size(group.level, group.chunk).map_err(|e| bad(e.to_string()))?;
        let per_member = group.capacity / data_members(group.level, n) as u64;
        let members = Members::new(Arc::clone(core), group, chunk, per_member);
        if group.level != Level::Linear {
            let unit = if is_striped(group.level) {
                chunk.max(ALIGNMENT)
            } else {
                ALIGNMENT
            };
            if per_member == 0
                || !per_member.is_multiple_of(unit)
                || per_member * data_members(group.level, n) as u64 != group.capacity
            {
                return Err(bad(format!(
                    "capacity {} does not fit the layout",
                    group.capacity
                )));
            }
            if let Some(d) = (0..n)
                .filter_map(|m| members.disk(m))
                .find(|d| d.data_size() < per_member)
            {
                return Err(bad(format!(
                    "member {} holds {} data bytes, the layout uses {per_member}",
                    d.path().display(),
                    d.data_size()
                )));
            }
        }
        let members = Arc::new(members);
        Ok(match group.level {
            Level::Linear => Layout::Linear(Arc::new(Linear::new(members, group.capacity))),
            Level::Raid0 => Layout::Raid0(Arc::new(Raid0::new(members, chunk, per_member))),
            Level::Raid1 => Layout::Raid1(Arc::new(Raid1::new(members, per_member))),
            Level::Raid10 => Layout::Raid10(Arc::new(Raid10::new(members, chunk, per_member))),
            Level::Raid5 => Layout::Raid5(Arc::new(Raid5::new(members, chunk, per_member))),
            Level::Raid6 => {
                if n - 2 > gf256::MAX_DATA {
                    return Err(bad(format!("RAID 6 over {n} members")));
                }
                Layout::Raid6(Arc::new(Raid6::new(members, chunk, per_member)))
            }
        })
    }

    /// Usable bytes.
    pub fn capacity(&self) -> u64 {
        each!(self, l => l.capacity())
    }

    /// Reads into `buf` from the group range at `offset`.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        each!(self, l => l.read(buf, offset))
    }

    /// Reads as [`Layout::read`] only if that needs no wait for a device:
    /// `false` when it would (then `buf` holds anything), and where data
    /// would have to be reconstructed from parity.
    pub fn read_resident(&self, buf: &mut [u8], offset: u64) -> bool {
        each!(self, l => l.read_resident(buf, offset))
    }

    /// Writes `buf` to the group range at `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        each!(self, l => l.write(buf, offset))
    }

    /// Writes zeros over the group range.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        each!(self, l => l.zero(offset, len))
    }

    /// Makes every member's writes durable.
    pub fn sync(&self) -> Result<(), StorageError> {
        each!(self, l => l.members().sync())
    }

    /// The members.
    pub(crate) fn members(&self) -> &Members {
        each!(self, l => l.members())
    }

    /// Rebuilds member range `[at, at + len)` of member `m` from the
    /// others, counting it rebuilt as it goes; `at` and `len` are whole
    /// stripe chunks for the parity levels. Returns how many stripes had
    /// to be rebuilt from parity that a crash may have left out of step.
    pub(crate) fn rebuild_step(
        &self,
        ms: &[usize],
        at: u64,
        len: u64,
    ) -> Result<u64, StorageError> {
        // Members whose rebuild has reached `at`; the others are in sync
        // there and serve as sources.
        let due: Vec<usize> = ms
            .iter()
            .copied()
            .filter(|&m| self.members().synced_to(m) <= at)
            .collect();
        match self {
            Layout::Raid1(l) => {
                let all: Vec<usize> = (0..l.members().len()).collect();
                for m in due {
                    copy_mirrors(l.members(), &all, Some(m), at, at + len)?;
                }
                Ok(0)
            }
            Layout::Raid10(l) => {
                for m in due {
                    copy_mirrors(l.members(), &[m & !1, m | 1], Some(m), at, at + len)?;
                }
                Ok(0)
            }
            // Both of RAID 6's lost members in one pass over the stripes.
            Layout::Raid5(l) => l.rebuild(ms, at, len),
            Layout::Raid6(l) => l.rebuild(ms, at, len),
            Layout::Linear(_) | Layout::Raid0(_) => Err(StorageError::Invalid(
                "a group without redundancy cannot rebuild a member".into(),
            )),
        }
    }

    /// Makes member range `[lo, hi)` consistent again after an unclean
    /// stop: mirrors copied from the first in sync, parity recomputed.
    pub(crate) fn resync_range(&self, lo: u64, hi: u64) -> Result<(), StorageError> {
        match self {
            Layout::Raid1(l) => {
                let all: Vec<usize> = (0..l.members().len()).collect();
                copy_mirrors(l.members(), &all, None, lo, hi)
            }
            Layout::Raid10(l) => {
                for pair in 0..l.members().len() / 2 {
                    copy_mirrors(l.members(), &[2 * pair, 2 * pair + 1], None, lo, hi)?;
                }
                Ok(())
            }
            Layout::Raid5(l) => l.resync(lo, hi),
            Layout::Raid6(l) => l.resync(lo, hi),
            Layout::Linear(_) | Layout::Raid0(_) => Ok(()),
        }
    }

    /// Whether a resync can run now: mirrors always; parity only with
    /// every member in sync (else parity is what serves the lost data).
    pub(crate) fn can_resync(&self) -> bool {
        match self {
            Layout::Raid5(_) | Layout::Raid6(_) => !self.members().lost().contains(&true),
            _ => true,
        }
    }

    /// What a rebuild step must be a multiple of (a stripe chunk for the
    /// parity levels).
    pub(crate) fn rebuild_unit(&self) -> u64 {
        match self {
            Layout::Raid5(l) => l.chunk(),
            Layout::Raid6(l) => l.chunk(),
            _ => 1,
        }
    }

    /// Positions (in member order) of the members out of service: missing,
    /// failed at an I/O error, or recorded as failed.
    pub fn lost_members(&self) -> Vec<usize> {
        each!(self, l => l.members().lost())
            .into_iter()
            .enumerate()
            .filter(|(_, l)| *l)
            .map(|(m, _)| m)
            .collect()
    }
}

/// Groups' layouts by group index, built at first use: one per group,
/// shared by its volumes (RAID 5/6 stripe locks span volumes) and by its
/// maintenance.
#[derive(Debug, Default)]
pub(crate) struct Layouts(Mutex<BTreeMap<u32, Layout>>);

impl Layouts {
    fn map(&self) -> MutexGuard<'_, BTreeMap<u32, Layout>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The layout of group `g`.
    pub(crate) fn get(&self, core: &Arc<Core>, g: &GroupRecord) -> Result<Layout, StorageError> {
        let mut layouts = self.map();
        if let Some(l) = layouts.get(&g.index) {
            return Ok(l.clone());
        }
        let layout = Layout::build(core, g)?;
        layouts.insert(g.index, layout.clone());
        Ok(layout)
    }

    /// The layout of group `index`, if built.
    pub(crate) fn built(&self, index: u32) -> Option<Layout> {
        self.map().get(&index).cloned()
    }

    /// Every layout built.
    pub(crate) fn all(&self) -> Vec<Layout> {
        self.map().values().cloned().collect()
    }

    /// Forgets group `index`'s layout (the group is gone).
    pub(crate) fn remove(&self, index: u32) {
        self.map().remove(&index);
    }

    /// Forgets every layout (to be rebuilt from the metadata).
    pub(crate) fn clear(&self) {
        self.map().clear();
    }
}

/// Fails unless `[offset, offset + len)` lies within `capacity`.
pub(crate) fn check_range(offset: u64, len: u64, capacity: u64) -> Result<(), StorageError> {
    match offset.checked_add(len) {
        Some(end) if end <= capacity => Ok(()),
        _ => Err(StorageError::Invalid(format!(
            "{len} bytes at {offset} lie past the group's {capacity} bytes"
        ))),
    }
}

/// Calls `f(column, column_offset, position_in_request, len)` for each
/// chunk-sized piece of `[offset, offset + len)` laid round-robin over
/// `columns` columns in chunks of `chunk` bytes (RAID 0 over members, RAID
/// 10 over pairs).
pub(crate) fn for_chunks(
    chunk: u64,
    columns: usize,
    offset: u64,
    len: u64,
    mut f: impl FnMut(usize, u64, usize, usize) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let columns = columns as u64;
    let mut done = 0u64;
    while done < len {
        let at = offset + done;
        let number = at / chunk;
        let within = at % chunk;
        let n = (chunk - within).min(len - done);
        f(
            (number % columns) as usize,
            number / columns * chunk + within,
            done as usize,
            n as usize,
        )?;
        done += n;
    }
    Ok(())
}

/// Writes zeros over `[offset, offset + len)` through `write`, a megabyte at
/// a time (for layouts whose zeroing must go through parity).
pub(crate) fn zero_by_writing(
    offset: u64,
    len: u64,
    mut write: impl FnMut(&[u8], u64) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    const PIECE: u64 = 1 << 20;
    let zeros = vec![0u8; PIECE.min(len) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(PIECE);
        write(&zeros[..n as usize], offset + done)?;
        done += n;
    }
    Ok(())
}

/// Picks which mirror of a set to read first, spreading reads.
#[derive(Debug, Default)]
pub(crate) struct RoundRobin(AtomicUsize);

impl RoundRobin {
    pub(crate) fn next(&self, n: usize) -> usize {
        self.0.fetch_add(1, Ordering::Relaxed) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_counts_and_chunks_are_checked() {
        for (level, n, ok) in [
            (Level::Linear, 1, true),
            (Level::Linear, 0, false),
            (Level::Raid0, 1, false),
            (Level::Raid0, 2, true),
            (Level::Raid1, 1, false),
            (Level::Raid1, 3, true),
            (Level::Raid10, 4, true),
            (Level::Raid10, 5, false),
            (Level::Raid10, 2, false),
            (Level::Raid10, 6, true),
            (Level::Raid5, 2, false),
            (Level::Raid5, 3, true),
            (Level::Raid6, 3, false),
            (Level::Raid6, 4, true),
            (Level::Raid6, 257, false),
        ] {
            assert_eq!(check_members(level, n).is_ok(), ok, "{level:?} over {n}");
        }
        assert_eq!(chunk_size(Level::Raid5, 0).unwrap(), DEFAULT_CHUNK);
        assert_eq!(chunk_size(Level::Raid1, 12345).unwrap(), 12345);
        for bad in [1, 2048, 3 << 12, 32 << 20] {
            let e = chunk_size(Level::Raid0, bad).unwrap_err();
            assert!(e.to_string().contains("power of two"), "{e}");
        }
        assert_eq!(chunk_size(Level::Raid6, 16 << 20).unwrap(), 16 << 20);
    }

    #[test]
    fn capacity_uses_the_smallest_member_in_whole_units() {
        let mib = ALIGNMENT;
        let sizes = [10 * mib + 5, 7 * mib + 100, 9 * mib];
        assert_eq!(capacity(Level::Linear, 0, &sizes).unwrap(), 26 * mib);
        assert_eq!(capacity(Level::Raid1, 0, &sizes).unwrap(), 7 * mib);
        assert_eq!(capacity(Level::Raid0, 0, &sizes).unwrap(), 21 * mib);
        assert_eq!(capacity(Level::Raid5, 4096, &sizes).unwrap(), 14 * mib);
        // 4 MiB chunks: 7 MiB holds one.
        assert_eq!(capacity(Level::Raid5, 4 * mib, &sizes).unwrap(), 8 * mib);
        assert!(capacity(Level::Raid5, 8 * mib, &sizes).is_err());
        let four = [7 * mib; 4];
        assert_eq!(capacity(Level::Raid6, 0, &four).unwrap(), 14 * mib);
        assert_eq!(capacity(Level::Raid10, 0, &four).unwrap(), 14 * mib);
        assert!(capacity(Level::Raid10, 0, &sizes).is_err());
        assert!(capacity(Level::Linear, 0, &[u64::MAX, u64::MAX]).is_err());
    }

    #[test]
    fn what_each_level_survives() {
        let t = true;
        let f = false;
        assert!(tolerates(Level::Raid1, &[t, f, t]));
        assert!(!tolerates(Level::Raid1, &[t, t]));
        assert!(tolerates(Level::Raid10, &[t, f, f, t]));
        assert!(!tolerates(Level::Raid10, &[t, t, f, f]));
        assert!(tolerates(Level::Raid5, &[f, t, f]));
        assert!(!tolerates(Level::Raid5, &[t, t, f]));
        assert!(tolerates(Level::Raid6, &[t, t, f, f]));
        assert!(!tolerates(Level::Raid6, &[t, t, t, f, f]));
        assert!(!tolerates(Level::Raid0, &[f, t]));
        assert!(!tolerates(Level::Linear, &[t]));
    }

    #[test]
    fn chunks_go_round_the_columns() {
        let mut seen = vec![];
        for_chunks(4, 3, 2, 20, |c, at, pos, n| {
            seen.push((c, at, pos, n));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (0, 2, 0, 2),
                (1, 0, 2, 4),
                (2, 0, 6, 4),
                (0, 4, 10, 4),
                (1, 4, 14, 4),
                (2, 4, 18, 2),
            ]
        );
    }
}
