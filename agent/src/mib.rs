//! DVSAN-MIB as the unit serves it, live from the storage engine: the unit
//! scalars, the disk table, and the RAID group, volume and access tables,
//! which a manager changes by SET with RowStatus; hot spares are designated
//! through the disk table's dvsanDiskState and lost members replaced
//! through the member table's dvsanRaidMemberDisk (a SET records the
//! change; the rebuild runs in the storage engine's background).
//!
//! Every SET is checked whole against the unit (levels, member disks, free
//! space, names) before anything changes, so a refused request changes
//! nothing; an accepted one is written to every disk's metadata before the
//! Response goes out. Changes that monitoring tools hear about (volume
//! created or deleted, capacity) are passed on as [`UnitEvent`]s.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use dvsan_snmp::dvsan_mib::{
    self as m, AccessMode, MibObject, NbdTls, RaidGroupState, RaidLevel, RaidMemberState,
};
use dvsan_snmp::mib_module::TableSource;
use dvsan_snmp::row_status::{Access, ColumnSpec, RowError, RowStatusTable, Syntax, check_syntax};
use dvsan_snmp::{
    ErrorStatus, Lookup, MibModule, Oid, ScalarGroup, SetBinding, SetPlan, SetRejection, Subtree,
    Table, Value,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::exports::{ClientNet, VolumeExports};
use crate::row_tables::{Cells, KindModel, RowKind, blocking};
use crate::storage::metadata::{AccessRecord, GroupRecord, Level, VolumeRecord};
use crate::storage::{
    DiskHealth, GroupSpec, GroupState, MemberHealth, StorageError, Unit, check_name, group_capacity,
};

/// Chunk size when a striped group is created without one, KiB.
pub const DEFAULT_CHUNK_KIB: u32 = 64;

/// Something monitoring tools are told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitEvent {
    /// A volume was created.
    VolumeCreated {
        /// dvsanVolumeIndex.
        index: u32,
        /// Its name.
        name: String,
        /// Its UUID.
        uuid: Uuid,
        /// Its size, MiB.
        size_mib: u32,
    },
    /// A volume was deleted.
    VolumeDeleted {
        /// dvsanVolumeIndex it had.
        index: u32,
        /// Its name.
        name: String,
        /// Its UUID.
        uuid: Uuid,
    },
    /// Capacity changed (a group or volume came or went, a volume grew).
    CapacityChanged,
}

/// What the unit says about itself beyond its storage.
#[derive(Debug, Clone)]
pub struct UnitInfo {
    /// dvsanUnitName when the metadata holds none.
    pub default_name: String,
    /// dvsanUnitStationAddress.
    pub stations: String,
    /// dvsanUnitNbdEndpoint.
    pub nbd_endpoint: String,
    /// dvsanUnitSnmpEndpoint.
    pub snmp_endpoint: String,
    /// dvsanUnitNbdTls.
    pub nbd_tls: NbdTls,
    /// dvsanUnitCapacityLowThreshold when the metadata holds none.
    pub default_low_threshold: u32,
}

/// dvsanUnitNbdTls of an NBD server run with `policy`.
pub fn nbd_tls(policy: Option<&dvsan_nbd::TlsPolicy>) -> NbdTls {
    match policy.map(|p| p.mode()) {
        None => NbdTls::Off,
        Some(dvsan_nbd::TlsMode::Optional) => NbdTls::Optional,
        Some(dvsan_nbd::TlsMode::Required) => NbdTls::Required,
    }
}

/// Everything the MIB reads and changes.
#[derive(Debug, Clone)]
pub struct UnitContext {
    /// The storage.
    pub unit: Arc<Unit>,
    /// The NBD exports (for the volume counters).
    pub exports: Arc<VolumeExports>,
    /// Endpoints and defaults.
    pub info: Arc<RwLock<UnitInfo>>,
    /// Where changes are reported.
    pub events: mpsc::UnboundedSender<UnitEvent>,
}

impl UnitContext {
    fn info(&self) -> UnitInfo {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The unit's name.
    pub fn name(&self) -> String {
        self.unit
            .metadata()
            .name
            .unwrap_or_else(|| self.info().default_name)
    }

    /// The capacity-low threshold, percent.
    pub fn low_threshold(&self) -> u32 {
        self.unit
            .metadata()
            .low_threshold
            .unwrap_or_else(|| self.info().default_low_threshold)
    }

    /// Total and free capacity of all groups, bytes.
    pub fn capacity(&self) -> (u64, u64) {
        let meta = self.unit.metadata();
        let total: u64 = meta.groups.iter().map(|g| g.capacity).sum();
        let used: u64 = meta.volumes.iter().map(|v| v.size).sum();
        (total, total.saturating_sub(used))
    }

    fn emit(&self, event: UnitEvent) {
        // The announcer may be gone at shutdown; nothing to tell then.
        let _ = self.events.send(event);
    }
}

fn mib(bytes: u64) -> u32 {
    u32::try_from(bytes >> 20).unwrap_or(u32::MAX)
}

/// Bytes in MiB rounded up: a part of a MiB still to copy shows as 1.
fn mib_up(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX)
}

fn entry(table: &MibObject) -> Vec<u32> {
    let mut arcs = table.arcs();
    arcs.push(1);
    arcs
}

fn text(s: impl Into<String>) -> Value {
    Value::text(s.into())
}

fn uuid_value(u: Uuid) -> Value {
    Value::OctetString(bytes::Bytes::copy_from_slice(u.as_bytes()))
}

/// The MIB's level for a storage level, and back.
pub fn raid_level(level: Level) -> RaidLevel {
    match level {
        Level::Linear => RaidLevel::Linear,
        Level::Raid0 => RaidLevel::Raid0,
        Level::Raid1 => RaidLevel::Raid1,
        Level::Raid10 => RaidLevel::Raid10,
        Level::Raid5 => RaidLevel::Raid5,
        Level::Raid6 => RaidLevel::Raid6,
    }
}

