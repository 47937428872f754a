//! The storage engine on real files: volumes over a linear group across two
//! disks read back what was written, read zeros where nothing was, survive a
//! reopen from the disks alone, never show a previous tenant's bytes, keep
//! the older metadata when the newer is torn, and match a flat model under
//! random writes; and a volume served over NBD works with qemu-io and
//! nbdinfo.

use std::path::PathBuf;
use std::sync::Arc;

use dvsan_agent::storage::metadata::Level;
use dvsan_agent::storage::{DiskSpec, GroupSpec, Unit, disk::SLOT_OFFSETS};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;

fn linear(index: u32, name: &str, members: &[u32]) -> GroupSpec {
    GroupSpec {
        index,
        name: name.into(),
        level: Level::Linear,
        chunk: 0,
        members: members.to_vec(),
    }
}

fn specs(dir: &std::path::Path, n: usize, size: u64) -> Vec<DiskSpec> {
    (0..n)
        .map(|i| DiskSpec {
            path: dir.join(format!("disk{i}.img")),
            size,
        })
        .collect()
}

fn paths(specs: &[DiskSpec]) -> Vec<PathBuf> {
    specs.iter().map(|s| s.path.clone()).collect()
}

fn reopen(specs: &[DiskSpec]) -> Unit {
    let p = paths(specs);
    let refs: Vec<&std::path::Path> = p.iter().map(PathBuf::as_path).collect();
    Unit::open(&refs).unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn a_volume_across_two_disks_reads_back_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let specs = specs(dir.path(), 2, 4 * MIB);
    let unit = Unit::create(&specs).unwrap();
    unit.create_group(&linear(1, "lin", &[1, 2])).unwrap();
    assert_eq!(unit.group_free(1), Some(6 * MIB));
    let vol = unit.create_volume(1, "vol1", 1, 5 * MIB).unwrap();
    // Across the boundary between the disks (at 3 MiB).
    let data = pattern(MIB as usize + 4097, 7);
    vol.write(&data, 2 * MIB + 512 * 1024 + 3).unwrap();
    vol.flush().unwrap();
    let mut back = vec![0u8; data.len()];
    vol.read(&mut back, 2 * MIB + 512 * 1024 + 3).unwrap();
    assert_eq!(back, data);
    // Never written: zeros.
    let mut head = vec![1u8; 4096];
    vol.read(&mut head, 0).unwrap();
    assert!(head.iter().all(|b| *b == 0));
    let uuid = unit.uuid();
    drop(vol);
    drop(unit);

    let unit = reopen(&specs);
    assert_eq!(unit.uuid(), uuid);
    assert_eq!(unit.metadata().volumes.len(), 1);
    let vol = unit.volume("vol1").unwrap().unwrap();
    let mut back = vec![0u8; data.len()];
    vol.read(&mut back, 2 * MIB + 512 * 1024 + 3).unwrap();
    assert_eq!(back, data);
    // Creating errors change nothing.
    assert!(unit.create_volume(2, "big", 1, 2 * MIB).is_err());
    assert!(unit.create_volume(2, "vol1", 1, MIB).is_err());
    assert!(unit.create_group(&linear(2, "again", &[1])).is_err());
    assert_eq!(unit.metadata().volumes.len(), 1);
}

#[test]
fn a_new_volume_never_shows_a_previous_tenants_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let specs = specs(dir.path(), 1, 6 * MIB);
    let unit = Unit::create(&specs).unwrap();
    unit.create_group(&linear(1, "g", &[1])).unwrap();
    let old = unit.create_volume(1, "old", 1, 4 * MIB).unwrap();
    old.write(&vec![0xee; 4 * MIB as usize], 0).unwrap();
    old.flush().unwrap();
    drop(old);
    unit.delete_volume("old").unwrap();
    let new = unit.create_volume(1, "new", 1, 4 * MIB).unwrap();
    // One small write in the middle of a region.
    new.write(&[0xab; 100], MIB + 1000).unwrap();
    let mut all = vec![0u8; 4 * MIB as usize];
    new.read(&mut all, 0).unwrap();
    for (i, b) in all.iter().enumerate() {
        let want = if (MIB as usize + 1000..MIB as usize + 1100).contains(&i) {
            0xab
        } else {
            0
        };
        assert_eq!(*b, want, "byte {i}");
    }
    // Block status: one data region among holes.
    let extents = new.extents(0, 4 * MIB).unwrap();
    assert_eq!(extents.len(), 3);
    assert_eq!(extents[1].length, MIB);
    assert!(extents[1].flags.is_empty());
}

