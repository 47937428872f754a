//! Station volumes in SQL: each is a list of extents (partitions on units)
//! and a list of client hosts; plus the free space the allocator chooses
//! from.

use serde::Serialize;
use sqlx::FromRow;

use super::{Inventory, InventoryError, now};
use crate::allocator::GroupSpace;

/// A station volume row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, serde::Deserialize)]
pub struct StationVolumeRow {
    /// Its UUID.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// Size, MiB.
    pub size_mib: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// An extent row with what its unit looks like now.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, serde::Deserialize)]
pub struct ExtentRow {
    /// The station volume.
    pub volume_uuid: String,
    /// Position, from 0.
    pub seq: i64,
    /// The unit.
    pub unit_uuid: String,
    /// The unit's name ('' when the unit is gone from the inventory).
    pub unit_name: String,
    /// The unit's state ('' when gone).
    pub unit_state: String,
    /// The unit's SNMP address ('' when gone).
    pub snmp_address: String,
    /// The unit's NBD endpoint, host:port ('' when gone).
    pub nbd_endpoint: String,
    /// Whether the unit's NBD server speaks TLS: off | optional |
    /// required ('' when gone).
    pub nbd_tls: String,
    /// dvsanVolumeIndex.
    pub volume_index: i64,
    /// dvsanRaidGroupIndex.
    pub raid_group: i64,
    /// Size, MiB.
    pub size_mib: i64,
    /// NBD export name.
    pub export_name: String,
}

/// An extent to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExtent {
    /// The unit.
    pub unit_uuid: String,
    /// dvsanVolumeIndex.
    pub volume_index: u32,
    /// dvsanRaidGroupIndex.
    pub raid_group: u32,
    /// Size, MiB.
    pub size_mib: u64,
    /// NBD export name.
    pub export_name: String,
}

/// A client host and a volume it may use.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, serde::Deserialize)]
pub struct ClientGrant {
    /// Address or CIDR.
    pub client: String,
    /// The volume's name.
    pub volume: String,
    /// Unix seconds.
    pub granted_at: i64,
}

const EXTENT_SELECT: &str = "SELECT e.volume_uuid, e.seq, e.unit_uuid,
        COALESCE(u.name, '') AS unit_name, COALESCE(u.state, '') AS unit_state,
        COALESCE(u.snmp_address, '') AS snmp_address,
        COALESCE(u.nbd_endpoint, '') AS nbd_endpoint,
        COALESCE(u.nbd_tls, '') AS nbd_tls,
        e.volume_index, e.raid_group, e.size_mib, e.export_name
     FROM extents e LEFT JOIN units u ON u.uuid = e.unit_uuid";

