//! RAID 0: data striped in chunks round-robin over the members (chunk `i`
//! on member `i mod n`, at `(i div n)·chunk`). No redundancy: with a member
//! lost, the group fails.

use std::sync::Arc;

use crate::storage::StorageError;
use crate::storage::layout::{Members, check_range, for_chunks};

/// A RAID 0 group's address map.
#[derive(Debug)]
pub struct Raid0 {
    members: Arc<Members>,
    chunk: u64,
    /// Bytes used on every member.
    per_member: u64,
}

impl Raid0 {
    pub(crate) fn new(members: Arc<Members>, chunk: u64, per_member: u64) -> Self {
        Raid0 {
            members,
            chunk,
            per_member,
        }
    }

    pub(crate) fn members(&self) -> &Members {
        &self.members
    }

    /// Usable bytes.
    pub fn capacity(&self) -> u64 {
        self.per_member * self.members.len() as u64
    }

    fn map(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(usize, u64, usize, usize) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        check_range(offset, len, self.capacity())?;
        self.members.check()?;
        for_chunks(
            self.chunk,
            self.members.len(),
            offset,
            len,
            |m, at, pos, n| {
                if f(m, at, pos, n)? {
                    Ok(())
                } else {
                    Err(self.members.failed_error())
                }
            },
        )
    }

    /// Reads into `buf` from the group range at `offset`.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        self.map(offset, buf.len() as u64, |m, at, pos, n| {
            self.members.read(m, &mut buf[pos..pos + n], at)
        })
    }

    /// Writes `buf` to the group range at `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        self.map(offset, buf.len() as u64, |m, at, pos, n| {
            self.members.write(m, &buf[pos..pos + n], at)
        })
    }

    /// Writes zeros over the group range.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.map(offset, len, |m, at, _, n| {
            self.members.zero(m, at, n as u64)
        })
    }
}
