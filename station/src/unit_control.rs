//! Changing a unit by SNMP SET: RAID groups, partitions and access entries
//! through DVSAN-MIB's RowStatus tables, over SNMPv3 authPriv. Each change is
//! one SET request (createAndGo with every column the row needs, or
//! destroy), so the unit applies it whole or not at all.

use std::net::SocketAddr;

use dvsan_snmp::dvsan_mib::{self as mib, MibObject};
use dvsan_snmp::manager::Manager;
use dvsan_snmp::{Credentials, Session, SnmpError, Value, VarBind};

/// RowStatus values (SNMPv2-TC).
const CREATE_AND_GO: i32 = 4;
const DESTROY: i32 = 6;

/// A unit refused or did not answer.
#[derive(Debug, thiserror::Error)]
#[error("unit at {peer}: {what}: {source}")]
pub struct ControlError {
    /// The unit's SNMP address.
    pub peer: SocketAddr,
    /// What was being done.
    pub what: String,
    /// The SNMP failure.
    #[source]
    pub source: Box<SnmpError>,
}

/// Sends SETs to units.
#[derive(Debug, Clone)]
pub struct UnitControl {
    manager: Manager,
    credentials: Credentials,
}

/// A RAID group to create on a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup<'a> {
    /// Its name.
    pub name: &'a str,
    /// DvsanRaidLevel value.
    pub level: i32,
    /// Chunk size, KiB.
    pub chunk_kib: u32,
    /// dvsanDiskIndex of each member, in order.
    pub members: &'a [u32],
}

impl UnitControl {
    /// Control through `manager` with `credentials`.
    pub fn new(manager: Manager, credentials: Credentials) -> Self {
        UnitControl {
            manager,
            credentials,
        }
    }

