-- Portcullis schema, PostgreSQL flavour. Keep in step with ../sqlite.

CREATE TABLE users (
    id                  uuid        PRIMARY KEY,
    -- As the person typed it, for display.
    email               text        NOT NULL,
    -- Trimmed and lower-cased by the application: the identity, unique.
    email_normalized    text        NOT NULL UNIQUE,
    -- argon2id PHC string; never leaves the server.
    password_hash       text        NOT NULL,
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL
);

-- One row per signed-in device.
CREATE TABLE sessions (
    id               uuid        PRIMARY KEY,
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Per-session secret from which each refresh token's successor is derived,
    -- so concurrent refreshes of one token agree on one successor.
    rotation_key     bytea       NOT NULL,
    created_at       timestamptz NOT NULL,
    last_used_at     timestamptz NOT NULL,
    -- Last time the password was proven on this device.
    authenticated_at timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    revoked_reason   text,
    user_agent       text,
    ip               text
);

CREATE INDEX sessions_active_by_user ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Every refresh token a session was ever given, stored only as a SHA-256
-- hash. The live one has retired_at NULL; presenting a retired one outside the
-- grace window is treated as theft.
CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation bigint      NOT NULL,
    issued_at  timestamptz NOT NULL,
    retired_at timestamptz
);

CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- The audit trail. No foreign keys: events outlive the rows they mention.
CREATE TABLE auth_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    kind        text        NOT NULL,
    user_id     uuid,
    session_id  uuid,
    ip          text,
    user_agent  text,
    detail      text
);

CREATE INDEX auth_events_by_user ON auth_events (user_id, occurred_at);
CREATE INDEX auth_events_by_time ON auth_events (occurred_at);

-- Failed-login counters, per account key and per client IP. Kept in the
-- database so every instance sharing it enforces the same limits.
CREATE TABLE login_throttle (
    key             text        PRIMARY KEY,
    failures        bigint      NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_until    timestamptz
);
