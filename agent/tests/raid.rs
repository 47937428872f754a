//! RAID groups on real files: every level matches a flat model under random
//! writes across reopens, with parity (P and Q, checked against an
//! independent GF(2^8) computation) and mirrors in step with the data
//! afterwards; concurrent writers sharing stripes leave parity right;
//! RAID 5, 6, 1 and 10 keep serving (reads and writes) with members missing
//! at startup or failing under I/O, and a member that missed writes is not
//! trusted when it comes back; linear and RAID 0 groups with a member lost
//! fail their I/O with errors while the unit still opens.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{DISK, MIB, apply, check_contents, fill, pattern, scratch, volume};
use dvsan_agent::storage::disk::DATA_OFFSET;
use dvsan_agent::storage::metadata::Level;
use dvsan_agent::storage::{DiskHealth, DiskSpec, GroupSpec, GroupState, StorageError, Unit};
use proptest::prelude::*;

/// A unit of `n` disk files with one group (index 1, members = disks 1..=n
/// in order) and one volume "v" filling it.
struct Rig {
    dir: tempfile::TempDir,
    specs: Vec<DiskSpec>,
}

impl Rig {
    fn new(level: Level, n: usize, chunk: u64) -> (Rig, Unit) {
        Rig::sized(level, n, chunk, DISK)
    }

    fn sized(level: Level, n: usize, chunk: u64, size: u64) -> (Rig, Unit) {
        Rig::in_dir(scratch(), level, n, chunk, size)
    }

    fn in_dir(
        dir: tempfile::TempDir,
        level: Level,
        n: usize,
        chunk: u64,
        size: u64,
    ) -> (Rig, Unit) {
        let specs: Vec<DiskSpec> = (0..n)
            .map(|i| DiskSpec {
                path: dir.path().join(format!("disk{i}.img")),
                size,
            })
            .collect();
        let unit = Unit::create(&specs).unwrap();
        unit.create_group(&GroupSpec {
            index: 1,
            name: "g".into(),
            level,
            chunk,
            members: (1..=n as u32).collect(),
        })
        .unwrap();
        let capacity = unit.group_free(1).unwrap();
        unit.create_volume(1, "v", 1, capacity).unwrap();
        (Rig { dir, specs }, unit)
    }

    /// Opens the unit from every configured path, present or not.
    fn open(&self) -> Unit {
        let paths: Vec<&Path> = self.specs.iter().map(|s| s.path.as_path()).collect();
        Unit::open(&paths).unwrap()
    }

    fn gone(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("disk{i}.gone"))
    }

    /// Takes disk file `i` (member `i`) away.
    fn lose(&self, i: usize) {
        std::fs::rename(&self.specs[i].path, self.gone(i)).unwrap();
    }

    /// Brings it back as it was.
    fn restore(&self, i: usize) {
        std::fs::rename(self.gone(i), &self.specs[i].path).unwrap();
    }
}

/// Reads answered from memory (what the NBD server tries first) match
/// the model on every level, healthy and with a member failed (on RAID 5
/// and 6, only what needs no reconstruction). On the file system of the temporary directory, not
/// tmpfs: tmpfs cannot tell what is in memory, and answers none.
#[test]
fn reads_from_memory_match_the_model_on_every_level() {
    let fs = rustix::fs::statfs(std::env::temp_dir()).unwrap();
    if fs.f_type == 0x0102_1994 {
        eprintln!("skipped: the temporary directory is on tmpfs");
        return;
    }
    for (level, n) in [
        (Level::Linear, 2),
        (Level::Raid0, 3),
        (Level::Raid1, 2),
        (Level::Raid10, 4),
        (Level::Raid5, 4),
        (Level::Raid6, 5),
    ] {
        let (_rig, unit) = Rig::in_dir(tempfile::tempdir().unwrap(), level, n, 64 << 10, DISK);
        let vol = volume(&unit);
        let mut model = vec![0u8; vol.size() as usize];
        for (i, at) in [0, 70_000, 500_000, 1_000_001, 2_500_000]
            .into_iter()
            .enumerate()
        {
            apply(&vol, &mut model, at, 200_000, i as u64 + 40);
        }
        let answered = check_contents(&vol, &model);
        assert!(
            answered > 10,
            "{level:?}: {answered} reads answered from memory"
        );
        if !matches!(level, Level::Linear | Level::Raid0) {
            unit.disks()[0].fail_for_test();
            let answered = check_contents(&vol, &model);
            assert!(answered > 10, "{level:?} degraded: {answered} answered");
        }
    }
}

