//! What an admin or a client host can ask of the station, in one place for
//! the REST API, the web console and the tests: allocate, grant, revoke and
//! delete volumes; create and delete RAID groups and partitions on a unit;
//! approve a pending unit. Each change is made on the units by SNMP SET
//! ([`crate::unit_control`]), then recorded in the inventory; a failure half
//! way undoes what was made.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::allocator;
use crate::inventory::{
    DiskRecord, ExtentRow, GroupRecord, Inventory, InventoryError, NewEvent, NewExtent,
    StationVolumeRow, UnitRow, UnitState, VolumeRecord,
};
use crate::learner::Learner;
use crate::unit_control::{ControlError, NewGroup, UnitControl};

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
    /// `nbd://HOST:PORT/EXPORT`, or `nbds://…` when the unit serves NBD
    /// over TLS only.
    pub nbd_uri: String,
    /// Whether the unit's NBD server speaks TLS: `off`, `optional` (a
    /// client with the CA may use `nbds://` instead) or `required`.
    #[serde(default)]
    pub nbd_tls: String,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    learner: Learner,
    /// Changes are made one at a time, so two allocations never count the
    /// same free space.
    changes: Arc<Mutex<()>>,
}

impl From<ControlError> for OpError {
    fn from(e: ControlError) -> Self {
        OpError::Unit(e.to_string())
    }
}

/// Longest station volume name: partition names on the units add `.N`.
pub const MAX_VOLUME_NAME: usize = 56;

