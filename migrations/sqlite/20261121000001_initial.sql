-- Portcullis schema, SQLite flavour. Times are integer milliseconds since the
-- Unix epoch (UTC); ids are 16-byte UUIDs. Keep in step with ../postgres.

CREATE TABLE users (
    id                  BLOB    PRIMARY KEY NOT NULL,
    -- As the person typed it, for display.
    email               TEXT    NOT NULL,
    -- Trimmed and lower-cased by the application: the identity, unique.
    email_normalized    TEXT    NOT NULL UNIQUE,
    -- argon2id PHC string; never leaves the server.
    password_hash       TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
) STRICT;

-- One row per signed-in device.
CREATE TABLE sessions (
    id               BLOB    PRIMARY KEY NOT NULL,
    user_id          BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Per-session secret from which each refresh token's successor is derived,
    -- so concurrent refreshes of one token agree on one successor.
    rotation_key     BLOB    NOT NULL,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL,
    -- Last time the password was proven on this device.
    authenticated_at INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    revoked_reason   TEXT,
    user_agent       TEXT,
    ip               TEXT
) STRICT;

CREATE INDEX sessions_active_by_user ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Every refresh token a session was ever given, stored only as a SHA-256
-- hash. The live one has retired_at NULL; presenting a retired one outside the
-- grace window is treated as theft.
CREATE TABLE refresh_tokens (
    token_hash BLOB    PRIMARY KEY NOT NULL,
    session_id BLOB    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    retired_at INTEGER
) STRICT;

CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- The audit trail. No foreign keys: events outlive the rows they mention.
CREATE TABLE auth_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    user_id     BLOB,
    session_id  BLOB,
    ip          TEXT,
    user_agent  TEXT,
    detail      TEXT
) STRICT;

CREATE INDEX auth_events_by_user ON auth_events (user_id, occurred_at);
CREATE INDEX auth_events_by_time ON auth_events (occurred_at);

-- Failed-login counters, per account key and per client IP. Kept in the
-- database so every instance sharing it enforces the same limits.
CREATE TABLE login_throttle (
    key             TEXT    PRIMARY KEY NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_until    INTEGER
) STRICT;
