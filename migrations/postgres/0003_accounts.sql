-- Accounts, sessions and read-only report links ("Safe to share"). Sign-in is needed when
-- the server is reachable beyond loopback; a share link shows one experiment's report to
-- whoever holds it, and nothing else.
--
-- Written in SQL that SQLite and Postgres 15 both accept (the same text is the SQLite
-- migration 0009): times are epoch seconds bound from Rust. Tokens are never stored: only
-- their SHA-256, so a copy of the database opens no session and no link.

CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    -- Argon2id in the PHC string format (salt and parameters inside).
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at      DOUBLE PRECISION NOT NULL
);

CREATE TABLE sessions (
    token_sha256    TEXT PRIMARY KEY,
    user_name       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at      DOUBLE PRECISION NOT NULL,
    expires_at      DOUBLE PRECISION NOT NULL
);

CREATE TABLE share_links (
    -- A public handle for listing and revoking (not the token).
    id              TEXT PRIMARY KEY,
    token_sha256    TEXT NOT NULL UNIQUE,
    experiment_id   BIGINT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    -- Who made it; NULL when sign-in was off (one person on one machine).
    created_by      TEXT REFERENCES users(name) ON DELETE SET NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    expires_at      DOUBLE PRECISION,
    revoked_at      DOUBLE PRECISION
);

CREATE INDEX share_links_by_experiment ON share_links (experiment_id);
