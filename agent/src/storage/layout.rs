//! RAID layouts: the rules every level follows (member counts, chunk,
//! capacity, how many lost members it survives), the member set a layout
//! reads and writes through (which takes a member out of service at its
//! first I/O error and records that in the metadata before the member misses
//! a write), and [`Layout`], one group's address map whatever its level.
//!
//! One `Layout` is built per group and shared by all its volumes (RAID 5
//! and 6 serialise writes per stripe, and a stripe can hold the edges of two
//! volumes).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::storage::disk::Disk;
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

/// A group's members as its layout sees them: present or missing, in
/// service or failed.
#[derive(Debug)]
pub(crate) struct Members {
    core: Arc<Core>,
    group: u32,
    level: Level,
    uuids: Vec<Uuid>,
    /// `None`: not found at startup.
    disks: Vec<Option<Arc<Disk>>>,
    /// Whether the metadata records the member as failed.
    recorded: Vec<AtomicBool>,
    /// Serialises recording.
    recording: Mutex<()>,
}

impl Members {
    pub(crate) fn new(core: Arc<Core>, group: &GroupRecord) -> Self {
        let disks = group
            .members
            .iter()
            .map(|u| {
                core.disks
                    .iter()
                    .find(|d| d.superblock().disk == *u)
                    .cloned()
            })
            .collect();
        Members {
            core,
            group: group.index,
            level: group.level,
            uuids: group.members.clone(),
            disks,
            recorded: group
                .members
                .iter()
                .map(|u| AtomicBool::new(group.failed.contains(u)))
                .collect(),
            recording: Mutex::new(()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.disks.len()
    }

    /// The member's disk, when present (failed or not).
    pub(crate) fn disk(&self, m: usize) -> Option<&Arc<Disk>> {
        self.disks.get(m)?.as_ref()
    }

    /// The member's disk when it is in service.
    fn available(&self, m: usize) -> Option<&Disk> {
        if self.recorded[m].load(Ordering::Acquire) {
            return None;
        }
        self.disk(m).map(|d| &**d).filter(|d| !d.is_failed())
    }

    /// Whether member `m` is in service.
    pub(crate) fn is_available(&self, m: usize) -> bool {
        self.available(m).is_some()
    }

    /// Which members are out of service.
    pub(crate) fn lost(&self) -> Vec<bool> {
        (0..self.len()).map(|m| !self.is_available(m)).collect()
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
                None => format!("missing disk {}", self.uuids[m]),
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
        if tolerates(self.level, &self.lost()) {
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
    }

    /// Runs one I/O on member `m`: `Ok(false)` when the member is out of
    /// service or fails now (it is then taken out of service).
    fn io(
        &self,
        m: usize,
        op: impl FnOnce(&Disk) -> Result<(), StorageError>,
    ) -> Result<bool, StorageError> {
        let Some(disk) = self.available(m) else {
            return Ok(false);
        };
        match op(disk) {
            Ok(()) => Ok(true),
            Err(e @ StorageError::Io { .. }) => {
                self.lose(m, &e);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads from member `m`'s data area; `Ok(false)` if it is lost.
    pub(crate) fn read(&self, m: usize, buf: &mut [u8], offset: u64) -> Result<bool, StorageError> {
        self.io(m, |d| d.read_data(buf, offset))
    }

    /// Writes to member `m`'s data area; `Ok(false)` if it is lost.
    pub(crate) fn write(&self, m: usize, buf: &[u8], offset: u64) -> Result<bool, StorageError> {
        self.io(m, |d| d.write_data(buf, offset))
    }

    /// Zeroes part of member `m`'s data area; `Ok(false)` if it is lost.
    pub(crate) fn zero(&self, m: usize, offset: u64, len: u64) -> Result<bool, StorageError> {
        self.io(m, |d| d.zero_data(offset, len))
    }

    /// Makes every member's writes durable; a member whose sync fails is
    /// lost (and recorded).
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        for m in 0..self.len() {
            self.io(m, Disk::sync)?;
        }
        self.settle()
    }

    /// Makes sure the metadata records every member out of service before
    /// the group's next write (a member not recorded would be trusted after
    /// a restart though it missed writes), and fails if the group has lost
    /// more than it survives. Write paths call it before writing and again
    /// before reporting success.
    pub(crate) fn settle(&self) -> Result<(), StorageError> {
        loop {
            let lost = self.lost();
            if !tolerates(self.level, &lost) {
                return Err(self.failed_error());
            }
            let unrecorded: Vec<usize> = (0..self.len())
                .filter(|&m| lost[m] && !self.recorded[m].load(Ordering::Acquire))
                .collect();
            if unrecorded.is_empty() {
                return Ok(());
            }
            let _one_at_a_time = self.recording.lock().unwrap_or_else(|e| e.into_inner());
            if unrecorded
                .iter()
                .all(|&m| self.recorded[m].load(Ordering::Acquire))
            {
                continue;
            }
            let uuids: Vec<Uuid> = unrecorded.iter().map(|&m| self.uuids[m]).collect();
            self.core.update(|meta| {
                if let Some(g) = meta.groups.iter_mut().find(|g| g.index == self.group) {
                    for u in &uuids {
                        if !g.failed.contains(u) {
                            g.failed.push(*u);
                        }
                    }
                }
                Ok(())
            })?;
            for &m in &unrecorded {
                self.recorded[m].store(true, Ordering::Release);
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

    /// Reads into `buf` from the group range at `offset`.
    fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        self.map(offset, buf.len() as u64, |m, at, pos, n| {
            self.members().read(m, &mut buf[pos..pos + n], at)
        })
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
        let members = Members::new(Arc::clone(core), group);
        let per_member = group.capacity / data_members(group.level, n) as u64;
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
