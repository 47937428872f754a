//! What the station learns of a unit in one poll: a GETBULK walk of its
//! system group and DVSAN-MIB, read into typed rows.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use dvsan_snmp::dvsan_mib::{
    self as mib, AccessMode, DiskState, MibObject, NbdTls, RaidGroupState, RaidLevel, VolumeState,
};
use dvsan_snmp::manager::Session;
use dvsan_snmp::{Oid, SnmpError, Value, VarBind};

/// sysDescr.0 and sysName.0's group.
const SYSTEM: &[u32] = &[1, 3, 6, 1, 2, 1, 1];

/// Why a unit could not be learned.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The unit did not answer, or refused.
    #[error("polling {peer}: {source}")]
    Snmp {
        /// The unit's SNMP address.
        peer: SocketAddr,
        /// What went wrong.
        #[source]
        source: Box<SnmpError>,
    },
    /// The unit answered, but not with a usable DVSAN-MIB.
    #[error("{peer} is not a dvsan unit: {reason}")]
    NotAUnit {
        /// The unit's SNMP address.
        peer: SocketAddr,
        /// What is missing or wrong.
        reason: String,
    },
}

/// One disk row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRow {
    /// dvsanDiskIndex.
    pub index: u32,
    /// dvsanDiskPath.
    pub path: String,
    /// dvsanDiskSize, MiB.
    pub size_mib: u32,
    /// dvsanDiskState.
    pub state: DiskState,
    /// dvsanDiskRaidGroup (0: none).
    pub raid_group: u32,
}

/// One RAID group row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaidGroupRow {
    /// dvsanRaidGroupIndex.
    pub index: u32,
    /// dvsanRaidGroupName.
    pub name: String,
    /// dvsanRaidGroupLevel.
    pub level: RaidLevel,
    /// dvsanRaidGroupChunkSize, KiB.
    pub chunk_kib: u32,
    /// dvsanRaidGroupMemberCount.
    pub member_count: u32,
    /// dvsanRaidGroupMembers.
    pub members: String,
    /// dvsanRaidGroupCapacity, MiB.
    pub capacity_mib: u32,
    /// dvsanRaidGroupFree, MiB.
    pub free_mib: u32,
    /// dvsanRaidGroupState.
    pub state: RaidGroupState,
    /// dvsanRaidGroupRebuildProgress, per cent.
    pub rebuild_progress: u32,
    /// dvsanRaidMemberReaddSize of each slot in order, comma-separated
    /// (MiB); empty from an agent without the object.
    pub readd_mib: String,
}

/// One volume row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    /// dvsanVolumeIndex.
    pub index: u32,
    /// dvsanVolumeUuid, as text.
    pub uuid: String,
    /// dvsanVolumeName.
    pub name: String,
    /// dvsanVolumeRaidGroup.
    pub raid_group: u32,
    /// dvsanVolumeOffset, MiB.
    pub offset_mib: u32,
    /// dvsanVolumeSize, MiB.
    pub size_mib: u32,
    /// dvsanVolumeState.
    pub state: VolumeState,
    /// dvsanVolumeExportName.
    pub export_name: String,
    /// dvsanVolumeAccessMode.
    pub access_mode: AccessMode,
}

/// Everything one poll learned of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSnapshot {
    /// Where it was polled.
    pub snmp_address: SocketAddr,
    /// dvsanUnitUuid, as text.
    pub uuid: String,
    /// dvsanUnitName.
    pub name: String,
    /// sysDescr.0.
    pub sys_descr: String,
    /// dvsanUnitSoftwareVersion.
    pub software: String,
    /// dvsanUnitNbdEndpoint.
    pub nbd_endpoint: String,
    /// dvsanUnitNbdTls (`off` from an agent without the object).
    pub nbd_tls: NbdTls,
    /// dvsanUnitTotalCapacity, MiB.
    pub total_mib: u32,
    /// dvsanUnitFreeCapacity, MiB.
    pub free_mib: u32,
    /// The disks.
    pub disks: Vec<DiskRow>,
    /// The RAID groups.
    pub raid_groups: Vec<RaidGroupRow>,
    /// The volumes.
    pub volumes: Vec<VolumeRow>,
}

