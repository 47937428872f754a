//! Rebuild and resync on real files: every RAID level matches a flat model
//! under random writes, reads, member failures, replacements (explicit or
//! by a spare on its own), rebuilds running under the writes, and
//! restarts in the middle of them; a replaced member is rebuilt while
//! written and the group is optimal again with mirrors and parity in step;
//! an interrupted rebuild resumes; a clean stop leaves nothing to resync;
//! a crash image is resynchronised region by region (a torn parity fixed,
//! a mirror made whole); a degraded RAID 5 that crashed refuses to rebuild
//! data from parity that may be stale (the write hole) until a rebuild;
//! a member that comes back to its own slot gets only the regions written
//! while it was out, also across a clean restart.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{DISK, MIB, apply, check_contents, fill, scratch, volume};
use dvsan_agent::storage::disk::DATA_OFFSET;
use dvsan_agent::storage::layout::tolerates;
use dvsan_agent::storage::metadata::Level;
use dvsan_agent::storage::{
    DiskHealth, DiskSpec, GroupSpec, GroupState, MaintenanceConfig, StorageError, Unit,
};
use proptest::prelude::*;

fn config(rate: u64, auto_spare: bool) -> MaintenanceConfig {
    MaintenanceConfig {
        rebuild_rate: rate,
        auto_spare,
        bitmap_region: 256 << 10,
        clear_delay: Duration::from_millis(100),
    }
}

/// A unit of `n` member disks (group 1, volume "v" filling it) and
/// `spares` free disks after them.
struct Rig {
    dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
    config: MaintenanceConfig,
}

impl Rig {
    fn new(level: Level, n: usize, spares: usize, config: MaintenanceConfig) -> (Rig, Unit) {
        let dir = scratch();
        let specs: Vec<DiskSpec> = (0..n + spares)
            .map(|i| DiskSpec {
                path: dir.path().join(format!("disk{i}.img")),
                size: DISK,
            })
            .collect();
        let unit = Unit::create_with(&specs, config).unwrap();
        unit.create_group(&GroupSpec {
            index: 1,
            name: "g".into(),
            level,
            chunk: 4096,
            members: (1..=n as u32).collect(),
        })
        .unwrap();
        unit.create_volume(1, "v", 1, unit.group_free(1).unwrap())
            .unwrap();
        let paths = specs.into_iter().map(|s| s.path).collect();
        (Rig { dir, paths, config }, unit)
    }

    fn open_from(&self, paths: &[PathBuf]) -> Unit {
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        Unit::open_with(&refs, self.config).unwrap()
    }

    fn open(&self) -> Unit {
        self.open_from(&self.paths)
    }

    /// A copy of every disk file as it is now: what a crash would leave.
    fn crash_image(&self, name: &str) -> Vec<PathBuf> {
        let dir = self.dir.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        self.paths
            .iter()
            .map(|p| {
                let to = dir.join(p.file_name().unwrap());
                std::fs::copy(p, &to).unwrap();
                to
            })
            .collect()
    }
}

fn state(unit: &Unit) -> GroupState {
    unit.group_health(1).unwrap().state
}