impl Inventory {
    /// Free space in every usable RAID group (optimal, resyncing or
    /// rebuilding) of every online unit, optionally narrowed to one unit,
    /// a DNS domain suffix of the unit's name, and a RAID level.
    pub async fn placement_space(
        &self,
        unit: Option<&str>,
        domain: Option<&str>,
        level: Option<&str>,
    ) -> Result<Vec<GroupSpace>, InventoryError> {
        let domain = domain.map(|d| format!("%.{}", d.trim_start_matches('.')));
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT u.uuid, u.free_mib, g.group_index, g.free_mib
             FROM raid_groups g JOIN units u ON u.uuid = g.unit_uuid
             WHERE u.state = 'online'
               AND g.state IN ('optimal', 'resyncing', 'rebuilding')
               AND g.free_mib > 0
               AND ($1 IS NULL OR u.uuid = $1 OR u.name = $1)
               AND ($2 IS NULL OR u.name LIKE $2)
               AND ($3 IS NULL OR g.level = $3)",
        )
        .bind(unit)
        .bind(domain)
        .bind(level)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(unit_uuid, unit_free, group, free)| GroupSpace {
                unit_uuid,
                unit_free_mib: unit_free.max(0) as u64,
                group: group as u32,
                free_mib: free.max(0) as u64,
            })
            .collect())
    }

    /// A station volume by name or UUID.
    pub async fn station_volume(
        &self,
        name_or_uuid: &str,
    ) -> Result<Option<StationVolumeRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT uuid, name, size_mib, created_at FROM station_volumes
             WHERE name = $1 OR uuid = $1",
        )
        .bind(name_or_uuid)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every station volume, by name.
    pub async fn station_volumes(&self) -> Result<Vec<StationVolumeRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT uuid, name, size_mib, created_at FROM station_volumes ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// A station volume's extents, in order.
    pub async fn extents_of(&self, volume_uuid: &str) -> Result<Vec<ExtentRow>, InventoryError> {
        Ok(sqlx::query_as(&format!(
            "{EXTENT_SELECT} WHERE e.volume_uuid = $1 ORDER BY e.seq"
        ))
        .bind(volume_uuid)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every extent of every station volume.
    pub async fn all_extents(&self) -> Result<Vec<ExtentRow>, InventoryError> {
        Ok(
            sqlx::query_as(&format!("{EXTENT_SELECT} ORDER BY e.volume_uuid, e.seq"))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// A station volume's clients.
    pub async fn clients_of(&self, volume_uuid: &str) -> Result<Vec<String>, InventoryError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT client FROM volume_clients WHERE volume_uuid = $1 ORDER BY granted_at, client",
        )
        .bind(volume_uuid)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Every client host with the volumes it may use.
    pub async fn client_grants(&self) -> Result<Vec<ClientGrant>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT c.client, v.name AS volume, c.granted_at
             FROM volume_clients c JOIN station_volumes v ON v.uuid = c.volume_uuid
             ORDER BY c.client, v.name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a station volume with its extents and clients, in one
    /// transaction.
    pub async fn record_station_volume(
        &self,
        uuid: &str,
        name: &str,
        extents: &[NewExtent],
        clients: &[String],
    ) -> Result<StationVolumeRow, InventoryError> {
        let at = now();
        let size: u64 = extents.iter().map(|e| e.size_mib).sum();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO station_volumes (uuid, name, size_mib, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(uuid)
        .bind(name)
        .bind(size as i64)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        for (seq, e) in extents.iter().enumerate() {
            sqlx::query(
                "INSERT INTO extents (volume_uuid, seq, unit_uuid, volume_index, raid_group,
                                      size_mib, export_name)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(uuid)
            .bind(seq as i64)
            .bind(&e.unit_uuid)
            .bind(i64::from(e.volume_index))
            .bind(i64::from(e.raid_group))
            .bind(e.size_mib as i64)
            .bind(&e.export_name)
            .execute(&mut *tx)
            .await?;
        }
        for c in clients {
            sqlx::query(
                "INSERT INTO volume_clients (volume_uuid, client, granted_at) VALUES ($1, $2, $3)
                 ON CONFLICT (volume_uuid, client) DO NOTHING",
            )
            .bind(uuid)
            .bind(c)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(StationVolumeRow {
            uuid: uuid.to_string(),
            name: name.to_string(),
            size_mib: size as i64,
            created_at: at,
        })
    }

    /// Records a client grant (idempotent).
    pub async fn add_client(&self, volume_uuid: &str, client: &str) -> Result<(), InventoryError> {
        sqlx::query(
            "INSERT INTO volume_clients (volume_uuid, client, granted_at) VALUES ($1, $2, $3)
             ON CONFLICT (volume_uuid, client) DO NOTHING",
        )
        .bind(volume_uuid)
        .bind(client)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets a client grant; returns whether it existed.
    pub async fn remove_client(
        &self,
        volume_uuid: &str,
        client: &str,
    ) -> Result<bool, InventoryError> {
        let done = sqlx::query("DELETE FROM volume_clients WHERE volume_uuid = $1 AND client = $2")
            .bind(volume_uuid)
            .bind(client)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets a station volume (its extents and clients with it).
    pub async fn forget_station_volume(&self, uuid: &str) -> Result<(), InventoryError> {
        sqlx::query("DELETE FROM station_volumes WHERE uuid = $1")
            .bind(uuid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
