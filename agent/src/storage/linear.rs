//! Linear layout: the members' data areas one after the other.

use std::sync::Arc;

use crate::storage::disk::Disk;
use crate::storage::{ALIGNMENT, StorageError};

/// A linear group's address map.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Members and the usable bytes of each (aligned down).
    members: Vec<(Arc<Disk>, u64)>,
}

impl Linear {
    /// The map over `members`, in order.
    pub fn new(members: Vec<Arc<Disk>>) -> Self {
        Linear {
            members: members
                .into_iter()
                .map(|d| {
                    let usable = d.data_size() / ALIGNMENT * ALIGNMENT;
                    (d, usable)
                })
                .collect(),
        }
    }

    /// Usable bytes.
    pub fn capacity(&self) -> u64 {
        self.members.iter().map(|(_, n)| n).sum()
    }

    /// Calls `f(disk, disk_offset, position_in_request, len)` for each
    /// piece of the group range `[offset, offset + len)`.
    pub fn map(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(&Disk, u64, u64, u64) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut start = 0u64;
        let mut done = 0u64;
        for (disk, usable) in &self.members {
            let end = start + usable;
            let at = offset + done;
            if done < len && at < end {
                let n = (end - at).min(len - done);
                f(disk, at - start, done, n)?;
                done += n;
            }
            start = end;
        }
        if done < len {
            return Err(StorageError::Invalid(format!(
                "{len} bytes at {offset} lie past the group's {} bytes",
                self.capacity()
            )));
        }
        Ok(())
    }

    /// Reads into `buf` from the group range at `offset`.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<(), StorageError> {
        self.map(offset, buf.len() as u64, |disk, at, pos, n| {
            disk.read_data(&mut buf[pos as usize..(pos + n) as usize], at)
        })
    }

    /// Writes `buf` to the group range at `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        self.map(offset, buf.len() as u64, |disk, at, pos, n| {
            disk.write_data(&buf[pos as usize..(pos + n) as usize], at)
        })
    }

    /// Writes zeros over the group range.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.map(offset, len, |disk, at, _, n| disk.zero_data(at, n))
    }

    /// Makes every member's writes durable.
    pub fn sync(&self) -> Result<(), StorageError> {
        for (disk, _) in &self.members {
            disk.sync()?;
        }
        Ok(())
    }
}