/// Waits (bounded) until no rebuild or resync runs, and a supervisor pass
/// has had the chance to start one.
fn settle(unit: &Unit) -> GroupState {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = None;
    loop {
        let s = state(unit);
        if matches!(s, GroupState::Rebuilding | GroupState::Resyncing) {
            quiet_since = None;
        } else if quiet_since.get_or_insert_with(Instant::now).elapsed()
            > Duration::from_millis(700)
        {
            return s;
        }
        assert!(Instant::now() < deadline, "maintenance never ended: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The disk in member slot `m`, when present.
fn slot_disk(unit: &Unit, m: usize) -> Option<Arc<dvsan_agent::storage::disk::Disk>> {
    let uuid = unit.metadata().groups[0].members[m];
    unit.disks()
        .into_iter()
        .find(|d| d.superblock().disk == uuid)
}

/// Which member slots are out of service, not yet rebuilt, or broken by
/// the test (perhaps not found out yet).
fn lost(unit: &Unit, broken: &[uuid::Uuid]) -> Vec<bool> {
    let n = unit.metadata().groups[0].members.len();
    (0..n)
        .map(|m| {
            slot_disk(unit, m).is_none_or(|d| {
                broken.contains(&d.superblock().disk)
                    || unit.disk_health(d.superblock().index) != Some(DiskHealth::Ok)
            })
        })
        .collect()
}

/// Checks from the member files that mirrors agree and P/Q match the data.
fn check_redundancy(unit: &Unit) {
    let meta = unit.metadata();
    let g = &meta.groups[0];
    let n = g.members.len();
    let members: Vec<Vec<u8>> = (0..n)
        .map(|m| {
            let d = slot_disk(unit, m).expect("every member present");
            std::fs::read(d.path()).unwrap()[DATA_OFFSET as usize..].to_vec()
        })
        .collect();
    match g.level {
        Level::Raid1 => {
            let used = g.capacity as usize;
            for m in &members[1..] {
                assert!(m[..used] == members[0][..used], "mirrors differ");
            }
        }
        Level::Raid10 => {
            let used = (g.capacity / (n as u64 / 2)) as usize;
            for pair in members.chunks(2) {
                assert!(pair[0][..used] == pair[1][..used], "mirrors differ");
            }
        }
        Level::Raid5 | Level::Raid6 => {
            let parity = if g.level == Level::Raid5 { 1 } else { 2 };
            let k = n - parity;
            let chunk = g.chunk as usize;
            for s in 0..g.capacity as usize / k / chunk {
                let p = n - 1 - s % n;
                let range = s * chunk..(s + 1) * chunk;
                let mut xor = vec![0u8; chunk];
                let mut syn = vec![0u8; chunk];
                for j in (0..k).rev() {
                    let d = &members[(p + parity + j) % n][range.clone()];
                    for i in 0..chunk {
                        xor[i] ^= d[i];
                        syn[i] = ((syn[i] << 1) ^ if syn[i] & 0x80 != 0 { 0x1d } else { 0 }) ^ d[i];
                    }
                }
                assert!(members[p][range.clone()] == xor[..], "P of stripe {s}");
                if parity == 2 {
                    assert!(members[(p + 1) % n][range] == syn[..], "Q of stripe {s}");
                }
            }
        }
        Level::Linear | Level::Raid0 => {}
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write(u64, usize, u64),
    Check,
    Fail(usize),
    Replace(usize, usize),
    Readd(usize),
    Settle,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u64>(), prop_oneof![1usize..5000, 1usize..300_000], any::<u64>())
            .prop_map(|(o, l, s)| Op::Write(o, l, s)),
        2 => Just(Op::Check),
        2 => any::<usize>().prop_map(Op::Fail),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Replace(a, b)),
        2 => any::<usize>().prop_map(Op::Readd),
        1 => Just(Op::Settle),
        1 => Just(Op::Reopen),
    ]
}

/// Random operations against a flat model; the contents always match it.
fn model_run(level: Level, n: usize, spares: usize, rate: u64, auto_spare: bool, ops: &[Op]) {
    let redundant = !matches!(level, Level::Linear | Level::Raid0);
    let (rig, unit) = Rig::new(level, n, spares, config(rate, auto_spare));
    let mut unit = Some(unit);
    let size = volume(unit.as_ref().unwrap()).size();
    let mut model = vec![0u8; size as usize];
    // Disks failed by the test in this run of the unit.
    let mut broken = vec![];
    for op in ops {
        let u = unit.as_ref().unwrap();
        let vol = volume(u);
        match *op {
            Op::Write(o, l, s) => apply(&vol, &mut model, o, l, s),
            Op::Check => {
                check_contents(&vol, &model);
            }
            Op::Fail(sel) if redundant => {
                // Reads find failures out: the lost list is then current.
                check_contents(&vol, &model);
                let m = sel % n;
                let mut after = lost(u, &broken);
                after[m] = true;
                if tolerates(level, &after)
                    && let Some(d) = slot_disk(u, m)
                {
                    d.fail_for_test();
                    broken.push(d.superblock().disk);
                    check_contents(&vol, &model);
                }
            }
            Op::Replace(slot, spare) if redundant => {
                check_contents(&vol, &model);
                let meta = u.metadata();
                let out: Vec<usize> = (0..n)
                    .filter(|&m| {
                        slot_disk(u, m).is_none_or(|d| {
                            u.disk_health(d.superblock().index) == Some(DiskHealth::Failed)
                        })
                    })
                    .collect();
                let free: Vec<u32> = u
                    .disks()
                    .iter()
                    .filter(|d| {
                        !d.is_failed()
                            && !meta.groups[0].members.contains(&d.superblock().disk)
                            && !meta.retired.contains(&d.superblock().disk)
                    })
                    .map(|d| d.superblock().index)
                    .collect();
                if !out.is_empty() && !free.is_empty() {
                    let slot = out[slot % out.len()];
                    let disk = free[spare % free.len()];
                    match u.replace_member(1, slot, disk) {
                        Ok(()) => {}
                        // A spare may have been put in meanwhile.
                        Err(StorageError::Invalid(_) | StorageError::InUse(_)) if auto_spare => {}
                        Err(e) => panic!("replacing member {slot} by disk {disk}: {e}"),
                    }
                }
            }
            Op::Readd(sel) if redundant => {
                // A member out of service whose own disk is back (not
                // broken in this run) is put in its slot again.
                check_contents(&vol, &model);
                let back: Vec<(usize, u32)> = (0..n)
                    .filter_map(|m| {
                        let d = slot_disk(u, m)?;
                        let out = u.disk_health(d.superblock().index) == Some(DiskHealth::Failed);
                        (out && !broken.contains(&d.superblock().disk))
                            .then(|| (m, d.superblock().index))
                    })
                    .collect();
                if !back.is_empty() {
                    let (slot, disk) = back[sel % back.len()];
                    match u.replace_member(1, slot, disk) {
                        Ok(()) => {}
                        Err(StorageError::Invalid(_) | StorageError::InUse(_)) if auto_spare => {}
                        Err(e) => panic!("putting disk {disk} back in slot {slot}: {e}"),
                    }
                }
            }
            Op::Settle => {
                let s = settle(u);
                assert!(s != GroupState::Failed);
                check_contents(&vol, &model);
                if s == GroupState::Optimal && lost(u, &broken).iter().all(|l| !l) {
                    vol.flush().unwrap();
                    check_redundancy(u);
                }
            }
            Op::Reopen => {
                vol.flush().unwrap();
                drop(vol);
                drop(unit.take());
                unit = Some(rig.open());
                broken.clear();
            }
            Op::Fail(_) | Op::Replace(..) | Op::Readd(_) => {}
        }
    }
    let u = unit.as_ref().unwrap();
    let s = settle(u);
    assert!(s != GroupState::Failed, "{s:?}");
    check_contents(&volume(u), &model);
    if s == GroupState::Optimal && lost(u, &broken).iter().all(|l| !l) {
        volume(u).flush().unwrap();
        check_redundancy(u);
    }
}

fn rate() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(4 * MIB)]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn raid1_matches_a_flat_model_through_failures_and_rebuilds(
        n in 2usize..=3, spares in 0usize..=2, rate in rate(), auto in any::<bool>(), ops in ops(),
    ) {
        model_run(Level::Raid1, n, spares, rate, auto, &ops);
    }

    #[test]
    fn raid10_matches_a_flat_model_through_failures_and_rebuilds(
        half in 2usize..=3, spares in 0usize..=2, rate in rate(), auto in any::<bool>(), ops in ops(),
    ) {
        model_run(Level::Raid10, 2 * half, spares, rate, auto, &ops);
    }

    #[test]
    fn raid5_matches_a_flat_model_through_failures_and_rebuilds(
        n in 3usize..=5, spares in 0usize..=2, rate in rate(), auto in any::<bool>(), ops in ops(),
    ) {
        model_run(Level::Raid5, n, spares, rate, auto, &ops);
    }

    #[test]
    fn raid6_matches_a_flat_model_through_failures_and_rebuilds(
        n in 4usize..=6, spares in 0usize..=2, rate in rate(), auto in any::<bool>(), ops in ops(),
    ) {
        model_run(Level::Raid6, n, spares, rate, auto, &ops);
    }

    /// No redundancy: failures are not survivable and not tried; the
    /// writes, reads and restarts still match the model.
    #[test]
    fn raid0_and_linear_match_a_flat_model_with_maintenance_running(
        raid0 in any::<bool>(), n in 2usize..=3, ops in ops(),
    ) {
        let level = if raid0 { Level::Raid0 } else { Level::Linear };
        model_run(level, n, 1, 0, true, &ops);
    }
}

