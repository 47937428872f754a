//! The station's inventory in SQL (SQLite by default): units, their disks,
//! RAID groups and volumes, and events. The only module of dvsan that
//! speaks SQL; every query is a named function.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use crate::unit_snapshot::{MibLabel, UnitSnapshot};

mod accounts;
mod allocations;
pub use accounts::{
    AccountError, NewSession, Role, SessionRow, UserRow, check_user_name, random_token,
};
mod tokens;
pub use allocations::{ClientGrant, ExtentRow, NewExtent, StationVolumeRow};
pub use tokens::TokenRow;

/// Inventory errors.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The database refused or failed.
    #[error("inventory database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migrating the inventory: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// A unit's state in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitState {
    /// Answering; its capacity is in service.
    Online,
    /// It said goodbye (linkDown); its capacity is out of service.
    Offline,
    /// It missed several polls.
    Unreachable,
    /// Waiting for an admin's approval.
    Pending,
}

impl UnitState {
    /// The stored label.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Online => "online",
            UnitState::Offline => "offline",
            UnitState::Unreachable => "unreachable",
            UnitState::Pending => "pending",
        }
    }

    fn parse(s: &str) -> UnitState {
        match s {
            "online" => UnitState::Online,
            "offline" => UnitState::Offline,
            "pending" => UnitState::Pending,
            _ => UnitState::Unreachable,
        }
    }
}

/// A unit row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, serde::Deserialize)]
pub struct UnitRow {
    /// dvsanUnitUuid.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// Where the station polls it.
    pub snmp_address: String,
    /// Where clients reach its NBD server.
    pub nbd_endpoint: String,
    /// Whether that server speaks TLS: off | optional | required.
    pub nbd_tls: String,
    /// sysDescr.
    pub sys_descr: String,
    /// Agent software version.
    pub software: String,
    /// online | offline | unreachable | pending.
    pub state: String,
    /// Total capacity, MiB.
    pub total_mib: i64,
    /// Free capacity, MiB.
    pub free_mib: i64,
    /// Polls missed in a row.
    pub missed_polls: i64,
    /// Last answer, Unix seconds.
    pub last_seen: i64,
}

impl UnitRow {
    /// The state.
    pub fn unit_state(&self) -> UnitState {
        UnitState::parse(&self.state)
    }
}

/// A partition row (dvsanVolumeTable as last learned), with the station
/// volume it is an extent of, if any.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, serde::Deserialize)]
pub struct VolumeRecord {
    /// The unit holding it.
    pub unit_uuid: String,
    /// dvsanVolumeIndex.
    pub volume_index: i64,
    /// dvsanVolumeUuid.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// dvsanVolumeRaidGroup.
    pub raid_group: i64,
    /// Offset in its group, MiB.
    pub offset_mib: i64,
    /// Size, MiB.
    pub size_mib: i64,
    /// online | offline | degraded | failed.
    pub state: String,
    /// Its NBD export name.
    pub export_name: String,
    /// readWrite | readOnly.
    pub access_mode: String,
    /// 1 while its unit is online.
    pub available: i64,
    /// The station volume it belongs to, if any.
    pub station_volume: Option<String>,
}

/// A disk row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, serde::Deserialize)]
pub struct DiskRecord {
    /// dvsanDiskIndex.
    pub disk_index: i64,
    /// Device or file path on the unit.
    pub path: String,
    /// Size, MiB.
    pub size_mib: i64,
    /// ok | failed | missing | spare | rebuilding.
    pub state: String,
    /// The RAID group it belongs to; 0 when free.
    pub raid_group: i64,
}

/// A RAID group row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, serde::Deserialize)]
pub struct GroupRecord {
    /// dvsanRaidGroupIndex.
    pub group_index: i64,
    /// Its name.
    pub name: String,
    /// linear | raid0 | raid1 | raid10 | raid5 | raid6.
    pub level: String,
    /// Chunk size, KiB.
    pub chunk_kib: i64,
    /// Number of members.
    pub member_count: i64,
    /// Member disk indexes, comma-separated.
    pub members: String,
    /// Usable capacity, MiB.
    pub capacity_mib: i64,
    /// Free space, MiB.
    pub free_mib: i64,
    /// optimal | degraded | rebuilding | failed | resyncing.
    pub state: String,
    /// Per cent.
    pub rebuild_progress: i64,
    /// Per member slot, comma-separated like `members`: MiB a lost
    /// member's own disk back in its slot would rebuild (0 in service);
    /// empty when the unit does not say.
    pub readd_mib: String,
}

