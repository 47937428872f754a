//! The storage engine: disks → RAID groups → volumes.
//!
//! Every operation here is blocking (positioned file I/O and fdatasync);
//! callers run it off the async reactor (the NBD server's worker threads).
//! Creating and deleting volumes and groups only changes metadata, which is
//! replicated on every disk, so a restart reassembles everything from the
//! disks alone ([`Unit::open`]), even with disks missing: a group that has
//! lost no more members than its level survives runs degraded, serving the
//! lost members' data from redundancy (`layout.rs` and one file per level).

pub mod disk;
pub mod gf256;
pub mod layout;
pub mod linear;
pub mod metadata;
mod parity;
pub mod raid0;
pub mod raid1;
pub mod raid10;
pub mod raid5;
pub mod raid6;
pub mod volume;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::storage::disk::Disk;
use crate::storage::layout::Layout;
use crate::storage::metadata::{
    AccessRecord, DiskRecord, GroupRecord, Level, Metadata, VolumeRecord,
};
pub use crate::storage::volume::{REGION, Volume};

/// Volumes start and end on multiples of this in their group.
pub const ALIGNMENT: u64 = 1 << 20;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The OS refused.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which disk.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// On-disk data is not what dvsan wrote.
    #[error("{0}")]
    Corrupt(String),
    /// A request that cannot be carried out (bad size, name taken …).
    #[error("{0}")]
    Invalid(String),
    /// Not enough free space.
    #[error("{0}")]
    NoSpace(String),
    /// The object is in use (a disk in a group, a group holding volumes).
    #[error("{0}")]
    InUse(String),
}

impl From<StorageError> for std::io::Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Io { source, .. } => source,
            StorageError::NoSpace(m) => std::io::Error::new(std::io::ErrorKind::StorageFull, m),
            StorageError::Invalid(m) => std::io::Error::new(std::io::ErrorKind::InvalidInput, m),
            StorageError::InUse(m) => std::io::Error::new(std::io::ErrorKind::ResourceBusy, m),
            StorageError::Corrupt(m) => std::io::Error::new(std::io::ErrorKind::InvalidData, m),
        }
    }
}

/// A disk to format into a new unit.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    /// File or device path.
    pub path: PathBuf,
    /// Size in bytes (a file is created sparse).
    pub size: u64,
}

/// A RAID group to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// dvsanRaidGroupIndex.
    pub index: u32,
    /// Unique name on the unit.
    pub name: String,
    /// Layout.
    pub level: Level,
    /// Stripe chunk, bytes (a power of two from 4 KiB to 16 MiB; ignored by
    /// linear and RAID 1).
    pub chunk: u64,
    /// Member disks by index, in member order.
    pub members: Vec<u32>,
}

/// A group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// Every member present and in sync.
    Optimal,
    /// A member is missing or failed; data is served from redundancy.
    Degraded,
    /// A member is being rebuilt.
    Rebuilding,
    /// More members lost than the level survives.
    Failed,
    /// Parity or mirrors are being resynchronised after an unclean stop.
    Resyncing,
}

/// A group's state and rebuild progress (percent; 100 when none runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupHealth {
    /// State.
    pub state: GroupState,
    /// Percent done of the running rebuild or resync.
    pub rebuild_progress: u8,
}

/// A disk's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskHealth {
    /// Serving.
    Ok,
    /// I/O failed; out of its group.
    Failed,
    /// Recorded in a group but not present.
    Missing,
    /// Being rebuilt.
    Rebuilding,
}

