//! RAID 1: every member holds a full copy. Reads go to one member (taking
//! turns) and to another when it fails; writes go to every member in
//! service. The group serves as long as one member does.

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
        let first = self.turn.next(n);
        for i in 0..n {
            if self.members.read((first + i) % n, buf, offset)? {
                return Ok(());
            }
        }
        Err(self.members.failed_error())
    }

    fn each(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(usize) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        check_range(offset, len, self.size)?;
        self.members.settle()?;
        for m in 0..self.members.len() {
            f(m)?;
        }
        self.members.settle()
    }

    /// Writes `buf` to the group range at `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        self.each(offset, buf.len() as u64, |m| {
            self.members.write(m, buf, offset)
        })
    }

    /// Writes zeros over the group range.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.each(offset, len, |m| self.members.zero(m, offset, len))
    }
}
