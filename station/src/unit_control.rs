//! Changing a unit by SNMP SET: RAID groups, partitions and access entries
//! through DVSAN-MIB's RowStatus tables, over SNMPv3 authPriv.

use dvsan_snmp::Credentials;
use dvsan_snmp::manager::Manager;

/// Sends SETs to units.
#[derive(Debug, Clone)]
pub struct UnitControl {
    manager: Manager,
    credentials: Credentials,
}

impl UnitControl {
    /// Control through `manager` with `credentials`.
    pub fn new(manager: Manager, credentials: Credentials) -> Self {
        UnitControl {
            manager,
            credentials,
        }
    }
}
