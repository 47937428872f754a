//! RAID benchmark of the storage engine on file-backed disks: sequential
//! write of a whole volume on RAID 5 beside RAID 0 over the same number of
//! disks, sequential read of RAID 0 and RAID 10 volumes, and of a RAID 5
//! volume healthy and with a member missing (every chunk of that member
//! rebuilt from parity), and the rate of a rebuild onto a spare,
//! unthrottled and throttled. Prints MiB/s and the ratios. Not a test: numbers depend on the machine. Reads are timed
//! from the disks: the disk files are synced and dropped from the page
//! cache first.
//! Every timed run starts after a system-wide sync, so none pays for the
//! writeback of the one before; the writes are timed twice each, RAID 0
//! and RAID 5 in turn, and the better of each kept.
//!
//! Usage: raid_bench DIR [DISK_MIB] [DISKS]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dvsan_agent::storage::metadata::Level;
use dvsan_agent::storage::{DiskSpec, GroupSpec, GroupState, MaintenanceConfig, Unit, Volume};

const MIB: u64 = 1 << 20;
const PIECE: usize = 1 << 20;

fn config(rate: u64) -> MaintenanceConfig {
    MaintenanceConfig {
        rebuild_rate: rate,
        auto_spare: false,
        ..MaintenanceConfig::default()
    }
}

/// A fresh unit of `disks` member disks and one spare, with group 1 of
/// `level` over the members and volume "v" filling it.
fn unit(dir: &Path, level: Level, disks: usize, disk_mib: u64) -> (Unit, Vec<PathBuf>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let specs: Vec<DiskSpec> = (0..=disks)
        .map(|i| DiskSpec {
            path: dir.join(format!("disk{i}.img")),
            size: disk_mib * MIB,
        })
        .collect();
    let unit = Unit::create_with(&specs, config(0)).unwrap();
    unit.create_group(&GroupSpec {
        index: 1,
        name: "bench".into(),
        level,
        chunk: 0,
        members: (1..=disks as u32).collect(),
    })
    .unwrap();
    unit.create_volume(1, "v", 1, unit.group_free(1).unwrap())
        .unwrap();
    (unit, specs.into_iter().map(|s| s.path).collect())
}

