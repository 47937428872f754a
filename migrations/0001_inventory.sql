-- The station's inventory: the SAN units it knows and what each holds, as
-- learned by walking the unit's DVSAN-MIB, and every notification and change
-- as an event. UUIDs are text, times integer seconds since the Unix epoch,
-- booleans integers, so that PostgreSQL takes the same queries later.

CREATE TABLE units (
    uuid          TEXT PRIMARY KEY,       -- dvsanUnitUuid
    name          TEXT NOT NULL,          -- dvsanUnitName (its DNS name where it has one)
    snmp_address  TEXT NOT NULL,          -- host:port the station polls
    nbd_endpoint  TEXT NOT NULL,          -- dvsanUnitNbdEndpoint
    sys_descr     TEXT NOT NULL,
    software      TEXT NOT NULL,          -- dvsanUnitSoftwareVersion
    state         TEXT NOT NULL,          -- online | offline | unreachable | pending
    total_mib     BIGINT NOT NULL,
    free_mib      BIGINT NOT NULL,
    missed_polls  INTEGER NOT NULL DEFAULT 0,
    last_seen     BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE disks (
    unit_uuid   TEXT NOT NULL REFERENCES units (uuid) ON DELETE CASCADE,
    disk_index  INTEGER NOT NULL,
    path        TEXT NOT NULL,
    size_mib    BIGINT NOT NULL,
    state       TEXT NOT NULL,            -- ok | failed | missing | spare | rebuilding
    raid_group  INTEGER NOT NULL,         -- 0: none
    PRIMARY KEY (unit_uuid, disk_index)
);

CREATE TABLE raid_groups (
    unit_uuid         TEXT NOT NULL REFERENCES units (uuid) ON DELETE CASCADE,
    group_index       INTEGER NOT NULL,
    name              TEXT NOT NULL,
    level             TEXT NOT NULL,      -- linear | raid0 | raid1 | raid10 | raid5 | raid6
    chunk_kib         BIGINT NOT NULL,
    member_count      INTEGER NOT NULL,
    members           TEXT NOT NULL,      -- disk indexes, comma-separated
    capacity_mib      BIGINT NOT NULL,
    free_mib          BIGINT NOT NULL,
    state             TEXT NOT NULL,      -- optimal | degraded | rebuilding | failed | resyncing
    rebuild_progress  INTEGER NOT NULL,
    PRIMARY KEY (unit_uuid, group_index)
);

CREATE TABLE volumes (
    unit_uuid     TEXT NOT NULL REFERENCES units (uuid) ON DELETE CASCADE,
    volume_index  INTEGER NOT NULL,
    uuid          TEXT NOT NULL,
    name          TEXT NOT NULL,
    raid_group    INTEGER NOT NULL,
    offset_mib    BIGINT NOT NULL,
    size_mib      BIGINT NOT NULL,
    state         TEXT NOT NULL,          -- online | offline | degraded | failed
    export_name   TEXT NOT NULL,
    access_mode   TEXT NOT NULL,          -- readWrite | readOnly
    available     INTEGER NOT NULL,       -- 0 while the unit is not online
    PRIMARY KEY (unit_uuid, volume_index)
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    at         BIGINT NOT NULL,
    unit_uuid  TEXT,                      -- NULL when no known unit is concerned
    source     TEXT NOT NULL,             -- address the notification or change came from
    kind       TEXT NOT NULL,             -- coldStart, linkDown, refused, learned, …
    severity   TEXT NOT NULL,             -- info | warning | error
    message    TEXT NOT NULL
);

CREATE INDEX events_by_unit ON events (unit_uuid, at);
CREATE INDEX events_by_kind ON events (kind, at);
