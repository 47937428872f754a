//! Linear layout: the members' data areas one after the other. No
//! redundancy: with a member lost, the group fails.

use std::sync::Arc;

use crate::storage::layout::{Members, SingleCopy, check_range};
use crate::storage::{ALIGNMENT, StorageError};

/// A linear group's address map.
#[derive(Debug)]
pub struct Linear {
    members: Arc<Members>,
    /// Usable bytes of each member (aligned down; 0 for a missing one, whose
    /// absence fails every I/O anyway).
    sizes: Vec<u64>,
    capacity: u64,
}

impl Linear {
    /// The map over `members`, in order, holding `capacity` bytes.
    pub(crate) fn new(members: Arc<Members>, capacity: u64) -> Self {
        let sizes = (0..members.len())
            .map(|m| {
                members
                    .disk(m)
                    .map_or(0, |d| d.data_size() / ALIGNMENT * ALIGNMENT)
            })
            .collect();
        Linear {
            members,
            sizes,
            capacity,
        }
    }

    /// Usable bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

impl SingleCopy for Linear {
    fn members(&self) -> &Members {
        &self.members
    }

    fn map<F>(&self, offset: u64, len: u64, mut f: F) -> Result<(), StorageError>
    where
        F: FnMut(usize, u64, usize, usize) -> Result<bool, StorageError>,
    {
        check_range(offset, len, self.capacity)?;
        self.members.check()?;
        let mut start = 0u64;
        let mut done = 0u64;
        for (m, usable) in self.sizes.iter().enumerate() {
            let end = start + usable;
            let at = offset + done;
            if done < len && at < end {
                let n = (end - at).min(len - done);
                if !f(m, at - start, done as usize, n as usize)? {
                    return Err(self.members.failed_error());
                }
                done += n;
            }
            start = end;
        }
        if done < len {
            return Err(StorageError::Invalid(format!(
                "{len} bytes at {offset} lie past the members' data areas"
            )));
        }
        Ok(())
    }
}
