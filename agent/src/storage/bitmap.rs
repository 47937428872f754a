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
//! A second set of bits, the *missed* regions, names the regions written
//! while a member was out of service (lost, missing, or not yet rebuilt
//! there): set, durably, before such a write is acknowledged, and cleared
//! only once the group is whole again. A member that comes back to its
//! own slot then gets only those regions rebuilt (a *partial* rebuild,
//! md's bitmap-based re-add); the write-intent bits keep their meaning.
//!
//! On-disk form, at `BITMAP_OFFSET` of every member: magic `DVSANBM1`, the
//! group index (u32), the region count (u32), the region size (u64), a
//! CRC-32, flags (u32; bit 0: the missed bits follow), then the
//! write-intent bits and, when flagged, the missed bits, least significant
//! first. The CRC covers the first 24 bytes, the flags when not zero, and
//! the bits. A damaged copy counts as all set (and all missed); a copy
//! that is absent or names another group or geometry counts as clear (a
//! group's members are cleared when it is created). A group whose two bit
//! arrays do not fit in the area keeps no missed bits (a member coming
//! back is rebuilt whole).

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
/// Flag: the missed bits follow the write-intent bits.
const HAS_MISSED: u32 = 1;
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

/// Whether a group of `regions` regions has room for its missed bits.
pub(crate) fn tracks_missed(regions: usize) -> bool {
    HEADER + 2 * regions.div_ceil(8) <= BITMAP_SIZE as usize
}

/// The on-disk form of `bits` (and `missed`) for `group`.
pub(crate) fn encode(group: u32, region: u64, bits: &[bool], missed: Option<&[bool]>) -> Vec<u8> {
    let bytes = bits.len().div_ceil(8);
    let arrays = if missed.is_some() { 2 } else { 1 };
    let mut buf = vec![0u8; HEADER + arrays * bytes];
    buf[..8].copy_from_slice(MAGIC);
    buf[8..12].copy_from_slice(&group.to_le_bytes());
    buf[12..16].copy_from_slice(&(bits.len() as u32).to_le_bytes());
    buf[16..24].copy_from_slice(&region.to_le_bytes());
    let flags = if missed.is_some() { HAS_MISSED } else { 0 };
    buf[28..32].copy_from_slice(&flags.to_le_bytes());
    let mut put = |at: usize, bits: &[bool]| {
        for (i, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
            buf[at + i / 8] |= 1 << (i % 8);
        }
    };
    put(HEADER, bits);
    put(HEADER + bytes, missed.unwrap_or(&[]));
    let crc = crc(&buf);
    buf[24..28].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// The CRC of an image (not of its CRC field; of the flags only when set,
/// so that images from before there were flags still check).
fn crc(buf: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..24]);
    if buf[28..32] != [0; 4] {
        h.update(&buf[28..32]);
    }
    h.update(&buf[HEADER..]);
    h.finalize()
}

/// What one member's copy says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Copy {
    /// No bitmap of this group and geometry: nothing marked.
    Absent,
    /// The regions marked, and the regions missed (none when the copy
    /// keeps no missed bits).
    Bits(Vec<bool>, Vec<bool>),
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
    let bytes = regions.div_ceil(8);
    let missed = u32_at(28) & HAS_MISSED != 0;
    let end = HEADER + if missed { 2 * bytes } else { bytes };
    if buf.len() < end || crc(&buf[..end]) != u32_at(24) {
        return Copy::Damaged;
    }
    let bits = |at: usize| {
        (0..regions)
            .map(|i| buf[at + i / 8] & (1 << (i % 8)) != 0)
            .collect()
    };
    Copy::Bits(
        bits(HEADER),
        if missed {
            bits(HEADER + bytes)
        } else {
            vec![false; regions]
        },
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
    /// Written while a member was out (see the module doc); `None` when
    /// the group keeps no missed bits.
    missed: Option<Vec<bool>>,
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
    /// A member went out since the missed bits were last brought up to
    /// date (see [`Bitmap::member_out`]).
    out: AtomicBool,
}