#[test]
fn a_replaced_member_is_rebuilt_while_written_and_the_group_is_optimal_again() {
    for (level, n, fail) in [
        (Level::Raid1, 2, 0),
        (Level::Raid10, 4, 3),
        (Level::Raid5, 4, 1),
        (Level::Raid6, 5, 4),
    ] {
        // 2 MiB per member at 2 MiB/s: about a second of rebuild.
        let (rig, unit) = Rig::new(level, n, 1, config(2 * MIB, false));
        let vol = volume(&unit);
        let mut model = fill(&vol, 1);
        let old = slot_disk(&unit, fail).unwrap();
        old.fail_for_test();
        // Mirrors take turns: read twice so that the failure is found.
        check_contents(&vol, &model);
        check_contents(&vol, &model);
        assert_eq!(state(&unit), GroupState::Degraded, "{level:?}");
        let spare = n as u32 + 1;
        unit.replace_member(1, fail, spare).unwrap();
        assert_eq!(unit.disk_health(spare), Some(DiskHealth::Rebuilding));
        assert_eq!(unit.metadata().groups[0].members[fail], {
            let d = unit.disks();
            d[n].superblock().disk
        });
        // Writes and reads while it rebuilds; progress only grows.
        let mut seen = vec![];
        let mut i = 0u64;
        loop {
            // State and progress from one snapshot: the rebuild may end
            // between two calls.
            let health = unit.group_health(1).unwrap();
            if health.state != GroupState::Rebuilding {
                break;
            }
            seen.push(health.rebuild_progress);
            apply(&vol, &mut model, i * 777_777, 100_000, 100 + i);
            check_contents(&vol, &model);
            i += 1;
            std::thread::sleep(Duration::from_millis(30));
        }
        assert!(
            seen.len() > 3,
            "{level:?}: the rebuild was not seen: {seen:?}"
        );
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(seen.iter().all(|p| *p < 100));
        assert_eq!(state(&unit), GroupState::Optimal, "{level:?}");
        assert_eq!(unit.group_health(1).unwrap().rebuild_progress, 100);
        assert_eq!(unit.disk_health(spare), Some(DiskHealth::Ok));
        assert_eq!(
            unit.disk_health(old.superblock().index),
            Some(DiskHealth::Failed)
        );
        assert!(unit.metadata().groups[0].rebuilding.is_empty());
        check_contents(&vol, &model);
        vol.flush().unwrap();
        check_redundancy(&unit);
        drop(vol);
        drop(unit);
        // The new member is a full member; the old one is retired.
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Optimal, "{level:?}");
        assert_eq!(
            unit.disk_health(old.superblock().index),
            Some(DiskHealth::Failed)
        );
        check_contents(&volume(&unit), &model);
        check_redundancy(&unit);
    }
}

