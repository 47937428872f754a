//! What an admin or a client host can ask of the station, in one place for
//! the REST API, the web console and the tests: allocate, grant, revoke and
//! delete volumes; create and delete RAID groups and partitions on a unit;
//! approve a pending unit. Each change is made on the units by SNMP SET
//! ([`crate::unit_control`]), then recorded in the inventory; a failure half
//! way undoes what was made.

use serde::{Deserialize, Serialize};

use crate::inventory::{DiskRecord, GroupRecord, Inventory, UnitRow, VolumeRecord};
use crate::unit_control::UnitControl;

use crate::inventory::InventoryError;

/// Why an operation was refused or failed. Each maps to one HTTP status and
/// one stable `code` in the API's JSON errors.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No such unit, volume, group, client or token.
    #[error("{0}")]
    NotFound(String),
    /// A value is malformed (a name with spaces, a zero size, an unknown
    /// RAID level …).
    #[error("{0}")]
    Invalid(String),
    /// The request is well formed but clashes with what exists (a name
    /// taken, a group still holding partitions, a unit not online).
    #[error("{0}")]
    Conflict(String),
    /// No unit, or not enough units together, has the space.
    #[error("{0}")]
    NoSpace(String),
    /// A unit refused or did not answer; nothing was left half done.
    #[error("{0}")]
    Unit(String),
    /// The inventory failed.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
}

impl OpError {
    /// The stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            OpError::NotFound(_) => "not_found",
            OpError::Invalid(_) => "invalid",
            OpError::Conflict(_) => "conflict",
            OpError::NoSpace(_) => "no_space",
            OpError::Unit(_) => "unit_error",
            OpError::Inventory(_) => "internal",
        }
    }
}

/// Where a new volume may go; every field narrows the choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Only this unit (UUID or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Only units whose name ends with this DNS domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Only RAID groups of this level (`linear`, `raid0`, `raid1`,
    /// `raid10`, `raid5`, `raid6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// A client host's request for a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRequest {
    /// Its name: 1 to 63 of `[A-Za-z0-9._-]`, unique in the SAN.
    pub name: String,
    /// Its size in MiB (at least 1).
    pub size_mib: u64,
    /// Client hosts granted read-write access (addresses or CIDRs).
    #[serde(default)]
    pub clients: Vec<String>,
    /// Where it may go.
    #[serde(default)]
    pub placement: Placement,
}

/// One piece of a volume: a partition on one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtentView {
    /// Position in the volume, from 0.
    pub seq: u32,
    /// The unit holding it.
    pub unit_uuid: String,
    /// That unit's name.
    pub unit_name: String,
    /// dvsanVolumeIndex on the unit.
    pub volume_index: u32,
    /// dvsanRaidGroupIndex on the unit.
    pub raid_group: u32,
    /// Where the extent starts in the volume, MiB.
    pub start_mib: u64,
    /// Its size, MiB.
    pub size_mib: u64,
    /// The unit's NBD export name for it.
    pub export_name: String,
    /// `nbd://HOST:PORT/EXPORT`.
    pub nbd_uri: String,
    /// Whether its unit is online.
    pub available: bool,
}

/// A volume as the station knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeView {
    /// Its name.
    pub name: String,
    /// Its station-wide UUID.
    pub uuid: String,
    /// Size, MiB (the sum of its extents).
    pub size_mib: u64,
    /// `online` when every extent's unit is online, else `unavailable`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Its pieces, in order.
    pub extents: Vec<ExtentView>,
    /// Client hosts granted access (addresses or CIDRs).
    pub clients: Vec<String>,
}

/// A request to build a RAID group on a unit from its free disks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRequest {
    /// Its name on the unit.
    pub name: String,
    /// `linear`, `raid0`, `raid1`, `raid10`, `raid5` or `raid6`.
    pub level: String,
    /// Chunk size in KiB (a power of two, 4 to 4096); 64 when absent.
    #[serde(default)]
    pub chunk_kib: Option<u32>,
    /// dvsanDiskIndex of each member, in order.
    pub disks: Vec<u32>,
}