/// g · x in GF(2^8) modulo 0x11d, the obvious way.
fn mul2(x: u8) -> u8 {
    (x << 1) ^ if x & 0x80 != 0 { 0x1d } else { 0 }
}

/// [`mul2`] on the eight bytes of a word at once.
fn mul2_word(w: u64) -> u64 {
    let high = (w >> 7) & 0x0101_0101_0101_0101;
    ((w & 0x7f7f_7f7f_7f7f_7f7f) << 1) ^ (high * 0x1d)
}

/// Eight bytes at `i` as a word.
fn word(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

#[test]
fn the_checks_word_arithmetic_is_the_bytewise_one() {
    for x in 0..=255u8 {
        let w = mul2_word(u64::from_le_bytes([x, 0, 0x80, x, 1, 0xff, 0x7f, x]));
        assert_eq!(
            w.to_le_bytes(),
            [x, 0, 0x80, x, 1, 0xff, 0x7f, x].map(mul2),
            "{x}"
        );
    }
}

/// Checks, straight from the member files, that every stripe's P and Q
/// match its data (RAID 5/6; left-symmetric, md's geometry) and that
/// mirrors hold the same bytes (RAID 1/10). Every member must be present.
fn check_redundancy(unit: &Unit) {
    let meta = unit.metadata();
    let g = &meta.groups[0];
    let disks = unit.disks();
    let n = g.members.len();
    let members: Vec<Vec<u8>> = g
        .members
        .iter()
        .map(|u| {
            let d = disks
                .iter()
                .find(|d| d.superblock().disk == *u)
                .expect("every member present");
            std::fs::read(d.path()).unwrap()[DATA_OFFSET as usize..].to_vec()
        })
        .collect();
    let (parity, k) = match g.level {
        Level::Raid5 => (1, n - 1),
        Level::Raid6 => (2, n - 2),
        Level::Raid1 => {
            let used = g.capacity as usize;
            for m in &members[1..] {
                assert!(m[..used] == members[0][..used], "mirrors differ");
            }
            return;
        }
        Level::Raid10 => {
            let used = (g.capacity / (n as u64 / 2)) as usize;
            for pair in members.chunks(2) {
                assert!(pair[0][..used] == pair[1][..used], "mirrors differ");
            }
            return;
        }
        _ => return,
    };
    let chunk = g.chunk as usize;
    let stripes = g.capacity as usize / k / chunk;
    for s in 0..stripes {
        let p = n - 1 - s % n;
        let q = (p + 1) % n;
        let data: Vec<&[u8]> = (0..k)
            .map(|j| &members[(p + parity + j) % n][s * chunk..(s + 1) * chunk])
            .collect();
        for i in (0..chunk).step_by(8) {
            let mut xor = 0u64;
            let mut syn = 0u64;
            // P = ⊕ D_j; Q = Σ g^j·D_j by Horner's rule, from the top.
            for d in data.iter().rev() {
                xor ^= word(d, i);
                syn = mul2_word(syn) ^ word(d, i);
            }
            let at = s * chunk + i;
            assert_eq!(word(&members[p], at), xor, "P of stripe {s}, byte {i}");
            if parity == 2 {
                assert_eq!(word(&members[q], at), syn, "Q of stripe {s}, byte {i}");
            }
        }
    }
}

fn state(unit: &Unit) -> GroupState {
    unit.group_health(1).unwrap().state
}

/// Random writes against a model across reopens; then the contents and
/// the redundancy are checked.
fn model_run(level: Level, n: usize, chunk: u64, ops: &[(u64, usize, u8, bool)]) {
    let (rig, unit) = Rig::new(level, n, chunk);
    let mut unit = Some(unit);
    let size = volume(unit.as_ref().unwrap()).size();
    let mut model = vec![0u8; size as usize];
    for &(offset, len, seed, reopen) in ops {
        let vol = volume(unit.as_ref().unwrap());
        apply(&vol, &mut model, offset, len, seed.into());
        if reopen {
            vol.flush().unwrap();
            drop(vol);
            drop(unit.take());
            unit = Some(rig.open());
        }
    }
    let unit = unit.unwrap();
    assert_eq!(state(&unit), GroupState::Optimal);
    check_contents(&volume(&unit), &model);
    volume(&unit).flush().unwrap();
    check_redundancy(&unit);
}

fn ops() -> impl Strategy<Value = Vec<(u64, usize, u8, bool)>> {
    let len = prop_oneof![1usize..6000, 1usize..200_000];
    prop::collection::vec(
        (any::<u64>(), len, any::<u8>(), prop::bool::weighted(0.2)),
        1..12,
    )
}

fn chunk() -> impl Strategy<Value = u64> {
    prop_oneof![Just(4096u64), Just(16384), Just(65536), Just(0)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn raid0_matches_a_flat_model(n in 2usize..=4, chunk in chunk(), ops in ops()) {
        model_run(Level::Raid0, n, chunk, &ops);
    }

    #[test]
    fn raid1_matches_a_flat_model(n in 2usize..=3, ops in ops()) {
        model_run(Level::Raid1, n, 0, &ops);
    }

    #[test]
    fn raid10_matches_a_flat_model(half in 2usize..=3, chunk in chunk(), ops in ops()) {
        model_run(Level::Raid10, 2 * half, chunk, &ops);
    }

    #[test]
    fn raid5_matches_a_flat_model_with_parity_in_step(n in 3usize..=6, chunk in chunk(), ops in ops()) {
        model_run(Level::Raid5, n, chunk, &ops);
    }

    #[test]
    fn raid6_matches_a_flat_model_with_p_and_q_in_step(n in 4usize..=8, chunk in chunk(), ops in ops()) {
        model_run(Level::Raid6, n, chunk, &ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Written, members lost, reopened: everything reads back, writes while
    /// degraded read back, across another reopen.
    #[test]
    fn parity_groups_serve_with_members_missing(
        raid6 in any::<bool>(),
        extra in 0usize..=3,
        chunk in chunk(),
        lost in prop::collection::btree_set(0usize..8, 1..=2),
        before in ops(),
        after in ops(),
    ) {
        let (level, n) = if raid6 { (Level::Raid6, 4 + extra) } else { (Level::Raid5, 3 + extra) };
        let lost: Vec<usize> = lost.into_iter().map(|m| m % n).collect::<std::collections::BTreeSet<_>>()
            .into_iter().take(if raid6 { 2 } else { 1 }).collect();
        let (rig, unit) = Rig::new(level, n, chunk);
        let size = volume(&unit).size();
        let mut model = vec![0u8; size as usize];
        {
            let vol = volume(&unit);
            for &(o, l, s, _) in &before {
                apply(&vol, &mut model, o, l, s.into());
            }
            vol.flush().unwrap();
        }
        drop(unit);
        for &m in &lost {
            rig.lose(m);
        }
        let unit = rig.open();
        prop_assert_eq!(state(&unit), GroupState::Degraded);
        for &m in &lost {
            prop_assert_eq!(unit.disk_health(m as u32 + 1), Some(DiskHealth::Missing));
        }
        check_contents(&volume(&unit), &model);
        {
            let vol = volume(&unit);
            for &(o, l, s, reopen) in &after {
                apply(&vol, &mut model, o, l, s.into());
                if reopen {
                    check_contents(&vol, &model);
                }
            }
            vol.flush().unwrap();
            check_contents(&vol, &model);
        }
        drop(unit);
        let unit = rig.open();
        prop_assert_eq!(state(&unit), GroupState::Degraded);
        check_contents(&volume(&unit), &model);
    }
}

#[test]
fn raid6_serves_with_any_two_members_missing() {
    let n = 5;
    for a in 0..n {
        for b in a + 1..n {
            // 1 MiB of data per member: 3 MiB in all.
            let (rig, unit) = Rig::sized(Level::Raid6, n, 4096, 2 * MIB);
            let mut model = vec![0u8; volume(&unit).size() as usize];
            let vol = volume(&unit);
            for (i, o) in [0u64, 5000, 123_457, 2 * MIB + 77, 3 * MIB - 9]
                .iter()
                .enumerate()
            {
                apply(&vol, &mut model, *o, 70_000 + i * 999, i as u64 + 1);
            }
            vol.flush().unwrap();
            drop(vol);
            drop(unit);
            rig.lose(a);
            rig.lose(b);
            let unit = rig.open();
            assert_eq!(state(&unit), GroupState::Degraded, "lost {a} and {b}");
            let vol = volume(&unit);
            check_contents(&vol, &model);
            apply(&vol, &mut model, 4000, 30_000, 99);
            apply(&vol, &mut model, 2 * MIB + 1, 5, 98);
            check_contents(&vol, &model);
        }
    }
}

/// Member `m` of `unit` (disk index m + 1).
fn member(unit: &Unit, m: usize) -> Arc<dvsan_agent::storage::disk::Disk> {
    unit.disks()[m].clone()
}

#[test]
fn a_member_failing_under_io_is_served_around_recorded_and_kept_out() {
    for (level, n, fail) in [
        (Level::Raid5, 4, vec![2]),
        (Level::Raid6, 5, vec![0, 3]),
        (Level::Raid1, 2, vec![0]),
        (Level::Raid10, 4, vec![1, 2]),
    ] {
        let (rig, unit) = Rig::new(level, n, 8192);
        let vol = volume(&unit);
        let mut model = vec![0u8; vol.size() as usize];
        for i in 0..6u8 {
            apply(&vol, &mut model, i as u64 * 700_001, 150_000, i.into());
        }
        vol.flush().unwrap();
        for &m in &fail {
            member(&unit, m).fail_for_test();
        }
        // Reads find out and are served from redundancy (twice: mirrors
        // take turns).
        check_contents(&vol, &model);
        check_contents(&vol, &model);
        assert_eq!(state(&unit), GroupState::Degraded, "{level:?}");
        for &m in &fail {
            assert_eq!(unit.disk_health(m as u32 + 1), Some(DiskHealth::Failed));
        }
        // Writes go on; the failures are recorded before they count.
        apply(&vol, &mut model, 12_345, 200_000, 50);
        apply(&vol, &mut model, 0, 1, 51);
        check_contents(&vol, &model);
        let failed = &unit.metadata().groups[0].failed;
        for &m in &fail {
            assert!(
                failed.contains(&member(&unit, m).superblock().disk),
                "{level:?}"
            );
        }
        vol.flush().unwrap();
        drop(vol);
        drop(unit);
        // After a restart the disks work again, but hold stale data: they
        // stay out.
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Degraded, "{level:?}");
        for &m in &fail {
            assert_eq!(unit.disk_health(m as u32 + 1), Some(DiskHealth::Failed));
        }
        let vol = volume(&unit);
        check_contents(&vol, &model);
        apply(&vol, &mut model, MIB - 10, 20, 52);
        check_contents(&vol, &model);
    }
}

#[test]
fn a_member_back_after_missing_writes_is_not_trusted_but_one_that_missed_none_is() {
    for (level, n, lost) in [
        (Level::Raid1, 2, vec![1]),
        (Level::Raid10, 4, vec![0, 3]),
        (Level::Raid5, 3, vec![0]),
        (Level::Raid6, 4, vec![1, 2]),
    ] {
        let (rig, unit) = Rig::new(level, n, 4096);
        let vol = volume(&unit);
        let mut model = fill(&vol, 1);
        vol.flush().unwrap();
        drop(vol);
        drop(unit);
        for &m in &lost {
            rig.lose(m);
        }
        // Away, but only read: back in service when found again.
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Degraded, "{level:?}");
        check_contents(&volume(&unit), &model);
        drop(unit);
        for &m in &lost {
            rig.restore(m);
        }
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Optimal, "{level:?}");
        check_redundancy(&unit);
        drop(unit);
        // Away while written: stale, never read again.
        for &m in &lost {
            rig.lose(m);
        }
        let unit = rig.open();
        let vol = volume(&unit);
        apply(&vol, &mut model, 0, vol.size() as usize, 2);
        vol.flush().unwrap();
        drop(vol);
        drop(unit);
        for &m in &lost {
            rig.restore(m);
        }
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Degraded, "{level:?}");
        for &m in &lost {
            assert_eq!(unit.disk_health(m as u32 + 1), Some(DiskHealth::Failed));
        }
        let vol = volume(&unit);
        // Mirrors take turns: read twice so every surviving copy is asked.
        check_contents(&vol, &model);
        check_contents(&vol, &model);
    }
}