#[test]
fn a_free_disk_replaces_a_failed_member_by_itself() {
    let (_rig, unit) = Rig::new(Level::Raid5, 3, 1, config(0, true));
    let vol = volume(&unit);
    let mut model = vec![0u8; vol.size() as usize];
    apply(&vol, &mut model, 5, 3 * MIB as usize, 7);
    slot_disk(&unit, 2).unwrap().fail_for_test();
    apply(&vol, &mut model, MIB, 1000, 8);
    assert_eq!(settle(&unit), GroupState::Optimal);
    assert_eq!(
        unit.metadata().groups[0].members[2],
        unit.disks()[3].superblock().disk
    );
    check_contents(&vol, &model);
    vol.flush().unwrap();
    check_redundancy(&unit);
}

/// Waits (bounded) until the first rebuild record shows progress.
fn wait_for_recorded_progress(unit: &Unit) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while unit.metadata().groups[0].rebuilding[0].done == 0 {
        assert!(Instant::now() < deadline, "no progress recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_rebuild_stopped_by_a_restart_resumes_from_its_record() {
    // 512 KiB/s over 2 MiB: records two seconds in, at about 1 MiB.
    let (rig, unit) = Rig::new(Level::Raid1, 2, 1, config(MIB / 2, false));
    let vol = volume(&unit);
    let model = fill(&vol, 3);
    vol.flush().unwrap();
    drop(vol);
    drop(unit);
    std::fs::remove_file(&rig.paths[0]).unwrap();
    let unit = rig.open();
    assert_eq!(state(&unit), GroupState::Degraded);
    unit.replace_member(1, 0, 3).unwrap();
    wait_for_recorded_progress(&unit);
    let recorded = unit.metadata().groups[0].rebuilding[0].done;
    drop(unit);
    let paths = rig.paths[1..].to_vec();
    let unit = rig.open_from(&paths);
    let health = unit.group_health(1).unwrap();
    assert_eq!(health.state, GroupState::Rebuilding);
    assert!(health.rebuild_progress >= (recorded * 100 / (2 * MIB)) as u8);
    unit.set_maintenance_config(config(0, false));
    assert_eq!(settle(&unit), GroupState::Optimal);
    check_contents(&volume(&unit), &model);
    check_redundancy(&unit);
}

#[test]
fn raid6_rebuilds_two_replaced_members_in_one_pass_each_from_its_own_mark() {
    // 512 KiB/s over 2 MiB per member: the first replacement records some
    // progress before the unit stops; the second none.
    let (rig, unit) = Rig::new(Level::Raid6, 5, 2, config(MIB / 2, false));
    let vol = volume(&unit);
    let model = fill(&vol, 11);
    vol.flush().unwrap();
    drop(vol);
    drop(unit);
    std::fs::remove_file(&rig.paths[1]).unwrap();
    std::fs::remove_file(&rig.paths[3]).unwrap();
    let present: Vec<PathBuf> = rig
        .paths
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1 && *i != 3)
        .map(|(_, p)| p.clone())
        .collect();
    let unit = rig.open_from(&present);
    assert_eq!(state(&unit), GroupState::Degraded);
    unit.replace_member(1, 1, 6).unwrap();
    wait_for_recorded_progress(&unit);
    unit.replace_member(1, 3, 7).unwrap();
    drop(unit);
    // Both recorded as rebuilding, at different marks: after the restart
    // one pass starts at the lower mark and the other member joins at its
    // own, the stripes between rebuilt from the first's P and Q.
    let unit = rig.open_from(&present);
    let marks: Vec<u64> = unit.metadata().groups[0]
        .rebuilding
        .iter()
        .map(|r| r.done)
        .collect();
    assert_eq!(marks.len(), 2, "{marks:?}");
    assert!(
        marks.iter().any(|&d| d > 0) && marks.contains(&0),
        "{marks:?}"
    );
    unit.set_maintenance_config(config(0, false));
    assert_eq!(settle(&unit), GroupState::Optimal);
    assert!(unit.metadata().groups[0].rebuilding.is_empty());
    check_contents(&volume(&unit), &model);
    volume(&unit).flush().unwrap();
    check_redundancy(&unit);
}

