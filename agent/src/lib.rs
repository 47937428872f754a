//! The dvsan SAN unit (`dvsan agent`): the storage engine (disks carrying
//! a superblock and the unit's replicated metadata, RAID groups laid over
//! the disks, volumes carved from groups), the NBD exports of the volumes
//! with their access lists, DVSAN-MIB served live over SNMP and changed by
//! SET, and the lifecycle notifications that announce the unit to its
//! stations and monitoring tools.
#![forbid(unsafe_code)]

pub mod announce;
pub mod daemon;
pub mod discovery;
pub mod exports;
pub mod mib;
pub mod row_tables;
pub mod storage;
