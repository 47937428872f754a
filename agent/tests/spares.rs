//! Hot spares in the storage engine: a disk designated as hot spare takes
//! the place of a lost member by itself even with automatic spares off,
//! and before any other free disk with them on; it is kept out of new
//! groups, only a free working disk can be one, and the designation ends
//! when it joins a group.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dvsan_agent::storage::metadata::Level;
use dvsan_agent::storage::{
    DiskHealth, DiskSpec, GroupSpec, GroupState, MaintenanceConfig, MemberHealth, StorageError,
    Unit,
};

const MIB: u64 = 1 << 20;

/// Five 3 MiB disks; RAID 1 group 1 over disks 1 and 2 holding volume "v"
/// written with a pattern; disks 3–5 free.
fn rig(dir: &Path, auto_spare: bool) -> (Unit, Vec<PathBuf>, Vec<u8>) {
    let specs: Vec<DiskSpec> = (1..=5)
        .map(|i| DiskSpec {
            path: dir.join(format!("disk{i}.img")),
            size: 3 * MIB,
        })
        .collect();
    let config = MaintenanceConfig {
        auto_spare,
        ..MaintenanceConfig::default()
    };
    let unit = Unit::create_with(&specs, config).unwrap();
    unit.create_group(&GroupSpec {
        index: 1,
        name: "g".into(),
        level: Level::Raid1,
        chunk: 0,
        members: vec![1, 2],
    })
    .unwrap();
    let vol = unit
        .create_volume(1, "v", 1, unit.group_free(1).unwrap())
        .unwrap();
    let data: Vec<u8> = (0..vol.size()).map(|i| (i * 7 % 251) as u8).collect();
    vol.write(&data, 0).unwrap();
    vol.flush().unwrap();
    (unit, specs.into_iter().map(|s| s.path).collect(), data)
}

/// The unit back from every disk but disk 2.
fn without_disk_2(paths: &[PathBuf], auto_spare: bool) -> Unit {
    let refs: Vec<&Path> = paths
        .iter()
        .filter(|p| !p.ends_with("disk2.img"))
        .map(PathBuf::as_path)
        .collect();
    let config = MaintenanceConfig {
        auto_spare,
        ..MaintenanceConfig::default()
    };
    Unit::open_with(&refs, config).unwrap()
}

/// Waits (bounded) for group 1 to be optimal.
fn optimal(unit: &Unit) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while unit.group_health(1).unwrap().state != GroupState::Optimal {
        assert!(Instant::now() < deadline, "{:?}", unit.group_health(1));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The disk index in member slot `slot` of group 1.
fn member(unit: &Unit, slot: usize) -> u32 {
    let meta = unit.metadata();
    let uuid = meta.groups[0].members[slot];
    meta.disks.iter().find(|d| d.uuid == uuid).unwrap().index
}

fn reads_back(unit: &Unit, data: &[u8]) {
    let vol = unit.volume("v").unwrap().unwrap();
    let mut buf = vec![0u8; data.len()];
    vol.read(&mut buf, 0).unwrap();
    assert!(buf == data, "the volume reads back different data");
}

#[test]
fn a_hot_spare_replaces_a_missing_member_with_automatic_spares_off() {
    let dir = tempfile::tempdir().unwrap();
    let (unit, paths, data) = rig(dir.path(), false);
    unit.set_spare(4, true).unwrap();
    assert_eq!(unit.disk_health(4), Some(DiskHealth::Spare));
    assert_eq!(unit.disk_health(3), Some(DiskHealth::Ok));
    drop(unit);

    // Disk 3 is free and first in line by index, but not a hot spare.
    let unit = without_disk_2(&paths, false);
    optimal(&unit);
    assert_eq!(member(&unit, 1), 4);
    assert_eq!(
        unit.member_health(1).unwrap(),
        vec![MemberHealth::InSync, MemberHealth::InSync]
    );
    // In a group, it is a spare no more.
    assert!(unit.metadata().spares.is_empty());
    assert_eq!(unit.disk_health(4), Some(DiskHealth::Ok));
    assert_eq!(unit.disk_health(3), Some(DiskHealth::Ok));
    reads_back(&unit, &data);
}

#[test]
fn with_automatic_spares_on_a_hot_spare_goes_before_other_free_disks() {
    let dir = tempfile::tempdir().unwrap();
    let (unit, paths, data) = rig(dir.path(), true);
    unit.set_spare(5, true).unwrap();
    drop(unit);
    let unit = without_disk_2(&paths, true);
    optimal(&unit);
    assert_eq!(member(&unit, 1), 5);
    reads_back(&unit, &data);
}

#[test]
fn only_a_free_working_disk_is_a_hot_spare_and_it_stays_out_of_new_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (unit, _paths, _) = rig(dir.path(), false);
    assert!(matches!(
        unit.set_spare(1, true),
        Err(StorageError::InUse(_))
    ));
    assert!(matches!(
        unit.set_spare(9, true),
        Err(StorageError::Invalid(_))
    ));
    unit.set_spare(3, true).unwrap();
    // Twice is once.
    unit.set_spare(3, true).unwrap();
    assert_eq!(unit.metadata().spares.len(), 1);
    let group = |members| GroupSpec {
        index: 2,
        name: "h".into(),
        level: Level::Raid1,
        chunk: 0,
        members,
    };
    assert!(matches!(
        unit.create_group(&group(vec![3, 4])),
        Err(StorageError::InUse(_))
    ));
    // Lifted, the disk is free for a group again.
    unit.set_spare(3, false).unwrap();
    assert_eq!(unit.disk_health(3), Some(DiskHealth::Ok));
    unit.create_group(&group(vec![3, 4])).unwrap();
    // Lifting a designation that is not there changes nothing.
    unit.set_spare(5, false).unwrap();
    assert!(unit.metadata().spares.is_empty());
}