#[test]
fn replacements_made_together_are_made_all_or_none() {
    let (_rig, unit) = Rig::new(Level::Raid6, 5, 2, config(0, false));
    let vol = volume(&unit);
    let model = fill(&vol, 5);
    vol.flush().unwrap();
    for m in [0, 1] {
        slot_disk(&unit, m).unwrap().fail_for_test();
    }
    // The writes find both members out.
    check_contents(&vol, &model);
    vol.write(&model[..4096], 0).unwrap();
    drop(vol);
    assert_eq!(state(&unit), GroupState::Degraded);
    let before = unit.metadata().groups[0].clone();
    // Each alone would be accepted; together they put disk 6 in two
    // slots, which the second finds once the first is recorded.
    let e = unit.replace_members(&[(1, 0, 6), (1, 1, 6)]).unwrap_err();
    assert!(matches!(e, StorageError::InUse(_)), "{e}");
    let after = unit.metadata().groups[0].clone();
    assert_eq!(
        after.members, before.members,
        "a refused pair changed a slot"
    );
    assert!(after.rebuilding.is_empty(), "{:?}", after.rebuilding);
    assert_eq!(state(&unit), GroupState::Degraded);
    // A valid pair: both made, both rebuilt.
    unit.replace_members(&[(1, 0, 6), (1, 1, 7)]).unwrap();
    assert_eq!(unit.metadata().groups[0].rebuilding.len(), 2);
    assert_eq!(settle(&unit), GroupState::Optimal);
    check_contents(&volume(&unit), &model);
    volume(&unit).flush().unwrap();
    check_redundancy(&unit);
}

#[test]
fn replacing_is_refused_where_it_cannot_work() {
    let (_rig, unit) = Rig::new(Level::Raid5, 3, 1, config(0, false));
    let e = unit.replace_member(1, 0, 4).unwrap_err();
    assert!(e.to_string().contains("in service"), "{e}");
    slot_disk(&unit, 0).unwrap().fail_for_test();
    check_contents(&volume(&unit), &vec![0u8; volume(&unit).size() as usize]);
    volume(&unit).write(&[1], 0).unwrap();
    assert!(matches!(
        unit.replace_member(1, 0, 2),
        Err(StorageError::InUse(_))
    ));
    assert!(unit.replace_member(1, 3, 4).is_err());
    assert!(unit.replace_member(2, 0, 4).is_err());
    assert!(unit.replace_member(1, 0, 9).is_err());

    let dir = scratch();
    let specs: Vec<DiskSpec> = [DISK, DISK, DISK, DISK, 2 * MIB + MIB / 2]
        .iter()
        .enumerate()
        .map(|(i, size)| DiskSpec {
            path: dir.path().join(format!("d{i}")),
            size: *size,
        })
        .collect();
    let unit = Unit::create_with(&specs, config(0, false)).unwrap();
    for (index, level) in [(1, Level::Raid0), (2, Level::Raid1)] {
        unit.create_group(&GroupSpec {
            index,
            name: format!("g{index}"),
            level,
            chunk: 0,
            members: vec![2 * index - 1, 2 * index],
        })
        .unwrap();
    }
    unit.disks()[0].fail_for_test();
    unit.disks()[2].fail_for_test();
    // The metadata write finds both out.
    unit.create_volume(1, "v", 2, MIB).unwrap();
    let e = unit.replace_member(1, 0, 5).unwrap_err();
    assert!(e.to_string().contains("no redundancy"), "{e}");
    // Too small to hold a member.
    assert!(matches!(
        unit.replace_member(2, 0, 5),
        Err(StorageError::NoSpace(_))
    ));
}