    /// The SNMP manager (shared with the learner).
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// The credentials units are asked with.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    async fn session(&self, peer: SocketAddr, what: &str) -> Result<Session, ControlError> {
        self.manager
            .session(peer, &self.credentials)
            .await
            .map_err(|e| fail(peer, what, e))
    }

    /// Creates a partition of `size_mib` in RAID group `group`; returns its
    /// dvsanVolumeIndex.
    pub async fn create_partition(
        &self,
        peer: SocketAddr,
        name: &str,
        group: u32,
        size_mib: u32,
    ) -> Result<u32, ControlError> {
        let what = format!("creating partition {name} ({size_mib} MiB in group {group})");
        let s = self.session(peer, &what).await?;
        let index = free_index(&s, &[], &mib::DVSAN_VOLUME_ROW_STATUS)
            .await
            .map_err(|e| fail(peer, &what, e))?;
        let row = [index];
        s.set(&[
            VarBind::new(mib::DVSAN_VOLUME_NAME.instance(&row), Value::text(name)),
            VarBind::new(
                mib::DVSAN_VOLUME_RAID_GROUP.instance(&row),
                Value::Gauge32(group),
            ),
            VarBind::new(
                mib::DVSAN_VOLUME_SIZE.instance(&row),
                Value::Gauge32(size_mib),
            ),
            VarBind::new(
                mib::DVSAN_VOLUME_ROW_STATUS.instance(&row),
                Value::Integer(CREATE_AND_GO),
            ),
        ])
        .await
        .map_err(|e| fail(peer, &what, e))?;
        Ok(index)
    }

    /// Sets one object on the unit in one SET.
    async fn set_one(
        &self,
        peer: SocketAddr,
        what: &str,
        binding: VarBind,
    ) -> Result<(), ControlError> {
        let s = self.session(peer, what).await?;
        s.set(&[binding]).await.map_err(|e| fail(peer, what, e))?;
        Ok(())
    }

    /// Resizes partition `index` to `size_mib` (the unit grows it into the
    /// free space right after it).
    pub async fn resize_partition(
        &self,
        peer: SocketAddr,
        index: u32,
        size_mib: u32,
    ) -> Result<(), ControlError> {
        let what = format!("resizing partition {index} to {size_mib} MiB");
        let binding = VarBind::new(
            mib::DVSAN_VOLUME_SIZE.instance(&[index]),
            Value::Gauge32(size_mib),
        );
        self.set_one(peer, &what, binding).await
    }

    /// Deletes partition `index` (and its access entries).
    pub async fn destroy_partition(
        &self,
        peer: SocketAddr,
        index: u32,
    ) -> Result<(), ControlError> {
        let what = format!("deleting partition {index}");
        let binding = VarBind::new(
            mib::DVSAN_VOLUME_ROW_STATUS.instance(&[index]),
            Value::Integer(DESTROY),
        );
        self.set_one(peer, &what, binding).await
    }

    /// Grants `client` (address or CIDR) read-write access to partition
    /// `volume`; nothing is sent when it already has it.
    pub async fn grant(
        &self,
        peer: SocketAddr,
        volume: u32,
        client: &str,
    ) -> Result<(), ControlError> {
        let what = format!("granting {client} on partition {volume}");
        let s = self.session(peer, &what).await?;
        let entries = access_entries(&s, volume)
            .await
            .map_err(|e| fail(peer, &what, e))?;
        if entries.iter().any(|(_, c)| c == client) {
            return Ok(());
        }
        let index = (1..=65535u32)
            .find(|i| entries.iter().all(|(e, _)| e != i))
            .unwrap_or(65535);
        let row = [volume, index];
        s.set(&[
            VarBind::new(mib::DVSAN_ACCESS_CLIENT.instance(&row), Value::text(client)),
            VarBind::new(
                mib::DVSAN_ACCESS_CLIENT_MODE.instance(&row),
                Value::Integer(1),
            ),
            VarBind::new(
                mib::DVSAN_ACCESS_ROW_STATUS.instance(&row),
                Value::Integer(CREATE_AND_GO),
            ),
        ])
        .await
        .map_err(|e| fail(peer, &what, e))?;
        Ok(())
    }

    /// Revokes every access entry of `client` on partition `volume`.
    pub async fn revoke(
        &self,
        peer: SocketAddr,
        volume: u32,
        client: &str,
    ) -> Result<(), ControlError> {
        let what = format!("revoking {client} on partition {volume}");
        let s = self.session(peer, &what).await?;
        let entries = access_entries(&s, volume)
            .await
            .map_err(|e| fail(peer, &what, e))?;
        for (index, _) in entries.iter().filter(|(_, c)| c == client) {
            s.set(&[VarBind::new(
                mib::DVSAN_ACCESS_ROW_STATUS.instance(&[volume, *index]),
                Value::Integer(DESTROY),
            )])
            .await
            .map_err(|e| fail(peer, &what, e))?;
        }
        Ok(())
    }

    /// Creates a RAID group; returns its dvsanRaidGroupIndex.
    pub async fn create_group(
        &self,
        peer: SocketAddr,
        g: &NewGroup<'_>,
    ) -> Result<u32, ControlError> {
        let what = format!("creating RAID group {}", g.name);
        let s = self.session(peer, &what).await?;
        let index = free_index(&s, &[], &mib::DVSAN_RAID_GROUP_ROW_STATUS)
            .await
            .map_err(|e| fail(peer, &what, e))?;
        let members: Vec<String> = g.members.iter().map(u32::to_string).collect();
        let row = [index];
        s.set(&[
            VarBind::new(
                mib::DVSAN_RAID_GROUP_NAME.instance(&row),
                Value::text(g.name),
            ),
            VarBind::new(
                mib::DVSAN_RAID_GROUP_LEVEL.instance(&row),
                Value::Integer(g.level),
            ),
            VarBind::new(
                mib::DVSAN_RAID_GROUP_CHUNK_SIZE.instance(&row),
                Value::Gauge32(g.chunk_kib),
            ),
            VarBind::new(
                mib::DVSAN_RAID_GROUP_MEMBERS.instance(&row),
                Value::text(members.join(",")),
            ),
            VarBind::new(
                mib::DVSAN_RAID_GROUP_ROW_STATUS.instance(&row),
                Value::Integer(CREATE_AND_GO),
            ),
        ])
        .await
        .map_err(|e| fail(peer, &what, e))?;
        Ok(index)
    }

    /// Puts disk `disk` in member slot `slot` (from 1) of RAID group
    /// `group`, in place of a lost member (dvsanRaidMemberDisk); the unit
    /// records it at once and rebuilds the member in the background.
    pub async fn replace_member(
        &self,
        peer: SocketAddr,
        group: u32,
        slot: u32,
        disk: u32,
    ) -> Result<(), ControlError> {
        let what = format!("replacing member {slot} of RAID group {group} with disk {disk}");
        let binding = VarBind::new(
            mib::DVSAN_RAID_MEMBER_DISK.instance(&[group, slot]),
            Value::Gauge32(disk),
        );
        self.set_one(peer, &what, binding).await
    }

    /// Deletes RAID group `index` (the unit refuses while it holds
    /// partitions).
    pub async fn destroy_group(&self, peer: SocketAddr, index: u32) -> Result<(), ControlError> {
        let what = format!("deleting RAID group {index}");
        let binding = VarBind::new(
            mib::DVSAN_RAID_GROUP_ROW_STATUS.instance(&[index]),
            Value::Integer(DESTROY),
        );
        self.set_one(peer, &what, binding).await
    }
}

fn fail(peer: SocketAddr, what: &str, e: SnmpError) -> ControlError {
    ControlError {
        peer,
        what: what.to_string(),
        source: Box::new(e),
    }
}

/// The row indexes (below `prefix`) present in `column`.
async fn indexes(s: &Session, prefix: &[u32], column: &MibObject) -> Result<Vec<u32>, SnmpError> {
    let root = column.instance(prefix);
    let rows = s.walk(&root).await?;
    Ok(rows
        .iter()
        .filter_map(|vb| vb.oid.suffix_after(root.arcs()))
        .filter_map(|rest| rest.first().copied())
        .collect())
}

/// The lowest index in 1..=65535 not used in `column` below `prefix`.
async fn free_index(s: &Session, prefix: &[u32], column: &MibObject) -> Result<u32, SnmpError> {
    let used = indexes(s, prefix, column).await?;
    (1..=65535u32)
        .find(|i| !used.contains(i))
        .ok_or_else(|| SnmpError::Config(format!("{} is full", column.name)))
}

/// The access entries of partition `volume`: (dvsanAccessIndex, client).
async fn access_entries(s: &Session, volume: u32) -> Result<Vec<(u32, String)>, SnmpError> {
    let root = mib::DVSAN_ACCESS_CLIENT.instance(&[volume]);
    let rows = s.walk(&root).await?;
    Ok(rows
        .iter()
        .filter_map(|vb| {
            let index = *vb.oid.suffix_after(root.arcs())?.first()?;
            Some((index, vb.value.as_text()?.to_string()))
        })
        .collect())
}
