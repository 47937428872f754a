//! Background maintenance of RAID groups, off the async reactor: a
//! supervisor thread per unit and a worker thread per group with work.
//!
//! - Rebuild: a lost member (failed or missing) is replaced by a disk an
//!   administrator assigns ([`crate::storage::Unit::replace_member`]), or
//!   by a spare: a disk designated as hot spare
//!   ([`crate::storage::Unit::set_spare`]) first, else, with automatic
//!   spares on, any free disk; the smallest big enough wins, never one
//!   that failed before (those are *retired*). The replacement takes
//!   the member's slot in the metadata at once, recorded as rebuilding;
//!   the worker then rebuilds it front to back in steps of 256 KiB,
//!   rate-limited, while I/O goes on: below the rebuild mark the new
//!   member is in sync and written like any other, above it the group
//!   serves as degraded (`layout.rs`, `parity.rs`). Progress is recorded
//!   in the metadata every few seconds (after syncing the new member), so
//!   a restart resumes where the last record says; at the end the member
//!   is a full member and the group optimal again.
//! - Resync: regions the write-intent bitmap (`bitmap.rs`) found marked
//!   at assembly get their mirrors copied or their parity recomputed, one
//!   region at a time; parity groups only once no member is lost.
//! - Every pass (twice a second) the supervisor clears the bitmap's quiet
//!   regions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::storage::bitmap::{DEFAULT_CLEAR_DELAY, DEFAULT_REGION};
use crate::storage::layout::{IN_SYNC, Layout, Layouts, has_redundancy};
use uuid::Uuid;

use crate::storage::disk::Disk;
use crate::storage::metadata::{GroupRecord, Metadata, RebuildRecord};
use crate::storage::{Core, StorageError};

/// How maintenance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceConfig {
    /// Most bytes per second a rebuild or resync writes (0: no limit).
    pub rebuild_rate: u64,
    /// Whether any free disk replaces a lost member by itself. Off, only
    /// disks designated as hot spares do (a free disk may be kept for a
    /// new group).
    pub auto_spare: bool,
    /// Bitmap region of groups created from now on, bytes of each member
    /// (a power of two from 64 KiB; see `bitmap.rs`).
    pub bitmap_region: u64,
    /// How long a region stays marked after its last write.
    pub clear_delay: Duration,
}

/// The rebuild rate when none is configured: 100 MiB/s, a fair share of a
/// disk's bandwidth that leaves room for clients.
pub const DEFAULT_REBUILD_RATE: u64 = 100 << 20;

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            rebuild_rate: DEFAULT_REBUILD_RATE,
            auto_spare: false,
            bitmap_region: DEFAULT_REGION,
            clear_delay: DEFAULT_CLEAR_DELAY,
        }
    }
}

/// Bytes of a member a rebuild step covers (rounded up to a stripe chunk):
/// small enough for a smooth rate, big enough for few locks per MiB.
const STEP: u64 = 256 << 10;
/// How often a rebuild records its progress.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
/// How often the supervisor looks round when nothing wakes it.
const PASS_EVERY: Duration = Duration::from_millis(500);

/// What the unit, its supervisor and the workers share.
#[derive(Debug, Default)]
pub(crate) struct Maintenance {
    config: Mutex<MaintenanceConfig>,
    stop: AtomicBool,
    /// Set to wake the supervisor early.
    wake: Mutex<bool>,
    woken: Condvar,
    /// Workers by group.
    workers: Mutex<BTreeMap<u32, JoinHandle<()>>>,
}