#[test]
fn a_clean_stop_leaves_nothing_to_resync() {
    for level in [Level::Raid1, Level::Raid10, Level::Raid5, Level::Raid6] {
        let n = if level == Level::Raid1 { 2 } else { 4 };
        let slow = MaintenanceConfig {
            clear_delay: Duration::from_secs(600),
            ..config(0, false)
        };
        let (rig, unit) = Rig::new(level, n, 0, slow);
        let vol = volume(&unit);
        let model = fill(&vol, 11);
        // Flushed (the allocation map is durable) but the bits would stay
        // marked for ten minutes: dropping the unit is what clears them.
        vol.flush().unwrap();
        drop(vol);
        drop(unit);
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Optimal, "{level:?}");
        check_contents(&volume(&unit), &model);
    }
}

#[test]
fn a_crash_image_is_resynced_region_by_region() {
    for (level, n) in [
        (Level::Raid1, 2),
        (Level::Raid10, 4),
        (Level::Raid5, 3),
        (Level::Raid6, 4),
    ] {
        let slow = MaintenanceConfig {
            clear_delay: Duration::from_secs(600),
            ..config(0, false)
        };
        let (rig, unit) = Rig::new(level, n, 0, slow);
        let vol = volume(&unit);
        let mut model = vec![0u8; vol.size() as usize];
        // Region 0 (256 KiB of each member) written; the rest never.
        apply(&vol, &mut model, 0, 100_000, 21);
        vol.flush().unwrap();
        let image = rig.crash_image("crash");
        drop(vol);
        drop(unit);
        // A torn write: the last member's first chunk never made it (the
        // second mirror, or stripe 0's P).
        let torn = &image[n - 1];
        let mut bytes = std::fs::read(torn).unwrap();
        for b in &mut bytes[DATA_OFFSET as usize..DATA_OFFSET as usize + 4096] {
            *b = !*b;
        }
        std::fs::write(torn, bytes).unwrap();
        let unit = rig.open_from(&image);
        let s = unit.group_health(1).unwrap();
        assert!(
            matches!(s.state, GroupState::Resyncing | GroupState::Optimal),
            "{level:?}: {s:?}"
        );
        assert_eq!(settle(&unit), GroupState::Optimal, "{level:?}");
        let vol = volume(&unit);
        // Mirrors are copied from the first; parity is recomputed.
        check_contents(&vol, &model);
        vol.flush().unwrap();
        check_redundancy(&unit);
        drop(vol);
        drop(unit);
        let unit = rig.open_from(&image);
        assert_eq!(state(&unit), GroupState::Optimal, "{level:?}");
    }
}

#[test]
fn a_degraded_raid5_after_a_crash_refuses_stale_parity_until_rebuilt() {
    let slow = MaintenanceConfig {
        clear_delay: Duration::from_secs(600),
        ..config(0, false)
    };
    let (rig, unit) = Rig::new(Level::Raid5, 3, 1, slow);
    let vol = volume(&unit);
    let mut model = fill(&vol, 31);
    vol.flush().unwrap();
    // Clean, then one region written again and the unit crashes.
    drop(vol);
    drop(unit);
    let unit = rig.open();
    let vol = volume(&unit);
    apply(&vol, &mut model, 10, 2000, 32);
    vol.flush().unwrap();
    let mut image = rig.crash_image("crash");
    drop(vol);
    drop(unit);
    // Member 0 is lost with it.
    image.remove(0);
    let unit = rig.open_from(&image);
    assert_eq!(state(&unit), GroupState::Degraded);
    let vol = volume(&unit);
    // Stripe 0's chunk on member 0 (D0) would be rebuilt from parity the
    // crash may have left stale: an I/O error, not guessed bytes.
    let mut buf = vec![0u8; 4096];
    let e = vol.read(&mut buf, 0).unwrap_err();
    assert!(e.to_string().contains("write hole"), "{e}");
    // Chunks on surviving members, and regions not marked, read fine.
    vol.read(&mut buf, 4096).unwrap();
    assert_eq!(buf, model[4096..8192]);
    let far = MIB as usize;
    vol.read(&mut buf, far as u64).unwrap();
    assert_eq!(buf, model[far..far + 4096]);
    // A spare rebuilds it (nothing better to go by) and parity is
    // recomputed: the group is whole and every read works.
    unit.replace_member(1, 0, 4).unwrap();
    assert_eq!(settle(&unit), GroupState::Optimal);
    check_contents(&vol, &model);
    vol.flush().unwrap();
    check_redundancy(&unit);
}

