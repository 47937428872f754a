-- The web console's accounts: people who log in (argon2id password hashes,
-- a role each) and their sessions. A session is known by the SHA-256 of its
-- cookie value, so a copy of the database lets no one in; each session
-- carries the CSRF token its forms must send back.

CREATE TABLE users (
    name           TEXT PRIMARY KEY,
    password_hash  TEXT NOT NULL,         -- PHC string, argon2id
    role           TEXT NOT NULL,         -- admin | viewer
    created_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_sha256   TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX sessions_by_expiry ON sessions (expires_at);