/// The storage level for a MIB level.
pub fn storage_level(level: RaidLevel) -> Level {
    match level {
        RaidLevel::Linear => Level::Linear,
        RaidLevel::Raid0 => Level::Raid0,
        RaidLevel::Raid1 => Level::Raid1,
        RaidLevel::Raid10 => Level::Raid10,
        RaidLevel::Raid5 => Level::Raid5,
        RaidLevel::Raid6 => Level::Raid6,
    }
}

/// The MIB's group state.
pub fn group_state(state: GroupState) -> RaidGroupState {
    match state {
        GroupState::Optimal => RaidGroupState::Optimal,
        GroupState::Degraded => RaidGroupState::Degraded,
        GroupState::Rebuilding => RaidGroupState::Rebuilding,
        GroupState::Failed => RaidGroupState::Failed,
        GroupState::Resyncing => RaidGroupState::Resyncing,
    }
}

fn refuse(status: ErrorStatus, column: Option<&MibObject>, reason: impl Into<String>) -> RowError {
    RowError::new(
        status,
        column.map(|c| *c.arcs().last().unwrap_or(&0)),
        reason,
    )
}

fn storage_refusal(e: &StorageError, column: Option<&MibObject>) -> RowError {
    let status = match e {
        StorageError::NoSpace(_) => ErrorStatus::ResourceUnavailable,
        StorageError::Io { .. } | StorageError::Corrupt(_) => ErrorStatus::ResourceUnavailable,
        StorageError::Invalid(_) | StorageError::InUse(_) => ErrorStatus::InconsistentValue,
    };
    refuse(status, column, e.to_string())
}

fn col(o: &MibObject) -> u32 {
    *o.arcs().last().unwrap_or(&0)
}

// ---------------------------------------------------------------- unit

fn unit_scalars(ctx: &UnitContext) -> ScalarGroup {
    let c = ctx.clone();
    let name = move || text(c.name());
    let c = ctx.clone();
    let set_name = move |v: &Value| {
        let name = v.as_text().ok_or(ErrorStatus::WrongType)?.to_owned();
        blocking(|| c.unit.set_name(&name)).map_err(|e| {
            tracing::warn!(error = %e, "unit rename failed");
            ErrorStatus::CommitFailed
        })
    };
    let c = ctx.clone();
    let uuid = move || uuid_value(c.unit.uuid());
    let c = ctx.clone();
    let total = move || Value::Gauge32(mib(c.capacity().0));
    let c = ctx.clone();
    let free = move || Value::Gauge32(mib(c.capacity().1));
    let c = ctx.clone();
    let stations = move || text(c.info().stations);
    let c = ctx.clone();
    let threshold = move || Value::Gauge32(c.low_threshold());
    let c = ctx.clone();
    let set_threshold = move |v: &Value| {
        let pct = v.as_u32().ok_or(ErrorStatus::WrongType)?;
        blocking(|| c.unit.set_low_threshold(pct)).map_err(|e| {
            tracing::warn!(error = %e, "threshold change failed");
            ErrorStatus::CommitFailed
        })?;
        c.emit(UnitEvent::CapacityChanged);
        Ok(())
    };
    let c = ctx.clone();
    let nbd = move || text(c.info().nbd_endpoint);
    let c = ctx.clone();
    let snmp = move || text(c.info().snmp_endpoint);
    let c = ctx.clone();
    let tls = move || Value::Integer(c.info().nbd_tls.as_i32());
    ScalarGroup::new(&m::DVSAN_UNIT.arcs())
        .writable(
            col(&m::DVSAN_UNIT_NAME),
            Syntax::Display { min: 1, max: 255 },
            name,
            set_name,
        )
        .scalar(col(&m::DVSAN_UNIT_UUID), uuid)
        .scalar(col(&m::DVSAN_UNIT_SOFTWARE_VERSION), || {
            text(env!("CARGO_PKG_VERSION"))
        })
        .scalar(col(&m::DVSAN_UNIT_TOTAL_CAPACITY), total)
        .scalar(col(&m::DVSAN_UNIT_FREE_CAPACITY), free)
        .scalar(col(&m::DVSAN_UNIT_STATION_ADDRESS), stations)
        .writable(
            col(&m::DVSAN_UNIT_CAPACITY_LOW_THRESHOLD),
            Syntax::Unsigned { min: 0, max: 100 },
            threshold,
            set_threshold,
        )
        .scalar(col(&m::DVSAN_UNIT_NBD_ENDPOINT), nbd)
        .scalar(col(&m::DVSAN_UNIT_SNMP_ENDPOINT), snmp)
        .scalar(col(&m::DVSAN_UNIT_NBD_TLS), tls)
}

// ---------------------------------------------------------------- disks

struct Disks(UnitContext);

const DISK_COLUMNS: &[u32] = &[2, 3, 4, 5, 6, 7];

impl Disks {
    fn rows(&self) -> BTreeMap<u32, Cells> {
        let unit = &self.0.unit;
        let meta = unit.metadata();
        let present = unit.disks();
        let mut rows = BTreeMap::new();
        // Every disk the unit records, present or not.
        for r in &meta.disks {
            let disk = present.iter().find(|d| d.superblock().disk == r.uuid);
            let group = meta
                .groups
                .iter()
                .find(|g| g.members.contains(&r.uuid))
                .map_or(0, |g| g.index);
            let state = match unit.disk_health(r.index) {
                Some(DiskHealth::Ok) => m::DiskState::Ok,
                Some(DiskHealth::Failed) => m::DiskState::Failed,
                Some(DiskHealth::Rebuilding) => m::DiskState::Rebuilding,
                Some(DiskHealth::Spare) => m::DiskState::Spare,
                Some(DiskHealth::Missing) | None => m::DiskState::Missing,
            };
            let path = disk.map_or_else(
                || "(missing)".to_owned(),
                |d| d.path().display().to_string(),
            );
            rows.insert(
                r.index,
                Cells::from([
                    (2, text(path)),
                    (3, text("")),
                    (4, text(r.uuid.to_string())),
                    (5, Value::Gauge32(mib(r.size))),
                    (6, Value::Integer(state.as_i32())),
                    (7, Value::Gauge32(group)),
                ]),
            );
        }
        rows
    }
}

