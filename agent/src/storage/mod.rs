//! The storage engine: disks → RAID groups → volumes.
//!
//! Every operation here is blocking (positioned file I/O and fdatasync);
//! callers run it off the async reactor (the NBD server's worker threads).
//! Creating and deleting volumes and groups only changes metadata, which is
//! replicated on every disk, so a restart reassembles everything from the
//! disks alone ([`Unit::open`]), even with disks missing: a group that has
//! lost no more members than its level survives runs degraded, serving the
//! lost members' data from redundancy (`layout.rs` and one file per level).
//! A lost member is rebuilt onto a spare or a replacement in the
//! background, and after an unclean stop the regions the write-intent
//! bitmap marks are resynchronised (`maintenance.rs`, `bitmap.rs`): both
//! run on threads of the unit's own, started with it and stopped when it
//! is dropped.

pub mod bitmap;
pub mod disk;
pub mod gf256;
pub mod layout;
pub mod linear;
pub mod maintenance;
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
use crate::storage::layout::{IN_SYNC, Layout, Layouts, has_redundancy};
pub use crate::storage::maintenance::MaintenanceConfig;
use crate::storage::maintenance::{Maintenance, Supervisor};
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
    /// Free, working and designated as a hot spare ([`Unit::set_spare`]).
    Spare,
}

/// How one member of a group is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberHealth {
    /// In service and holding all its data.
    InSync,
    /// Present but out of service (I/O errors, or recorded as failed).
    Failed,
    /// Recorded but not present.
    Missing,
    /// A replacement being rebuilt.
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
}

/// A SAN unit's storage.
#[derive(Debug)]
pub struct Unit {
    core: Arc<Core>,
    /// Volumes opened for I/O: one object per volume, so that every user
    /// shares one allocation map.
    open: Mutex<BTreeMap<String, Arc<Volume>>>,
    /// Groups' layouts, shared by their volumes and their maintenance.
    layouts: Arc<Layouts>,
    /// Rebuild and resync settings, shared with the threads doing them.
    maintenance: Arc<Maintenance>,
    /// The thread watching over the groups (see `maintenance.rs`).
    supervisor: Mutex<Option<Supervisor>>,
}

impl Drop for Unit {
    /// A clean stop: maintenance is stopped (a rebuild resumes at the next
    /// start) and the write-intent bitmaps are cleared of every region
    /// whose writes are done, after a sync.
    fn drop(&mut self) {
        self.stop_maintenance();
        self.clear_bitmaps();
    }
}

impl Unit {
    /// Formats `disks` into a new unit with no groups or volumes.
    pub fn create(disks: &[DiskSpec]) -> Result<Unit, StorageError> {
        Unit::create_with(disks, MaintenanceConfig::default())
    }

