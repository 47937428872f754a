//! A unit's metadata as found on its disks is input like any other: a disk
//! from elsewhere, a bug in an older version or a bit flip under a valid
//! checksum may hold a group with no members, a chunk of 0, a volume past
//! its group's end, a rebuild mark beyond the disk. Assembly must refuse
//! or degrade, never panic; and whatever comes up must answer the calls
//! the SNMP agent and the NBD server make without panicking either. The
//! damage is written as a genuine newer metadata generation (checksum and
//! all), so that it is what the unit reads.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{DISK, scratch};
use dvsan_agent::storage::disk::Disk;
use dvsan_agent::storage::metadata::{self, Level, Metadata, RebuildRecord};
use dvsan_agent::storage::{DiskSpec, GroupSpec, MaintenanceConfig, Unit};
use proptest::prelude::*;

fn config() -> MaintenanceConfig {
    MaintenanceConfig {
        rebuild_rate: 0,
        auto_spare: true,
        bitmap_region: 256 << 10,
        clear_delay: Duration::from_millis(50),
    }
}

/// What one change does to the metadata.
#[derive(Debug, Clone)]
enum Damage {
    Chunk(u64),
    Capacity(u64),
    Level(Level),
    KeepMembers(usize),
    UnknownMember(usize),
    DuplicateMember(usize),
    BitmapRegion(u64),
    Rebuilding(usize, u64, bool),
    Failed(usize),
    Readd(usize),
    VolumeOffset(u64),
    VolumeSize(u64),
    VolumeGroup(u32),
    Allocated(u64, u64),
    GroupIndex(u32),
    SecondGroupLikeFirst,
    NoDisks,
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(4095),
        Just(4096),
        Just(1 << 20),
        Just(DISK),
        Just(1 << 40),
        Just(u64::MAX / 2),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    let level = prop_oneof![
        Just(Level::Linear),
        Just(Level::Raid0),
        Just(Level::Raid1),
        Just(Level::Raid10),
        Just(Level::Raid5),
        Just(Level::Raid6),
    ];
    prop_oneof![
        number().prop_map(Damage::Chunk),
        number().prop_map(Damage::Capacity),
        level.prop_map(Damage::Level),
        (0usize..5).prop_map(Damage::KeepMembers),
        (0usize..4).prop_map(Damage::UnknownMember),
        (0usize..4).prop_map(Damage::DuplicateMember),
        number().prop_map(Damage::BitmapRegion),
        (0usize..5, number(), any::<bool>()).prop_map(|(m, d, p)| Damage::Rebuilding(m, d, p)),
        (0usize..5).prop_map(Damage::Failed),
        (0usize..5).prop_map(Damage::Readd),
        number().prop_map(Damage::VolumeOffset),
        number().prop_map(Damage::VolumeSize),
        (0u32..4).prop_map(Damage::VolumeGroup),
        (number(), number()).prop_map(|(a, b)| Damage::Allocated(a, b)),
        (0u32..4).prop_map(Damage::GroupIndex),
        Just(Damage::SecondGroupLikeFirst),
        Just(Damage::NoDisks),
    ]
}

fn apply(meta: &mut Metadata, d: &Damage) {
    let uuids: Vec<uuid::Uuid> = meta.disks.iter().map(|d| d.uuid).collect();
    let pick = |i: usize| uuids.get(i % uuids.len().max(1)).copied();
    if let Some(g) = meta.groups.first_mut() {
        match *d {
            Damage::Chunk(c) => g.chunk = c,
            Damage::Capacity(c) => g.capacity = c,
            Damage::Level(l) => g.level = l,
            Damage::KeepMembers(n) => g.members.truncate(n),
            Damage::UnknownMember(m) => {
                if let Some(slot) = g.members.get_mut(m) {
                    *slot = uuid::Uuid::new_v4();
                }
            }
            Damage::DuplicateMember(m) => {
                if let Some(&first) = g.members.first()
                    && let Some(slot) = g.members.get_mut(m)
                {
                    *slot = first;
                }
            }
            Damage::BitmapRegion(r) => g.bitmap_region = r,
            Damage::Rebuilding(m, done, partial) => g.rebuilding.push(RebuildRecord {
                member: pick(m).unwrap_or_else(uuid::Uuid::new_v4),
                done,
                partial,
            }),
            Damage::Failed(m) => g.failed.extend(pick(m)),
            Damage::Readd(m) => g.readd.extend(pick(m)),
            Damage::GroupIndex(i) => g.index = i,
            _ => {}
        }
    }
    if let Some(v) = meta.volumes.first_mut() {
        match *d {
            Damage::VolumeOffset(o) => v.offset = o,
            Damage::VolumeSize(s) => v.size = s,
            Damage::VolumeGroup(g) => v.group = g,
            Damage::Allocated(a, b) => v.allocated.push((a, b)),
            _ => {}
        }
    }
    match d {
        Damage::SecondGroupLikeFirst => {
            if let Some(g) = meta.groups.first().cloned() {
                meta.groups.push(g);
            }
        }
        Damage::NoDisks => meta.disks.clear(),
        _ => {}
    }
}