#[test]
fn a_deleted_volume_still_held_by_a_client_no_longer_reads_or_writes_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let specs = specs(dir.path(), 1, 6 * MIB);
    let unit = Unit::create(&specs).unwrap();
    unit.create_group(&linear(1, "g", &[1])).unwrap();
    // An NBD connection holds the volume as this does.
    let old = unit.create_volume(1, "old", 1, 4 * MIB).unwrap();
    old.write(&vec![0xee; MIB as usize], 0).unwrap();
    unit.delete_volume("old").unwrap();
    let new = unit.create_volume(1, "new", 1, 4 * MIB).unwrap();
    new.write(&vec![0x5a; MIB as usize], 0).unwrap();

    let mut buf = vec![0u8; 4096];
    let err = old.read(&mut buf, 0).unwrap_err();
    assert!(err.to_string().contains("was deleted"), "{err}");
    assert!(old.write(&[0xff; 4096], 0).is_err());
    assert!(old.flush().is_err());
    assert!(old.extents(0, MIB).is_err());
    // The new tenant's bytes are untouched.
    new.read(&mut buf, 0).unwrap();
    assert!(buf.iter().all(|&b| b == 0x5a));
}

/// What the NBD server answers on the thread reading the socket: a read
/// of never-written regions (zeros) or of pages in the cache, right
/// (RAID 5 too); a read that would wait for the device, a deleted volume,
/// or data to reconstruct from parity, refused (the server then reads the
/// normal way).
#[test]
fn a_read_from_memory_is_answered_only_when_no_device_wait_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let specs = specs(dir.path(), 4, 8 * MIB);
    let unit = Unit::create(&specs).unwrap();
    unit.create_group(&linear(1, "g", &[1])).unwrap();
    let v = unit.create_volume(1, "v", 1, 4 * MIB).unwrap();
    let data = pattern(MIB as usize, 9);
    v.write(&data, 0).unwrap();

    // Across written and never-written regions, 64 KiB either side.
    let mut buf = vec![0xffu8; 128 << 10];
    assert!(v.read_resident(&mut buf, MIB - (64 << 10)));
    assert_eq!(buf[..64 << 10], data[data.len() - (64 << 10)..]);
    assert!(buf[64 << 10..].iter().all(|&b| b == 0));
    // Past the end: refused (the normal read reports the error).
    assert!(!v.read_resident(&mut buf, 4 * MIB - 4096));

    // Once written back and dropped from the page cache, a read of it
    // would wait for the device (tmpfs keeps its pages: nothing to drop).
    v.flush().unwrap();
    let file = std::fs::File::open(&specs[0].path).unwrap();
    let tmpfs = rustix::fs::fstatfs(&file).unwrap().f_type == 0x0102_1994;
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    if !tmpfs {
        assert!(!v.read_resident(&mut buf[..4096], 8192));
    }
    v.read(&mut buf[..4096], 8192).unwrap();
    assert_eq!(buf[..4096], data[8192..8192 + 4096]);

    unit.create_group(&GroupSpec {
        index: 2,
        name: "r5".into(),
        level: Level::Raid5,
        chunk: 64 << 10,
        members: vec![2, 3, 4],
    })
    .unwrap();
    let r5 = unit.create_volume(2, "r5v", 2, MIB).unwrap();
    // Three stripes of two 64 KiB data chunks: every member holds data in
    // one of them.
    let three = 384 << 10;
    r5.write(&data[..three], 0).unwrap();
    let mut back = vec![0u8; three];
    assert!(r5.read_resident(&mut back, 0));
    assert!(back == data[..three]);
    // With a member lost, its chunks need reconstruction: refused.
    unit.disks()[1].fail_for_test();
    assert!(!r5.read_resident(&mut back, 0));
    back.fill(0);
    r5.read(&mut back, 0).unwrap();
    assert!(back == data[..three]);

    // A deleted volume answers nothing.
    drop(r5);
    unit.delete_volume("v").unwrap();
    assert!(!v.read_resident(&mut buf[..4096], 0));
}