/// A UUID's 16 octets as the usual text.
pub fn uuid_text(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 16 {
        return None;
    }
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// The walked instances, by OID, with typed lookups.
struct Walked {
    peer: SocketAddr,
    values: BTreeMap<Oid, Value>,
}

impl Walked {
    fn new(peer: SocketAddr, bindings: Vec<VarBind>) -> Self {
        Walked {
            peer,
            values: bindings.into_iter().map(|vb| (vb.oid, vb.value)).collect(),
        }
    }

    fn missing(&self, what: &str) -> LearnError {
        LearnError::NotAUnit {
            peer: self.peer,
            reason: format!("{what} is missing or has the wrong type"),
        }
    }

    fn get(&self, object: &MibObject, index: &[u32]) -> Option<&Value> {
        self.values.get(&object.instance(index))
    }

    fn text(&self, object: &MibObject, index: &[u32]) -> Result<String, LearnError> {
        self.get(object, index)
            .and_then(Value::as_text)
            .map(str::to_owned)
            .ok_or_else(|| self.missing(object.name))
    }

    fn number(&self, object: &MibObject, index: &[u32]) -> Result<u32, LearnError> {
        self.get(object, index)
            .and_then(Value::as_u32)
            .ok_or_else(|| self.missing(object.name))
    }

    fn integer(&self, object: &MibObject, index: &[u32]) -> Result<i32, LearnError> {
        self.get(object, index)
            .and_then(Value::as_i32)
            .ok_or_else(|| self.missing(object.name))
    }

    fn uuid(&self, object: &MibObject, index: &[u32]) -> Result<String, LearnError> {
        match self.get(object, index) {
            Some(Value::OctetString(b)) => uuid_text(b).ok_or_else(|| self.missing(object.name)),
            _ => Err(self.missing(object.name)),
        }
    }

    fn enumerated<T>(
        &self,
        object: &MibObject,
        index: &[u32],
        from: fn(i32) -> Option<T>,
    ) -> Result<T, LearnError> {
        from(self.integer(object, index)?).ok_or_else(|| self.missing(object.name))
    }

    /// The row indexes of the table whose first listed column is `column`.
    fn rows(&self, column: &MibObject) -> Vec<Vec<u32>> {
        let prefix = column.oid();
        self.values
            .keys()
            .filter_map(|oid| oid.suffix_after(prefix.arcs()).map(<[u32]>::to_vec))
            .filter(|index| !index.is_empty())
            .collect()
    }
}

impl UnitSnapshot {
    /// Polls the unit behind `session`: two walks (system group, DVSAN-MIB).
    pub async fn poll(session: &Session) -> Result<UnitSnapshot, LearnError> {
        let peer = session.peer();
        let snmp = |source| LearnError::Snmp {
            peer,
            source: Box::new(source),
        };
        let mut bindings = session.walk(&Oid::from_arcs(SYSTEM)).await.map_err(snmp)?;
        bindings.extend(
            session
                .walk(&mib::DVSAN_OBJECTS.oid())
                .await
                .map_err(snmp)?,
        );
        UnitSnapshot::from_bindings(peer, bindings)
    }

    /// Reads a snapshot from walked bindings.
    pub fn from_bindings(
        peer: SocketAddr,
        bindings: Vec<VarBind>,
    ) -> Result<UnitSnapshot, LearnError> {
        let w = Walked::new(peer, bindings);
        let sys_descr = w
            .values
            .get(&Oid::from_arcs(&[1, 3, 6, 1, 2, 1, 1, 1, 0]))
            .and_then(Value::as_text)
            .unwrap_or_default()
            .to_owned();
        let scalar = [0];
        let disks = w
            .rows(&mib::DVSAN_DISK_PATH)
            .into_iter()
            .map(|i| {
                Ok(DiskRow {
                    index: single(&w, &i)?,
                    path: w.text(&mib::DVSAN_DISK_PATH, &i)?,
                    size_mib: w.number(&mib::DVSAN_DISK_SIZE, &i)?,
                    state: w.enumerated(&mib::DVSAN_DISK_STATE, &i, DiskState::from_i32)?,
                    raid_group: w.number(&mib::DVSAN_DISK_RAID_GROUP, &i)?,
                })
            })
            .collect::<Result<Vec<_>, LearnError>>()?;
        let raid_groups = w
            .rows(&mib::DVSAN_RAID_GROUP_NAME)
            .into_iter()
            .map(|i| {
                Ok(RaidGroupRow {
                    index: single(&w, &i)?,
                    name: w.text(&mib::DVSAN_RAID_GROUP_NAME, &i)?,
                    level: w.enumerated(&mib::DVSAN_RAID_GROUP_LEVEL, &i, RaidLevel::from_i32)?,
                    chunk_kib: w.number(&mib::DVSAN_RAID_GROUP_CHUNK_SIZE, &i)?,
                    member_count: w.number(&mib::DVSAN_RAID_GROUP_MEMBER_COUNT, &i)?,
                    members: w.text(&mib::DVSAN_RAID_GROUP_MEMBERS, &i)?,
                    capacity_mib: w.number(&mib::DVSAN_RAID_GROUP_CAPACITY, &i)?,
                    free_mib: w.number(&mib::DVSAN_RAID_GROUP_FREE, &i)?,
                    state: w.enumerated(
                        &mib::DVSAN_RAID_GROUP_STATE,
                        &i,
                        RaidGroupState::from_i32,
                    )?,
                    rebuild_progress: w.number(&mib::DVSAN_RAID_GROUP_REBUILD_PROGRESS, &i)?,
                    readd_mib: readd_sizes(&w, &i)?,
                })
            })
            .collect::<Result<Vec<_>, LearnError>>()?;
        let volumes = w
            .rows(&mib::DVSAN_VOLUME_NAME)
            .into_iter()
            .map(|i| {
                Ok(VolumeRow {
                    index: single(&w, &i)?,
                    uuid: w.uuid(&mib::DVSAN_VOLUME_UUID, &i)?,
                    name: w.text(&mib::DVSAN_VOLUME_NAME, &i)?,
                    raid_group: w.number(&mib::DVSAN_VOLUME_RAID_GROUP, &i)?,
                    offset_mib: w.number(&mib::DVSAN_VOLUME_OFFSET, &i)?,
                    size_mib: w.number(&mib::DVSAN_VOLUME_SIZE, &i)?,
                    state: w.enumerated(&mib::DVSAN_VOLUME_STATE, &i, VolumeState::from_i32)?,
                    export_name: w.text(&mib::DVSAN_VOLUME_EXPORT_NAME, &i)?,
                    access_mode: w.enumerated(
                        &mib::DVSAN_VOLUME_ACCESS_MODE,
                        &i,
                        AccessMode::from_i32,
                    )?,
                })
            })
            .collect::<Result<Vec<_>, LearnError>>()?;
        Ok(UnitSnapshot {
            snmp_address: peer,
            uuid: w.uuid(&mib::DVSAN_UNIT_UUID, &scalar)?,
            name: w.text(&mib::DVSAN_UNIT_NAME, &scalar)?,
            sys_descr,
            software: w.text(&mib::DVSAN_UNIT_SOFTWARE_VERSION, &scalar)?,
            nbd_endpoint: w.text(&mib::DVSAN_UNIT_NBD_ENDPOINT, &scalar)?,
            // An agent from before the object: no TLS.
            nbd_tls: match w.get(&mib::DVSAN_UNIT_NBD_TLS, &scalar) {
                None => NbdTls::Off,
                Some(_) => w.enumerated(&mib::DVSAN_UNIT_NBD_TLS, &scalar, NbdTls::from_i32)?,
            },
            total_mib: w.number(&mib::DVSAN_UNIT_TOTAL_CAPACITY, &scalar)?,
            free_mib: w.number(&mib::DVSAN_UNIT_FREE_CAPACITY, &scalar)?,
            disks,
            raid_groups,
            volumes,
        })
    }
}

/// Group `index`'s dvsanRaidMemberReaddSize per slot, comma-separated;
/// empty when the agent has no such column.
fn readd_sizes(w: &Walked, index: &[u32]) -> Result<String, LearnError> {
    let group = single(w, index)?;
    let mut sizes: Vec<(u32, u32)> = w
        .rows(&mib::DVSAN_RAID_MEMBER_READD_SIZE)
        .into_iter()
        .filter_map(|i| match i.as_slice() {
            [g, slot] if *g == group => Some((
                *slot,
                w.number(&mib::DVSAN_RAID_MEMBER_READD_SIZE, &i).ok()?,
            )),
            _ => None,
        })
        .collect();
    sizes.sort_unstable();
    Ok(sizes
        .iter()
        .map(|(_, mib)| mib.to_string())
        .collect::<Vec<_>>()
        .join(","))
}

fn single(w: &Walked, index: &[u32]) -> Result<u32, LearnError> {
    match index {
        [i] => Ok(*i),
        _ => Err(LearnError::NotAUnit {
            peer: w.peer,
            reason: format!("row index {index:?} is not one number"),
        }),
    }
}

impl MibLabel for RaidLevel {
    fn mib_name(self) -> &'static str {
        match self {
            RaidLevel::Linear => "linear",
            RaidLevel::Raid0 => "raid0",
            RaidLevel::Raid1 => "raid1",
            RaidLevel::Raid10 => "raid10",
            RaidLevel::Raid5 => "raid5",
            RaidLevel::Raid6 => "raid6",
        }
    }
}