/// An event row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, serde::Deserialize)]
pub struct EventRow {
    /// Sequence number.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The unit concerned, when known.
    pub unit_uuid: Option<String>,
    /// Where it came from.
    pub source: String,
    /// What happened (coldStart, linkDown, refused, learned …).
    pub kind: String,
    /// info | warning | error.
    pub severity: String,
    /// Text for people.
    pub message: String,
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct EventFilter {
    /// Only this unit's (UUID).
    pub unit: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Not before, Unix seconds.
    pub since: Option<i64>,
    /// Not after, Unix seconds.
    pub until: Option<i64>,
    /// Only events with a smaller id (the next page).
    pub before_id: Option<i64>,
    /// How many (clamped to 1..=1000).
    #[serde(default = "EventFilter::default_limit")]
    pub limit: i64,
}

impl EventFilter {
    fn default_limit() -> i64 {
        100
    }
}

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    /// The unit concerned, when known.
    pub unit_uuid: Option<&'a str>,
    /// Where it came from.
    pub source: &'a str,
    /// What happened.
    pub kind: &'a str,
    /// info | warning | error.
    pub severity: &'a str,
    /// Text for people.
    pub message: &'a str,
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The inventory.
///
/// Write transactions start with `BEGIN IMMEDIATE` (SQLite): one that read
/// first and then wrote could otherwise fail with SQLITE_BUSY_SNAPSHOT when
/// another connection wrote in between, which no busy timeout cures.
#[derive(Debug, Clone)]
pub struct Inventory {
    pool: SqlitePool,
}

impl Inventory {
    /// Opens (creating) the database at `url` (`sqlite://FILE`, or
    /// `sqlite::memory:`), in WAL mode, and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, InventoryError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL never corrupts the database; a power cut may
            // lose the last commits, which the next poll re-learns.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        // One connection for an in-memory database: each would be its own.
        let max = if url.contains(":memory:") { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        Ok(Inventory { pool })
    }

    /// Writes everything a poll learned of a unit, replacing what was known,
    /// in one transaction; the unit is then online. Returns whether the
    /// unit was new.
    pub async fn upsert_unit(&self, s: &UnitSnapshot) -> Result<bool, InventoryError> {
        self.upsert_unit_at(s, &s.snmp_address.to_string(), UnitState::Online)
            .await
    }

    /// [`Inventory::upsert_unit`], recording `endpoint` (an address or a
    /// DNS name with port) as where to poll it, in `state`.
    #[tracing::instrument(skip_all, fields(unit = %s.uuid))]
    pub async fn upsert_unit_at(
        &self,
        s: &UnitSnapshot,
        endpoint: &str,
        state: UnitState,
    ) -> Result<bool, InventoryError> {
        let at = now();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let existed: Option<(String,)> = sqlx::query_as("SELECT uuid FROM units WHERE uuid = $1")
            .bind(&s.uuid)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO units (uuid, name, snmp_address, nbd_endpoint, nbd_tls, sys_descr, software,
                                state, total_mib, free_mib, missed_polls, last_seen, created_at)
             VALUES ($1, $2, $3, $4, $11, $5, $6, $10, $7, $8, 0, $9, $9)
             ON CONFLICT (uuid) DO UPDATE SET
                name = excluded.name, snmp_address = excluded.snmp_address,
                nbd_endpoint = excluded.nbd_endpoint, nbd_tls = excluded.nbd_tls,
                sys_descr = excluded.sys_descr,
                software = excluded.software, state = excluded.state,
                total_mib = excluded.total_mib, free_mib = excluded.free_mib,
                missed_polls = 0, last_seen = excluded.last_seen",
        )
        .bind(&s.uuid)
        .bind(&s.name)
        .bind(endpoint)
        .bind(&s.nbd_endpoint)
        .bind(&s.sys_descr)
        .bind(&s.software)
        .bind(i64::from(s.total_mib))
        .bind(i64::from(s.free_mib))
        .bind(at)
        .bind(state.as_str())
        .bind(s.nbd_tls.mib_name())
        .execute(&mut *tx)
        .await?;
        for table in ["disks", "raid_groups", "volumes"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE unit_uuid = $1"))
                .bind(&s.uuid)
                .execute(&mut *tx)
                .await?;
        }
        for d in &s.disks {
            sqlx::query(
                "INSERT INTO disks (unit_uuid, disk_index, path, size_mib, state, raid_group)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.uuid)
            .bind(i64::from(d.index))
            .bind(&d.path)
            .bind(i64::from(d.size_mib))
            .bind(d.state.mib_name())
            .bind(i64::from(d.raid_group))
            .execute(&mut *tx)
            .await?;
        }
        for g in &s.raid_groups {
            sqlx::query(
                "INSERT INTO raid_groups (unit_uuid, group_index, name, level, chunk_kib, member_count,
                                          members, capacity_mib, free_mib, state, rebuild_progress,
                                          readd_mib)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&s.uuid)
            .bind(i64::from(g.index))
            .bind(&g.name)
            .bind(g.level.mib_name())
            .bind(i64::from(g.chunk_kib))
            .bind(i64::from(g.member_count))
            .bind(&g.members)
            .bind(i64::from(g.capacity_mib))
            .bind(i64::from(g.free_mib))
            .bind(g.state.mib_name())
            .bind(i64::from(g.rebuild_progress))
            .bind(&g.readd_mib)
            .execute(&mut *tx)
            .await?;
        }
        for v in &s.volumes {
            sqlx::query(
                "INSERT INTO volumes (unit_uuid, volume_index, uuid, name, raid_group, offset_mib,
                                      size_mib, state, export_name, access_mode, available)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&s.uuid)
            .bind(i64::from(v.index))
            .bind(&v.uuid)
            .bind(&v.name)
            .bind(i64::from(v.raid_group))
            .bind(i64::from(v.offset_mib))
            .bind(i64::from(v.size_mib))
            .bind(v.state.mib_name())
            .bind(&v.export_name)
            .bind(v.access_mode.mib_name())
            .bind(i64::from(state == UnitState::Online))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(existed.is_none())
    }