    /// [`Unit::create`], with maintenance configured from the start.
    pub fn create_with(
        disks: &[DiskSpec],
        config: MaintenanceConfig,
    ) -> Result<Unit, StorageError> {
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
            retired: vec![],
            spares: vec![],
            groups: vec![],
            volumes: vec![],
        };
        let refs: Vec<&Disk> = disks.iter().map(|d| &**d).collect();
        metadata::write_all(&refs, &meta, 0)?;
        let unit = Unit::assemble(disks, meta, 0);
        unit.maintenance.set_config(config);
        unit.start_maintenance();
        Ok(unit)
    }

    fn assemble(disks: Vec<Arc<Disk>>, meta: Metadata, slot: usize) -> Unit {
        Unit {
            core: Arc::new(Core {
                disks,
                meta: Mutex::new(MetaState { meta, slot }),
            }),
            open: Mutex::default(),
            layouts: Arc::default(),
            maintenance: Arc::default(),
            supervisor: Mutex::default(),
        }
    }

    fn start_maintenance(&self) {
        let mut supervisor = self.supervisor.lock().unwrap_or_else(|e| e.into_inner());
        if supervisor.is_none() {
            *supervisor = Some(Supervisor::start(
                Arc::clone(&self.core),
                Arc::clone(&self.layouts),
                Arc::clone(&self.maintenance),
            ));
        }
    }

    fn stop_maintenance(&self) {
        let supervisor = self
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut s) = supervisor {
            s.stop();
        }
    }

    /// Clears every bitmap region whose writes are done (after a sync).
    fn clear_bitmaps(&self) {
        for layout in self.layouts.all() {
            if let Err(e) = layout.members().clear_bitmap(std::time::Duration::ZERO) {
                tracing::warn!(error = %e, "clearing a write-intent bitmap failed");
            }
        }
    }

    /// Bytes rebuilds have written to the members of group `index` since
    /// the unit started (a member come back to its own slot gets only the
    /// regions written while it was out).
    pub fn rebuilt_bytes(&self, index: u32) -> Option<u64> {
        let meta = self.core.snapshot();
        let g = meta.groups.iter().find(|g| g.index == index)?;
        let layout = self.layouts.get(&self.core, g).ok()?;
        Some(layout.members().rebuilt_bytes())
    }

    /// How rebuilds and resyncs run.
    pub fn maintenance_config(&self) -> MaintenanceConfig {
        self.maintenance.config()
    }

    /// Changes how rebuilds and resyncs run (the rate applies at once;
    /// the bitmap region to groups created from now on).
    pub fn set_maintenance_config(&self, config: MaintenanceConfig) {
        self.maintenance.set_config(config);
    }

    /// Puts disk `disk` (by index) in place of member `slot` (0-based, in
    /// member order) of group `group`, a member that is lost (failed or
    /// missing), and rebuilds it in the background from the others; the
    /// group reports Rebuilding with its progress until it is whole. The
    /// disk must be in no other group and at least as big as the member;
    /// it may be the lost member itself, back in place, or a disk that
    /// failed before (the administrator's call).
    pub fn replace_member(&self, group: u32, slot: usize, disk: u32) -> Result<(), StorageError> {
        self.replace_members(&[(group, slot, disk)])
    }

    /// Makes several replacements as [`Unit::replace_member`] does, each
    /// `(group, slot, disk)`, all or none: if any is refused, nothing
    /// changes (one metadata update records them all).
    pub fn replace_members(&self, each: &[(u32, usize, u32)]) -> Result<(), StorageError> {
        maintenance::replace_all(&self.core, &self.layouts, &self.maintenance, each, true)
    }

    /// Checks that [`Unit::replace_member`] with these arguments would be
    /// accepted, changing nothing.
    pub fn check_replace_member(
        &self,
        group: u32,
        slot: usize,
        disk: u32,
    ) -> Result<(), StorageError> {
        maintenance::check_replace(&self.core, &self.layouts, group, slot, disk, true)
    }

    /// Designates disk `disk` (by index) as a hot spare (`spare`), or makes
    /// it an ordinary free disk again. A hot spare replaces a lost member
    /// of any group as soon as one is lost, even with automatic spares off,
    /// and cannot be put in a new group. Only a present, working disk in
    /// no group, that never failed, can become one. Lifting the designation
    /// of a disk that has none changes nothing.
    pub fn set_spare(&self, disk: u32, spare: bool) -> Result<(), StorageError> {
        self.check_spare(disk, spare)?;
        let d = self.present_disk(disk)?;
        let uuid = d.superblock().disk;
        self.core.update(|meta| {
            if spare {
                if let Some(g) = meta.groups.iter().find(|g| g.members.contains(&uuid)) {
                    return Err(StorageError::InUse(format!(
                        "disk {disk} is a member of group {}",
                        g.name
                    )));
                }
                if !meta.spares.contains(&uuid) {
                    meta.spares.push(uuid);
                }
            } else {
                meta.spares.retain(|u| *u != uuid);
            }
            Ok(())
        })?;
        tracing::info!(disk, spare, path = %d.path().display(), "hot spare designation changed");
        if spare {
            // A degraded group takes it now, not at the next pass.
            self.maintenance.wake();
        }
        Ok(())
    }

    /// Checks that [`Unit::set_spare`] with these arguments would be
    /// accepted, changing nothing.
    pub fn check_spare(&self, disk: u32, spare: bool) -> Result<(), StorageError> {
        let d = self.present_disk(disk)?;
        if !spare {
            return Ok(());
        }
        let uuid = d.superblock().disk;
        let meta = self.core.snapshot();
        if d.is_failed() || meta.retired.contains(&uuid) {
            return Err(StorageError::Invalid(format!(
                "disk {disk} has failed; it cannot be a hot spare"
            )));
        }
        if let Some(g) = meta.groups.iter().find(|g| g.members.contains(&uuid)) {
            return Err(StorageError::InUse(format!(
                "disk {disk} is a member of group {}",
                g.name
            )));
        }
        Ok(())
    }

    fn present_disk(&self, disk: u32) -> Result<&Arc<Disk>, StorageError> {
        self.core
            .disks
            .iter()
            .find(|d| d.superblock().index == disk)
            .ok_or_else(|| StorageError::Invalid(format!("no disk {disk} is present")))
    }

    /// How each member of group `group` is doing, in member order.
    pub fn member_health(&self, group: u32) -> Option<Vec<MemberHealth>> {
        let meta = self.core.snapshot();
        let g = meta.groups.iter().find(|g| g.index == group)?;
        let present = |u: &Uuid| self.core.disks.iter().find(|d| d.superblock().disk == *u);
        let Ok(layout) = self.layouts.get(&self.core, g) else {
            return Some(
                g.members
                    .iter()
                    .map(|u| match present(u) {
                        None => MemberHealth::Missing,
                        Some(d) if d.is_failed() || g.failed.contains(u) => MemberHealth::Failed,
                        Some(_) => MemberHealth::InSync,
                    })
                    .collect(),
            );
        };
        let members = layout.members();
        Some(
            (0..members.len())
                .map(|m| {
                    if members.in_service(m) {
                        if members.synced_to(m) == IN_SYNC {
                            MemberHealth::InSync
                        } else {
                            MemberHealth::Rebuilding
                        }
                    } else if members.disk(m).is_some() {
                        MemberHealth::Failed
                    } else {
                        MemberHealth::Missing
                    }
                })
                .collect(),
        )
    }

    /// For each member slot of group `group`: bytes of its share that
    /// writing its own disk back to the slot ([`Unit::replace_member`])
    /// would rebuild. A lost member that went out in sync gets only the
    /// regions the group wrote while a member was out (the bitmap's missed
    /// regions); any other lost member its whole share; a member in
    /// service 0.
    pub fn member_readd_bytes(&self, group: u32) -> Option<Vec<u64>> {
        let meta = self.core.snapshot();
        let g = meta.groups.iter().find(|g| g.index == group)?;
        let Ok(layout) = self.layouts.get(&self.core, g) else {
            return Some(vec![0; g.members.len()]);
        };
        let members = layout.members();
        let share = members.per_member();
        let missed = members
            .bitmap
            .as_ref()
            .and_then(|b| Some(b.region() * b.missed_count()? as u64));
        Some(
            (0..members.len())
                .map(|m| {
                    if members.in_service(m) {
                        0
                    } else if g.readd.contains(&members.uuid(m)) {
                        missed.map_or(share, |b| b.min(share))
                    } else {
                        share
                    }
                })
                .collect(),
        )
    }

    /// Reassembles a unit from its disks alone. A path that cannot be
    /// opened or holds no dvsan superblock is skipped with a warning (the
    /// caller may pass every disk it was configured with); a disk of
    /// another unit, or the same disk twice, is refused. Groups missing
    /// members come up degraded or failed (see [`Unit::group_health`]),
    /// and rebuilds and resyncs start in the background.
    pub fn open(paths: &[&Path]) -> Result<Unit, StorageError> {
        Unit::open_with(paths, MaintenanceConfig::default())
    }

    /// [`Unit::open`], with maintenance configured from the start.
    pub fn open_with(paths: &[&Path], config: MaintenanceConfig) -> Result<Unit, StorageError> {
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
        metadata::check(&meta)?;
        // Members the metadata says failed have stale data, and disks
        // that failed and were replaced are no spares: keep them out.
        for u in meta
            .groups
            .iter()
            .flat_map(|g| &g.failed)
            .chain(&meta.retired)
        {
            if let Some(d) = disks.iter().find(|d| d.superblock().disk == *u) {
                d.mark_failed();
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
        unit.maintenance.set_config(config);
        for g in unit.core.snapshot().groups {
            match unit.group_health(g.index).map(|h| h.state) {
                Some(GroupState::Optimal) | None => {}
                Some(state) => tracing::warn!(
                    group = g.index,
                    name = %g.name,
                    ?state,
                    lost = ?unit.layouts.built(g.index).map(|l| l.lost_members()),
                    "RAID group is not optimal"
                ),
            }
        }
        unit.start_maintenance();
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
        let spares = self.core.snapshot().spares;
        if let Some(d) = member_disks
            .iter()
            .find(|d| spares.contains(&d.superblock().disk))
        {
            return Err(StorageError::InUse(format!(
                "disk {} is a hot spare; lift the designation first",
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
        if has_redundancy(spec.level) {
            // No bitmap of a previous life may mark regions of this group.
            for d in &member_disks {
                d.write_bitmap(&[0u8; 64])?;
            }
        }
        let bitmap_region = self.maintenance.config().bitmap_region;
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
            if meta.spares.iter().any(|u| uuids.contains(u)) {
                return Err(StorageError::InUse("a disk is a hot spare".into()));
            }
            meta.groups.push(GroupRecord {
                index: spec.index,
                name: spec.name.clone(),
                level: spec.level,
                chunk,
                members: uuids.clone(),
                capacity,
                failed: vec![],
                rebuilding: vec![],
                bitmap_region,
                readd: vec![],
            });
            Ok(())
        })
    }

    /// Deletes an empty group, freeing its disks (not while it rebuilds or
    /// resyncs).
    pub fn delete_group(&self, index: u32) -> Result<(), StorageError> {
        if self.maintenance.working_on(index) {
            return Err(StorageError::InUse(format!(
                "group {index} is being rebuilt or resynchronised"
            )));
        }
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
        self.layouts.remove(index);
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

    /// How a group is doing: Failed with more members lost (or not yet
    /// rebuilt) than its level survives; else Rebuilding while a member is
    /// rebuilt, Degraded with members lost and none rebuilding, Resyncing
    /// while regions an unclean stop left marked are made consistent, and
    /// Optimal. The progress is the rebuild's or the resync's.
    pub fn group_health(&self, index: u32) -> Option<GroupHealth> {
        let meta = self.core.snapshot();
        let g = meta.groups.iter().find(|g| g.index == index)?;
        let done = |state| GroupHealth {
            state,
            rebuild_progress: 100,
        };
        let Ok(layout) = self.layouts.get(&self.core, g) else {
            return Some(done(GroupState::Failed));
        };
        let members = layout.members();
        let lost = members.lost();
        if !layout::tolerates(g.level, &lost) {
            return Some(done(GroupState::Failed));
        }
        if let Some(m) = members.rebuilding() {
            let at = members.synced_to(m).min(members.per_member());
            return Some(GroupHealth {
                state: GroupState::Rebuilding,
                rebuild_progress: (at * 100 / members.per_member().max(1)).min(99) as u8,
            });
        }
        if lost.contains(&true) {
            return Some(done(GroupState::Degraded));
        }
        match &members.bitmap {
            Some(b) if b.pending_count() > 0 => Some(GroupHealth {
                state: GroupState::Resyncing,
                rebuild_progress: b.resync_progress(),
            }),
            _ => Some(done(GroupState::Optimal)),
        }
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
            if d.is_failed() {
                return Some(DiskHealth::Failed);
            }
            let uuid = d.superblock().disk;
            let rebuilding = self.core.snapshot().groups.iter().any(|g| {
                g.rebuilding.iter().any(|r| r.member == uuid)
                    && self.layouts.built(g.index).is_none_or(|l| {
                        let m = l.members();
                        (0..m.len()).any(|s| m.uuid(s) == uuid && m.synced_to(s) != IN_SYNC)
                    })
            });
            let meta = self.core.snapshot();
            let spare = meta.spares.contains(&uuid)
                && !meta.groups.iter().any(|g| g.members.contains(&uuid));
            return Some(if rebuilding {
                DiskHealth::Rebuilding
            } else if spare {
                DiskHealth::Spare
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
        self.layouts.get(&self.core, g)
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
        Some(g.capacity.saturating_sub(used))
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
        let open = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        // Clients still connected to it get errors from now on, before its
        // range can go to another volume.
        if let Some(volume) = open {
            volume.retire();
        }
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
        // The maintenance threads and the layouts hold the core: stopped
        // and forgotten meanwhile, then started over with the new disk.
        self.stop_maintenance();
        self.layouts.clear();
        let added = self.add_disk_stopped(spec);
        self.start_maintenance();
        added
    }

    fn add_disk_stopped(&mut self, spec: &DiskSpec) -> Result<(), StorageError> {
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

    /// Makes every acknowledged write to every open volume durable, and
    /// clears the write-intent bitmaps of every region whose writes are
    /// done (so a stop right after has nothing to resync).
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
        for layout in self.layouts.all() {
            layout.members().clear_bitmap(std::time::Duration::ZERO)?;
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