#[test]
fn zeroing_punches_written_regions_and_leaves_fresh_ones_unwritten() {
    let dir = tempfile::tempdir().unwrap();
    let specs = specs(dir.path(), 1, 8 * MIB);
    let unit = Unit::create(&specs).unwrap();
    unit.create_group(&linear(1, "g", &[1])).unwrap();
    let v = unit.create_volume(1, "v", 1, 4 * MIB).unwrap();
    v.write(&vec![0x77; 2 * MIB as usize], 0).unwrap();
    // Zero the second half of region 0, all of region 1 and 2 (never
    // written) and part of region 3.
    v.zero(MIB / 2, 3 * MIB).unwrap();
    let mut all = vec![0u8; 4 * MIB as usize];
    v.read(&mut all, 0).unwrap();
    assert!(all[..MIB as usize / 2].iter().all(|&b| b == 0x77));
    assert!(all[MIB as usize / 2..].iter().all(|&b| b == 0));
    // The never-written regions are still holes to block status.
    let extents = v.extents(0, 4 * MIB).unwrap();
    assert_eq!(extents.len(), 2, "{extents:?}");
    assert_eq!(extents[0].length, 2 * MIB);
    assert!(extents[0].flags.is_empty());
    // And the member's file really has a hole where region 1 was zeroed.
    use std::os::fd::AsFd;
    let file = std::fs::File::open(&specs[0].path).unwrap();
    let data_start = 1 << 20; // dvsan's area on the disk
    let vol_offset = unit.metadata().volumes[0].offset;
    let hole_at = data_start + vol_offset + MIB;
    let next_data = rustix::fs::seek(file.as_fd(), rustix::fs::SeekFrom::Data(hole_at));
    assert!(
        next_data.map_or(true, |d| d >= hole_at + MIB),
        "region 1 still holds data: {next_data:?}"
    );
}

#[test]
fn a_torn_metadata_update_falls_back_to_the_previous_generation() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let specs = specs(dir.path(), 2, 4 * MIB);
    let unit = Unit::create(&specs).unwrap();
    unit.create_group(&linear(1, "g", &[1, 2])).unwrap(); // generation 2
    unit.create_volume(1, "v", 1, MIB).unwrap(); // generation 3
    let newest = unit.metadata().generation;
    drop(unit);
    // Tear the newest copy on every disk: it is in slot 0 (generations
    // alternate 1: slot 0, 2: slot 1, 3: slot 0).
    for p in paths(&specs) {
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(&[0xff; 64], SLOT_OFFSETS[0] + 40).unwrap();
    }
    let unit = reopen(&specs);
    let meta = unit.metadata();
    assert_eq!(meta.generation, newest - 1);
    assert_eq!(meta.groups.len(), 1);
    assert!(meta.volumes.is_empty());
    // And the unit goes on from there.
    unit.create_volume(1, "v2", 1, MIB).unwrap();
    assert_eq!(reopen(&specs).metadata().volumes[0].name, "v2");
}