impl TableSource for Disks {
    fn columns(&self) -> &[u32] {
        DISK_COLUMNS
    }

    fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
        let [i] = index else { return None };
        self.rows().remove(i)?.remove(&column)
    }

    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
        let after = match after {
            None => None,
            Some([]) => None,
            Some([i, ..]) => Some(*i),
        };
        let rows = self.rows();
        rows.into_iter()
            .filter(|(i, _)| after.is_none_or(|a| *i > a))
            .find_map(|(i, mut c)| c.remove(&column).map(|v| (vec![i], v)))
    }
}

/// The disk table, served read-only but for dvsanDiskState, whose SET
/// designates a hot spare (spare) or lifts the designation (ok).
struct DiskTable {
    table: Table<Disks>,
    ctx: UnitContext,
}

impl DiskTable {
    fn new(ctx: &UnitContext) -> Self {
        DiskTable {
            table: Table::new(&entry(&m::DVSAN_DISK_TABLE), Disks(ctx.clone())),
            ctx: ctx.clone(),
        }
    }

    /// Whether disk `disk` may be made a hot spare (`spare`) or an
    /// ordinary disk, as a SET's error-status.
    fn check(&self, disk: u32, spare: bool) -> Result<bool, ErrorStatus> {
        let unit = &self.ctx.unit;
        let health = unit.disk_health(disk).ok_or(ErrorStatus::NoCreation)?;
        if !spare && !matches!(health, DiskHealth::Ok | DiskHealth::Spare) {
            tracing::debug!(disk, ?health, "refused: only a working disk can be ok");
            return Err(ErrorStatus::InconsistentValue);
        }
        unit.check_spare(disk, spare).map_err(|e| {
            tracing::debug!(disk, error = %e, "hot spare designation refused");
            ErrorStatus::InconsistentValue
        })?;
        Ok(health == DiskHealth::Spare)
    }
}

impl Subtree for DiskTable {
    fn base(&self) -> &[u32] {
        self.table.base()
    }

    fn get(&self, oid: &[u32]) -> Lookup {
        self.table.get(oid)
    }

    fn get_next(&self, oid: &[u32]) -> Option<(Oid, Value)> {
        self.table.get_next(oid)
    }

    fn prepare_set(&self, bindings: &[SetBinding<'_>]) -> Result<Box<dyn SetPlan>, SetRejection> {
        let state_col = col(&m::DVSAN_DISK_STATE);
        let mut changes: Vec<SpareChange> = Vec::new();
        for b in bindings {
            let reject = |status| SetRejection {
                status,
                index: b.index,
            };
            let rest = b
                .oid
                .strip_prefix(self.base())
                .ok_or(reject(ErrorStatus::NotWritable))?;
            let disk = match rest {
                [c, disk] if *c == state_col => *disk,
                [c, ..] if *c == state_col => return Err(reject(ErrorStatus::NoCreation)),
                _ => return Err(reject(ErrorStatus::NotWritable)),
            };
            check_syntax(Syntax::Enum(&[1, 2, 3, 4, 5]), b.value).map_err(reject)?;
            let spare = match b.value.as_i32().and_then(m::DiskState::from_i32) {
                Some(m::DiskState::Spare) => true,
                Some(m::DiskState::Ok) => false,
                _ => return Err(reject(ErrorStatus::WrongValue)),
            };
            if changes.iter().any(|c| c.disk == disk) {
                return Err(reject(ErrorStatus::InconsistentValue));
            }
            let was = self.check(disk, spare).map_err(reject)?;
            changes.push(SpareChange { disk, spare, was });
        }
        Ok(Box::new(SparePlan {
            unit: Arc::clone(&self.ctx.unit),
            changes,
            applied: 0,
        }))
    }
}

/// One disk's hot spare designation, to be and as it was.
struct SpareChange {
    disk: u32,
    spare: bool,
    was: bool,
}

struct SparePlan {
    unit: Arc<Unit>,
    changes: Vec<SpareChange>,
    applied: usize,
}

impl SetPlan for SparePlan {
    fn commit(&mut self) -> Result<(), String> {
        for c in &self.changes[self.applied..] {
            if c.spare != c.was {
                blocking(|| self.unit.set_spare(c.disk, c.spare)).map_err(|e| e.to_string())?;
            }
            self.applied += 1;
        }
        Ok(())
    }

    fn undo(&mut self) -> Result<(), String> {
        for c in self.changes[..self.applied].iter().rev() {
            if c.spare != c.was {
                blocking(|| self.unit.set_spare(c.disk, c.was)).map_err(|e| e.to_string())?;
            }
        }
        self.applied = 0;
        Ok(())
    }
}

// ---------------------------------------------------------------- members

const MEMBER_COLUMNS: &[u32] = &[2, 3, 4];

/// The member table's rows: (group, slot from 1) → cells.
struct MemberRows(UnitContext);

impl MemberRows {
    fn rows(&self) -> BTreeMap<Vec<u32>, Cells> {
        let unit = &self.0.unit;
        let meta = unit.metadata();
        let mut rows = BTreeMap::new();
        for g in &meta.groups {
            let health = unit.member_health(g.index).unwrap_or_default();
            let readd = unit.member_readd_bytes(g.index).unwrap_or_default();
            for (slot, uuid) in g.members.iter().enumerate() {
                let disk = meta
                    .disks
                    .iter()
                    .find(|d| d.uuid == *uuid)
                    .map_or(0, |d| d.index);
                let state = match health.get(slot) {
                    Some(MemberHealth::InSync) => RaidMemberState::InSync,
                    Some(MemberHealth::Failed) => RaidMemberState::Failed,
                    Some(MemberHealth::Rebuilding) => RaidMemberState::Rebuilding,
                    Some(MemberHealth::Missing) | None => RaidMemberState::Missing,
                };
                rows.insert(
                    vec![g.index, slot as u32 + 1],
                    Cells::from([
                        (2, Value::Gauge32(disk)),
                        (3, Value::Integer(state.as_i32())),
                        (
                            4,
                            Value::Gauge32(mib_up(readd.get(slot).copied().unwrap_or(0))),
                        ),
                    ]),
                );
            }
        }
        rows
    }
}

impl TableSource for MemberRows {
    fn columns(&self) -> &[u32] {
        MEMBER_COLUMNS
    }

    fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
        self.rows().remove(index)?.remove(&column)
    }

    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
        self.rows()
            .into_iter()
            .filter(|(i, _)| after.is_none_or(|a| i.as_slice() > a))
            .find_map(|(i, mut c)| c.remove(&column).map(|v| (i, v)))
    }
}

/// The member table, with dvsanRaidMemberDisk writable: a SET replaces a
/// lost member (recorded at once; rebuilt in the background).
struct MemberTable {
    table: Table<MemberRows>,
    ctx: UnitContext,
}

impl MemberTable {
    fn new(ctx: &UnitContext) -> Self {
        MemberTable {
            table: Table::new(&entry(&m::DVSAN_RAID_MEMBER_TABLE), MemberRows(ctx.clone())),
            ctx: ctx.clone(),
        }
    }
}

impl Subtree for MemberTable {
    fn base(&self) -> &[u32] {
        self.table.base()
    }

    fn get(&self, oid: &[u32]) -> Lookup {
        self.table.get(oid)
    }

    fn get_next(&self, oid: &[u32]) -> Option<(Oid, Value)> {
        self.table.get_next(oid)
    }

    fn prepare_set(&self, bindings: &[SetBinding<'_>]) -> Result<Box<dyn SetPlan>, SetRejection> {
        let disk_col = col(&m::DVSAN_RAID_MEMBER_DISK);
        let rows = self.table.source().rows();
        let unit = &self.ctx.unit;
        let mut replacements: Vec<Replacement> = Vec::new();
        for b in bindings {
            let reject = |status| SetRejection {
                status,
                index: b.index,
            };
            let rest = b
                .oid
                .strip_prefix(self.base())
                .ok_or(reject(ErrorStatus::NotWritable))?;
            let (group, slot) = match rest {
                [c, group, slot] if *c == disk_col => (*group, *slot),
                [c, ..] if *c == disk_col => return Err(reject(ErrorStatus::NoCreation)),
                _ => return Err(reject(ErrorStatus::NotWritable)),
            };
            check_syntax(Syntax::Unsigned { min: 1, max: 65535 }, b.value).map_err(reject)?;
            let disk = b.value.as_u32().ok_or(reject(ErrorStatus::WrongType))?;
            let Some(cells) = rows.get(&vec![group, slot]) else {
                return Err(reject(ErrorStatus::NoCreation));
            };
            if replacements
                .iter()
                .any(|r| (r.group == group && r.slot == slot) || r.disk == disk)
            {
                return Err(reject(ErrorStatus::InconsistentValue));
            }
            let in_sync =
                cells.get(&3).and_then(Value::as_i32) == Some(RaidMemberState::InSync.as_i32());
            if in_sync && cells.get(&2).and_then(Value::as_u32) == Some(disk) {
                // The disk the slot holds, in sync: nothing to do.
                continue;
            }
            if let Err(e) = unit.check_replace_member(group, slot as usize - 1, disk) {
                tracing::debug!(group, slot, disk, error = %e, "member replacement refused");
                return Err(reject(match e {
                    StorageError::Io { .. } | StorageError::Corrupt(_) => {
                        ErrorStatus::ResourceUnavailable
                    }
                    _ => ErrorStatus::InconsistentValue,
                }));
            }
            replacements.push(Replacement { group, slot, disk });
        }
        Ok(Box::new(ReplacePlan {
            unit: Arc::clone(unit),
            replacements,
            applied: false,
        }))
    }
}

/// Disk `disk` into member slot `slot` (from 1) of group `group`.
struct Replacement {
    group: u32,
    slot: u32,
    disk: u32,
}

struct ReplacePlan {
    unit: Arc<Unit>,
    replacements: Vec<Replacement>,
    /// Committed (all of them).
    applied: bool,
}

impl SetPlan for ReplacePlan {
    fn reversible(&self) -> bool {
        false
    }

    fn commit(&mut self) -> Result<(), String> {
        if self.replacements.is_empty() || self.applied {
            return Ok(());
        }
        let each: Vec<(u32, usize, u32)> = self
            .replacements
            .iter()
            .map(|r| (r.group, r.slot as usize - 1, r.disk))
            .collect();
        // All in one metadata update: a refusal leaves none made.
        blocking(|| self.unit.replace_members(&each)).map_err(|e| e.to_string())?;
        for r in &self.replacements {
            tracing::info!(
                group = r.group,
                slot = r.slot,
                disk = r.disk,
                "member replaced by SET; rebuilding in the background"
            );
        }
        self.applied = true;
        Ok(())
    }