/// Checks a name for a volume, group or partition.
pub fn check_name(what: &str, name: &str, max: usize) -> Result<(), OpError> {
    if name.is_empty() || name.len() > max {
        return Err(OpError::Invalid(format!(
            "{what} name must be 1 to {max} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(OpError::Invalid(format!(
            "{what} name {name:?} may not contain {c:?}; use letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// Checks a client host: an IP address or a CIDR network; returns it in
/// canonical form.
pub fn check_client(client: &str) -> Result<String, OpError> {
    let bad = || {
        OpError::Invalid(format!(
            "client {client:?} is not an IP address or a CIDR network (like 192.0.2.7 or 10.1.0.0/16)"
        ))
    };
    let (addr, prefix) = match client.trim().split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (client.trim(), None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    match prefix {
        None => Ok(ip.to_string()),
        Some(p) => {
            let bits: u8 = p.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(bad());
            }
            Ok(format!("{ip}/{bits}"))
        }
    }
}

/// The MIB value of a RAID level label.
pub fn level_value(level: &str) -> Option<i32> {
    Some(match level {
        "linear" => 1,
        "raid0" => 2,
        "raid1" => 3,
        "raid10" => 4,
        "raid5" => 5,
        "raid6" => 6,
        _ => return None,
    })
}

/// Whether a group of `level` keeps the redundancy to rebuild a lost
/// member from the others.
pub fn redundant(level: &str) -> bool {
    !matches!(level, "linear" | "raid0")
}

/// A group's member disk indexes in slot order (slot 1 first).
pub fn member_disks(g: &GroupRecord) -> Vec<i64> {
    g.members
        .split(',')
        .filter_map(|m| m.trim().parse().ok())
        .collect()
}

/// Whether a member whose disk is in `state` (`None`: not among the
/// unit's disks) is lost: failed or missing, to be replaced.
pub fn member_lost(state: Option<&str>) -> bool {
    matches!(state, None | Some("failed" | "missing"))
}

/// A lost member of a redundant group, as the station last learnt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostMember {
    /// Its slot in the group (1 first).
    pub slot: usize,
    /// The disk that held it.
    pub disk: i64,
    /// That disk's state (`failed`, `missing`); `missing` also when the
    /// unit no longer lists the disk.
    pub disk_state: String,
    /// MiB that writing its own disk back into the slot would rebuild,
    /// when the disk is there and the unit reports it.
    pub readd_mib: Option<u64>,
}

/// The lost members of group `g` that a replacement can rebuild (none
/// when the level has no redundancy), with what their own disks back
/// would cost. The console's replace form and `dvsan unit show` list
/// these.
pub fn lost_members(g: &GroupRecord, disks: &[DiskRecord]) -> Vec<LostMember> {
    if !redundant(&g.level) {
        return Vec::new();
    }
    let readd: Vec<&str> = g.readd_mib.split(',').collect();
    member_disks(g)
        .into_iter()
        .enumerate()
        .filter_map(|(i, disk)| {
            let state = disks
                .iter()
                .find(|k| k.disk_index == disk)
                .map(|k| k.state.as_str());
            if !member_lost(state) {
                return None;
            }
            let disk_state = state.unwrap_or("missing").to_string();
            let readd_mib = match readd.get(i) {
                Some(mib) if disk_state != "missing" => mib.trim().parse().ok(),
                _ => None,
            };
            Some(LostMember {
                slot: i + 1,
                disk,
                disk_state,
                readd_mib,
            })
        })
        .collect()
}

/// Fewest members a level takes.
fn min_members(level: &str) -> usize {
    match level {
        "linear" => 1,
        "raid0" | "raid1" => 2,
        "raid5" => 3,
        "raid10" | "raid6" => 4,
        _ => 1,
    }
}

/// The URI clients use for `export` on a unit reached at `endpoint`:
/// `nbds://` when the unit answers nothing in the clear.
fn nbd_uri(endpoint: &str, export: &str, tls: &str) -> String {
    let scheme = if tls == "required" { "nbds" } else { "nbd" };
    format!("{scheme}://{endpoint}/{export}")
}

impl Operations {
    /// Operations over `inventory`, changing units through `control`.
    pub fn new(inventory: Inventory, control: UnitControl) -> Self {
        let learner = Learner::new(
            inventory.clone(),
            control.manager().clone(),
            control.credentials().clone(),
        );
        Operations {
            inventory,
            control,
            learner,
            changes: Arc::default(),
        }
    }

    /// The inventory (for reading).
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Finds a unit by UUID or name.
    async fn find_unit(&self, unit: &str) -> Result<UnitRow, OpError> {
        if let Some(u) = self.inventory.unit(unit).await? {
            return Ok(u);
        }
        let mut named: Vec<UnitRow> = self
            .inventory
            .units()
            .await?
            .into_iter()
            .filter(|u| u.name == unit)
            .collect();
        match named.len() {
            0 => Err(OpError::NotFound(format!("no unit {unit:?}"))),
            1 => Ok(named.remove(0)),
            n => Err(OpError::Conflict(format!(
                "{n} units are named {unit:?}; use its UUID"
            ))),
        }
    }

    /// A unit that may be changed now: online.
    async fn online_unit(&self, unit: &str) -> Result<(UnitRow, SocketAddr), OpError> {
        let u = self.find_unit(unit).await?;
        if u.unit_state() != UnitState::Online {
            return Err(OpError::Conflict(format!(
                "unit {} is {}; it can be changed only while online",
                u.name,
                u.unit_state().as_str()
            )));
        }
        let addr = self.unit_address(&u).await?;
        Ok((u, addr))
    }

    /// Where a unit's SNMP agent is now (its endpoint may be a DNS name).
    async fn unit_address(&self, u: &UnitRow) -> Result<SocketAddr, OpError> {
        self.learner
            .resolve(&u.snmp_address)
            .await
            .map_err(|e| OpError::Unit(format!("unit {}: {e}", u.name)))
    }

    /// Where the unit holding an extent is now.
    async fn extent_address(&self, e: &ExtentRow) -> Result<SocketAddr, OpError> {
        if e.snmp_address.is_empty() {
            return Err(OpError::Unit(format!(
                "unit {} of extent {} is not in the inventory",
                e.unit_uuid, e.seq
            )));
        }
        self.learner
            .resolve(&e.snmp_address)
            .await
            .map_err(|err| OpError::Unit(format!("unit {}: {err}", e.unit_name)))
    }

    /// Polls a unit again after a change, so the inventory shows it.
    /// RAID group `group` of unit `u`, as the inventory has it.
    async fn group_of(&self, u: &UnitRow, group: u32) -> Result<GroupRecord, OpError> {
        self.inventory
            .groups_of(&u.uuid)
            .await?
            .into_iter()
            .find(|g| g.group_index == i64::from(group))
            .ok_or_else(|| OpError::NotFound(format!("unit {} has no RAID group {group}", u.name)))
    }

    async fn relearn(&self, endpoint: &str) {
        if let Err(e) = self.learner.learn_endpoint(endpoint).await {
            tracing::warn!(%endpoint, error = %e, "unit not polled after a change; the next poll will");
        }
    }

    async fn event(&self, unit: Option<&str>, kind: &str, message: &str) {
        let e = NewEvent {
            unit_uuid: unit,
            source: "station",
            kind,
            severity: "info",
            message,
        };
        if let Err(err) = self.inventory.record_event(e).await {
            tracing::warn!(error = %err, "event not recorded");
        }
    }

    async fn view(&self, v: StationVolumeRow) -> Result<VolumeView, OpError> {
        let extents = self.inventory.extents_of(&v.uuid).await?;
        let clients = self.inventory.clients_of(&v.uuid).await?;
        let mut start = 0u64;
        let extents: Vec<ExtentView> = extents
            .into_iter()
            .map(|e| {
                let size = e.size_mib.max(0) as u64;
                let view = ExtentView {
                    seq: e.seq as u32,
                    nbd_uri: nbd_uri(&e.nbd_endpoint, &e.export_name, &e.nbd_tls),
                    nbd_tls: e.nbd_tls.clone(),
                    available: e.unit_state == "online",
                    unit_uuid: e.unit_uuid,
                    unit_name: e.unit_name,
                    volume_index: e.volume_index as u32,
                    raid_group: e.raid_group as u32,
                    start_mib: start,
                    size_mib: size,
                    export_name: e.export_name,
                };
                start += size;
                view
            })
            .collect();
        let state = if extents.iter().all(|e| e.available) {
            "online"
        } else {
            "unavailable"
        };
        Ok(VolumeView {
            name: v.name,
            uuid: v.uuid,
            size_mib: v.size_mib.max(0) as u64,
            state: state.to_string(),
            created_at: v.created_at,
            extents,
            clients,
        })
    }

    async fn find_volume(&self, name: &str) -> Result<StationVolumeRow, OpError> {
        self.inventory
            .station_volume(name)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("no volume {name:?}")))
    }

    /// Places a new volume on one unit, or as extents across several, creates
    /// its partitions, grants its clients, and records it. On failure,
    /// whatever was created on the units is removed again.
    pub async fn create_volume(&self, req: VolumeRequest) -> Result<VolumeView, OpError> {
        check_name("volume", &req.name, MAX_VOLUME_NAME)?;
        if req.size_mib == 0 {
            return Err(OpError::Invalid("size must be at least 1 MiB".into()));
        }
        let clients = req
            .clients
            .iter()
            .map(|c| check_client(c))
            .collect::<Result<Vec<_>, _>>()?;
        let p = &req.placement;
        let level = p.level.as_deref().filter(|l| !l.is_empty());
        if let Some(l) = level.filter(|l| level_value(l).is_none()) {
            return Err(OpError::Invalid(format!(
                "RAID level {l:?} is not one of linear, raid0, raid1, raid10, raid5, raid6"
            )));
        }
        let unit = p.unit.as_deref().filter(|u| !u.is_empty());
        let domain = p.domain.as_deref().filter(|d| !d.is_empty());
        let _one_at_a_time = self.changes.lock().await;
        if self.inventory.station_volume(&req.name).await?.is_some() {
            return Err(OpError::Conflict(format!(
                "a volume is already named {:?}",
                req.name
            )));
        }
        if let Some(u) = unit {
            let row = self.find_unit(u).await?;
            if row.unit_state() != UnitState::Online {
                return Err(OpError::NoSpace(format!(
                    "unit {} is {}; volumes go only on online units",
                    row.name,
                    row.unit_state().as_str()
                )));
            }
        }
        let spaces = self.inventory.placement_space(unit, domain, level).await?;
        let plan = allocator::place(&spaces, req.size_mib)
            .map_err(|e| OpError::NoSpace(format!("no room for {}: {e}", req.name)))?;
        let units = self.inventory.units().await?;
        let mut made: Vec<(SocketAddr, String, NewExtent)> = Vec::new();
        let outcome = async {
            for (seq, piece) in plan.iter().enumerate() {
                let u = units
                    .iter()
                    .find(|u| u.uuid == piece.unit_uuid)
                    .ok_or_else(|| OpError::Unit(format!("unit {} vanished", piece.unit_uuid)))?;
                let addr = self.unit_address(u).await?;
                let export = if plan.len() == 1 {
                    req.name.clone()
                } else {
                    format!("{}.{}", req.name, seq)
                };
                let size = piece.size_mib as u32;
                let index = self
                    .control
                    .create_partition(addr, &export, piece.group, size)
                    .await?;
                made.push((
                    addr,
                    u.snmp_address.clone(),
                    NewExtent {
                        unit_uuid: u.uuid.clone(),
                        volume_index: index,
                        raid_group: piece.group,
                        size_mib: piece.size_mib,
                        export_name: export,
                    },
                ));
                for c in &clients {
                    self.control.grant(addr, index, c).await?;
                }
            }
            let uuid = uuid::Uuid::new_v4().to_string();
            let extents: Vec<NewExtent> = made.iter().map(|(_, _, e)| e.clone()).collect();
            Ok::<_, OpError>(
                self.inventory
                    .record_station_volume(&uuid, &req.name, &extents, &clients)
                    .await?,
            )
        }
        .await;
        let mut touched: Vec<String> = made.iter().map(|(_, t, _)| t.clone()).collect();
        touched.dedup();
        let row = match outcome {
            Ok(row) => row,
            Err(e) => {
                for (addr, _, ext) in made.iter().rev() {
                    if let Err(undo) = self
                        .control
                        .destroy_partition(*addr, ext.volume_index)
                        .await
                    {
                        tracing::error!(error = %undo, unit = %ext.unit_uuid, partition = ext.volume_index,
                            "could not remove a partition of a failed allocation");
                        let msg = format!(
                            "partition {} ({}) left behind by a failed allocation: {undo}",
                            ext.volume_index, ext.export_name
                        );
                        self.event(Some(&ext.unit_uuid), "orphan", &msg).await;
                    }
                }
                for endpoint in &touched {
                    self.relearn(endpoint).await;
                }
                return Err(e);
            }
        };
        for endpoint in &touched {
            self.relearn(endpoint).await;
        }
        let msg = format!(
            "volume {} of {} MiB allocated in {} extent(s) for {}",
            row.name,
            row.size_mib,
            plan.len(),
            if clients.is_empty() {
                "no client yet".to_string()
            } else {
                clients.join(", ")
            }
        );
        self.event(
            made.first().map(|(_, _, e)| e.unit_uuid.as_str()),
            "allocated",
            &msg,
        )
        .await;
        tracing::info!(volume = %row.name, size_mib = row.size_mib, extents = plan.len(), "volume allocated");
        self.view(row).await
    }

    /// Every station volume, by name.
    pub async fn volumes(&self) -> Result<Vec<VolumeView>, OpError> {
        let mut out = Vec::new();
        for v in self.inventory.station_volumes().await? {
            out.push(self.view(v).await?);
        }
        Ok(out)
    }

    /// One station volume, by name (or UUID).
    pub async fn volume(&self, name: &str) -> Result<VolumeView, OpError> {
        let v = self.find_volume(name).await?;
        self.view(v).await
    }

    /// Grants `client` (address or CIDR) read-write access on every extent.
    pub async fn grant(&self, volume: &str, client: &str) -> Result<VolumeView, OpError> {
        let client = check_client(client)?;
        let _one_at_a_time = self.changes.lock().await;
        let v = self.find_volume(volume).await?;
        let extents = self.inventory.extents_of(&v.uuid).await?;
        let mut done: Vec<(SocketAddr, u32)> = Vec::new();
        for e in &extents {
            let step = async {
                let addr = self.extent_address(e).await?;
                self.control
                    .grant(addr, e.volume_index as u32, &client)
                    .await?;
                Ok::<_, OpError>(addr)
            }
            .await;
            match step {
                Ok(addr) => done.push((addr, e.volume_index as u32)),
                Err(err) => {
                    for (addr, index) in done {
                        let _ = self.control.revoke(addr, index, &client).await;
                    }
                    return Err(err);
                }
            }
        }
        self.inventory.add_client(&v.uuid, &client).await?;
        let msg = format!("{client} granted on volume {}", v.name);
        self.event(None, "granted", &msg).await;
        self.view(v).await
    }

    /// Revokes `client` on every extent.
    pub async fn revoke(&self, volume: &str, client: &str) -> Result<VolumeView, OpError> {
        let client = check_client(client)?;
        let _one_at_a_time = self.changes.lock().await;
        let v = self.find_volume(volume).await?;
        if !self.inventory.clients_of(&v.uuid).await?.contains(&client) {
            return Err(OpError::NotFound(format!(
                "{client} has no grant on volume {}",
                v.name
            )));
        }
        for e in self.inventory.extents_of(&v.uuid).await? {
            let addr = self.extent_address(&e).await?;
            self.control
                .revoke(addr, e.volume_index as u32, &client)
                .await?;
        }
        self.inventory.remove_client(&v.uuid, &client).await?;
        let msg = format!("{client} revoked on volume {}", v.name);
        self.event(None, "revoked", &msg).await;
        self.view(v).await
    }

    /// Deletes a volume's partitions on every unit, then the volume. Every
    /// extent's unit must be online: a partition left on a unit that is
    /// away would be an orphan.
    pub async fn delete_volume(&self, name: &str) -> Result<(), OpError> {
        let _one_at_a_time = self.changes.lock().await;
        let v = self.find_volume(name).await?;
        let extents = self.inventory.extents_of(&v.uuid).await?;
        if let Some(away) = extents.iter().find(|e| e.unit_state != "online") {
            return Err(OpError::Conflict(format!(
                "unit {} holding extent {} of {} is {}; delete the volume when it is back",
                if away.unit_name.is_empty() {
                    &away.unit_uuid
                } else {
                    &away.unit_name
                },
                away.seq,
                v.name,
                if away.unit_state.is_empty() {
                    "gone"
                } else {
                    &away.unit_state
                }
            )));
        }
        let mut touched = Vec::new();
        for e in &extents {
            let addr = self.extent_address(e).await?;
            self.control
                .destroy_partition(addr, e.volume_index as u32)
                .await?;
            touched.push(e.snmp_address.clone());
        }
        self.inventory.forget_station_volume(&v.uuid).await?;
        touched.dedup();
        for endpoint in &touched {
            self.relearn(endpoint).await;
        }
        let msg = format!("volume {} deleted", v.name);
        self.event(None, "deleted", &msg).await;
        tracing::info!(volume = %v.name, "volume deleted");
        Ok(())
    }

    /// A unit (UUID or name) with its disks, groups and partitions.
    pub async fn unit(&self, unit: &str) -> Result<UnitDetail, OpError> {
        let u = self.find_unit(unit).await?;
        Ok(UnitDetail {
            disks: self.inventory.disks_of(&u.uuid).await?,
            raid_groups: self.inventory.groups_of(&u.uuid).await?,
            partitions: self.inventory.volumes_of(&u.uuid).await?,
            unit: u,
        })
    }

    /// Builds a RAID group on a unit from free disks.
    pub async fn create_group(&self, unit: &str, req: GroupRequest) -> Result<UnitDetail, OpError> {
        check_name("RAID group", &req.name, 32)?;
        let level = level_value(&req.level).ok_or_else(|| {
            OpError::Invalid(format!(
                "RAID level {:?} is not one of linear, raid0, raid1, raid10, raid5, raid6",
                req.level
            ))
        })?;
        let chunk = req.chunk_kib.unwrap_or(64);
        if !(4..=4096).contains(&chunk) || !chunk.is_power_of_two() {
            return Err(OpError::Invalid(format!(
                "chunk size {chunk} KiB must be a power of two from 4 to 4096"
            )));
        }
        let need = min_members(&req.level);
        if req.disks.len() < need {
            return Err(OpError::Invalid(format!(
                "{} needs at least {need} disks; {} chosen",
                req.level,
                req.disks.len()
            )));
        }
        if req.level == "raid10" && !req.disks.len().is_multiple_of(2) {
            return Err(OpError::Invalid(
                "raid10 needs an even number of disks".into(),
            ));
        }
        let _one_at_a_time = self.changes.lock().await;
        let (u, addr) = self.online_unit(unit).await?;
        let disks = self.inventory.disks_of(&u.uuid).await?;
        let groups = self.inventory.groups_of(&u.uuid).await?;
        if groups.iter().any(|g| g.name == req.name) {
            return Err(OpError::Conflict(format!(
                "unit {} already has a RAID group named {}",
                u.name, req.name
            )));
        }
        for (n, i) in req.disks.iter().enumerate() {
            if req.disks[..n].contains(i) {
                return Err(OpError::Invalid(format!("disk {i} is chosen twice")));
            }
            match disks.iter().find(|d| d.disk_index == i64::from(*i)) {
                None => {
                    return Err(OpError::NotFound(format!(
                        "unit {} has no disk {i}",
                        u.name
                    )));
                }
                Some(d) if d.raid_group != 0 => {
                    return Err(OpError::Conflict(format!(
                        "disk {i} is already in RAID group {}",
                        d.raid_group
                    )));
                }
                Some(d) if d.state == "failed" || d.state == "missing" => {
                    return Err(OpError::Conflict(format!("disk {i} is {}", d.state)));
                }
                Some(_) => {}
            }
        }
        self.control
            .create_group(
                addr,
                &NewGroup {
                    name: &req.name,
                    level,
                    chunk_kib: chunk,
                    members: &req.disks,
                },
            )
            .await?;
        self.relearn(&u.snmp_address).await;
        let msg = format!(
            "RAID group {} ({}) created from disks {:?}",
            req.name, req.level, req.disks
        );
        self.event(Some(&u.uuid), "group-created", &msg).await;
        self.unit(&u.uuid).await
    }

    /// Deletes an empty RAID group.
    pub async fn delete_group(&self, unit: &str, group: u32) -> Result<UnitDetail, OpError> {
        let _one_at_a_time = self.changes.lock().await;
        let (u, addr) = self.online_unit(unit).await?;
        let g = self.group_of(&u, group).await?;
        let parts = self.inventory.volumes_of(&u.uuid).await?;
        let held = parts
            .iter()
            .filter(|p| p.raid_group == i64::from(group))
            .count();
        if held > 0 {
            return Err(OpError::Conflict(format!(
                "RAID group {} still holds {held} partition(s); delete them first",
                g.name
            )));
        }
        self.control.destroy_group(addr, group).await?;
        self.relearn(&u.snmp_address).await;
        let msg = format!("RAID group {} deleted", g.name);
        self.event(Some(&u.uuid), "group-deleted", &msg).await;
        self.unit(&u.uuid).await
    }

    /// Puts disk `disk` in member slot `slot` (from 1) of RAID group
    /// `group` in place of a lost (failed or missing) member: a free disk,
    /// a hot spare, or the member's own disk once it works again (then
    /// rebuilt only where it missed writes, if it went out in sync). The
    /// unit rebuilds the member in the background.
    pub async fn replace_member(
        &self,
        unit: &str,
        group: u32,
        slot: u32,
        disk: u32,
    ) -> Result<UnitDetail, OpError> {
        let _one_at_a_time = self.changes.lock().await;
        let (u, addr) = self.online_unit(unit).await?;
        let g = self.group_of(&u, group).await?;
        if !redundant(&g.level) {
            return Err(OpError::Conflict(format!(
                "RAID group {} ({}) has no redundancy to rebuild a member from",
                g.name, g.level
            )));
        }
        let members = member_disks(&g);
        let Some(&current) = usize::try_from(slot)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|s| members.get(s))
        else {
            return Err(OpError::Invalid(format!(
                "RAID group {} has {} members; there is no member {slot}",
                g.name,
                members.len()
            )));
        };
        let disks = self.inventory.disks_of(&u.uuid).await?;
        let state = disks
            .iter()
            .find(|d| d.disk_index == current)
            .map(|d| d.state.as_str());
        if !member_lost(state) {
            return Err(OpError::Conflict(format!(
                "member {slot} of RAID group {} (disk {current}) is in service; only a failed or missing member can be replaced",
                g.name
            )));
        }
        match disks.iter().find(|d| d.disk_index == i64::from(disk)) {
            None => {
                return Err(OpError::NotFound(format!(
                    "unit {} has no disk {disk}",
                    u.name
                )));
            }
            Some(d) if d.state == "missing" => {
                return Err(OpError::Conflict(format!("disk {disk} is missing")));
            }
            Some(d) if d.raid_group != 0 && d.disk_index != current => {
                return Err(OpError::Conflict(format!(
                    "disk {disk} is in RAID group {}",
                    d.raid_group
                )));
            }
            Some(_) => {}
        }
        self.control.replace_member(addr, group, slot, disk).await?;
        self.relearn(&u.snmp_address).await;
        let msg = if i64::from(disk) == current {
            format!(
                "member {slot} of RAID group {}: disk {disk} back in its slot; rebuilding (only what it missed, if it went out in sync)",
                g.name
            )
        } else {
            format!(
                "member {slot} of RAID group {}: disk {disk} in place of disk {current}; rebuilding",
                g.name
            )
        };
        self.event(Some(&u.uuid), "member-replaced", &msg).await;
        self.unit(&u.uuid).await
    }

    /// Carves a partition from a RAID group by hand (not a station volume).
    pub async fn create_partition(
        &self,
        unit: &str,
        req: PartitionRequest,
    ) -> Result<UnitDetail, OpError> {
        check_name("partition", &req.name, 64)?;
        if req.size_mib == 0 || req.size_mib > allocator::MAX_EXTENT_MIB {
            return Err(OpError::Invalid(format!(
                "size must be 1 to {} MiB",
                allocator::MAX_EXTENT_MIB
            )));
        }
        let _one_at_a_time = self.changes.lock().await;
        let (u, addr) = self.online_unit(unit).await?;
        let g = self.group_of(&u, req.raid_group).await?;
        if (g.free_mib.max(0) as u64) < req.size_mib {
            return Err(OpError::NoSpace(format!(
                "RAID group {} has {} MiB free; {} MiB asked",
                g.name, g.free_mib, req.size_mib
            )));
        }
        let parts = self.inventory.volumes_of(&u.uuid).await?;
        if parts.iter().any(|p| p.name == req.name) {
            return Err(OpError::Conflict(format!(
                "unit {} already has a partition named {}",
                u.name, req.name
            )));
        }
        self.control
            .create_partition(addr, &req.name, req.raid_group, req.size_mib as u32)
            .await?;
        self.relearn(&u.snmp_address).await;
        let msg = format!(
            "partition {} of {} MiB created in group {}",
            req.name, req.size_mib, g.name
        );
        self.event(Some(&u.uuid), "partition-created", &msg).await;
        self.unit(&u.uuid).await
    }

    async fn partition(&self, u: &UnitRow, index: u32) -> Result<VolumeRecord, OpError> {
        self.inventory
            .volumes_of(&u.uuid)
            .await?
            .into_iter()
            .find(|p| p.volume_index == i64::from(index))
            .ok_or_else(|| OpError::NotFound(format!("unit {} has no partition {index}", u.name)))
    }

    /// Grows a partition into the free space right after it. A partition
    /// that is an extent of a station volume is not grown here (that would
    /// shift the extents after it).
    pub async fn grow_partition(
        &self,
        unit: &str,
        volume_index: u32,
        size_mib: u64,
    ) -> Result<UnitDetail, OpError> {
        let _one_at_a_time = self.changes.lock().await;
        let (u, addr) = self.online_unit(unit).await?;
        let p = self.partition(&u, volume_index).await?;
        if let Some(sv) = &p.station_volume {
            return Err(OpError::Conflict(format!(
                "partition {} is an extent of volume {sv}; it cannot be grown by itself",
                p.name
            )));
        }
        if size_mib <= p.size_mib.max(0) as u64 {
            return Err(OpError::Invalid(format!(
                "partition {} is already {} MiB; a new size must be larger",
                p.name, p.size_mib
            )));
        }
        if size_mib > allocator::MAX_EXTENT_MIB {
            return Err(OpError::Invalid(format!(
                "size must be at most {} MiB",
                allocator::MAX_EXTENT_MIB
            )));
        }
        self.control
            .resize_partition(addr, volume_index, size_mib as u32)
            .await
            .map_err(|e| {
                OpError::NoSpace(format!(
                    "unit {} did not grow partition {} to {size_mib} MiB (no free run right after it?): {e}",
                    u.name, p.name
                ))
            })?;
        self.relearn(&u.snmp_address).await;
        let msg = format!(
            "partition {} grown from {} to {size_mib} MiB",
            p.name, p.size_mib
        );
        self.event(Some(&u.uuid), "partition-grown", &msg).await;
        self.unit(&u.uuid).await
    }

    /// Deletes a partition that is not part of a station volume.
    pub async fn delete_partition(
        &self,
        unit: &str,
        volume_index: u32,
    ) -> Result<UnitDetail, OpError> {
        let _one_at_a_time = self.changes.lock().await;
        let (u, addr) = self.online_unit(unit).await?;
        let p = self.partition(&u, volume_index).await?;
        if let Some(sv) = &p.station_volume {
            return Err(OpError::Conflict(format!(
                "partition {} is an extent of volume {sv}; delete the volume instead",
                p.name
            )));
        }
        self.control.destroy_partition(addr, volume_index).await?;
        self.relearn(&u.snmp_address).await;
        let msg = format!("partition {} deleted", p.name);
        self.event(Some(&u.uuid), "partition-deleted", &msg).await;
        self.unit(&u.uuid).await
    }

    /// Admits a pending unit: it is polled and becomes online.
    pub async fn approve_unit(&self, unit: &str) -> Result<UnitDetail, OpError> {
        let u = self.find_unit(unit).await?;
        if u.unit_state() != UnitState::Pending {
            return Err(OpError::Conflict(format!(
                "unit {} is {}, not pending",
                u.name,
                u.unit_state().as_str()
            )));
        }
        self.inventory
            .set_unit_state(&u.uuid, UnitState::Online)
            .await?;
        self.relearn(&u.snmp_address).await;
        let msg = format!("unit {} approved", u.name);
        self.event(Some(&u.uuid), "approved", &msg).await;
        self.unit(&u.uuid).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(index: i64, state: &str) -> DiskRecord {
        DiskRecord {
            disk_index: index,
            path: format!("/srv/disk{index}.img"),
            size_mib: 1024,
            state: state.into(),
            raid_group: 1,
        }
    }

    fn group(level: &str, members: &str, readd_mib: &str) -> GroupRecord {
        GroupRecord {
            group_index: 1,
            name: "g1".into(),
            level: level.into(),
            chunk_kib: 64,
            member_count: members.split(',').count() as i64,
            members: members.into(),
            capacity_mib: 2048,
            free_mib: 2048,
            state: "degraded".into(),
            rebuild_progress: 0,
            readd_mib: readd_mib.into(),
        }
    }

    #[test]
    fn lost_members_are_the_failed_and_missing_ones_of_a_redundant_group() {
        let disks = [disk(1, "ok"), disk(2, "failed"), disk(4, "missing")];
        let g = group("raid6", "1,2,3,4", "0,63,0,1020");
        assert_eq!(
            lost_members(&g, &disks),
            vec![
                // Its disk is there: putting it back rebuilds 63 MiB.
                LostMember {
                    slot: 2,
                    disk: 2,
                    disk_state: "failed".into(),
                    readd_mib: Some(63),
                },
                // Disk 3 is not among the unit's disks any more.
                LostMember {
                    slot: 3,
                    disk: 3,
                    disk_state: "missing".into(),
                    readd_mib: None,
                },
                LostMember {
                    slot: 4,
                    disk: 4,
                    disk_state: "missing".into(),
                    readd_mib: None,
                },
            ]
        );
        // From an agent that does not report re-add sizes.
        let g = group("raid1", "1,2", "");
        assert_eq!(lost_members(&g, &disks)[0].readd_mib, None);
        // No redundancy: nothing a replacement could rebuild.
        assert!(lost_members(&group("raid0", "1,2", "0,0"), &disks).is_empty());
    }
}