/// Member 0 fails; the volume is written in one place, the unit restarts
/// cleanly while degraded and is written in another; then member 0's own
/// disk goes back in its slot: only the two regions written meanwhile are
/// rebuilt, and contents, mirrors and parity are whole.
fn a_member_back_in_its_own_slot_gets_only_what_it_missed(level: Level, n: usize) {
    let (rig, unit) = Rig::new(level, n, 0, config(0, false));
    let vol = volume(&unit);
    let mut model = fill(&vol, 11);
    // Everything on every member: no region stays marked.
    unit.flush_all().unwrap();
    let gone = slot_disk(&unit, 0).unwrap();
    let index = gone.superblock().index;
    gone.fail_for_test();
    check_contents(&vol, &model);
    apply(&vol, &mut model, 4096, 8192, 12);
    assert_eq!(settle(&unit), GroupState::Degraded);
    assert!(
        unit.metadata().groups[0]
            .readd
            .contains(&gone.superblock().disk)
    );
    drop((vol, gone));
    drop(unit);

    let unit = rig.open();
    assert_eq!(state(&unit), GroupState::Degraded);
    let vol = volume(&unit);
    check_contents(&vol, &model);
    let size = vol.size();
    apply(&vol, &mut model, size - 5000, 3000, 13);
    // What the MIB reports a re-add would copy: those regions, no more.
    let readd = unit.member_readd_bytes(1).unwrap();
    assert!(readd[0] > 0 && readd[0] <= 4 * (256 << 10), "{readd:?}");
    assert!(readd[1..].iter().all(|b| *b == 0), "{readd:?}");
    unit.replace_member(1, 0, index).unwrap();
    assert_eq!(settle(&unit), GroupState::Optimal);
    check_contents(&vol, &model);
    vol.flush().unwrap();
    check_redundancy(&unit);
    let g = &unit.metadata().groups[0];
    assert!(g.readd.is_empty() && g.rebuilding.is_empty() && g.failed.is_empty());
    assert!(unit.member_readd_bytes(1).unwrap().iter().all(|b| *b == 0));
    // Two regions of 256 KiB (RAID 10 and the parity levels may touch a
    // neighbour's region at most once more each).
    let rebuilt = unit.rebuilt_bytes(1).unwrap();
    assert!(rebuilt > 0, "nothing rebuilt");
    assert!(
        rebuilt <= 4 * (256 << 10),
        "{rebuilt} bytes rebuilt of a {DISK}-byte disk"
    );

    // Whole again: the bits clear, and a clean stop leaves nothing.
    drop(vol);
    drop(unit);
    let unit = rig.open();
    assert_eq!(state(&unit), GroupState::Optimal);
    check_contents(&volume(&unit), &model);
}

#[test]
fn raid1_member_back_in_its_own_slot_gets_only_what_it_missed() {
    a_member_back_in_its_own_slot_gets_only_what_it_missed(Level::Raid1, 2);
}

#[test]
fn raid10_member_back_in_its_own_slot_gets_only_what_it_missed() {
    a_member_back_in_its_own_slot_gets_only_what_it_missed(Level::Raid10, 4);
}

#[test]
fn raid5_member_back_in_its_own_slot_gets_only_what_it_missed() {
    a_member_back_in_its_own_slot_gets_only_what_it_missed(Level::Raid5, 3);
}

#[test]
fn raid6_member_back_in_its_own_slot_gets_only_what_it_missed() {
    a_member_back_in_its_own_slot_gets_only_what_it_missed(Level::Raid6, 4);
}