    /// Sets a unit's state; its volumes are available only while online.
    /// Returns whether the unit exists.
    #[tracing::instrument(skip(self))]
    pub async fn set_unit_state(
        &self,
        uuid: &str,
        state: UnitState,
    ) -> Result<bool, InventoryError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query("UPDATE units SET state = $1 WHERE uuid = $2")
            .bind(state.as_str())
            .bind(uuid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE volumes SET available = $1 WHERE unit_uuid = $2")
            .bind(i64::from(state == UnitState::Online))
            .bind(uuid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a missed poll; returns the count.
    pub async fn record_missed_poll(&self, uuid: &str) -> Result<i64, InventoryError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE units SET missed_polls = missed_polls + 1 WHERE uuid = $1 RETURNING missed_polls",
        )
        .bind(uuid)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0).unwrap_or(0))
    }

    /// How many events of `kind` there are.
    pub async fn count_events(&self, kind: &str) -> Result<i64, InventoryError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events WHERE kind = $1")
            .bind(kind)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Every unit, by name.
    pub async fn units(&self) -> Result<Vec<UnitRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT uuid, name, snmp_address, nbd_endpoint, nbd_tls, sys_descr, software, state,
                    total_mib, free_mib, missed_polls, last_seen
             FROM units ORDER BY name, uuid",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// One unit.
    pub async fn unit(&self, uuid: &str) -> Result<Option<UnitRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT uuid, name, snmp_address, nbd_endpoint, nbd_tls, sys_descr, software, state,
                    total_mib, free_mib, missed_polls, last_seen
             FROM units WHERE uuid = $1",
        )
        .bind(uuid)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A unit's partitions.
    pub async fn volumes_of(&self, uuid: &str) -> Result<Vec<VolumeRecord>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT v.unit_uuid, v.volume_index, v.uuid, v.name, v.raid_group, v.offset_mib,
                    v.size_mib, v.state, v.export_name, v.access_mode, v.available,
                    sv.name AS station_volume
             FROM volumes v
             LEFT JOIN extents e ON e.unit_uuid = v.unit_uuid AND e.volume_index = v.volume_index
             LEFT JOIN station_volumes sv ON sv.uuid = e.volume_uuid
             WHERE v.unit_uuid = $1 ORDER BY v.volume_index",
        )
        .bind(uuid)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A unit's disks.
    pub async fn disks_of(&self, uuid: &str) -> Result<Vec<DiskRecord>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT disk_index, path, size_mib, state, raid_group FROM disks
             WHERE unit_uuid = $1 ORDER BY disk_index",
        )
        .bind(uuid)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A unit's RAID groups.
    pub async fn groups_of(&self, uuid: &str) -> Result<Vec<GroupRecord>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT group_index, name, level, chunk_kib, member_count, members, capacity_mib,
                    free_mib, state, rebuild_progress, readd_mib FROM raid_groups
             WHERE unit_uuid = $1 ORDER BY group_index",
        )
        .bind(uuid)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many disks and RAID groups a unit has.
    pub async fn counts_of(&self, uuid: &str) -> Result<(i64, i64), InventoryError> {
        let disks: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM disks WHERE unit_uuid = $1")
            .bind(uuid)
            .fetch_one(&self.pool)
            .await?;
        let groups: (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM raid_groups WHERE unit_uuid = $1")
                .bind(uuid)
                .fetch_one(&self.pool)
                .await?;
        Ok((disks.0, groups.0))
    }

    /// Records an event.
    pub async fn record_event(&self, e: NewEvent<'_>) -> Result<(), InventoryError> {
        sqlx::query(
            "INSERT INTO events (at, unit_uuid, source, kind, severity, message)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now())
        .bind(e.unit_uuid)
        .bind(e.source)
        .bind(e.kind)
        .bind(e.severity)
        .bind(e.message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Events matching `f`, newest first: at most `f.limit` (1 to 1000),
    /// older than `f.before_id` when given (for paging).
    pub async fn events_matching(&self, f: &EventFilter) -> Result<Vec<EventRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT id, at, unit_uuid, source, kind, severity, message FROM events
             WHERE ($1 IS NULL OR unit_uuid = $1) AND ($2 IS NULL OR kind = $2)
               AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at <= $4)
               AND ($5 IS NULL OR id < $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(f.unit.as_deref())
        .bind(f.kind.as_deref())
        .bind(f.since)
        .bind(f.until)
        .bind(f.before_id)
        .bind(f.limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Events, newest first, optionally of one kind.
    pub async fn events(
        &self,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT id, at, unit_uuid, source, kind, severity, message FROM events
             WHERE ($1 IS NULL OR kind = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(kind)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
