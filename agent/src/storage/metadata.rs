//! The unit's metadata (its RAID groups and volume table), replicated on
//! every disk in two slots. An update writes the slot holding the older
//! generation on every disk, syncing each, so a crash in the middle leaves
//! the newer complete copy of the previous generation readable; opening
//! picks the valid copy (magic, length, checksum) with the highest
//! generation on any disk.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::storage::StorageError;
use crate::storage::disk::{Disk, SLOT_SIZE};

const SLOT_MAGIC: &[u8; 8] = b"DVSANMD1";
const HEADER: usize = 24;

/// A RAID group's layout level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// Members concatenated in order.
    Linear,
    /// Striped, no redundancy.
    Raid0,
    /// Every member a full copy.
    Raid1,
    /// Striped over mirrored pairs.
    Raid10,
    /// Striped with rotating parity (left-symmetric).
    Raid5,
    /// Striped with P and Q parity.
    Raid6,
}

/// A RAID group as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// dvsanRaidGroupIndex.
    pub index: u32,
    /// Unique name on the unit.
    pub name: String,
    /// Layout.
    pub level: Level,
    /// Stripe chunk in bytes (meaningless for linear and RAID 1).
    #[serde(default)]
    pub chunk: u64,
    /// Member disks by UUID, in member order.
    pub members: Vec<Uuid>,
    /// Usable bytes.
    pub capacity: u64,
    /// Members out of service, by UUID: their data is stale and must not be
    /// trusted when they come back. A member is recorded here before the
    /// first write it misses (only for levels with redundancy; a linear or
    /// RAID 0 group simply fails).
    #[serde(default)]
    pub failed: Vec<Uuid>,
    /// Members being rebuilt (a spare or a replacement taking a lost
    /// member's place): their data is good below `done` only.
    #[serde(default)]
    pub rebuilding: Vec<RebuildRecord>,
    /// Bytes of every member one bit of the write-intent bitmap covers (0:
    /// the default, see `bitmap.rs`).
    #[serde(default)]
    pub bitmap_region: u64,
    /// Members in `failed` that were in sync when they went out: the
    /// bitmap's missed bits keep every region written since, so if one
    /// comes back to its own slot only those regions are rebuilt.
    #[serde(default)]
    pub readd: Vec<Uuid>,
}

/// A member being rebuilt, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildRecord {
    /// The new member's disk.
    pub member: Uuid,
    /// Bytes of the member's data area rebuilt and synced: a restart
    /// resumes from here.
    pub done: u64,
    /// A member come back to its own slot: only the regions the bitmap
    /// has as missed are rebuilt, the rest of its data is good.
    #[serde(default)]
    pub partial: bool,
}

/// A disk of the unit as recorded, so that one missing at startup is still
/// known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRecord {
    /// dvsanDiskIndex.
    pub index: u32,
    /// The disk's UUID (its superblock's).
    pub uuid: Uuid,
    /// Its size in bytes, dvsan's area included.
    pub size: u64,
}

/// A volume as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// dvsanVolumeIndex.
    pub index: u32,
    /// Its UUID.
    pub uuid: Uuid,
    /// Unique name on the unit, also its NBD export name.
    pub name: String,
    /// The group it is carved from.
    pub group: u32,
    /// Where it starts in the group, bytes (a multiple of the alignment).
    pub offset: u64,
    /// Its size, bytes.
    pub size: u64,
    /// Regions written since creation, as sorted, disjoint
    /// `[first, end)` region-number ranges; everything else reads as zeros.
    pub allocated: Vec<(u64, u64)>,
    /// No client may write, whatever its access entry says.
    #[serde(default)]
    pub read_only: bool,
    /// Clients allowed to connect (none: nobody over TCP).
    #[serde(default)]
    pub access: Vec<AccessRecord>,
}

/// One client address or network allowed on a volume (dvsanAccessEntry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// dvsanAccessIndex, unique within the volume.
    pub index: u32,
    /// An address or CIDR network, as text (`192.0.2.7`, `2001:db8::/64`).
    pub client: String,
    /// Reads only.
    pub read_only: bool,
}

/// Everything the unit records about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The unit.
    pub unit: Uuid,
    /// Increases by one at every update.
    pub generation: u64,
    /// The unit's name, when one was set (by `--name` or SNMP).
    #[serde(default)]
    pub name: Option<String>,
    /// Free-capacity percentage under which capacityLow is sent.
    #[serde(default)]
    pub low_threshold: Option<u32>,
    /// The unit's disks (empty in metadata written before disks were
    /// recorded; filled in from the disks present at the next open).
    #[serde(default)]
    pub disks: Vec<DiskRecord>,
    /// Disks taken out of their group after failing and replaced: never
    /// picked as spares by themselves (an administrator may assign one).
    #[serde(default)]
    pub retired: Vec<Uuid>,
    /// Free disks an administrator designated as hot spares: each replaces
    /// a lost member of any group as soon as one is lost, whether or not
    /// automatic spares are on, and is kept out of new groups until the
    /// designation is lifted.
    #[serde(default)]
    pub spares: Vec<Uuid>,
    /// RAID groups.
    pub groups: Vec<GroupRecord>,
    /// Volumes.
    pub volumes: Vec<VolumeRecord>,
}