impl Bitmap {
    /// A bitmap of `regions` regions of `region` bytes, with `pending`
    /// awaiting resync and `missed` missed by a member out of service
    /// (what the members' copies said at assembly).
    pub(crate) fn new(group: u32, region: u64, pending: Vec<bool>, missed: Vec<bool>) -> Self {
        let regions = pending.len();
        let count = pending.iter().filter(|p| **p).count();
        let missed = tracks_missed(regions).then_some(missed);
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
                missed,
            }),
            pending: AtomicUsize::new(count),
            pending_at_start: count,
            out: AtomicBool::new(false),
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
        encode(self.group, self.region, &bits, state.missed.as_deref())
    }

    /// Whether the group keeps missed bits (room for them on disk).
    pub(crate) fn tracks_missed(&self) -> bool {
        self.lock().missed.is_some()
    }

    /// Member range `[lo, hi)` was (or is being) written while a member
    /// was out: its regions are marked missed, durably (`store`), before
    /// return.
    pub(crate) fn mark_missed(
        &self,
        lo: u64,
        hi: u64,
        store: impl FnOnce(&[u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut state = self.lock();
        self.absorb(&mut state);
        let count = state.ondisk.len();
        let range = self.regions_of(lo, hi, count);
        let Some(missed) = state.missed.as_mut() else {
            return Ok(());
        };
        if range.clone().all(|r| missed[r]) {
            return Ok(());
        }
        for r in range {
            missed[r] = true;
        }
        store(&self.image(&state))
    }

    /// A member went out of service: the regions marked for writes not yet
    /// synced everywhere may not have reached it durably, so they count as
    /// missed too (taken in at the next use of the bits, before any is
    /// cleared, and stored with the next image; after a crash the marked
    /// regions are added again at assembly). Takes no lock: it is called
    /// from the members' I/O, which may run under the bitmap's own lock.
    pub(crate) fn member_out(&self) {
        self.out.store(true, Ordering::Release);
    }

    /// Takes in a [`Bitmap::member_out`]. Call with the lock.
    fn absorb(&self, state: &mut State) {
        if !self.out.swap(false, Ordering::AcqRel) {
            return;
        }
        let State {
            ondisk,
            pending,
            missed,
            ..
        } = state;
        if let Some(missed) = missed.as_mut() {
            for ((m, a), b) in missed.iter_mut().zip(ondisk.iter()).zip(pending.iter()) {
                *m |= *a || *b;
            }
        }
    }

    /// How many regions are marked missed; `None` when the group keeps no
    /// missed bits.
    pub(crate) fn missed_count(&self) -> Option<usize> {
        let mut state = self.lock();
        self.absorb(&mut state);
        state
            .missed
            .as_ref()
            .map(|m| m.iter().filter(|b| **b).count())
    }

    /// Whether member range `[lo, hi)` touches a region missed by a member
    /// out of service (every region when the group keeps no missed bits).
    pub(crate) fn is_missed(&self, lo: u64, hi: u64) -> bool {
        let mut state = self.lock();
        self.absorb(&mut state);
        let range = self.regions_of(lo, hi, state.ondisk.len());
        match &state.missed {
            Some(missed) => range.into_iter().any(|r| missed[r]),
            None => true,
        }
    }

    /// Clears the missed bits, unless `out` (asked under the lock that
    /// marking takes, so a member lost meanwhile keeps them) says a member
    /// is out of service.
    pub(crate) fn clear_missed(
        &self,
        out: impl FnOnce() -> bool,
        store: impl FnOnce(&[u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut state = self.lock();
        self.absorb(&mut state);
        let Some(missed) = state.missed.as_mut() else {
            return Ok(());
        };
        if !missed.contains(&true) || out() {
            return Ok(());
        }
        missed.fill(false);
        store(&self.image(&state))
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
        self.absorb(&mut state);
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
            self.absorb(&mut state);
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
        // A member lost during the sync may lack what is about to be
        // cleared.
        self.absorb(&mut state);
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
        let none = vec![false; 9];
        let buf = encode(7, 1 << 20, &bits, None);
        assert_eq!(
            decode(&buf, 7, 1 << 20, 9),
            Copy::Bits(bits.to_vec(), none.clone())
        );
        let missed = [false, false, true, false, false, false, false, false, true];
        let both = encode(7, 1 << 20, &bits, Some(&missed));
        assert_eq!(
            decode(&both, 7, 1 << 20, 9),
            Copy::Bits(bits.to_vec(), missed.to_vec())
        );
        // The flags are under the CRC.
        let mut flipped = both.clone();
        flipped[28] ^= 1;
        assert_eq!(decode(&flipped, 7, 1 << 20, 9), Copy::Damaged);
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
        let b = Bitmap::new(1, 100, vec![false; 4], vec![false; 4]);
        let mut stores = 0;
        b.start(150, 250, |img| {
            stores += 1;
            assert_eq!(
                decode(img, 1, 100, 4),
                Copy::Bits(vec![false, true, true, false], vec![false; 4])
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
        assert_eq!(
            image,
            Some(Copy::Bits(vec![false, true, false, false], vec![false; 4]))
        );
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
        let b = Bitmap::new(1, 100, vec![false, true, true], vec![false; 3]);
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

    #[test]
    fn missed_regions_are_stored_before_return_and_kept_while_a_member_is_out() {
        let b = Bitmap::new(1, 100, vec![false; 3], vec![false, false, true]);
        assert!(b.tracks_missed());
        assert!(b.is_missed(250, 260) && !b.is_missed(0, 200));
        let mut stored = None;
        b.mark_missed(10, 120, |img| {
            stored = Some(decode(img, 1, 100, 3));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            stored,
            Some(Copy::Bits(vec![false; 3], vec![true, true, true]))
        );
        // Already missed: nothing stored.
        b.mark_missed(0, 50, |_| panic!("stored twice")).unwrap();
        // Intent bits clear as before; the missed ones stay.
        b.start(0, 10, |_| Ok(())).unwrap();
        b.finish(0, 10);
        b.clear_quiet(Duration::ZERO, || Ok(()), |_| Ok(()))
            .unwrap();
        assert!(b.is_missed(0, 10));
        // A member still out: kept.
        b.clear_missed(|| true, |_| panic!("cleared while out"))
            .unwrap();
        assert!(b.is_missed(0, 300));
        let mut cleared = None;
        b.clear_missed(
            || false,
            |img| {
                cleared = Some(decode(img, 1, 100, 3));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(cleared, Some(Copy::Bits(vec![false; 3], vec![false; 3])));
        assert!(!b.is_missed(0, 300));
        // A group too big for two arrays keeps none: everything counts
        // as missed.
        let huge = (MAX_REGIONS as usize) - 8;
        assert!(!tracks_missed(huge));
        let b = Bitmap::new(1, 100, vec![false; huge], vec![false; huge]);
        assert!(!b.tracks_missed() && b.is_missed(0, 1));
    }

    proptest::proptest! {
        /// Whatever a member's bitmap area holds (a torn write, another
        /// program's bytes), decoding never panics and a decoded copy has
        /// one bit per region in each array.
        #[test]
        fn any_bytes_decode_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            regions in 0usize..2000,
            flip in proptest::prelude::any::<bool>(),
        ) {
            let mut buf = bytes;
            if flip && buf.len() >= HEADER {
                // Often a well-formed header, so the bits are reached.
                buf[..8].copy_from_slice(MAGIC);
                buf[8..12].copy_from_slice(&1u32.to_le_bytes());
                buf[12..16].copy_from_slice(&(regions as u32).to_le_bytes());
                buf[16..24].copy_from_slice(&4096u64.to_le_bytes());
                let crc = crc(&buf);
                buf[24..28].copy_from_slice(&crc.to_le_bytes());
            }
            if let Copy::Bits(bits, missed) = decode(&buf, 1, 4096, regions) {
                proptest::prop_assert_eq!((bits.len(), missed.len()), (regions, regions));
            }
        }
    }
}
