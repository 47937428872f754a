//! What the RAID and rebuild tests share: scratch directories, the test
//! volume, deterministic noise, and writes and reads checked against a
//! flat model of the volume.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use dvsan_agent::storage::{Unit, Volume};

pub const MIB: u64 = 1 << 20;
/// Every test disk: 3 MiB, so 2 MiB of data.
pub const DISK: u64 = 3 * MIB;
/// Longest noise [`pattern`] hands out.
const NOISE_LEN: usize = 8 * MIB as usize;

/// A scratch directory, in memory when the system has /dev/shm: the
/// engine syncs at every flush and metadata update, which on a real disk
/// would make these tests slow for nothing.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// The test volume, "v".
pub fn volume(unit: &Unit) -> Arc<Volume> {
    unit.volume("v").unwrap().unwrap()
}

/// `len` bytes of noise (not periodic), different for each seed up to
/// 255: a slice of one buffer, cheap even unoptimised.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    static NOISE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let noise = NOISE.get_or_init(|| {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..NOISE_LEN + 256 * 4099)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    });
    assert!(len <= NOISE_LEN, "{len} bytes of noise asked for");
    let start = (seed % 256) as usize * 4099;
    noise[start..start + len].to_vec()
}

/// A write of `len` bytes of [`pattern`] at `offset` (both reduced to fit
/// the model), to the volume and the model.
pub fn apply(vol: &Volume, model: &mut [u8], offset: u64, len: usize, seed: u64) {
    let size = model.len() as u64;
    let offset = offset % size;
    let len = len.clamp(1, (size - offset) as usize);
    let data = pattern(len, seed);
    vol.write(&data, offset).unwrap();
    model[offset as usize..offset as usize + len].copy_from_slice(&data);
}

/// The whole volume written with [`pattern`] noise; returns the model.
pub fn fill(vol: &Volume, seed: u64) -> Vec<u8> {
    let mut model = vec![0u8; vol.size() as usize];
    let len = model.len();
    apply(vol, &mut model, 0, len, seed);
    model
}

/// The volume reads as the model, whole; and in 4 KiB and 60 KiB pieces
/// answered from memory (what the NBD server asks first) wherever the
/// volume says it can. Returns how many pieces it answered so (none on
/// tmpfs, which cannot tell what is in memory).
pub fn check_contents(vol: &Volume, model: &[u8]) -> usize {
    let mut all = vec![0u8; model.len()];
    vol.read(&mut all, 0).unwrap();
    if all != model {
        let i = all.iter().zip(model).position(|(a, b)| a != b);
        panic!("contents differ from the model first at byte {i:?}");
    }
    let mut answered = 0;
    for piece in [4096, 60 << 10] {
        let mut buf = vec![0u8; piece];
        for at in (0..model.len().saturating_sub(piece)).step_by(piece + 4095) {
            if vol.read_resident(&mut buf, at as u64) {
                assert!(
                    buf[..] == model[at..at + piece],
                    "{piece} bytes at {at} read from memory differ from the model"
                );
                answered += 1;
            }
        }
    }
    answered
}