    fn undo(&mut self) -> Result<(), String> {
        if !self.applied {
            return Ok(());
        }
        // The lost members' data is gone from their slots' records: a
        // replacement stands once made. They are committed after every
        // other change of their request (see `reversible`), all at once,
        // so nothing after them can fail.
        Err(format!(
            "{} member replacement(s) cannot be undone",
            self.replacements.len()
        ))
    }
}

// ---------------------------------------------------------------- groups

const fn column(
    column: u32,
    name: &'static str,
    syntax: Syntax,
    access: Access,
    required: bool,
) -> ColumnSpec {
    ColumnSpec {
        column,
        name,
        syntax,
        access,
        required,
    }
}

const RO: Access = Access::ReadOnly;
const RC: Access = Access::ReadCreate;
const RCI: Access = Access::ReadCreateInactive;
const GAUGE: Syntax = Syntax::Unsigned {
    min: 0,
    max: u32::MAX,
};

const GROUP_COLUMNS: &[ColumnSpec] = &[
    column(
        2,
        "dvsanRaidGroupName",
        Syntax::Display { min: 1, max: 32 },
        RC,
        false,
    ),
    column(
        3,
        "dvsanRaidGroupLevel",
        Syntax::Enum(&[1, 2, 3, 4, 5, 6]),
        RCI,
        true,
    ),
    column(
        4,
        "dvsanRaidGroupChunkSize",
        Syntax::Unsigned { min: 4, max: 65536 },
        RCI,
        false,
    ),
    column(5, "dvsanRaidGroupMemberCount", GAUGE, RO, false),
    column(
        6,
        "dvsanRaidGroupMembers",
        Syntax::Display { min: 1, max: 255 },
        RCI,
        true,
    ),
    column(7, "dvsanRaidGroupCapacity", GAUGE, RO, false),
    column(8, "dvsanRaidGroupFree", GAUGE, RO, false),
    column(
        9,
        "dvsanRaidGroupState",
        Syntax::Enum(&[1, 2, 3, 4, 5]),
        RO,
        false,
    ),
    column(10, "dvsanRaidGroupRebuildProgress", GAUGE, RO, false),
    column(11, "dvsanRaidGroupRowStatus", Syntax::RowStatus, RC, false),
];

struct Groups(UnitContext);

fn one_index(index: &[u32]) -> Option<u32> {
    match index {
        [i] if (1..=65535).contains(i) => Some(*i),
        _ => None,
    }
}

impl Groups {
    fn spec(&self, index: &[u32], values: &Cells) -> Result<GroupSpec, RowError> {
        let i = one_index(index)
            .ok_or_else(|| refuse(ErrorStatus::NoCreation, None, "bad group index"))?;
        let level = values
            .get(&3)
            .and_then(Value::as_i32)
            .and_then(RaidLevel::from_i32)
            .ok_or_else(|| {
                refuse(
                    ErrorStatus::WrongValue,
                    Some(&m::DVSAN_RAID_GROUP_LEVEL),
                    "unknown RAID level",
                )
            })?;
        let chunk_kib = values
            .get(&4)
            .and_then(Value::as_u32)
            .unwrap_or(DEFAULT_CHUNK_KIB);
        if !chunk_kib.is_power_of_two() {
            return Err(refuse(
                ErrorStatus::WrongValue,
                Some(&m::DVSAN_RAID_GROUP_CHUNK_SIZE),
                format!("chunk size {chunk_kib} KiB is not a power of two"),
            ));
        }
        let members_text = values.get(&6).and_then(Value::as_text).unwrap_or("");
        let members = members_text
            .split(',')
            .map(|s| s.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                refuse(
                    ErrorStatus::WrongValue,
                    Some(&m::DVSAN_RAID_GROUP_MEMBERS),
                    format!("members {members_text:?} are not disk indexes like 1,2,3"),
                )
            })?;
        let name = values
            .get(&2)
            .and_then(Value::as_text)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("group{i}"));
        Ok(GroupSpec {
            index: i,
            name,
            level: storage_level(level),
            chunk: u64::from(chunk_kib) << 10,
            members,
        })
    }
}

impl RowKind for Groups {
    type Saved = GroupRecord;