/// The MIB's enumeration label of a value, as stored in the inventory.
pub trait MibLabel {
    /// The label, e.g. `raid5`.
    fn mib_name(self) -> &'static str;
}

impl MibLabel for DiskState {
    fn mib_name(self) -> &'static str {
        match self {
            DiskState::Ok => "ok",
            DiskState::Failed => "failed",
            DiskState::Missing => "missing",
            DiskState::Spare => "spare",
            DiskState::Rebuilding => "rebuilding",
        }
    }
}

impl MibLabel for RaidGroupState {
    fn mib_name(self) -> &'static str {
        match self {
            RaidGroupState::Optimal => "optimal",
            RaidGroupState::Degraded => "degraded",
            RaidGroupState::Rebuilding => "rebuilding",
            RaidGroupState::Failed => "failed",
            RaidGroupState::Resyncing => "resyncing",
        }
    }
}

impl MibLabel for VolumeState {
    fn mib_name(self) -> &'static str {
        match self {
            VolumeState::Online => "online",
            VolumeState::Offline => "offline",
            VolumeState::Degraded => "degraded",
            VolumeState::Failed => "failed",
        }
    }
}

impl MibLabel for NbdTls {
    fn mib_name(self) -> &'static str {
        match self {
            NbdTls::Off => "off",
            NbdTls::Optional => "optional",
            NbdTls::Required => "required",
        }
    }
}

impl MibLabel for AccessMode {
    fn mib_name(self) -> &'static str {
        match self {
            AccessMode::ReadWrite => "readWrite",
            AccessMode::ReadOnly => "readOnly",
        }
    }
}