#[test]
fn linear_and_raid0_with_a_member_lost_fail_their_io_but_the_unit_opens() {
    for level in [Level::Linear, Level::Raid0] {
        let (rig, unit) = Rig::new(level, 3, 0);
        let vol = volume(&unit);
        let model = fill(&vol, 3);
        vol.flush().unwrap();
        drop(vol);
        drop(unit);
        rig.lose(1);
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Failed, "{level:?}");
        assert_eq!(unit.disk_health(2), Some(DiskHealth::Missing));
        assert_eq!(unit.disk_health(1), Some(DiskHealth::Ok));
        assert_eq!(unit.disk_health(9), None);
        let vol = volume(&unit);
        let mut buf = vec![0u8; 4096];
        for offset in [0, 3 * MIB, vol.size() - 4096] {
            let e = vol.read(&mut buf, offset).unwrap_err();
            assert!(matches!(e, StorageError::Io { .. }), "{e}");
            assert!(e.to_string().contains("has failed"), "{e}");
            assert!(vol.write(&buf, offset).is_err());
        }
        assert!(vol.flush().is_err());
        drop(vol);
        drop(unit);
        // Nothing was written while it was away: all there again.
        rig.restore(1);
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Optimal, "{level:?}");
        check_contents(&volume(&unit), &model);

        // A member dying under I/O fails the group as well.
        member(&unit, 2).fail_for_test();
        let vol = volume(&unit);
        let mut all = vec![0u8; vol.size() as usize];
        assert!(vol.read(&mut all, 0).is_err());
        assert_eq!(state(&unit), GroupState::Failed);
        assert_eq!(unit.disk_health(3), Some(DiskHealth::Failed));
        assert!(unit.metadata().groups[0].failed.is_empty());
    }
}