fn decode_slot(buf: &[u8]) -> Option<Metadata> {
    if buf.len() < HEADER || &buf[..8] != SLOT_MAGIC {
        return None;
    }
    let generation = u64::from_le_bytes(buf[8..16].try_into().ok()?);
    let len = u32::from_le_bytes(buf[16..20].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(buf[20..24].try_into().ok()?);
    let payload = buf.get(HEADER..HEADER.checked_add(len)?)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let meta: Metadata = serde_json::from_slice(payload).ok()?;
    (meta.generation == generation).then_some(meta)
}

/// Checks what the layouts and volumes take for granted of metadata read
/// from the disks (written by this unit, but a checksum does not prove
/// sense): group indexes unique and no group larger than all the unit's
/// disks together; every volume in an existing group, within its
/// capacity and overlapping no other, volume indexes and names unique.
/// A group whose members or geometry make no layout is refused later, on
/// its own, when its layout is built (the group then serves nothing).
pub(crate) fn check(meta: &Metadata) -> Result<(), StorageError> {
    let bad = |why: String| StorageError::Corrupt(format!("metadata: {why}"));
    let total = meta
        .disks
        .iter()
        .try_fold(0u64, |sum, d| sum.checked_add(d.size))
        .ok_or_else(|| bad("disk sizes overflow".into()))?;
    for (i, g) in meta.groups.iter().enumerate() {
        if meta.groups[..i].iter().any(|o| o.index == g.index) {
            return Err(bad(format!("two groups numbered {}", g.index)));
        }
        if g.capacity > total {
            return Err(bad(format!(
                "group {} ({}) claims {} bytes, more than the unit's disks hold ({total})",
                g.index, g.name, g.capacity
            )));
        }
    }
    for (i, v) in meta.volumes.iter().enumerate() {
        let Some(g) = meta.groups.iter().find(|g| g.index == v.group) else {
            return Err(bad(format!(
                "volume {} is in group {}, which does not exist",
                v.name, v.group
            )));
        };
        crate::storage::layout::check_range(v.offset, v.size, g.capacity).map_err(|e| {
            bad(format!(
                "volume {} lies past the end of group {}: {e}",
                v.name, g.name
            ))
        })?;
        // In range: no overflow.
        let end = v.offset + v.size;
        for o in &meta.volumes[..i] {
            if o.index == v.index || o.name == v.name {
                return Err(bad(format!(
                    "volumes {} and {} share an index or name",
                    o.name, v.name
                )));
            }
            if o.group == v.group && o.offset < end && v.offset < o.offset.saturating_add(o.size) {
                return Err(bad(format!("volumes {} and {} overlap", o.name, v.name)));
            }
        }
    }
    Ok(())
}

pub(crate) fn encode_slot(meta: &Metadata) -> Result<Vec<u8>, StorageError> {
    let payload = serde_json::to_vec(meta)
        .map_err(|e| StorageError::Invalid(format!("encoding metadata: {e}")))?;
    let mut buf = Vec::with_capacity(HEADER + payload.len());
    buf.extend_from_slice(SLOT_MAGIC);
    buf.extend_from_slice(&meta.generation.to_le_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
    Ok(buf)
}

/// The newest valid metadata on any of `disks`, with the slot it is in. A
/// disk whose slots cannot be read is passed over (with a warning).
pub fn read_newest(disks: &[&Disk]) -> Result<Option<(Metadata, usize)>, StorageError> {
    let mut best: Option<(Metadata, usize)> = None;
    let mut buf = vec![0u8; SLOT_SIZE as usize];
    for disk in disks {
        for slot in 0..2 {
            if let Err(e) = disk.read_slot(slot, &mut buf) {
                tracing::warn!(disk = %disk.path().display(), error = %e, "metadata slot unreadable");
                continue;
            }
            if let Some(meta) = decode_slot(&buf)
                && best
                    .as_ref()
                    .is_none_or(|(b, _)| meta.generation > b.generation)
            {
                best = Some((meta, slot));
            }
        }
    }
    Ok(best)
}

/// Writes `meta` (whose generation must be one more than what is on disk)
/// into `slot` of every disk.
pub fn write_all(disks: &[&Disk], meta: &Metadata, slot: usize) -> Result<(), StorageError> {
    let buf = encode_slot(meta)?;
    for disk in disks {
        disk.write_slot(slot, &buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_slot_is_not_read() {
        let meta = Metadata {
            unit: Uuid::new_v4(),
            generation: 7,
            name: None,
            low_threshold: None,
            disks: vec![],
            retired: vec![],
            spares: vec![],
            groups: vec![],
            volumes: vec![],
        };
        let mut buf = encode_slot(&meta).unwrap();
        assert_eq!(decode_slot(&buf), Some(meta));
        let last = buf.len() - 2;
        buf[last] ^= 1;
        assert_eq!(decode_slot(&buf), None);
        assert_eq!(decode_slot(&buf[..10]), None);
        assert_eq!(decode_slot(&[0u8; 64]), None);
    }
}