impl Maintenance {
    pub(crate) fn config(&self) -> MaintenanceConfig {
        *self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_config(&self, config: MaintenanceConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
        self.wake();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Makes the supervisor look round now.
    pub(crate) fn wake(&self) {
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.woken.notify_all();
    }

    /// Whether a worker runs for `group`.
    pub(crate) fn working_on(&self, group: u32) -> bool {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .is_some_and(|w| !w.is_finished())
    }

    /// Sleeps up to `d`, waking early at a stop.
    fn nap(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopping() {
            let now = Instant::now();
            if now >= end {
                return;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

/// The supervisor thread, started with the unit and stopped with it.
#[derive(Debug)]
pub(crate) struct Supervisor {
    shared: Arc<Maintenance>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    pub(crate) fn start(core: Arc<Core>, layouts: Arc<Layouts>, shared: Arc<Maintenance>) -> Self {
        shared.stop.store(false, Ordering::Release);
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("dvsan-raid".into())
            .spawn(move || supervise(&core, &layouts, &s))
            .map_err(|e| tracing::error!(error = %e, "cannot start RAID maintenance"))
            .ok();
        Supervisor { shared, thread }
    }

    /// Stops the supervisor and every worker (a rebuild resumes at the
    /// next start from its last record).
    pub(crate) fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn supervise(core: &Arc<Core>, layouts: &Arc<Layouts>, shared: &Arc<Maintenance>) {
    while !shared.stopping() {
        pass(core, layouts, shared);
        let mut woken = shared.wake.lock().unwrap_or_else(|e| e.into_inner());
        if !*woken {
            woken = shared
                .woken
                .wait_timeout(woken, PASS_EVERY)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *woken = false;
    }
    let workers = std::mem::take(&mut *shared.workers.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, w) in workers {
        let _ = w.join();
    }
}

/// One look round: clear quiet bitmap regions, put spares in, start
/// workers where there is work.
fn pass(core: &Arc<Core>, layouts: &Arc<Layouts>, shared: &Arc<Maintenance>) {
    let config = shared.config();
    let meta = core.snapshot();
    for g in meta.groups.iter().filter(|g| has_redundancy(g.level)) {
        let Ok(layout) = layouts.get(core, g) else {
            continue;
        };
        if let Err(e) = layout.members().clear_bitmap(config.clear_delay) {
            tracing::warn!(group = g.index, error = %e, "clearing the write-intent bitmap failed");
        }
        if shared.working_on(g.index) {
            continue;
        }
        put_spares_in(core, layouts, shared, g, &layout, config.auto_spare);
        let members = layout.members();
        let resync = members
            .bitmap
            .as_ref()
            .is_some_and(|b| b.pending_count() > 0)
            && layout.can_resync();
        if members.rebuilding().is_none() && !resync {
            members.set_idle();
            continue;
        }
        let (c, l, s) = (Arc::clone(core), layout.clone(), Arc::clone(shared));
        let spawned = std::thread::Builder::new()
            .name(format!("dvsan-raid-{}", g.index))
            .spawn(move || work(&c, &l, &s));
        match spawned {
            Ok(w) => {
                let mut workers = shared.workers.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(old) = workers.insert(g.index, w) {
                    let _ = old.join();
                }
            }
            Err(e) => tracing::error!(group = g.index, error = %e, "cannot start a RAID worker"),
        }
    }
}

/// Replaces the group's lost members by designated hot spares, then (with
/// `any_free`) by other free disks; smallest fitting first.
fn put_spares_in(
    core: &Arc<Core>,
    layouts: &Arc<Layouts>,
    shared: &Arc<Maintenance>,
    g: &GroupRecord,
    layout: &Layout,
    any_free: bool,
) {
    let members = layout.members();
    if members.check().is_err() {
        return;
    }
    for slot in (0..members.len()).filter(|&m| !members.in_service(m)) {
        let meta = core.snapshot();
        let mut spares: Vec<_> = core
            .disks
            .iter()
            .filter(|d| {
                let uuid = d.superblock().disk;
                (any_free || meta.spares.contains(&uuid))
                    && !d.is_failed()
                    && !meta.retired.contains(&uuid)
                    && !meta.groups.iter().any(|g| g.members.contains(&uuid))
                    && d.data_size() >= members.per_member()
            })
            .collect();
        spares.sort_by_key(|d| {
            let designated = meta.spares.contains(&d.superblock().disk);
            (!designated, d.data_size(), d.superblock().index)
        });
        let Some(spare) = spares.first() else {
            return;
        };
        let index = spare.superblock().index;
        match replace(core, layouts, shared, g.index, slot, index, false) {
            Ok(()) => tracing::info!(
                group = g.index,
                name = %g.name,
                member = slot,
                disk = index,
                "spare disk takes the lost member's place"
            ),
            Err(e) => {
                tracing::warn!(group = g.index, member = slot, disk = index, error = %e, "spare not used");
                return;
            }
        }
    }
}

/// A replacement that passed its checks.
struct Replacement {
    layout: Layout,
    new: Arc<Disk>,
    old: Uuid,
}

/// Checks that disk `disk` may take member slot `slot` of group `group`
/// (see [`replace`]) without changing anything.
pub(crate) fn check_replace(
    core: &Arc<Core>,
    layouts: &Arc<Layouts>,
    group: u32,
    slot: usize,
    disk: u32,
    assigned: bool,
) -> Result<(), StorageError> {
    checked_replacement(core, layouts, group, slot, disk, assigned).map(drop)
}

fn checked_replacement(
    core: &Arc<Core>,
    layouts: &Arc<Layouts>,
    group: u32,
    slot: usize,
    disk: u32,
    assigned: bool,
) -> Result<Replacement, StorageError> {
    let meta = core.snapshot();
    let g = meta
        .groups
        .iter()
        .find(|g| g.index == group)
        .ok_or_else(|| StorageError::Invalid(format!("no group {group}")))?;
    if !has_redundancy(g.level) {
        return Err(StorageError::Invalid(format!(
            "group {} ({:?}) has no redundancy to rebuild a member from",
            g.name, g.level
        )));
    }
    if slot >= g.members.len() {
        return Err(StorageError::Invalid(format!(
            "group {} has {} members; there is no member {slot}",
            g.name,
            g.members.len()
        )));
    }
    let layout = layouts.get(core, g)?;
    let members = layout.members();
    if members.in_service(slot) {
        return Err(if members.synced_to(slot) != IN_SYNC {
            StorageError::InUse(format!("member {slot} of {} is being rebuilt", g.name))
        } else {
            StorageError::Invalid(format!("member {slot} of {} is in service", g.name))
        });
    }
    members.check()?;
    let new = core
        .disks
        .iter()
        .find(|d| d.superblock().index == disk)
        .ok_or_else(|| StorageError::Invalid(format!("no disk {disk} is present")))?;
    let old = members.uuid(slot);
    let uuid = new.superblock().disk;
    if new.is_failed() && !assigned {
        return Err(StorageError::Invalid(format!("disk {disk} has failed")));
    }
    if new.data_size() < members.per_member() {
        return Err(StorageError::NoSpace(format!(
            "disk {disk} holds {} data bytes; a member of {} needs {}",
            new.data_size(),
            g.name,
            members.per_member()
        )));
    }
    if let Some(other) = in_other_group(&meta, uuid, group, old) {
        return Err(StorageError::InUse(format!(
            "disk {disk} is a member of group {other}"
        )));
    }
    Ok(Replacement {
        layout,
        new: Arc::clone(new),
        old,
    })
}

/// The name of a group holding `uuid`, other than as member `old` of
/// `group` (the lost member coming back in its own slot).
fn in_other_group(meta: &Metadata, uuid: Uuid, group: u32, old: Uuid) -> Option<String> {
    meta.groups
        .iter()
        .find(|o| o.members.contains(&uuid) && !(o.index == group && uuid == old))
        .map(|o| o.name.clone())
}

/// Puts disk `disk` in member slot `slot` of group `group` in place of a
/// lost member, to be rebuilt in the background. `assigned`: an
/// administrator's choice, which may bring back a failed or retired disk.
pub(crate) fn replace(
    core: &Arc<Core>,
    layouts: &Arc<Layouts>,
    shared: &Arc<Maintenance>,
    group: u32,
    slot: usize,
    disk: u32,
    assigned: bool,
) -> Result<(), StorageError> {
    replace_all(core, layouts, shared, &[(group, slot, disk)], assigned)
}

/// Makes every replacement of `each` (group, slot, disk) as [`replace`]
/// does, all in one metadata update: either all are recorded or, if any
/// is refused, none is.
pub(crate) fn replace_all(
    core: &Arc<Core>,
    layouts: &Arc<Layouts>,
    shared: &Arc<Maintenance>,
    each: &[(u32, usize, u32)],
    assigned: bool,
) -> Result<(), StorageError> {
    let mut planned = Vec::with_capacity(each.len());
    for &(group, slot, disk) in each {
        let r = checked_replacement(core, layouts, group, slot, disk, assigned)?;
        planned.push((group, slot, disk, r));
    }
    let mut partial = vec![false; planned.len()];
    core.update(|meta| {
        for (i, (group, slot, disk, r)) in planned.iter().enumerate() {
            let (group, slot, old) = (*group, *slot, r.old);
            let uuid = r.new.superblock().disk;
            if let Some(other) = in_other_group(meta, uuid, group, old) {
                return Err(StorageError::InUse(format!(
                    "disk {disk} is a member of group {other}"
                )));
            }
            let g = meta
                .groups
                .iter_mut()
                .find(|g| g.index == group)
                .ok_or_else(|| StorageError::Invalid(format!("group {group} was deleted")))?;
            if g.members.get(slot) != Some(&old) {
                return Err(StorageError::Invalid(format!(
                    "member {slot} of {} changed meanwhile",
                    g.name
                )));
            }
            // The lost member back in its own slot, having gone out in
            // sync: only what the bitmap marks was missed.
            partial[i] = uuid == old && g.readd.contains(&uuid);
            g.members[slot] = uuid;
            g.failed.retain(|u| *u != old && *u != uuid);
            g.readd.retain(|u| *u != old && *u != uuid);
            g.rebuilding.retain(|r| r.member != old && r.member != uuid);
            g.rebuilding.push(RebuildRecord {
                member: uuid,
                done: 0,
                partial: partial[i],
            });
            if old != uuid && !meta.retired.contains(&old) {
                meta.retired.push(old);
            }
            meta.retired.retain(|u| *u != uuid);
            // A hot spare in a group is a spare no more.
            meta.spares.retain(|u| *u != uuid);
        }
        Ok(())
    })?;
    for ((group, slot, _, r), partial) in planned.into_iter().zip(partial) {
        r.new.clear_failed();
        r.layout
            .members()
            .install(slot, Arc::clone(&r.new), partial);
        tracing::info!(
            group,
            member = slot,
            disk = %r.new.path().display(),
            partial,
            "member replaced; rebuilding (partial: only the regions written while it was out)"
        );
    }
    shared.wake();
    Ok(())
}

/// A group's worker: rebuilds, then resyncs, then ends.
fn work(core: &Arc<Core>, layout: &Layout, shared: &Maintenance) {
    let members = layout.members();
    while !shared.stopping() {
        let ms = members.rebuilding_all();
        if ms.is_empty() {
            break;
        }
        match rebuild(core, layout, shared, &ms) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(group = members.group(), members = ?ms, error = %e, "rebuild stopped");
                // A replacement that failed is recorded as such.
                let _ = members.settle();
                return;
            }
        }
    }
    let pending = members
        .bitmap
        .as_ref()
        .is_some_and(|b| b.pending_count() > 0);
    if pending
        && layout.can_resync()
        && !shared.stopping()
        && let Err(e) = resync(layout, shared)
    {
        tracing::error!(group = members.group(), error = %e, "resync stopped");
        let _ = members.settle();
    }
    members.set_idle();
}

/// Paces a stream of writes to the configured rate (read at every step,
/// so a change applies to a running rebuild).
struct Throttle {
    next: Instant,
}

impl Throttle {
    fn new() -> Self {
        Throttle {
            next: Instant::now(),
        }
    }

    /// `bytes` were written: waits until the rate allows more.
    fn pace(&mut self, bytes: u64, shared: &Maintenance) {
        let rate = shared.config().rebuild_rate;
        if rate == 0 {
            return;
        }
        let now = Instant::now();
        // No credit saved up beyond a second of idling.
        if self.next + Duration::from_secs(1) < now {
            self.next = now;
        }
        self.next += Duration::from_secs_f64(bytes as f64 / rate as f64);
        if self.next > now {
            shared.nap(self.next - now);
        }
    }
}

/// Rebuilds members `ms` in one pass from the lowest rebuild mark (each
/// joins at its own): `Ok(true)` when done, `Ok(false)` when stopped.
fn rebuild(
    core: &Arc<Core>,
    layout: &Layout,
    shared: &Maintenance,
    ms: &[usize],
) -> Result<bool, StorageError> {
    let members = layout.members();
    let group = members.group();
    let uuids: Vec<Uuid> = ms.iter().map(|&m| members.uuid(m)).collect();
    let per_member = members.per_member();
    let unit = layout.rebuild_unit();
    let step = STEP.div_ceil(unit) * unit;
    let from = ms
        .iter()
        .map(|&m| members.synced_to(m) / unit * unit)
        .min()
        .unwrap_or(per_member);
    let mut at = from;
    let started = Instant::now();
    let mut throttle = Throttle::new();
    let mut recorded = Instant::now();
    let mut suspect = 0;
    tracing::info!(
        group,
        members = ?ms,
        from,
        bytes = per_member,
        "rebuild started"
    );
    let sync_all = || -> Result<(), StorageError> {
        for &m in ms {
            if let Some(d) = members.disk(m) {
                d.sync()?;
            }
        }
        Ok(())
    };
    let record = || -> Result<(), StorageError> {
        sync_all()?;
        core.update(|meta| {
            let Some(g) = meta.groups.iter_mut().find(|g| g.index == group) else {
                return Ok(());
            };
            for (&m, uuid) in ms.iter().zip(&uuids) {
                if let Some(r) = g.rebuilding.iter_mut().find(|r| r.member == *uuid) {
                    r.done = members.synced_to(m).min(per_member);
                }
            }
            Ok(())
        })
    };
    while at < per_member {
        if shared.stopping() {
            record()?;
            return Ok(false);
        }
        for (&m, uuid) in ms.iter().zip(&uuids) {
            if members.uuid(m) != *uuid || !members.in_service(m) {
                return Err(StorageError::Io {
                    context: format!("rebuilding member {m} of group {group}"),
                    source: std::io::Error::other("the new member is out of service"),
                });
            }
        }
        let n = step.min(per_member - at);
        let due = ms.iter().filter(|&&m| members.synced_to(m) <= at).count() as u64;
        suspect += layout.rebuild_step(ms, at, n)?;
        at += n;
        // The limit is on what the rebuild writes, to every new member.
        throttle.pace(n * due.max(1), shared);
        if recorded.elapsed() >= CHECKPOINT_EVERY && at < per_member {
            record()?;
            recorded = Instant::now();
        }
    }
    sync_all()?;
    core.update(|meta| {
        if let Some(g) = meta.groups.iter_mut().find(|g| g.index == group) {
            g.rebuilding.retain(|r| !uuids.contains(&r.member));
        }
        Ok(())
    })?;
    for &m in ms {
        members.set_synced_to(m, IN_SYNC);
    }
    let secs = started.elapsed().as_secs_f64();
    if suspect > 0 {
        tracing::error!(
            group,
            members = ?ms,
            stripes = suspect,
            "rebuilt stripes the unit was writing when it stopped uncleanly while degraded: \
             their parity may have been out of step, so their rebuilt data may be wrong"
        );
    }
    tracing::info!(
        group,
        members = ?ms,
        bytes = per_member - from,
        seconds = secs,
        mib_per_s = (per_member - from) as f64 / (1 << 20) as f64 / secs.max(1e-9),
        "rebuild finished; the members are in sync"
    );
    Ok(true)
}

/// Resynchronises the regions the bitmap found marked.
fn resync(layout: &Layout, shared: &Maintenance) -> Result<(), StorageError> {
    let members = layout.members();
    let Some(bitmap) = &members.bitmap else {
        return Ok(());
    };
    let regions = bitmap.pending_regions();
    let started = Instant::now();
    let mut throttle = Throttle::new();
    tracing::info!(
        group = members.group(),
        regions = regions.len(),
        "resync started"
    );
    for r in &regions {
        if shared.stopping() || !layout.can_resync() {
            return Ok(());
        }
        let lo = *r as u64 * bitmap.region();
        let hi = (lo + bitmap.region()).min(members.per_member());
        layout.resync_range(lo, hi)?;
        bitmap.resynced(*r);
        throttle.pace(hi - lo, shared);
    }
    tracing::info!(
        group = members.group(),
        regions = regions.len(),
        seconds = started.elapsed().as_secs_f64(),
        "resync finished"
    );
    Ok(())
}
