//! RAID 1: every member holds a full copy. Reads go to one member (taking
//! turns) and to another when it fails; writes go to every member in
//! service. The group serves as long as one member does. A region the
//! write-intent bitmap says awaits resync is read from the first member in
//! sync only (the one the resync copies from), and a member being rebuilt
//! serves only what is rebuilt (see `layout.rs`).

use std::sync::Arc;

use crate::storage::StorageError;
use crate::storage::layout::{Members, RoundRobin, check_range};

/// A RAID 1 group's address map.
#[derive(Debug)]
pub struct Raid1 {
    members: Arc<Members>,
    /// Bytes used on every member, and the group's capacity.
    size: u64,
    turn: RoundRobin,
}

impl Raid1 {
    pub(crate) fn new(members: Arc<Members>, size: u64) -> Self {
        Raid1 {
            members,
            size,
            turn: RoundRobin::default(),
        }
    }

    pub(crate) fn members(&self) -> &Members {
        &self.members
    }

    /// Usable bytes.
    pub fn capacity(&self) -> u64 {
        self.size
    }

    /// Reads into `buf` from the group range at `offset`.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        check_range(offset, buf.len() as u64, self.size)?;
        let n = self.members.len();
        let end = offset + buf.len() as u64;
        let first = if self
            .members
            .bitmap
            .as_ref()
            .is_some_and(|b| b.is_pending(offset, end))
        {
            0
        } else {
            self.turn.next(n)
        };
        for i in 0..n {
            if self.members.read((first + i) % n, buf, offset)? {
                return Ok(());
            }
        }
        Err(self.members.failed_error())
    }

    /// Reads as [`Raid1::read`] only if a member has the range in memory;
    /// `false` otherwise, and while a resync has not reached it (the first
    /// member then decides, read the normal way).
    pub fn read_resident(&self, buf: &mut [u8], offset: u64) -> bool {
        let end = offset + buf.len() as u64;
        if end > self.size
            || self
                .members
                .bitmap
                .as_ref()
                .is_some_and(|b| b.is_pending(offset, end))
        {
            return false;
        }
        let n = self.members.len();
        let first = self.turn.next(n);
        (0..n).any(|i| self.members.read_resident((first + i) % n, buf, offset))
    }

    /// Calls `f(member, at, pos, n)` for every member over the group
    /// range, marked in the bitmap and under the copy locks while a
    /// rebuild or resync copies.
    fn each(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(usize, u64, usize, usize) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        check_range(offset, len, self.size)?;
        self.members.settle()?;
        {
            let intent = self.members.start_write(offset, offset + len)?;
            self.members.with_copy_locks(offset, len, |at, pos, n| {
                for m in 0..self.members.len() {
                    f(m, at, pos, n)?;
                }
                Ok(())
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