#[test]
fn a_disk_of_another_unit_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = specs(a.path(), 1, 4 * MIB);
    let sb = specs(b.path(), 1, 4 * MIB);
    Unit::create(&sa).unwrap();
    Unit::create(&sb).unwrap();
    let err = Unit::open(&[sa[0].path.as_path(), sb[0].path.as_path()]).unwrap_err();
    assert!(err.to_string().contains("belongs to unit"), "{err}");
    std::fs::write(&sa[0].path, b"not a disk").unwrap();
    assert!(Unit::open(&[sa[0].path.as_path()]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_writes_match_a_flat_model_across_reopens(
        ops in prop::collection::vec((0u64..(5 * MIB - 1), 1usize..200_000, any::<u8>(), any::<bool>()), 1..25)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let specs = specs(dir.path(), 2, 4 * MIB);
        let size = 5 * MIB;
        let mut model = vec![0u8; size as usize];
        {
            let unit = Unit::create(&specs).unwrap();
            unit.create_group(&linear(1, "g", &[1, 2])).unwrap();
            unit.create_volume(1, "v", 1, size).unwrap();
        }
        let mut unit = reopen(&specs);
        for (offset, len, seed, reopen_after) in ops {
            let len = len.min((size - offset) as usize);
            let data = pattern(len, seed);
            let vol = unit.volume("v").unwrap().unwrap();
            vol.write(&data, offset).unwrap();
            model[offset as usize..offset as usize + len].copy_from_slice(&data);
            if reopen_after {
                // What a completed FLUSH covers survives a reopen.
                vol.flush().unwrap();
                drop(vol);
                unit = reopen(&specs);
            }
        }
        let vol = unit.volume("v").unwrap().unwrap();
        let mut all = vec![0u8; size as usize];
        vol.read(&mut all, 0).unwrap();
        prop_assert!(all == model, "contents differ from the model");
    }
}

fn tool(name: &str, package: &str) {
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{name} is not installed: apt-get install -y {package}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_served_over_nbd_works_with_qemu_io_and_nbdinfo() {
    tool("qemu-io", "qemu-utils");
    tool("nbdinfo", "libnbd-bin");
    let dir = tempfile::tempdir().unwrap();
    let specs = specs(dir.path(), 2, 4 * MIB);
    let unit = Unit::create(&specs).unwrap();
    unit.create_group(&linear(1, "g", &[1, 2])).unwrap();
    let vol = unit.create_volume(1, "vol1", 1, 4 * MIB).unwrap();
    let mut registry = dvsan_nbd::StaticRegistry::new();
    registry.add(
        "vol1",
        "test volume",
        vol.clone() as Arc<dyn dvsan_nbd::Export>,
        dvsan_nbd::export::Access::Everyone,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dvsan_nbd::serve(listener, Arc::new(registry), async move {
        let _ = stopped.await;
    }));
    let uri = format!("nbd://127.0.0.1:{port}/vol1");
    let out = tokio::process::Command::new("qemu-io")
        .args([
            "-f",
            "raw",
            "-c",
            "write -P 0xab 2M 1M",
            "-c",
            "read -P 0xab 2M 1M",
            "-c",
            "read -P 0 0 1M",
            &uri,
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !text.contains("Pattern verification failed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tokio::process::Command::new("nbdinfo")
        .args(["--map", &uri])
        .output()
        .await
        .unwrap();
    let map = String::from_utf8_lossy(&out.stdout);
    // hole+zero, data, hole+zero
    let rows: Vec<&str> = map.lines().collect();
    assert_eq!(rows.len(), 3, "{map}");
    assert!(rows[1].contains("data"), "{map}");
    let _ = stop.send(());
    server.await.unwrap();
}

/// RAID 5 on disks that held a linear group before: parity starts
/// consistent (the members are zeroed at creation), so after a partial
/// write whichever member is lost is reconstructed right.
#[test]
fn raid5_over_reused_disks_reconstructs_a_lost_member() {
    // The previous tenant's bytes, not periodic: a periodic pattern makes
    // the stale chunks XOR to the stale parity by accident.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let stale: Vec<u8> = (0..84 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for lost in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let specs = specs(dir.path(), 6, 16 << 20);
        let unit = Unit::create(&specs).unwrap();
        unit.create_group(&linear(1, "old", &[1, 2, 3, 4, 5, 6]))
            .unwrap();
        let old = unit.create_volume(1, "old", 1, 84 << 20).unwrap();
        old.write(&stale, 0).unwrap();
        old.flush().unwrap();
        drop(old);
        unit.delete_volume("old").unwrap();
        unit.delete_group(1).unwrap();

        unit.create_group(&GroupSpec {
            index: 2,
            name: "r5".into(),
            level: Level::Raid5,
            chunk: 64 << 10,
            members: vec![1, 2, 3, 4, 5, 6],
        })
        .unwrap();
        let v = unit.create_volume(1, "new", 2, 8 << 20).unwrap();
        // A small write: the rest of its region is zeroed, and the
        // region's last stripe straddles into the next region (5 chunks of
        // 64 KiB do not divide 1 MiB), so that stripe's parity is updated
        // in place next to chunks never written.
        let data = pattern(4096, 3);
        v.write(&data, 5_000).unwrap();
        unit.disks()[lost].fail_for_test();
        let mut back = vec![0u8; 1 << 20];
        v.read(&mut back, 0).unwrap();
        let mut want = vec![0u8; 1 << 20];
        want[5_000..9_096].copy_from_slice(&data);
        assert!(
            back == want,
            "member {lost} lost: reconstructed data differs"
        );
    }
}
