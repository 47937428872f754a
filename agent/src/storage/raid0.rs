//! RAID 0: data striped in chunks round-robin over the members (chunk `i`
//! on member `i mod n`, at `(i div n)·chunk`). No redundancy: with a member
//! lost, the group fails.

use std::sync::Arc;

use crate::storage::StorageError;
use crate::storage::layout::{Members, SingleCopy, check_range, for_chunks};

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

    /// Usable bytes.
    pub fn capacity(&self) -> u64 {
        self.per_member * self.members.len() as u64
    }
}

impl SingleCopy for Raid0 {
    fn members(&self) -> &Members {
        &self.members
    }

    fn map<F>(&self, offset: u64, len: u64, mut f: F) -> Result<(), StorageError>
    where
        F: FnMut(usize, u64, usize, usize) -> Result<bool, StorageError>,
    {
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
}