#[test]
fn too_many_members_lost_fails_the_group_with_errors() {
    for (level, n, lose) in [
        (Level::Raid5, 4, vec![0, 2]),
        (Level::Raid6, 5, vec![0, 1, 4]),
        (Level::Raid1, 2, vec![0, 1]),
        (Level::Raid10, 4, vec![2, 3]),
    ] {
        let (rig, unit) = Rig::new(level, n, 0);
        let vol = volume(&unit);
        let mut model = fill(&vol, 4);
        vol.flush().unwrap();
        // Lose all but the last while running, which still serves.
        for &m in &lose[..lose.len() - 1] {
            member(&unit, m).fail_for_test();
        }
        check_contents(&vol, &model);
        apply(&vol, &mut model, 100, 100_000, 5);
        check_contents(&vol, &model);
        assert_eq!(state(&unit), GroupState::Degraded, "{level:?}");
        // One more: beyond what the level survives.
        member(&unit, *lose.last().unwrap()).fail_for_test();
        let mut all = vec![0u8; vol.size() as usize];
        let e = vol.read(&mut all, 0).unwrap_err();
        assert!(e.to_string().contains("has failed"), "{level:?}: {e}");
        assert!(vol.write(&all[..5000], 0).is_err());
        assert_eq!(state(&unit), GroupState::Failed, "{level:?}");
        drop(vol);
        drop(unit);
        if lose.len() == n {
            // No disk left to open a unit from.
            continue;
        }
        // Missing at startup instead: the unit still opens.
        for &m in &lose {
            rig.lose(m);
        }
        let unit = rig.open();
        assert_eq!(state(&unit), GroupState::Failed, "{level:?}");
        assert!(volume(&unit).read(&mut all, 0).is_err());
    }
}

