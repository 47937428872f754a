-- Volumes the station allocated for client hosts: each is one or more
-- extents (partitions on units, concatenated in `seq` order) and a list of
-- client hosts granted access on every extent. API tokens for the REST API
-- are kept as SHA-256 hashes of their secrets.

CREATE TABLE station_volumes (
    uuid        TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    size_mib    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE extents (
    volume_uuid   TEXT NOT NULL REFERENCES station_volumes (uuid) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    unit_uuid     TEXT NOT NULL,
    volume_index  INTEGER NOT NULL,       -- dvsanVolumeIndex on the unit
    raid_group    INTEGER NOT NULL,
    size_mib      BIGINT NOT NULL,
    export_name   TEXT NOT NULL,
    PRIMARY KEY (volume_uuid, seq),
    UNIQUE (unit_uuid, volume_index)
);

CREATE TABLE volume_clients (
    volume_uuid  TEXT NOT NULL REFERENCES station_volumes (uuid) ON DELETE CASCADE,
    client       TEXT NOT NULL,           -- address or CIDR
    granted_at   BIGINT NOT NULL,
    PRIMARY KEY (volume_uuid, client)
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    last_used   BIGINT
);