/// A request to carve a partition from a RAID group by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRequest {
    /// Its name on the unit.
    pub name: String,
    /// dvsanRaidGroupIndex.
    pub raid_group: u32,
    /// Size, MiB.
    pub size_mib: u64,
}

/// A unit with everything it holds, as the inventory last learned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitDetail {
    /// The unit.
    pub unit: UnitRow,
    /// Its disks.
    pub disks: Vec<DiskRecord>,
    /// Its RAID groups.
    pub raid_groups: Vec<GroupRecord>,
    /// Its partitions (dvsanVolumeTable rows), each with the station volume
    /// it belongs to, if any.
    pub partitions: Vec<VolumeRecord>,
}

/// The station's operations over the inventory and the units.
#[derive(Debug, Clone)]
pub struct Operations {
    inventory: Inventory,
    control: UnitControl,
}

impl Operations {
    /// Operations over `inventory`, changing units through `control`.
    pub fn new(inventory: Inventory, control: UnitControl) -> Self {
        Operations { inventory, control }
    }

    /// The inventory (for reading).
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Places a new volume on one unit, or as extents across several, creates
    /// its partitions, grants its clients, and records it. On failure,
    /// whatever was created on the units is removed again.
    pub async fn create_volume(&self, req: VolumeRequest) -> Result<VolumeView, OpError> {
        todo!("{req:?}")
    }

    /// Every station volume, by name.
    pub async fn volumes(&self) -> Result<Vec<VolumeView>, OpError> {
        todo!()
    }

    /// One station volume, by name (or UUID).
    pub async fn volume(&self, name: &str) -> Result<VolumeView, OpError> {
        todo!("{name}")
    }

    /// Grants `client` (address or CIDR) read-write access on every extent.
    pub async fn grant(&self, volume: &str, client: &str) -> Result<VolumeView, OpError> {
        todo!("{volume} {client}")
    }

    /// Revokes `client` on every extent.
    pub async fn revoke(&self, volume: &str, client: &str) -> Result<VolumeView, OpError> {
        todo!("{volume} {client}")
    }

    /// Deletes a volume's partitions on every unit, then the volume.
    pub async fn delete_volume(&self, name: &str) -> Result<(), OpError> {
        todo!("{name}")
    }

    /// A unit (UUID or name) with its disks, groups and partitions.
    pub async fn unit(&self, unit: &str) -> Result<UnitDetail, OpError> {
        todo!("{unit}")
    }

    /// Builds a RAID group on a unit from free disks.
    pub async fn create_group(&self, unit: &str, req: GroupRequest) -> Result<UnitDetail, OpError> {
        todo!("{unit} {req:?}")
    }

    /// Deletes an empty RAID group.
    pub async fn delete_group(&self, unit: &str, group: u32) -> Result<UnitDetail, OpError> {
        todo!("{unit} {group}")
    }

    /// Carves a partition from a RAID group by hand (not a station volume).
    pub async fn create_partition(
        &self,
        unit: &str,
        req: PartitionRequest,
    ) -> Result<UnitDetail, OpError> {
        todo!("{unit} {req:?}")
    }

    /// Grows a partition into the free space right after it.
    pub async fn grow_partition(
        &self,
        unit: &str,
        volume_index: u32,
        size_mib: u64,
    ) -> Result<UnitDetail, OpError> {
        todo!("{unit} {volume_index} {size_mib}")
    }

    /// Deletes a partition that is not part of a station volume.
    pub async fn delete_partition(
        &self,
        unit: &str,
        volume_index: u32,
    ) -> Result<UnitDetail, OpError> {
        todo!("{unit} {volume_index}")
    }

    /// Admits a pending unit: it is polled and becomes online.
    pub async fn approve_unit(&self, unit: &str) -> Result<UnitDetail, OpError> {
        todo!("{unit}")
    }
}