/// Member 0 fails during a write, which finds it out (no read did
/// before): the write had started with every member in service, so its
/// regions are marked missed only as it ends (or as the member's loss is
/// taken in). The disk works again and goes back in its slot, the unit
/// still running: it must get that write, or mirrors or parity disagree.
fn a_member_lost_by_a_write_gets_that_write_back(level: Level, n: usize) {
    let (_rig, unit) = Rig::new(level, n, 0, config(0, false));
    let vol = volume(&unit);
    let mut model = fill(&vol, 51);
    unit.flush_all().unwrap();
    let gone = slot_disk(&unit, 0).unwrap();
    let index = gone.superblock().index;
    // The region is marked in the bitmap on disk (cleared only after
    // 100 ms without writes): the next write there stores no bitmap
    // image, and its own member I/O is the first to find the failure.
    apply(&vol, &mut model, 0, 4096, 52);
    gone.fail_for_test();
    // One write, one chunk (RAID 5: stripe 0's first, on member 0).
    apply(&vol, &mut model, 0, 4096, 53);
    assert_eq!(settle(&unit), GroupState::Degraded);
    assert!(
        unit.metadata().groups[0]
            .readd
            .contains(&gone.superblock().disk)
    );
    let readd = unit.member_readd_bytes(1).unwrap();
    assert!(readd[0] > 0, "the write's regions were not kept: {readd:?}");
    gone.heal_for_test();
    unit.replace_member(1, 0, index).unwrap();
    assert_eq!(settle(&unit), GroupState::Optimal);
    check_contents(&vol, &model);
    vol.flush().unwrap();
    check_redundancy(&unit);
    assert!(unit.rebuilt_bytes(1).unwrap() <= 4 * (256 << 10));
}

#[test]
fn raid1_member_lost_by_a_write_gets_that_write_back() {
    a_member_lost_by_a_write_gets_that_write_back(Level::Raid1, 2);
}

#[test]
fn raid5_member_lost_by_a_write_gets_that_write_back() {
    a_member_lost_by_a_write_gets_that_write_back(Level::Raid5, 3);
}

#[test]
fn a_member_replaced_by_another_disk_is_rebuilt_whole() {
    let (_rig, unit) = Rig::new(Level::Raid1, 2, 1, config(0, false));
    let vol = volume(&unit);
    let model = fill(&vol, 21);
    vol.flush().unwrap();
    slot_disk(&unit, 0).unwrap().fail_for_test();
    check_contents(&vol, &model);
    unit.replace_member(1, 0, 3).unwrap();
    assert_eq!(settle(&unit), GroupState::Optimal);
    check_contents(&vol, &model);
    let per_member = unit.metadata().groups[0].capacity;
    assert!(unit.rebuilt_bytes(1).unwrap() >= per_member);
}

#[test]
fn a_member_back_after_a_crash_while_it_was_out_gets_what_it_missed() {
    let (rig, unit) = Rig::new(Level::Raid5, 3, 0, config(0, false));
    let vol = volume(&unit);
    let mut model = fill(&vol, 31);
    unit.flush_all().unwrap();
    let gone = slot_disk(&unit, 0).unwrap();
    let index = gone.superblock().index;
    gone.fail_for_test();
    check_contents(&vol, &model);
    apply(&vol, &mut model, 700 << 10, 20_000, 32);
    vol.flush().unwrap();
    // What a crash would leave, with the write's regions still marked.
    let image = rig.crash_image("crash");
    drop((vol, gone));
    drop(unit);

    // (Until the member is back, the marked stripes' lost chunks are not
    // served: the write hole.)
    let unit = rig.open_from(&image);
    assert_eq!(state(&unit), GroupState::Degraded);
    let vol = volume(&unit);
    unit.replace_member(1, 0, index).unwrap();
    assert_eq!(settle(&unit), GroupState::Optimal);
    check_contents(&vol, &model);
    vol.flush().unwrap();
    check_redundancy(&unit);
    assert!(unit.rebuilt_bytes(1).unwrap() < unit.metadata().groups[0].capacity / 2);
}

#[test]
fn a_member_lost_while_being_rebuilt_is_not_offered_a_partial_rebuild() {
    // 512 KiB/s over 2 MiB: the replacement is still being rebuilt when
    // it fails.
    let (_rig, unit) = Rig::new(Level::Raid1, 2, 1, config(MIB / 2, false));
    let vol = volume(&unit);
    let mut model = fill(&vol, 41);
    unit.flush_all().unwrap();
    slot_disk(&unit, 0).unwrap().fail_for_test();
    check_contents(&vol, &model);
    unit.replace_member(1, 0, 3).unwrap();
    assert_eq!(state(&unit), GroupState::Rebuilding);
    let replacement = slot_disk(&unit, 0).unwrap();
    replacement.fail_for_test();
    apply(&vol, &mut model, 0, 100_000, 42);
    assert_eq!(settle(&unit), GroupState::Degraded);
    check_contents(&vol, &model);
    let g = &unit.metadata().groups[0];
    assert!(g.failed.contains(&replacement.superblock().disk));
    assert!(
        !g.readd.contains(&replacement.superblock().disk),
        "{:?}",
        g.readd
    );
}