/// Threads writing disjoint blocks that share stripes (and a stripe shared
/// by two volumes) leave data and parity right.
#[test]
fn concurrent_writers_sharing_stripes_keep_parity_right() {
    // Five data chunks: single-chunk writes take the read-modify-write path
    // (RAID 5 reads 2, RAID 6 reads 3, instead of 4).
    for (level, n) in [(Level::Raid5, 6), (Level::Raid6, 7)] {
        let dir = scratch();
        let specs: Vec<DiskSpec> = (0..n)
            .map(|i| DiskSpec {
                path: dir.path().join(format!("d{i}")),
                size: DISK,
            })
            .collect();
        let unit = Unit::create(&specs).unwrap();
        unit.create_group(&GroupSpec {
            index: 1,
            name: "g".into(),
            level,
            chunk: 4096,
            members: (1..=n as u32).collect(),
        })
        .unwrap();
        // Stripes of 5 chunks of 4 KiB: the boundary at 1 MiB falls inside
        // one (stripe 51, from 1 MiB - 4 KiB to 1 MiB + 16 KiB).
        let vols = [
            unit.create_volume(1, "a", 1, MIB).unwrap(),
            unit.create_volume(2, "b", 1, MIB).unwrap(),
        ];
        for v in &vols {
            v.write(&vec![0u8; MIB as usize], 0).unwrap();
        }
        const BLOCK: u64 = 512;
        const SPAN: u64 = 12 << 10;
        const OWNERS: u64 = 4;
        let threads = 2 * OWNERS as usize;
        let models: Vec<Vec<(u64, Vec<u8>)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let vol = Arc::clone(&vols[t % 2]);
                    scope.spawn(move || {
                        // Volume a near its end, b near its start; thread t
                        // owns the blocks numbered t / 2 mod OWNERS.
                        let base = if t % 2 == 0 { MIB - SPAN } else { 0 };
                        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t as u64;
                        let mut written = vec![];
                        for i in 0..1000 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let block = (x % (SPAN / BLOCK)) / OWNERS * OWNERS + t as u64 / 2;
                            let within = (x >> 32) % BLOCK;
                            let len = 1 + (x >> 48) % (BLOCK - within);
                            let data = pattern(len as usize, (i + t) as u64);
                            let at = base + block * BLOCK + within;
                            vol.write(&data, at).unwrap();
                            written.push((at, data));
                        }
                        written
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (v, vol) in vols.iter().enumerate() {
            let mut model = vec![0u8; MIB as usize];
            for written in models.iter().skip(v).step_by(2) {
                for (at, data) in written {
                    model[*at as usize..*at as usize + data.len()].copy_from_slice(data);
                }
            }
            check_contents(vol, &model);
        }
        for v in &vols {
            v.flush().unwrap();
        }
        check_redundancy(&unit);
    }
}

#[test]
fn member_counts_and_chunks_are_checked_at_creation() {
    let dir = scratch();
    let specs: Vec<DiskSpec> = (0..5)
        .map(|i| DiskSpec {
            path: dir.path().join(format!("d{i}")),
            size: DISK,
        })
        .collect();
    let unit = Unit::create(&specs).unwrap();
    let spec = |level, chunk, members: &[u32]| GroupSpec {
        index: 1,
        name: "g".into(),
        level,
        chunk,
        members: members.to_vec(),
    };
    for (level, members, rule) in [
        (Level::Raid0, &[1][..], "RAID 0 needs at least 2"),
        (Level::Raid1, &[1][..], "RAID 1 needs at least 2"),
        (
            Level::Raid10,
            &[1, 2, 3][..],
            "RAID 10 needs an even number",
        ),
        (Level::Raid10, &[1, 2][..], "RAID 10 needs an even number"),
        (Level::Raid5, &[1, 2][..], "RAID 5 needs at least 3"),
        (Level::Raid6, &[1, 2, 3][..], "RAID 6 needs at least 4"),
    ] {
        let e = unit.create_group(&spec(level, 0, members)).unwrap_err();
        assert!(matches!(e, StorageError::Invalid(_)), "{e}");
        assert!(e.to_string().contains(rule), "{e}");
    }
    for chunk in [512, 5000, 32 << 20] {
        let e = unit
            .create_group(&spec(Level::Raid5, chunk, &[1, 2, 3]))
            .unwrap_err();
        assert!(e.to_string().contains("power of two"), "{e}");
    }
    // Larger than what a 2 MiB member holds.
    assert!(
        unit.create_group(&spec(Level::Raid0, 4 << 20, &[1, 2]))
            .is_err()
    );
    // Linear and RAID 1 ignore the chunk.
    unit.create_group(&spec(Level::Raid1, 12345, &[1, 2]))
        .unwrap();
    assert_eq!(unit.metadata().groups.len(), 1);
    unit.delete_group(1).unwrap();
    // 0 is 64 KiB, and recorded as such.
    unit.create_group(&spec(Level::Raid6, 0, &[1, 2, 3, 4, 5]))
        .unwrap();
    let g = &unit.metadata().groups[0];
    assert_eq!(g.chunk, 64 << 10);
    assert_eq!(g.capacity, 6 * MIB);
    assert_eq!(unit.group_health(1).unwrap().state, GroupState::Optimal);
    assert_eq!(unit.group_health(2), None);
    for i in 1..=5 {
        assert_eq!(unit.disk_health(i), Some(DiskHealth::Ok));
    }
}

#[test]
fn open_skips_paths_without_a_dvsan_disk() {
    let (rig, unit) = Rig::new(Level::Raid5, 3, 0);
    let vol = volume(&unit);
    let mut model = vec![0u8; vol.size() as usize];
    apply(&vol, &mut model, 777, 300_000, 6);
    vol.flush().unwrap();
    drop(vol);
    drop(unit);
    let junk = rig.dir.path().join("junk");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    let nowhere = rig.dir.path().join("nowhere");
    let mut paths: Vec<&Path> = vec![junk.as_path(), nowhere.as_path()];
    paths.extend(rig.specs.iter().map(|s| s.path.as_path()));
    let unit = Unit::open(&paths).unwrap();
    assert_eq!(state(&unit), GroupState::Optimal);
    check_contents(&volume(&unit), &model);
    drop(unit);
    // The same disk twice is refused.
    let twice = [rig.specs[0].path.as_path(), rig.specs[0].path.as_path()];
    let e = Unit::open(&twice).unwrap_err();
    assert!(e.to_string().contains("same disk"), "{e}");
    // Nothing usable at all is an error.
    assert!(Unit::open(&[junk.as_path(), nowhere.as_path()]).is_err());
}

#[test]
fn a_disk_failing_a_metadata_write_is_left_out_and_the_update_stands() {
    let (rig, unit) = Rig::new(Level::Raid1, 3, 0);
    let vol = volume(&unit);
    let mut model = vec![0u8; vol.size() as usize];
    apply(&vol, &mut model, 0, 300_000, 7);
    vol.flush().unwrap();
    member(&unit, 2).fail_for_test();
    // Metadata only: the failing disk drops out, the others take it.
    unit.rename_group(1, "renamed").unwrap();
    assert_eq!(unit.disk_health(3), Some(DiskHealth::Failed));
    assert_eq!(state(&unit), GroupState::Degraded);
    // The next write records it before it misses anything.
    apply(&vol, &mut model, 5, 10, 8);
    assert_eq!(
        unit.metadata().groups[0].failed,
        vec![member(&unit, 2).superblock().disk]
    );
    vol.flush().unwrap();
    drop(vol);
    drop(unit);
    let unit = rig.open();
    assert_eq!(unit.metadata().groups[0].name, "renamed");
    assert_eq!(unit.disk_health(3), Some(DiskHealth::Failed));
    check_contents(&volume(&unit), &model);
    check_contents(&volume(&unit), &model);
    // A failed disk cannot join a new group.
    unit.delete_volume("v").unwrap();
    unit.delete_group(1).unwrap();
    let e = unit
        .create_group(&GroupSpec {
            index: 2,
            name: "again".into(),
            level: Level::Raid1,
            chunk: 0,
            members: vec![2, 3],
        })
        .unwrap_err();
    assert!(e.to_string().contains("has failed"), "{e}");
}