fn volume(unit: &Unit) -> Arc<Volume> {
    unit.volume("v").unwrap().unwrap()
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

/// Starts a timed run with no dirty pages left by an earlier one.
fn settle() {
    rustix::fs::sync();
}

/// Writes the whole volume in 1 MiB pieces and flushes: MiB/s.
fn seq_write(vol: &Volume) -> f64 {
    settle();
    let data: Vec<u8> = (0..PIECE).map(|i| (i * 31 % 251) as u8).collect();
    let t = Instant::now();
    let mut at = 0;
    while at < vol.size() {
        let n = (vol.size() - at).min(PIECE as u64) as usize;
        vol.write(&data[..n], at).unwrap();
        at += n as u64;
    }
    vol.flush().unwrap();
    mib_per_s(vol.size(), t.elapsed())
}

/// Evicts the disk files from the page cache (after a sync, so every page
/// is clean), so that a read is timed from the disks.
fn drop_cache(paths: &[PathBuf]) {
    settle();
    for path in paths {
        if let Ok(file) = std::fs::File::open(path) {
            let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
}

/// Reads the whole volume in 1 MiB pieces from the disks, not the page
/// cache: MiB/s.
fn seq_read(vol: &Volume, paths: &[PathBuf]) -> f64 {
    drop_cache(paths);
    let mut buf = vec![0u8; PIECE];
    let t = Instant::now();
    let mut at = 0;
    while at < vol.size() {
        let n = (vol.size() - at).min(PIECE as u64) as usize;
        vol.read(&mut buf[..n], at).unwrap();
        at += n as u64;
    }
    mib_per_s(vol.size(), t.elapsed())
}

/// Member 0 of a written RAID 5 group lost and replaced by the spare:
/// MiB/s of the new member's data area rebuilt.
fn rebuild(dir: &Path, disks: usize, disk_mib: u64, rate: u64) -> f64 {
    let (unit, paths) = unit(dir, Level::Raid5, disks, disk_mib);
    seq_write(&volume(&unit));
    drop(unit);
    std::fs::remove_file(&paths[0]).unwrap();
    let refs: Vec<&Path> = paths[1..].iter().map(PathBuf::as_path).collect();
    let unit = Unit::open_with(&refs, config(rate)).unwrap();
    let per_member = unit.metadata().groups[0].capacity / (disks as u64 - 1);
    settle();
    let t = Instant::now();
    unit.replace_member(1, 0, disks as u32 + 1).unwrap();
    while unit.group_health(1).unwrap().state == GroupState::Rebuilding {
        std::thread::sleep(Duration::from_millis(5));
    }
    let d = t.elapsed();
    assert_eq!(unit.group_health(1).unwrap().state, GroupState::Optimal);
    mib_per_s(per_member, d)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: raid_bench DIR [DISK_MIB] [DISKS]"),
    );
    let disk_mib: u64 = args.next().map_or(257, |a| a.parse().expect("DISK_MIB"));
    let disks: usize = args.next().map_or(4, |a| a.parse().expect("DISKS"));

    let (mut raid0_write, mut raid5_write) = (0f64, 0f64);
    for _ in 0..2 {
        let (u0, _) = unit(&dir.join("raid0"), Level::Raid0, disks, disk_mib);
        raid0_write = raid0_write.max(seq_write(&volume(&u0)));
        drop(u0);
        let (u5, _) = unit(&dir.join("raid5"), Level::Raid5, disks, disk_mib);
        raid5_write = raid5_write.max(seq_write(&volume(&u5)));
    }
    let (u0, paths0) = unit(&dir.join("raid0"), Level::Raid0, disks, disk_mib);
    seq_write(&volume(&u0));
    let raid0_read = seq_read(&volume(&u0), &paths0);
    drop(u0);
    let (u10, paths10) = unit(&dir.join("raid10"), Level::Raid10, disks, disk_mib);
    seq_write(&volume(&u10));
    let raid10_read = seq_read(&volume(&u10), &paths10);
    drop(u10);
    let (u5, paths) = unit(&dir.join("raid5"), Level::Raid5, disks, disk_mib);
    seq_write(&volume(&u5));
    let healthy_read = seq_read(&volume(&u5), &paths);
    drop(u5);
    std::fs::rename(&paths[0], dir.join("raid5").join("away.img")).unwrap();
    let refs: Vec<&Path> = paths[1..].iter().map(PathBuf::as_path).collect();
    let degraded = Unit::open_with(&refs, config(0)).unwrap();
    assert_eq!(
        degraded.group_health(1).unwrap().state,
        GroupState::Degraded
    );
    let degraded_read = seq_read(&volume(&degraded), &paths[1..]);
    drop(degraded);

    let unlimited = rebuild(&dir.join("rebuild"), disks, disk_mib, 0);
    let limit = 50 * MIB;
    let limited = rebuild(&dir.join("rebuild"), disks, disk_mib, limit);
    let _ = std::fs::remove_dir_all(&dir);

    println!("{disks} disks of {disk_mib} MiB, default 64 KiB chunks");
    println!("{:<36} {:>10}", "test", "MiB/s");
    println!("{:<36} {:>10.0}", "RAID 0 sequential write", raid0_write);
    println!("{:<36} {:>10.0}", "RAID 5 sequential write", raid5_write);
    println!("{:<36} {:>10.0}", "RAID 0 sequential read", raid0_read);
    println!("{:<36} {:>10.0}", "RAID 10 sequential read", raid10_read);
    println!(
        "{:<36} {:>10.0}",
        "RAID 5 sequential read, healthy", healthy_read
    );
    println!(
        "{:<36} {:>10.0}",
        "RAID 5 sequential read, degraded", degraded_read
    );
    println!("{:<36} {:>10.0}", "RAID 5 rebuild, no limit", unlimited);
    println!(
        "{:<36} {:>10.0}",
        format!("RAID 5 rebuild, limit {} MiB/s", limit / MIB),
        limited
    );
    println!(
        "RAID 5 / RAID 0 write: {:.2}x; degraded / healthy read: {:.2}x",
        raid5_write / raid0_write,
        degraded_read / healthy_read
    );
}
