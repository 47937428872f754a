//! The write-intent bitmap of a RAID group with redundancy (RAID 1, 10, 5
//! and 6), after Linux md's: one bit per region of the members' data areas
//! (64 MiB by default), set on every member in service, durably, before
//! the first write into the region, and cleared lazily once the region's
//! writes are on every member and it has been quiet for a while (two
//! seconds by default; at once at a flush of the whole unit and when the
//! unit is closed). A clean stop therefore leaves every bit clear; after a
//! crash the set bits (the union over the members) name the only regions
//! whose mirrors or parity may disagree with the data, and those alone are
//! resynchronised, in the background (`maintenance.rs`).
//!
//! A region awaiting resync is *pending*. Mirrored levels read a pending
//! region from one member only (the resync source), so that two reads never
//! disagree. The parity levels cannot trust parity there: rebuilding a lost
//! member's chunk from it would hand out whatever a torn write left (the
//! RAID 5 "write hole"). So reconstructing reads in a pending region fail
//! with an I/O error instead of returning possibly wrong data; a group that
//! crashed while degraded keeps such regions pending until a rebuild has
//! given it its member back (the rebuild must reconstruct them anyway, and
//! logs an error naming them), after which parity is recomputed from the
//! data.
//!
//! On-disk form, at `BITMAP_OFFSET` of every member: magic `DVSANBM1`, the
//! group index (u32), the region count (u32), the region size (u64), a
//! CRC-32 of all that and of the bits, 4 bytes reserved, then the bits,
//! least significant first. A damaged copy counts as all set; a copy that
//! is absent or names another group or geometry counts as clear (a group's
//! members are cleared when it is created).

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::storage::StorageError;
use crate::storage::disk::BITMAP_SIZE;

/// Bytes of every member one bit covers when the group asks for none.
pub const DEFAULT_REGION: u64 = 64 << 20;
/// The smallest region.
pub const MIN_REGION: u64 = 64 << 10;
/// How long a region stays marked after its last write by default.
pub const DEFAULT_CLEAR_DELAY: Duration = Duration::from_secs(2);

const MAGIC: &[u8; 8] = b"DVSANBM1";
const HEADER: usize = 32;
/// Most regions the on-disk area holds.
const MAX_REGIONS: u64 = (BITMAP_SIZE - HEADER as u64) * 8;

/// The region size of a group with stripe `chunk` using `per_member` bytes
/// of every member, asking for `wanted` (0: the default): a power of two,
/// at least [`MIN_REGION`] and one chunk, doubled until the bits fit.
pub(crate) fn region_size(wanted: u64, chunk: u64, per_member: u64) -> u64 {
    let wanted = if wanted == 0 { DEFAULT_REGION } else { wanted };
    let mut region = wanted
        .max(MIN_REGION)
        .max(chunk)
        .checked_next_power_of_two()
        .unwrap_or(1 << 63);
    while per_member.div_ceil(region) > MAX_REGIONS {
        region *= 2;
    }
    region
}

/// The on-disk form of `bits` for `group`.
pub(crate) fn encode(group: u32, region: u64, bits: &[bool]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER + bits.len().div_ceil(8)];
    buf[..8].copy_from_slice(MAGIC);
    buf[8..12].copy_from_slice(&group.to_le_bytes());
    buf[12..16].copy_from_slice(&(bits.len() as u32).to_le_bytes());
    buf[16..24].copy_from_slice(&region.to_le_bytes());
    for (i, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
        buf[HEADER + i / 8] |= 1 << (i % 8);
    }
    let crc = crc(&buf);
    buf[24..28].copy_from_slice(&crc.to_le_bytes());
    buf
}

fn crc(buf: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..24]);
    h.update(&buf[HEADER..]);
    h.finalize()
}

/// What one member's copy says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Copy {
    /// No bitmap of this group and geometry: nothing marked.
    Absent,
    /// The regions marked.
    Bits(Vec<bool>),
    /// Unreadable or torn: everything must be taken as marked.
    Damaged,
}

/// Reads a copy of `group`'s bitmap of `regions` regions of `region` bytes
/// from the bitmap area's bytes `buf`.
pub(crate) fn decode(buf: &[u8], group: u32, region: u64, regions: usize) -> Copy {
    if buf.len() < HEADER || &buf[..8] != MAGIC {
        return Copy::Absent;
    }
    let u32_at = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
    let stored_region = u64::from_le_bytes(buf[16..24].try_into().expect("8 bytes"));
    if u32_at(8) != group || u32_at(12) as usize != regions || stored_region != region {
        return Copy::Absent;
    }
    let end = HEADER + regions.div_ceil(8);
    if buf.len() < end || crc(&buf[..end]) != u32_at(24) {
        return Copy::Damaged;
    }
    Copy::Bits(
        (0..regions)
            .map(|i| buf[HEADER + i / 8] & (1 << (i % 8)) != 0)
            .collect(),
    )
}