/// Names of groups and volumes: 1–64 characters of letters, digits, `-`,
/// `_` and `.` (a volume's name is its NBD export name and appears in URIs).
pub fn check_name(name: &str) -> Result<(), StorageError> {
    if name.is_empty() || name.len() > 64 {
        return Err(StorageError::Invalid(format!(
            "name {name:?} must be 1 to 64 characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(StorageError::Invalid(format!(
            "name {name:?} may not contain {c:?}; use letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// Usable bytes of a group of `level` with stripe `chunk` (0: the default
/// 64 KiB) over members with these data sizes; a multiple of [`ALIGNMENT`].
/// Checks the member count and the chunk (see [`layout::capacity`]).
pub fn group_capacity(level: Level, chunk: u64, sizes: &[u64]) -> Result<u64, StorageError> {
    layout::capacity(level, chunk, sizes)
}

/// Where a new volume of `size` bytes goes in `group`: the first free run.
fn first_fit(meta: &Metadata, group: &GroupRecord, size: u64) -> Option<u64> {
    let mut taken: Vec<(u64, u64)> = meta
        .volumes
        .iter()
        .filter(|v| v.group == group.index)
        .map(|v| (v.offset, v.offset + v.size))
        .collect();
    taken.sort_unstable();
    let mut at = 0;
    for (start, end) in taken {
        if start.saturating_sub(at) >= size {
            break;
        }
        at = at.max(end);
    }
    (at + size <= group.capacity).then_some(at)
}

/// Whether volume `index` can grow in place to `size` bytes: the space
/// after it, up to the next volume or the group's end, is free.
fn room_to_grow(meta: &Metadata, index: u32, size: u64) -> Result<bool, StorageError> {
    let v = meta
        .volumes
        .iter()
        .find(|v| v.index == index)
        .ok_or_else(|| StorageError::Invalid(format!("no volume {index}")))?;
    let g = meta
        .groups
        .iter()
        .find(|g| g.index == v.group)
        .ok_or_else(|| StorageError::Corrupt(format!("volume {index}: no group {}", v.group)))?;
    let limit = meta
        .volumes
        .iter()
        .filter(|o| o.group == v.group && o.offset > v.offset)
        .map(|o| o.offset)
        .min()
        .unwrap_or(g.capacity);
    Ok(v.offset + size <= limit)
}

/// What volumes share with the unit: the disks, the metadata and the lock
/// that serialises metadata updates.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) disks: Vec<Arc<Disk>>,
    pub(crate) meta: Mutex<MetaState>,
}

#[derive(Debug)]
pub(crate) struct MetaState {
    pub(crate) meta: Metadata,
    /// The slot the current generation is in.
    pub(crate) slot: usize,
}

impl Core {
    /// Writes a new generation of the metadata built by `change` into the
    /// other slot of every disk in service. Nothing changes when `change`
    /// fails. A disk that fails the write is taken out of service (its
    /// group, if any, records that before its next write); the update
    /// stands as long as one disk took it.
    pub(crate) fn update<T>(
        &self,
        change: impl FnOnce(&mut Metadata) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut state = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = state.meta.clone();
        let out = change(&mut next)?;
        next.generation = state.meta.generation + 1;
        let slot = 1 - state.slot;
        let buf = metadata::encode_slot(&next)?;
        let mut written = 0;
        let mut error = None;
        for disk in self.disks.iter().filter(|d| !d.is_failed()) {
            match disk.write_slot(slot, &buf) {
                Ok(()) => written += 1,
                Err(e @ StorageError::Io { .. }) => {
                    tracing::warn!(
                        disk = %disk.path().display(),
                        error = %e,
                        "metadata write failed; disk out of service"
                    );
                    disk.mark_failed();
                    error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        if written == 0 {
            return Err(error.unwrap_or_else(|| {
                StorageError::Invalid("no disk in service to hold the metadata".into())
            }));
        }
        state.meta = next;
        state.slot = slot;
        Ok(out)
    }

    pub(crate) fn snapshot(&self) -> Metadata {
        self.meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .meta
            .clone()
    }

    fn disk_by_uuid(&self, uuid: &Uuid) -> Option<&Arc<Disk>> {
        self.disks.iter().find(|d| d.superblock().disk == *uuid)
    }

    /// Which members of `group` are out of service: missing, failed, or
    /// recorded as failed.
    fn lost_members(&self, group: &GroupRecord) -> Vec<bool> {
        group
            .members
            .iter()
            .map(|u| group.failed.contains(u) || self.disk_by_uuid(u).is_none_or(|d| d.is_failed()))
            .collect()
    }
}

/// A SAN unit's storage.
#[derive(Debug)]
pub struct Unit {
    core: Arc<Core>,
    /// Volumes opened for I/O: one object per volume, so that every user
    /// shares one allocation map.
    open: Mutex<BTreeMap<String, Arc<Volume>>>,
    /// Groups' layouts by group index, built at first use: one per group,
    /// shared by its volumes (RAID 5/6 stripe locks span volumes).
    layouts: Mutex<BTreeMap<u32, Layout>>,
}

impl Unit {
    /// Formats `disks` into a new unit with no groups or volumes.
    pub fn create(disks: &[DiskSpec]) -> Result<Unit, StorageError> {
        if disks.is_empty() {
            return Err(StorageError::Invalid(
                "a unit needs at least one disk".into(),
            ));
        }
        let unit = Uuid::new_v4();
        let disks = disks
            .iter()
            .enumerate()
            .map(|(i, d)| Disk::format(&d.path, d.size, unit, i as u32 + 1).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let meta = Metadata {
            unit,
            generation: 1,
            name: None,
            low_threshold: None,
            disks: disks.iter().map(|d| record_of(d)).collect(),
            groups: vec![],
            volumes: vec![],
        };
        let refs: Vec<&Disk> = disks.iter().map(|d| &**d).collect();
        metadata::write_all(&refs, &meta, 0)?;
        Ok(Unit::assemble(disks, meta, 0))
    }

    fn assemble(disks: Vec<Arc<Disk>>, meta: Metadata, slot: usize) -> Unit {
        Unit {
            core: Arc::new(Core {
                disks,
                meta: Mutex::new(MetaState { meta, slot }),
            }),
            open: Mutex::default(),
            layouts: Mutex::default(),
        }
    }

    /// Reassembles a unit from its disks alone. A path that cannot be
    /// opened or holds no dvsan superblock is skipped with a warning (the
    /// caller may pass every disk it was configured with); a disk of
    /// another unit, or the same disk twice, is refused. Groups missing
    /// members come up degraded or failed (see [`Unit::group_health`]).
    pub fn open(paths: &[&Path]) -> Result<Unit, StorageError> {
        let mut disks: Vec<Arc<Disk>> = Vec::new();
        for path in paths {
            match Disk::open(path) {
                Ok(d) => disks.push(Arc::new(d)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping disk");
                }
            }
        }
        let Some(first) = disks.first() else {
            return Err(StorageError::Invalid(format!(
                "none of the {} disk paths holds a dvsan disk",
                paths.len()
            )));
        };
        let unit = first.superblock().unit;
        if let Some(stranger) = disks.iter().find(|d| d.superblock().unit != unit) {
            return Err(StorageError::Invalid(format!(
                "{} belongs to unit {}, not {unit}",
                stranger.path().display(),
                stranger.superblock().unit
            )));
        }
        for (i, d) in disks.iter().enumerate() {
            if let Some(twin) = disks[..i]
                .iter()
                .find(|t| t.superblock().disk == d.superblock().disk)
            {
                return Err(StorageError::Invalid(format!(
                    "{} and {} are the same disk {}",
                    twin.path().display(),
                    d.path().display(),
                    d.superblock().disk
                )));
            }
        }
        let refs: Vec<&Disk> = disks.iter().map(|d| &**d).collect();
        let (mut meta, slot) = metadata::read_newest(&refs)?
            .ok_or_else(|| StorageError::Corrupt("no valid metadata on any disk".into()))?;
        if meta.disks.is_empty() {
            // Written before disks were recorded: the next update records
            // those present.
            meta.disks = disks.iter().map(|d| record_of(d)).collect();
            meta.disks.sort_by_key(|d| d.index);
        }
        // Members the metadata says failed have stale data: keep them out.
        for g in &meta.groups {
            for u in &g.failed {
                if let Some(d) = disks.iter().find(|d| d.superblock().disk == *u) {
                    d.mark_failed();
                }
            }
        }
        for d in &disks {
            if !meta.disks.iter().any(|r| r.uuid == d.superblock().disk) {
                tracing::warn!(
                    disk = %d.path().display(),
                    "disk carries the unit's superblock but is not in its metadata"
                );
            }
        }
        let unit = Unit::assemble(disks, meta, slot);
        for g in unit.core.snapshot().groups {
            match unit.group_health(g.index).map(|h| h.state) {
                Some(GroupState::Optimal) | None => {}
                Some(state) => tracing::warn!(
                    group = g.index,
                    name = %g.name,
                    ?state,
                    lost = ?unit.core.lost_members(&g),
                    "RAID group is not optimal"
                ),
            }
        }
        Ok(unit)
    }

    /// The unit's UUID.
    pub fn uuid(&self) -> Uuid {
        self.core.snapshot().unit
    }

    /// The metadata as it stands.
    pub fn metadata(&self) -> Metadata {
        self.core.snapshot()
    }

    /// The disks, in index order.
    pub fn disks(&self) -> Vec<Arc<Disk>> {
        let mut d = self.core.disks.clone();
        d.sort_by_key(|d| d.superblock().index);
        d
    }

    /// Creates a RAID group. Nothing is written but metadata: a new group's
    /// volumes read as zeros through their allocation maps.
    pub fn create_group(&self, spec: &GroupSpec) -> Result<(), StorageError> {
        check_name(&spec.name)?;
        let member_disks = spec
            .members
            .iter()
            .map(|i| {
                self.core
                    .disks
                    .iter()
                    .find(|d| d.superblock().index == *i)
                    .ok_or_else(|| StorageError::Invalid(format!("no disk {i}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if member_disks.is_empty() {
            return Err(StorageError::Invalid(
                "a group needs at least one member".into(),
            ));
        }
        for (n, i) in spec.members.iter().enumerate() {
            if spec.members[..n].contains(i) {
                return Err(StorageError::Invalid(format!("disk {i} is named twice")));
            }
        }
        if let Some(d) = member_disks.iter().find(|d| d.is_failed()) {
            return Err(StorageError::Invalid(format!(
                "disk {} has failed",
                d.superblock().index
            )));
        }
        let sizes: Vec<u64> = member_disks.iter().map(|d| d.data_size()).collect();
        let capacity = group_capacity(spec.level, spec.chunk, &sizes)?;
        let chunk = layout::chunk_size(spec.level, spec.chunk)?;
        let uuids: Vec<Uuid> = member_disks.iter().map(|d| d.superblock().disk).collect();
        if matches!(spec.level, Level::Raid5 | Level::Raid6) {
            // Parity is updated by read-modify-write, so it must start out
            // consistent with the data: every member starts as zeros. Only
            // disks in no group are touched (checked again below, under the
            // metadata lock; SETs are serialised, so nothing races this).
            let meta = self.core.snapshot();
            if !meta
                .groups
                .iter()
                .any(|g| g.members.iter().any(|m| uuids.contains(m)))
            {
                for d in &member_disks {
                    d.discard_data(0, d.data_size())?;
                }
            }
        }
        self.core.update(|meta| {
            if meta
                .groups
                .iter()
                .any(|g| g.index == spec.index || g.name == spec.name)
            {
                return Err(StorageError::Invalid(format!(
                    "group {} or name {:?} exists",
                    spec.index, spec.name
                )));
            }
            if let Some(used) = meta
                .groups
                .iter()
                .find(|g| g.members.iter().any(|m| uuids.contains(m)))
            {
                return Err(StorageError::InUse(format!(
                    "a disk is already in group {}",
                    used.name
                )));
            }
            meta.groups.push(GroupRecord {
                index: spec.index,
                name: spec.name.clone(),
                level: spec.level,
                chunk,
                members: uuids.clone(),
                capacity,
                failed: vec![],
            });
            Ok(())
        })
    }

    /// Deletes an empty group, freeing its disks.
    pub fn delete_group(&self, index: u32) -> Result<(), StorageError> {
        self.core.update(|meta| {
            let g = meta
                .groups
                .iter()
                .find(|g| g.index == index)
                .ok_or_else(|| StorageError::Invalid(format!("no group {index}")))?;
            if let Some(v) = meta.volumes.iter().find(|v| v.group == index) {
                return Err(StorageError::InUse(format!(
                    "group {} still holds volume {}",
                    g.name, v.name
                )));
            }
            meta.groups.retain(|g| g.index != index);
            Ok(())
        })?;
        self.layouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&index);
        Ok(())
    }

    /// Renames a group.
    pub fn rename_group(&self, index: u32, name: &str) -> Result<(), StorageError> {
        check_name(name)?;
        self.core.update(|meta| {
            if meta
                .groups
                .iter()
                .any(|g| g.name == name && g.index != index)
            {
                return Err(StorageError::Invalid(format!("group name {name:?} exists")));
            }
            let g = meta
                .groups
                .iter_mut()
                .find(|g| g.index == index)
                .ok_or_else(|| StorageError::Invalid(format!("no group {index}")))?;
            g.name = name.to_owned();
            Ok(())
        })
    }

    /// How a group is doing: Optimal with every member in service,
    /// Degraded with members lost but no more than its level survives,
    /// Failed beyond that.
    pub fn group_health(&self, index: u32) -> Option<GroupHealth> {
        let meta = self.core.snapshot();
        let g = meta.groups.iter().find(|g| g.index == index)?;
        let lost = self.core.lost_members(g);
        let state = if !lost.contains(&true) {
            GroupState::Optimal
        } else if layout::tolerates(g.level, &lost) {
            GroupState::Degraded
        } else {
            GroupState::Failed
        };
        Some(GroupHealth {
            state,
            rebuild_progress: 100,
        })
    }

    /// How a disk is doing: Failed once out of service (an I/O error, or
    /// recorded as a failed member), Missing when recorded on the unit but
    /// not found at startup.
    pub fn disk_health(&self, index: u32) -> Option<DiskHealth> {
        if let Some(d) = self
            .core
            .disks
            .iter()
            .find(|d| d.superblock().index == index)
        {
            return Some(if d.is_failed() {
                DiskHealth::Failed
            } else {
                DiskHealth::Ok
            });
        }
        let meta = self.core.snapshot();
        meta.disks
            .iter()
            .any(|d| d.index == index)
            .then_some(DiskHealth::Missing)
    }

    /// The layout of group `g`, shared by all its volumes.
    fn layout(&self, g: &GroupRecord) -> Result<Layout, StorageError> {
        let mut layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = layouts.get(&g.index) {
            return Ok(l.clone());
        }
        let layout = Layout::build(&self.core, g)?;
        layouts.insert(g.index, layout.clone());
        Ok(layout)
    }

    /// Free bytes in a group.
    pub fn group_free(&self, group: u32) -> Option<u64> {
        let meta = self.core.snapshot();
        let g = meta.groups.iter().find(|g| g.index == group)?;
        let used: u64 = meta
            .volumes
            .iter()
            .filter(|v| v.group == group)
            .map(|v| v.size)
            .sum();
        Some(g.capacity - used)
    }

    /// Creates a volume of `size` bytes (rounded up to the alignment) in
    /// `group`, first fit. Writes no data: the volume reads as zeros.
    pub fn create_volume(
        &self,
        index: u32,
        name: &str,
        group: u32,
        size: u64,
    ) -> Result<Arc<Volume>, StorageError> {
        if size == 0 {
            return Err(StorageError::Invalid("a volume needs a size".into()));
        }
        let size = size.div_ceil(ALIGNMENT) * ALIGNMENT;
        self.core.update(|meta| {
            let g = meta
                .groups
                .iter()
                .find(|g| g.index == group)
                .ok_or_else(|| StorageError::Invalid(format!("no group {group}")))?;
            if meta
                .volumes
                .iter()
                .any(|v| v.index == index || v.name == name)
            {
                return Err(StorageError::Invalid(format!(
                    "volume {index} or name {name:?} exists"
                )));
            }
            let Some(at) = first_fit(meta, g, size) else {
                return Err(StorageError::NoSpace(format!(
                    "group {} has no free run of {} MiB",
                    g.name,
                    size >> 20
                )));
            };
            meta.volumes.push(VolumeRecord {
                index,
                uuid: Uuid::new_v4(),
                name: name.to_owned(),
                group,
                offset: at,
                size,
                allocated: vec![],
                read_only: false,
                access: vec![],
            });
            Ok(())
        })?;
        self.volume(name)?
            .ok_or_else(|| StorageError::Corrupt("created volume vanished".into()))
    }

    /// Deletes a volume; its space is free at once (metadata only).
    pub fn delete_volume(&self, name: &str) -> Result<(), StorageError> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.core.update(|meta| {
            let before = meta.volumes.len();
            meta.volumes.retain(|v| v.name != name);
            if meta.volumes.len() == before {
                return Err(StorageError::Invalid(format!("no volume {name:?}")));
            }
            Ok(())
        })
    }

    /// Records the unit's name.
    pub fn set_name(&self, name: &str) -> Result<(), StorageError> {
        if name.is_empty() || name.len() > 255 || name.chars().any(|c| c.is_control()) {
            return Err(StorageError::Invalid(format!(
                "unit name {name:?} must be 1 to 255 printable characters"
            )));
        }
        self.core.update(|meta| {
            meta.name = Some(name.to_owned());
            Ok(())
        })
    }

    /// Records the capacity-low threshold (percent free).
    pub fn set_low_threshold(&self, percent: u32) -> Result<(), StorageError> {
        if percent > 100 {
            return Err(StorageError::Invalid(format!(
                "threshold {percent} is not a percentage"
            )));
        }
        self.core.update(|meta| {
            meta.low_threshold = Some(percent);
            Ok(())
        })
    }

    /// Renames a volume (its export name follows).
    pub fn rename_volume(&self, index: u32, name: &str) -> Result<(), StorageError> {
        check_name(name)?;
        let old = self.core.update(|meta| {
            if meta
                .volumes
                .iter()
                .any(|v| v.name == name && v.index != index)
            {
                return Err(StorageError::Invalid(format!(
                    "volume name {name:?} exists"
                )));
            }
            let v = meta
                .volumes
                .iter_mut()
                .find(|v| v.index == index)
                .ok_or_else(|| StorageError::Invalid(format!("no volume {index}")))?;
            Ok(std::mem::replace(&mut v.name, name.to_owned()))
        })?;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // An open volume finds its metadata by UUID: only the key changes.
        if let Some(v) = open.remove(&old) {
            open.insert(name.to_owned(), v);
        }
        Ok(())
    }

    /// Sets a volume's access mode and access list in one update.
    pub fn set_volume_access(
        &self,
        index: u32,
        read_only: bool,
        access: Vec<AccessRecord>,
    ) -> Result<(), StorageError> {
        self.core.update(|meta| {
            let v = meta
                .volumes
                .iter_mut()
                .find(|v| v.index == index)
                .ok_or_else(|| StorageError::Invalid(format!("no volume {index}")))?;
            v.read_only = read_only;
            v.access = access;
            Ok(())
        })
    }

    /// Deletes the volume with this index.
    pub fn delete_volume_index(&self, index: u32) -> Result<(), StorageError> {
        let name = self
            .core
            .snapshot()
            .volumes
            .iter()
            .find(|v| v.index == index)
            .map(|v| v.name.clone())
            .ok_or_else(|| StorageError::Invalid(format!("no volume {index}")))?;
        self.delete_volume(&name)
    }

    /// Whether a volume of `size` bytes (rounded up to the alignment) fits
    /// in `group` now.
    pub fn fits(&self, group: u32, size: u64) -> bool {
        let size = size.div_ceil(ALIGNMENT) * ALIGNMENT;
        let meta = self.core.snapshot();
        meta.groups
            .iter()
            .find(|g| g.index == group)
            .is_some_and(|g| size > 0 && first_fit(&meta, g, size).is_some())
    }

    /// Whether volume `index` can grow in place to `size` bytes.
    pub fn can_grow(&self, index: u32, size: u64) -> bool {
        let size = size.div_ceil(ALIGNMENT) * ALIGNMENT;
        room_to_grow(&self.core.snapshot(), index, size).unwrap_or(false)
    }

    /// Grows volume `index` in place to `size` bytes (rounded up to the
    /// alignment); the new part reads as zeros. Open connections keep the
    /// size they negotiated; new ones see the new size.
    pub fn grow_volume(&self, index: u32, size: u64) -> Result<(), StorageError> {
        let size = size.div_ceil(ALIGNMENT) * ALIGNMENT;
        let name = self.core.update(|meta| {
            if !room_to_grow(meta, index, size)? {
                return Err(StorageError::NoSpace(format!(
                    "no free space after volume {index} to grow it to {} MiB",
                    size >> 20
                )));
            }
            let v = meta
                .volumes
                .iter_mut()
                .find(|v| v.index == index)
                .ok_or_else(|| StorageError::Invalid(format!("no volume {index}")))?;
            if size < v.size {
                return Err(StorageError::Invalid("a volume cannot shrink".into()));
            }
            v.size = size;
            Ok(v.name.clone())
        })?;
        if let Some(v) = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
        {
            v.grown(size);
        }
        Ok(())
    }

    /// Puts back a group record removed by [`Unit::delete_group`] (an
    /// undone request).
    pub fn restore_group(&self, record: GroupRecord) -> Result<(), StorageError> {
        self.core.update(|meta| {
            if meta
                .groups
                .iter()
                .any(|g| g.index == record.index || g.name == record.name)
            {
                return Err(StorageError::Invalid(format!(
                    "group {} came back meanwhile",
                    record.name
                )));
            }
            meta.groups.push(record);
            meta.groups.sort_by_key(|g| g.index);
            Ok(())
        })
    }

    /// Puts back a volume record removed by [`Unit::delete_volume`] (an
    /// undone request); its data was never touched.
    pub fn restore_volume(&self, record: VolumeRecord) -> Result<(), StorageError> {
        self.core.update(|meta| {
            let clash = meta.volumes.iter().any(|v| {
                v.index == record.index
                    || v.name == record.name
                    || (v.group == record.group
                        && v.offset < record.offset + record.size
                        && record.offset < v.offset + v.size)
            });
            if clash {
                return Err(StorageError::Invalid(format!(
                    "volume {} cannot come back: its place is taken",
                    record.name
                )));
            }
            meta.volumes.push(record);
            meta.volumes.sort_by_key(|v| v.index);
            Ok(())
        })
    }

    /// Formats a new disk into this unit (before the unit is shared): it
    /// gets the next disk index and a copy of the metadata, and is free for
    /// a new group.
    pub fn add_disk(&mut self, spec: &DiskSpec) -> Result<(), StorageError> {
        let core = Arc::get_mut(&mut self.core).ok_or_else(|| {
            StorageError::Invalid("disks can only be added while the unit starts".into())
        })?;
        let meta = core.snapshot();
        let index = core
            .disks
            .iter()
            .map(|d| d.superblock().index)
            .chain(meta.disks.iter().map(|d| d.index))
            .max()
            .unwrap_or(0)
            + 1;
        let disk = Disk::format(&spec.path, spec.size, meta.unit, index)?;
        let record = record_of(&disk);
        core.disks.push(Arc::new(disk));
        // A new generation on every disk, the new one included.
        core.update(|meta| {
            meta.disks.push(record);
            Ok(())
        })
    }

    /// Makes every acknowledged write to every open volume durable.
    pub fn flush_all(&self) -> Result<(), StorageError> {
        let open: Vec<Arc<Volume>> = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for v in open {
            v.flush()?;
        }
        Ok(())
    }

    /// The volume named `name`, ready for I/O.
    pub fn volume(&self, name: &str) -> Result<Option<Arc<Volume>>, StorageError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = open.get(name) {
            return Ok(Some(Arc::clone(v)));
        }
        let meta = self.core.snapshot();
        let Some(v) = meta.volumes.iter().find(|v| v.name == name) else {
            return Ok(None);
        };
        let g = meta
            .groups
            .iter()
            .find(|g| g.index == v.group)
            .ok_or_else(|| StorageError::Corrupt(format!("volume {name}: no group {}", v.group)))?;
        let layout = self.layout(g)?;
        let volume = Arc::new(Volume::new(Arc::clone(&self.core), v.clone(), layout));
        open.insert(name.to_owned(), Arc::clone(&volume));
        Ok(Some(volume))
    }
}

fn record_of(d: &Disk) -> DiskRecord {
    DiskRecord {
        index: d.superblock().index,
        uuid: d.superblock().disk,
        size: d.size(),
    }
}
