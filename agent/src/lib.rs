//! The dvsan SAN unit. So far its storage engine: disks carrying a
//! superblock and the unit's replicated metadata, RAID groups laid over the
//! disks, and volumes carved from groups and served over NBD.
#![forbid(unsafe_code)]

pub mod discovery;
pub mod storage;