#[derive(Debug)]
struct State {
    /// Writes under way per region.
    inflight: Vec<u32>,
    /// Whether the bit is set on the members.
    ondisk: Vec<bool>,
    /// The sync epoch in which the region's last write finished.
    written: Vec<u64>,
    /// When the region's last write finished.
    touched: Vec<Option<Instant>>,
    /// Awaiting resync.
    pending: Vec<bool>,
    /// Bumped by every clearing pass before it syncs the members.
    epoch: u64,
}

/// A group's write-intent bitmap in memory: which regions are marked on
/// the members, which have writes under way, which await resync. The
/// members' I/O is done by the caller's closures.
#[derive(Debug)]
pub(crate) struct Bitmap {
    group: u32,
    region: u64,
    state: Mutex<State>,
    /// Regions awaiting resync (kept outside the lock for the read path).
    pending: AtomicUsize,
    /// Regions that awaited resync when the group was assembled.
    pending_at_start: usize,
}

impl Bitmap {
    /// A bitmap of `regions` regions of `region` bytes, with `pending`
    /// (what the members' copies said at assembly) awaiting resync.
    pub(crate) fn new(group: u32, region: u64, pending: Vec<bool>) -> Self {
        let regions = pending.len();
        let count = pending.iter().filter(|p| **p).count();
        Bitmap {
            group,
            region,
            state: Mutex::new(State {
                inflight: vec![0; regions],
                ondisk: pending.clone(),
                written: vec![0; regions],
                touched: vec![None; regions],
                pending,
                epoch: 1,
            }),
            pending: AtomicUsize::new(count),
            pending_at_start: count,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of every member per region.
    pub(crate) fn region(&self) -> u64 {
        self.region
    }

    /// The regions member range `[lo, hi)` touches.
    fn regions_of(&self, lo: u64, hi: u64, count: usize) -> Range<usize> {
        let first = (lo / self.region) as usize;
        let end = (hi.div_ceil(self.region) as usize).min(count);
        first.min(end)..end
    }

    fn image(&self, state: &State) -> Vec<u8> {
        let bits: Vec<bool> = state
            .ondisk
            .iter()
            .zip(&state.pending)
            .map(|(a, b)| *a || *b)
            .collect();
        encode(self.group, self.region, &bits)
    }

    /// Counts a write into member range `[lo, hi)` as under way, first
    /// making sure its regions are marked on the members: `store` writes
    /// the on-disk image to every member, durably. Pair with
    /// [`Bitmap::finish`].
    pub(crate) fn start(
        &self,
        lo: u64,
        hi: u64,
        store: impl FnOnce(&[u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut state = self.lock();
        let range = self.regions_of(lo, hi, state.inflight.len());
        let mut unmarked = false;
        for r in range.clone() {
            state.inflight[r] += 1;
            unmarked |= !state.ondisk[r];
        }
        if unmarked {
            // Held across the members' I/O: writers into marked regions
            // wait a moment, which md's bitmap does too.
            for r in range.clone() {
                state.ondisk[r] = true;
            }
            if let Err(e) = store(&self.image(&state)) {
                for r in range {
                    state.inflight[r] -= 1;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// A write counted by [`Bitmap::start`] is over.
    pub(crate) fn finish(&self, lo: u64, hi: u64) {
        let mut state = self.lock();
        let range = self.regions_of(lo, hi, state.inflight.len());
        let epoch = state.epoch;
        let now = Instant::now();
        for r in range {
            state.inflight[r] = state.inflight[r].saturating_sub(1);
            state.written[r] = epoch;
            state.touched[r] = Some(now);
        }
    }

    /// Clears the bits of regions quiet for `delay` whose writes are all
    /// on the members: `sync` makes every write so far durable, `store`
    /// writes the new image. Regions awaiting resync stay marked.
    pub(crate) fn clear_quiet(
        &self,
        delay: Duration,
        sync: impl FnOnce() -> Result<(), StorageError>,
        store: impl FnOnce(&[u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let (epoch, candidates) = {
            let mut state = self.lock();
            let candidates: Vec<usize> = (0..state.ondisk.len())
                .filter(|&r| {
                    state.ondisk[r]
                        && !state.pending[r]
                        && state.inflight[r] == 0
                        && state.touched[r].is_none_or(|t| t.elapsed() >= delay)
                })
                .collect();
            if candidates.is_empty() {
                return Ok(());
            }
            // Writes finishing from here on belong to the next epoch: this
            // pass's sync may not cover them.
            let epoch = state.epoch;
            state.epoch += 1;
            (epoch, candidates)
        };
        sync()?;
        let mut state = self.lock();
        let mut cleared = false;
        for r in candidates {
            if state.inflight[r] == 0 && state.written[r] <= epoch && !state.pending[r] {
                state.ondisk[r] = false;
                cleared = true;
            }
        }
        if cleared {
            store(&self.image(&state))?;
        }
        Ok(())
    }

    /// Whether any bit is set on the members or any region awaits resync.
    #[cfg(test)]
    fn any_marked(&self) -> bool {
        let state = self.lock();
        state.ondisk.iter().chain(&state.pending).any(|b| *b)
    }

    /// Whether member range `[lo, hi)` touches a region awaiting resync.
    pub(crate) fn is_pending(&self, lo: u64, hi: u64) -> bool {
        if self.pending.load(Ordering::Acquire) == 0 {
            return false;
        }
        let state = self.lock();
        let range = self.regions_of(lo, hi, state.pending.len());
        state.pending[range].iter().any(|p| *p)
    }

    /// The regions awaiting resync.
    pub(crate) fn pending_regions(&self) -> Vec<usize> {
        let state = self.lock();
        (0..state.pending.len())
            .filter(|&r| state.pending[r])
            .collect()
    }

    /// How many regions await resync.
    pub(crate) fn pending_count(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Percent of the regions pending at assembly that are resynced.
    pub(crate) fn resync_progress(&self) -> u8 {
        let left = self.pending_count();
        if self.pending_at_start == 0 || left == 0 {
            return 100;
        }
        let done = self.pending_at_start.saturating_sub(left);
        (done * 100 / self.pending_at_start).min(99) as u8
    }

    /// Region `r` is consistent again (its bit is cleared by a later
    /// clearing pass, after a sync).
    pub(crate) fn resynced(&self, r: usize) {
        let mut state = self.lock();
        if state.pending.get(r).copied() == Some(true) {
            state.pending[r] = false;
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_reads_back_and_a_damaged_one_counts_as_all_marked() {
        let bits = [true, false, false, true, true, false, false, false, true];
        let buf = encode(7, 1 << 20, &bits);
        assert_eq!(decode(&buf, 7, 1 << 20, 9), Copy::Bits(bits.to_vec()));
        // Another group, region size or count: not this group's bitmap.
        assert_eq!(decode(&buf, 8, 1 << 20, 9), Copy::Absent);
        assert_eq!(decode(&buf, 7, 2 << 20, 9), Copy::Absent);
        assert_eq!(decode(&buf, 7, 1 << 20, 10), Copy::Absent);
        assert_eq!(decode(&[0u8; 64], 7, 1 << 20, 9), Copy::Absent);
        let mut torn = buf.clone();
        torn[HEADER + 1] ^= 1;
        assert_eq!(decode(&torn, 7, 1 << 20, 9), Copy::Damaged);
    }

    #[test]
    fn regions_grow_until_the_bits_fit() {
        assert_eq!(region_size(0, 64 << 10, 1 << 30), DEFAULT_REGION);
        assert_eq!(region_size(1, 4096, 1 << 30), MIN_REGION);
        assert_eq!(region_size(100 << 10, 4096, 1 << 30), 128 << 10);
        assert_eq!(region_size(MIN_REGION, 16 << 20, 1 << 30), 16 << 20);
        let huge = 1u64 << 50;
        let r = region_size(0, 0, huge);
        assert!(huge.div_ceil(r) <= MAX_REGIONS && r.is_power_of_two());
    }

    #[test]
    fn a_region_is_marked_before_its_write_and_cleared_only_when_quiet_and_synced() {
        let b = Bitmap::new(1, 100, vec![false; 4]);
        let mut stores = 0;
        b.start(150, 250, |img| {
            stores += 1;
            assert_eq!(
                decode(img, 1, 100, 4),
                Copy::Bits(vec![false, true, true, false])
            );
            Ok(())
        })
        .unwrap();
        // Already marked: no store.
        b.start(120, 130, |_| panic!("stored twice")).unwrap();
        assert_eq!(stores, 1);
        b.finish(150, 250);
        // Region 1 still has a write under way.
        let mut image = None;
        b.clear_quiet(
            Duration::ZERO,
            || Ok(()),
            |img| {
                image = Some(decode(img, 1, 100, 4));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(image, Some(Copy::Bits(vec![false, true, false, false])));
        b.finish(120, 130);
        // Not quiet long enough.
        b.clear_quiet(
            Duration::from_secs(60),
            || panic!("synced"),
            |_| panic!("stored"),
        )
        .unwrap();
        // A write finishing while the members sync is not covered by it.
        b.clear_quiet(
            Duration::ZERO,
            || {
                b.start(100, 101, |_| Ok(())).unwrap();
                b.finish(100, 101);
                Ok(())
            },
            |_| panic!("stored with nothing cleared"),
        )
        .unwrap();
        assert!(b.any_marked());
        b.clear_quiet(Duration::ZERO, || Ok(()), |_| Ok(()))
            .unwrap();
        assert!(!b.any_marked());
    }

    #[test]
    fn pending_regions_stay_marked_until_resynced() {
        let b = Bitmap::new(1, 100, vec![false, true, true]);
        assert!(b.is_pending(150, 160) && !b.is_pending(0, 100));
        assert_eq!(b.resync_progress(), 0);
        b.clear_quiet(Duration::ZERO, || Ok(()), |_| panic!("cleared pending"))
            .unwrap();
        b.resynced(1);
        assert_eq!(b.pending_regions(), vec![2]);
        assert_eq!(b.resync_progress(), 50);
        b.resynced(2);
        assert_eq!(b.resync_progress(), 100);
        b.clear_quiet(Duration::ZERO, || Ok(()), |_| Ok(()))
            .unwrap();
        assert!(!b.any_marked());
    }
}
