-- Whether a unit's NBD server speaks TLS (dvsanUnitNbdTls): off, optional
-- or required. Units learned before this column read as off until their
-- next poll.
ALTER TABLE units ADD COLUMN nbd_tls TEXT NOT NULL DEFAULT 'off'
    CHECK (nbd_tls IN ('off', 'optional', 'required'));
