//! RAID 10: RAID 0 over mirrored pairs. Members 2i and 2i+1 form pair i
//! and hold the same bytes; data is striped in chunks round-robin over the
//! pairs (as Linux md's raid10 "near 2" layout with an even member count).
//! The group serves as long as every pair keeps one member. Regions
//! awaiting resync are read from the pair's first member only, as in RAID
//! 1.

use std::sync::Arc;

use crate::storage::StorageError;
use crate::storage::layout::{Members, RoundRobin, check_range, for_chunks};

/// A RAID 10 group's address map.
#[derive(Debug)]
pub struct Raid10 {
    members: Arc<Members>,
    chunk: u64,
    /// Bytes used on every member.
    per_member: u64,
    turn: RoundRobin,
}

impl Raid10 {
    pub(crate) fn new(members: Arc<Members>, chunk: u64, per_member: u64) -> Self {
        Raid10 {
            members,
            chunk,
            per_member,
            turn: RoundRobin::default(),
        }
    }

    pub(crate) fn members(&self) -> &Members {
        &self.members
    }

    fn pairs(&self) -> usize {
        self.members.len() / 2
    }

    /// Usable bytes.
    pub fn capacity(&self) -> u64 {
        self.per_member * self.pairs() as u64
    }

    /// Reads into `buf` from the group range at `offset`. A read over
    /// several chunks asks each member for its pieces first, at once (see
    /// [`Raid10::prefetch`]).
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        let turn = self.turn.next(2);
        if buf.len() as u64 > self.chunk {
            self.prefetch(offset, buf.len() as u64, turn)?;
        }
        self.pieces(buf, offset, turn, |piece, at, order, _| {
            for m in order {
                if self.members.read(m, piece, at)? {
                    return Ok(());
                }
            }
            Err(self.members.failed_error())
        })
    }

    /// Reads as [`Raid10::read`] only if, for every chunk, a member of
    /// its pair has it in memory and no resync is pending over it; `false`
    /// otherwise.
    pub fn read_resident(&self, buf: &mut [u8], offset: u64) -> bool {
        let mut resident = true;
        let walked = self.pieces(
            buf,
            offset,
            self.turn.next(2),
            |piece, at, order, pending| {
                resident = resident
                    && !pending
                    && order
                        .iter()
                        .any(|&m| self.members.read_resident(m, piece, at));
                Ok(())
            },
        );
        walked.is_ok() && resident
    }

    /// Calls `f(piece, member_offset, members, pending)` for each chunk's
    /// share of `buf` at group offset `offset`: the pair's two members in
    /// the order to read them (the `turn`th first, alternated between
    /// calls by the caller; the first member first while a resync is
    /// `pending` over the piece).
    fn pieces<F>(
        &self,
        buf: &mut [u8],
        offset: u64,
        turn: usize,
        mut f: F,
    ) -> Result<(), StorageError>
    where
        F: FnMut(&mut [u8], u64, [usize; 2], bool) -> Result<(), StorageError>,
    {
        check_range(offset, buf.len() as u64, self.capacity())?;
        for_chunks(
            self.chunk,
            self.pairs(),
            offset,
            buf.len() as u64,
            |pair, at, pos, n| {
                let (pending, order) = self.order(pair, at, n as u64, turn);
                f(&mut buf[pos..pos + n], at, order, pending)
            },
        )
    }

    /// Whether a resync is pending over `n` bytes at `at` of `pair`, and
    /// the pair's members in the order to read them there.
    fn order(&self, pair: usize, at: u64, n: u64, turn: usize) -> (bool, [usize; 2]) {
        let pending = self
            .members
            .bitmap
            .as_ref()
            .is_some_and(|b| b.is_pending(at, at + n));
        let first = if pending { 0 } else { turn };
        (pending, [2 * pair + first, 2 * pair + (first + 1) % 2])
    }

    /// Starts every piece of a read coming into the page cache from the
    /// member it will be read from, at once: taken one after another, the
    /// pieces would each wait for their device in turn, and a member's
    /// pieces are not adjacent (the reads alternate between the two
    /// members of a pair), which the kernel's read-ahead does not take for
    /// sequential.
    fn prefetch(&self, offset: u64, len: u64, turn: usize) -> Result<(), StorageError> {
        check_range(offset, len, self.capacity())?;
        for_chunks(self.chunk, self.pairs(), offset, len, |pair, at, _, n| {
            let (_, order) = self.order(pair, at, n as u64, turn);
            self.members.prefetch(order[0], at, n as u64);
            Ok(())
        })
    }

    fn each(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(usize, u64, usize, usize) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        check_range(offset, len, self.capacity())?;
        self.members.settle()?;
        {
            // The member rows the range touches.
            let row = self.chunk * self.pairs() as u64;
            let lo = offset / row * self.chunk;
            let hi = (offset + len).div_ceil(row) * self.chunk;
            let intent = self.members.start_write(lo, hi)?;
            for_chunks(self.chunk, self.pairs(), offset, len, |pair, at, pos, n| {
                self.members.with_copy_locks(at, n as u64, |at, within, n| {
                    f(2 * pair, at, pos + within, n)?;
                    f(2 * pair + 1, at, pos + within, n)?;
                    Ok(())
                })
            })?;
            intent.end()?;
        }
        self.members.settle()
    }

    /// Writes `buf` to the group range at `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        self.each(offset, buf.len() as u64, |m, at, pos, n| {
            self.members.write(m, &buf[pos..pos + n], at)
        })
    }

    /// Writes zeros over the group range.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.each(offset, len, |m, at, _, n| {
            self.members.zero(m, at, n as u64)
        })
    }
}