/// A healthy RAID 5 unit (three members and a spare, one volume, written)
/// in `dir`; its disk paths.
fn healthy_unit(dir: &std::path::Path) -> Vec<PathBuf> {
    let specs: Vec<DiskSpec> = (0..4)
        .map(|i| DiskSpec {
            path: dir.join(format!("disk{i}.img")),
            size: DISK,
        })
        .collect();
    let unit = Unit::create_with(&specs, config()).unwrap();
    unit.create_group(&GroupSpec {
        index: 1,
        name: "g".into(),
        level: Level::Raid5,
        chunk: 4096,
        members: vec![1, 2, 3],
    })
    .unwrap();
    unit.create_volume(1, "v", 1, unit.group_free(1).unwrap())
        .unwrap();
    let vol = unit.volume("v").unwrap().unwrap();
    vol.write(&vec![0x5a; 64 << 10], 4096).unwrap();
    vol.flush().unwrap();
    drop(vol);
    drop(unit);
    specs.into_iter().map(|s| s.path).collect()
}

/// Panics anywhere in the process (the unit's background threads too).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Writes `damage` over the newest metadata of the disks at `paths` as
/// the next generation, then opens the unit and uses what comes up.
fn open_damaged(paths: &[PathBuf], damage: &[Damage]) {
    {
        let disks: Vec<Disk> = paths.iter().map(|p| Disk::open(p).unwrap()).collect();
        let refs: Vec<&Disk> = disks.iter().collect();
        let (mut meta, slot) = metadata::read_newest(&refs).unwrap().unwrap();
        for d in damage {
            apply(&mut meta, d);
        }
        meta.generation += 1;
        metadata::write_all(&refs, &meta, 1 - slot).unwrap();
    }
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    let Ok(unit) = Unit::open_with(&refs, config()) else {
        return;
    };
    let meta = unit.metadata();
    for g in &meta.groups {
        let _ = unit.group_health(g.index);
        let _ = unit.member_health(g.index);
        let _ = unit.member_readd_bytes(g.index);
        let _ = unit.group_free(g.index);
    }
    for v in &meta.volumes {
        if let Ok(Some(vol)) = unit.volume(&v.name) {
            let len = vol.size().min(8192) as usize;
            let mut buf = vec![0u8; len];
            let _ = vol.read(&mut buf, 0);
            let _ = vol.write(&buf, 0);
            let _ = vol.flush();
        }
    }
    // Whatever maintenance started runs a moment, then stops with the
    // unit.
    std::thread::sleep(Duration::from_millis(100));
    drop(unit);
}

#[test]
fn a_volume_past_its_groups_end_stops_assembly_with_a_message() {
    let dir = scratch();
    let paths = healthy_unit(dir.path());
    {
        let disks: Vec<Disk> = paths.iter().map(|p| Disk::open(p).unwrap()).collect();
        let refs: Vec<&Disk> = disks.iter().collect();
        let (mut meta, slot) = metadata::read_newest(&refs).unwrap().unwrap();
        apply(&mut meta, &Damage::VolumeSize(1 << 40));
        meta.generation += 1;
        metadata::write_all(&refs, &meta, 1 - slot).unwrap();
    }
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    let Err(e) = Unit::open_with(&refs, config()) else {
        panic!("a unit with a volume past its group's end was assembled");
    };
    let text = e.to_string();
    assert!(
        text.contains("volume v") && text.contains("lies past the end of group g"),
        "{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn damaged_metadata_never_panics_the_unit(damage in prop::collection::vec(damage(), 1..4)) {
        count_panics();
        let dir = scratch();
        let paths = healthy_unit(dir.path());
        let before = PANICS.load(Ordering::SeqCst);
        let result = std::panic::catch_unwind(|| open_damaged(&paths, &damage));
        prop_assert!(result.is_ok(), "assembly panicked on {damage:?}");
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), before, "a panic on {:?}", damage);
    }
}