    fn columns(&self) -> &'static [ColumnSpec] {
        GROUP_COLUMNS
    }

    fn status_column(&self) -> u32 {
        11
    }

    fn valid_index(&self, index: &[u32]) -> bool {
        one_index(index).is_some()
    }

    fn rows(&self) -> BTreeMap<Vec<u32>, Cells> {
        let unit = &self.0.unit;
        let meta = unit.metadata();
        let disks = unit.disks();
        meta.groups
            .iter()
            .map(|g| {
                // Every member by index, present or not: the list is
                // the member table's slots in order.
                let members: Vec<String> = g
                    .members
                    .iter()
                    .filter_map(|u| {
                        disks
                            .iter()
                            .find(|d| d.superblock().disk == *u)
                            .map(|d| d.superblock().index)
                            .or_else(|| meta.disks.iter().find(|d| d.uuid == *u).map(|d| d.index))
                            .map(|i| i.to_string())
                    })
                    .collect();
                let health = unit.group_health(g.index);
                let state = health.map_or(RaidGroupState::Failed, |h| group_state(h.state));
                let progress = health.map_or(0, |h| u32::from(h.rebuild_progress));
                let chunk = u32::try_from(g.chunk >> 10).unwrap_or(0);
                let chunk = if chunk == 0 { DEFAULT_CHUNK_KIB } else { chunk };
                let cells = Cells::from([
                    (2, text(g.name.clone())),
                    (3, Value::Integer(raid_level(g.level).as_i32())),
                    (4, Value::Gauge32(chunk)),
                    (5, Value::Gauge32(g.members.len() as u32)),
                    (6, text(members.join(","))),
                    (7, Value::Gauge32(mib(g.capacity))),
                    (
                        8,
                        Value::Gauge32(mib(unit.group_free(g.index).unwrap_or(0))),
                    ),
                    (9, Value::Integer(state.as_i32())),
                    (10, Value::Gauge32(progress)),
                ]);
                (vec![g.index], cells)
            })
            .collect()
    }

    fn check_create(&self, index: &[u32], values: &Cells) -> Result<(), RowError> {
        let spec = self.spec(index, values)?;
        let name_col = Some(&m::DVSAN_RAID_GROUP_NAME);
        check_name(&spec.name).map_err(|e| storage_refusal(&e, name_col))?;
        let meta = self.0.unit.metadata();
        if meta.groups.iter().any(|g| g.name == spec.name) {
            return Err(refuse(
                ErrorStatus::InconsistentValue,
                name_col,
                format!("a group is already named {}", spec.name),
            ));
        }
        let members_col = Some(&m::DVSAN_RAID_GROUP_MEMBERS);
        let disks = self.0.unit.disks();
        let mut sizes = Vec::new();
        for (n, i) in spec.members.iter().enumerate() {
            let Some(d) = disks.iter().find(|d| d.superblock().index == *i) else {
                return Err(refuse(
                    ErrorStatus::InconsistentValue,
                    members_col,
                    format!("there is no disk {i}"),
                ));
            };
            if spec.members[..n].contains(i) {
                return Err(refuse(
                    ErrorStatus::InconsistentValue,
                    members_col,
                    format!("disk {i} is named twice"),
                ));
            }
            if let Some(g) = meta
                .groups
                .iter()
                .find(|g| g.members.contains(&d.superblock().disk))
            {
                return Err(refuse(
                    ErrorStatus::InconsistentValue,
                    members_col,
                    format!("disk {i} is already in group {}", g.name),
                ));
            }
            if meta.spares.contains(&d.superblock().disk) {
                return Err(refuse(
                    ErrorStatus::InconsistentValue,
                    members_col,
                    format!("disk {i} is a hot spare"),
                ));
            }
            sizes.push(d.data_size());
        }
        group_capacity(spec.level, spec.chunk, &sizes)
            .map(drop)
            .map_err(|e| storage_refusal(&e, members_col))
    }

    fn check_update(&self, index: &[u32], values: &Cells) -> Result<(), RowError> {
        let Some(i) = one_index(index) else {
            return Err(refuse(ErrorStatus::NoCreation, None, "bad group index"));
        };
        if let Some(name) = values.get(&2).and_then(Value::as_text) {
            let name_col = Some(&m::DVSAN_RAID_GROUP_NAME);
            check_name(name).map_err(|e| storage_refusal(&e, name_col))?;
            if self
                .0
                .unit
                .metadata()
                .groups
                .iter()
                .any(|g| g.name == name && g.index != i)
            {
                return Err(refuse(
                    ErrorStatus::InconsistentValue,
                    name_col,
                    format!("a group is already named {name}"),
                ));
            }
        }
        Ok(())
    }

    fn check_destroy(&self, index: &[u32]) -> Result<(), RowError> {
        let meta = self.0.unit.metadata();
        let i = index.first().copied().unwrap_or(0);
        if let Some(v) = meta.volumes.iter().find(|v| v.group == i) {
            return Err(refuse(
                ErrorStatus::InconsistentValue,
                None,
                format!("the group still holds volume {}", v.name),
            ));
        }
        Ok(())
    }

    fn create(&self, index: &[u32], values: &Cells) -> Result<(), String> {
        let spec = self.spec(index, values).map_err(|e| e.reason)?;
        self.0.unit.create_group(&spec).map_err(|e| e.to_string())?;
        tracing::info!(group = spec.name, level = ?spec.level, members = ?spec.members, "RAID group created");
        self.0.emit(UnitEvent::CapacityChanged);
        Ok(())
    }

    fn update(&self, index: &[u32], values: &Cells) -> Result<(), String> {
        if let (Some(name), Some(i)) = (values.get(&2).and_then(Value::as_text), index.first()) {
            self.0
                .unit
                .rename_group(*i, name)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn destroy(&self, index: &[u32]) -> Result<GroupRecord, String> {
        let i = index.first().copied().unwrap_or(0);
        let record = self
            .0
            .unit
            .metadata()
            .groups
            .into_iter()
            .find(|g| g.index == i)
            .ok_or("the group is gone")?;
        self.0.unit.delete_group(i).map_err(|e| e.to_string())?;
        tracing::info!(group = record.name, "RAID group deleted");
        self.0.emit(UnitEvent::CapacityChanged);
        Ok(record)
    }

    fn restore(&self, saved: GroupRecord) -> Result<(), String> {
        self.0.unit.restore_group(saved).map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------- volumes

const VOLUME_COLUMNS: &[ColumnSpec] = &[
    column(
        2,
        "dvsanVolumeName",
        Syntax::Display { min: 1, max: 64 },
        RC,
        true,
    ),
    column(
        3,
        "dvsanVolumeUuid",
        Syntax::Octets { min: 16, max: 16 },
        RO,
        false,
    ),
    column(
        4,
        "dvsanVolumeRaidGroup",
        Syntax::Unsigned { min: 1, max: 65535 },
        RCI,
        true,
    ),
    column(5, "dvsanVolumeOffset", GAUGE, RO, false),
    column(
        6,
        "dvsanVolumeSize",
        Syntax::Unsigned {
            min: 1,
            max: u32::MAX,
        },
        RC,
        true,
    ),
    column(
        7,
        "dvsanVolumeState",
        Syntax::Enum(&[1, 2, 3, 4]),
        RO,
        false,
    ),
    column(
        8,
        "dvsanVolumeExportName",
        Syntax::Display { min: 1, max: 64 },
        RO,
        false,
    ),
    column(9, "dvsanVolumeAccessMode", Syntax::Enum(&[1, 2]), RC, false),
    column(10, "dvsanVolumeReadOps", Syntax::Counter64, RO, false),
    column(11, "dvsanVolumeWriteOps", Syntax::Counter64, RO, false),
    column(12, "dvsanVolumeReadOctets", Syntax::Counter64, RO, false),
    column(13, "dvsanVolumeWriteOctets", Syntax::Counter64, RO, false),
    column(14, "dvsanVolumeRowStatus", Syntax::RowStatus, RC, false),
];

struct Volumes(UnitContext);

fn volume_state(unit: &Unit, v: &VolumeRecord) -> m::VolumeState {
    match unit.group_health(v.group).map(|h| h.state) {
        Some(GroupState::Optimal | GroupState::Rebuilding | GroupState::Resyncing) => {
            m::VolumeState::Online
        }
        Some(GroupState::Degraded) => m::VolumeState::Degraded,
        Some(GroupState::Failed) | None => m::VolumeState::Failed,
    }
}

impl Volumes {
    fn record(&self, index: u32) -> Option<VolumeRecord> {
        self.0
            .unit
            .metadata()
            .volumes
            .into_iter()
            .find(|v| v.index == index)
    }

    fn check_name_free(&self, index: u32, name: &str) -> Result<(), RowError> {
        let name_col = Some(&m::DVSAN_VOLUME_NAME);
        check_name(name).map_err(|e| storage_refusal(&e, name_col))?;
        if self
            .0
            .unit
            .metadata()
            .volumes
            .iter()
            .any(|v| v.name == name && v.index != index)
        {
            return Err(refuse(
                ErrorStatus::InconsistentValue,
                name_col,
                format!("a volume is already named {name}"),
            ));
        }
        Ok(())
    }
}

fn read_only_mode(values: &Cells, col: u32) -> Option<bool> {
    values
        .get(&col)
        .and_then(Value::as_i32)
        .and_then(AccessMode::from_i32)
        .map(|m| m == AccessMode::ReadOnly)
}

impl RowKind for Volumes {
    type Saved = VolumeRecord;

    fn columns(&self) -> &'static [ColumnSpec] {
        VOLUME_COLUMNS
    }

    fn status_column(&self) -> u32 {
        14
    }

    fn valid_index(&self, index: &[u32]) -> bool {
        one_index(index).is_some()
    }

    fn rows(&self) -> BTreeMap<Vec<u32>, Cells> {
        let unit = &self.0.unit;
        unit.metadata()
            .volumes
            .iter()
            .map(|v| {
                let stats = self.0.exports.stats(v.uuid).snapshot();
                let mode = if v.read_only {
                    AccessMode::ReadOnly
                } else {
                    AccessMode::ReadWrite
                };
                let cells = Cells::from([
                    (2, text(v.name.clone())),
                    (3, uuid_value(v.uuid)),
                    (4, Value::Gauge32(v.group)),
                    (5, Value::Gauge32(mib(v.offset))),
                    (6, Value::Gauge32(mib(v.size))),
                    (7, Value::Integer(volume_state(unit, v).as_i32())),
                    (8, text(v.name.clone())),
                    (9, Value::Integer(mode.as_i32())),
                    (10, Value::Counter64(stats.read_ops)),
                    (11, Value::Counter64(stats.write_ops)),
                    (12, Value::Counter64(stats.read_bytes)),
                    (13, Value::Counter64(stats.write_bytes)),
                ]);
                (vec![v.index], cells)
            })
            .collect()
    }

    fn check_create(&self, index: &[u32], values: &Cells) -> Result<(), RowError> {
        let i = one_index(index)
            .ok_or_else(|| refuse(ErrorStatus::NoCreation, None, "bad volume index"))?;
        let name = values.get(&2).and_then(Value::as_text).unwrap_or("");
        self.check_name_free(i, name)?;
        let group = values.get(&4).and_then(Value::as_u32).unwrap_or(0);
        let group_col = Some(&m::DVSAN_VOLUME_RAID_GROUP);
        let Some(free) = self.0.unit.group_free(group) else {
            return Err(refuse(
                ErrorStatus::InconsistentValue,
                group_col,
                format!("there is no RAID group {group}"),
            ));
        };
        let size = u64::from(values.get(&6).and_then(Value::as_u32).unwrap_or(0)) << 20;
        if !self.0.unit.fits(group, size) {
            return Err(refuse(
                ErrorStatus::ResourceUnavailable,
                Some(&m::DVSAN_VOLUME_SIZE),
                format!(
                    "group {group} has no free run of {} MiB ({} MiB free in all)",
                    size >> 20,
                    free >> 20
                ),
            ));
        }
        Ok(())
    }

    fn check_update(&self, index: &[u32], values: &Cells) -> Result<(), RowError> {
        let i = index.first().copied().unwrap_or(0);
        let Some(v) = self.record(i) else {
            return Err(refuse(ErrorStatus::NoCreation, None, "no such volume"));
        };
        if let Some(name) = values.get(&2).and_then(Value::as_text) {
            self.check_name_free(i, name)?;
        }
        if let Some(size) = values.get(&6).and_then(Value::as_u32) {
            let size = u64::from(size) << 20;
            let size_col = Some(&m::DVSAN_VOLUME_SIZE);
            if size < v.size {
                return Err(refuse(
                    ErrorStatus::InconsistentValue,
                    size_col,
                    "a volume cannot shrink",
                ));
            }
            if size > v.size && !self.0.unit.can_grow(i, size) {
                return Err(refuse(
                    ErrorStatus::ResourceUnavailable,
                    size_col,
                    format!(
                        "no free space right after volume {} to grow it to {} MiB",
                        v.name,
                        size >> 20
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_destroy(&self, _index: &[u32]) -> Result<(), RowError> {
        Ok(())
    }

    fn create(&self, index: &[u32], values: &Cells) -> Result<(), String> {
        let i = one_index(index).ok_or("bad volume index")?;
        let name = values.get(&2).and_then(Value::as_text).unwrap_or("");
        let group = values.get(&4).and_then(Value::as_u32).unwrap_or(0);
        let size = u64::from(values.get(&6).and_then(Value::as_u32).unwrap_or(0)) << 20;
        let unit = &self.0.unit;
        let volume = unit
            .create_volume(i, name, group, size)
            .map_err(|e| e.to_string())?;
        if read_only_mode(values, 9) == Some(true)
            && let Err(e) = unit.set_volume_access(i, true, vec![])
        {
            let _ = unit.delete_volume_index(i);
            return Err(e.to_string());
        }
        let record = self.record(i).ok_or("created volume vanished")?;
        tracing::info!(
            volume = name,
            group,
            size_mib = size >> 20,
            "volume created"
        );
        self.0.emit(UnitEvent::VolumeCreated {
            index: i,
            name: name.to_owned(),
            uuid: record.uuid,
            size_mib: mib(volume.size()),
        });
        self.0.emit(UnitEvent::CapacityChanged);
        Ok(())
    }

    fn update(&self, index: &[u32], values: &Cells) -> Result<(), String> {
        let i = index.first().copied().unwrap_or(0);
        let unit = &self.0.unit;
        let v = self.record(i).ok_or("no such volume")?;
        if let Some(name) = values.get(&2).and_then(Value::as_text)
            && name != v.name
        {
            unit.rename_volume(i, name).map_err(|e| e.to_string())?;
        }
        if let Some(read_only) = read_only_mode(values, 9)
            && read_only != v.read_only
        {
            unit.set_volume_access(i, read_only, v.access.clone())
                .map_err(|e| e.to_string())?;
        }
        if let Some(size) = values.get(&6).and_then(Value::as_u32) {
            let size = u64::from(size) << 20;
            if size > v.size {
                unit.grow_volume(i, size).map_err(|e| e.to_string())?;
                tracing::info!(volume = v.name, size_mib = size >> 20, "volume grown");
                self.0.emit(UnitEvent::CapacityChanged);
            }
        }
        Ok(())
    }

    fn destroy(&self, index: &[u32]) -> Result<VolumeRecord, String> {
        let i = index.first().copied().unwrap_or(0);
        let record = self.record(i).ok_or("the volume is gone")?;
        self.0
            .unit
            .delete_volume_index(i)
            .map_err(|e| e.to_string())?;
        tracing::info!(volume = record.name, "volume deleted");
        self.0.emit(UnitEvent::VolumeDeleted {
            index: i,
            name: record.name.clone(),
            uuid: record.uuid,
        });
        self.0.emit(UnitEvent::CapacityChanged);
        Ok(record)
    }

    fn restore(&self, saved: VolumeRecord) -> Result<(), String> {
        self.0.unit.restore_volume(saved).map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------- access

const ACCESS_COLUMNS: &[ColumnSpec] = &[
    column(
        2,
        "dvsanAccessClient",
        Syntax::Display { min: 1, max: 64 },
        RC,
        true,
    ),
    column(3, "dvsanAccessClientMode", Syntax::Enum(&[1, 2]), RC, false),
    column(4, "dvsanAccessRowStatus", Syntax::RowStatus, RC, false),
];

struct AccessEntries(UnitContext);

impl AccessEntries {
    fn volume(&self, index: &[u32]) -> Option<VolumeRecord> {
        let [v, a] = index else { return None };
        if !(1..=65535).contains(a) {
            return None;
        }
        self.0
            .unit
            .metadata()
            .volumes
            .into_iter()
            .find(|r| r.index == *v)
    }

    fn check_client(values: &Cells) -> Result<(), RowError> {
        if let Some(client) = values.get(&2).and_then(Value::as_text) {
            ClientNet::parse(client)
                .map_err(|e| refuse(ErrorStatus::WrongValue, Some(&m::DVSAN_ACCESS_CLIENT), e))?;
        }
        Ok(())
    }

    fn replace(&self, index: &[u32], f: impl FnOnce(&mut Vec<AccessRecord>)) -> Result<(), String> {
        let v = self.volume(index).ok_or("no such volume")?;
        let mut access = v.access.clone();
        f(&mut access);
        access.sort_by_key(|a| a.index);
        self.0
            .unit
            .set_volume_access(v.index, v.read_only, access)
            .map_err(|e| e.to_string())
    }
}

impl RowKind for AccessEntries {
    type Saved = (Vec<u32>, AccessRecord);

    fn columns(&self) -> &'static [ColumnSpec] {
        ACCESS_COLUMNS
    }

    fn status_column(&self) -> u32 {
        4
    }

    fn valid_index(&self, index: &[u32]) -> bool {
        self.volume(index).is_some()
    }

    fn rows(&self) -> BTreeMap<Vec<u32>, Cells> {
        let mut rows = BTreeMap::new();
        for v in self.0.unit.metadata().volumes {
            for a in &v.access {
                let mode = if a.read_only {
                    AccessMode::ReadOnly
                } else {
                    AccessMode::ReadWrite
                };
                rows.insert(
                    vec![v.index, a.index],
                    Cells::from([
                        (2, text(a.client.clone())),
                        (3, Value::Integer(mode.as_i32())),
                    ]),
                );
            }
        }
        rows
    }

    fn check_create(&self, index: &[u32], values: &Cells) -> Result<(), RowError> {
        if self.volume(index).is_none() {
            return Err(refuse(
                ErrorStatus::NoCreation,
                None,
                "access entries belong to an existing volume",
            ));
        }
        Self::check_client(values)
    }

    fn check_update(&self, _index: &[u32], values: &Cells) -> Result<(), RowError> {
        Self::check_client(values)
    }

    fn check_destroy(&self, _index: &[u32]) -> Result<(), RowError> {
        Ok(())
    }

    fn create(&self, index: &[u32], values: &Cells) -> Result<(), String> {
        let record = AccessRecord {
            index: index[1],
            client: values
                .get(&2)
                .and_then(Value::as_text)
                .unwrap_or("")
                .to_owned(),
            read_only: read_only_mode(values, 3).unwrap_or(false),
        };
        tracing::info!(volume = index[0], client = record.client, "access granted");
        self.replace(index, |list| list.push(record))
    }

    fn update(&self, index: &[u32], values: &Cells) -> Result<(), String> {
        self.replace(index, |list| {
            if let Some(a) = list.iter_mut().find(|a| a.index == index[1]) {
                if let Some(c) = values.get(&2).and_then(Value::as_text) {
                    a.client = c.to_owned();
                }
                if let Some(ro) = read_only_mode(values, 3) {
                    a.read_only = ro;
                }
            }
        })
    }

    fn destroy(&self, index: &[u32]) -> Result<Self::Saved, String> {
        let v = self.volume(index).ok_or("no such volume")?;
        let saved = v
            .access
            .iter()
            .find(|a| a.index == index[1])
            .cloned()
            .ok_or("no such access entry")?;
        self.replace(index, |list| list.retain(|a| a.index != index[1]))?;
        tracing::info!(volume = index[0], client = saved.client, "access revoked");
        Ok((index.to_vec(), saved))
    }

    fn restore(&self, (index, saved): Self::Saved) -> Result<(), String> {
        self.replace(&index, |list| list.push(saved))
    }
}

/// DVSAN-MIB over the unit.
pub fn dvsan_module(ctx: &UnitContext) -> MibModule {
    MibModule::new("DVSAN-MIB", &m::DVSAN_MIB.arcs())
        .with(unit_scalars(ctx))
        .with(DiskTable::new(ctx))
        .with(RowStatusTable::new(
            &entry(&m::DVSAN_RAID_GROUP_TABLE),
            Arc::new(KindModel::new(Groups(ctx.clone()))),
        ))
        .with(RowStatusTable::new(
            &entry(&m::DVSAN_VOLUME_TABLE),
            Arc::new(KindModel::new(Volumes(ctx.clone()))),
        ))
        .with(RowStatusTable::new(
            &entry(&m::DVSAN_ACCESS_TABLE),
            Arc::new(KindModel::new(AccessEntries(ctx.clone()))),
        ))
        .with(MemberTable::new(ctx))
}
