-- The event source grows from sessions to accounts and throttle locks:
-- `user.*` events come from triggers on `users`, in the transaction of the
-- change, like the session events; `login.throttled` rows are written by the
-- application in the transaction of the lock's audit row. Such rows name no
-- session, and a network's lock no user, so both columns become optional.
-- SQLite cannot relax NOT NULL in place: the table is rebuilt (its rows,
-- ids and sequence kept) and the triggers that write to it recreated.
-- Keep in step with ../postgres.
DROP TRIGGER sessions_created;
DROP TRIGGER sessions_revoked;
DROP TRIGGER sessions_expired;

CREATE TABLE session_events_rebuilt (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'created', 'revoked', 'user_created', 'password_changed',
    -- 'email_changed', 'disabled', 'enabled', 'deleted', 'throttled'
    kind              TEXT    NOT NULL,
    session_id        BLOB,
    user_id           BLOB,
    reason            TEXT,                      -- sessions.revoked_reason
    access_expires_at INTEGER,
    ip                TEXT,
    user_agent        TEXT,
    -- A throttle lock: which kind of key ('account', 'device', 'backstop',
    -- 'ip'), the network for 'ip', and when it ends.
    key_kind          TEXT,
    network           TEXT,
    locked_until      INTEGER,
    occurred_at       INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    last_status       INTEGER,
    last_error        TEXT,
    delivered_at      INTEGER,
    dead_at           INTEGER
) STRICT;

INSERT INTO session_events_rebuilt (id, kind, session_id, user_id, reason, access_expires_at, ip,
                                    user_agent, occurred_at, attempts, next_attempt_at,
                                    last_status, last_error, delivered_at, dead_at)
SELECT id, kind, session_id, user_id, reason, access_expires_at, ip, user_agent, occurred_at,
       attempts, next_attempt_at, last_status, last_error, delivered_at, dead_at
FROM session_events;

DROP TABLE session_events;
ALTER TABLE session_events_rebuilt RENAME TO session_events;

CREATE INDEX session_events_due ON session_events (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX session_events_by_time ON session_events (occurred_at);
CREATE INDEX session_events_by_user ON session_events (user_id);

CREATE TRIGGER sessions_created AFTER INSERT ON sessions
BEGIN
    INSERT INTO session_events (kind, session_id, user_id, access_expires_at, ip, user_agent,
                                occurred_at, next_attempt_at)
    VALUES ('created', NEW.id, NEW.user_id, NEW.access_expires_at, NEW.ip, NEW.user_agent,
            NEW.created_at, NEW.created_at);
END;

CREATE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at ON sessions
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO session_events (kind, session_id, user_id, reason, access_expires_at, ip,
                                user_agent, occurred_at, next_attempt_at)
    VALUES ('revoked', NEW.id, NEW.user_id, NEW.revoked_reason, NEW.access_expires_at, NEW.ip,
            NEW.user_agent, NEW.revoked_at, NEW.revoked_at);
END;

CREATE TRIGGER sessions_expired AFTER DELETE ON sessions
WHEN OLD.revoked_at IS NULL
BEGIN
    INSERT INTO session_events (kind, session_id, user_id, reason, access_expires_at, ip,
                                user_agent, occurred_at, next_attempt_at)
    VALUES ('revoked', OLD.id, OLD.user_id, 'expired', OLD.access_expires_at, OLD.ip,
            OLD.user_agent, OLD.expires_at, OLD.expires_at);
END;

-- Account events. Times are the application's (milliseconds) where the row
-- carries one, and the database's clock otherwise.
CREATE TRIGGER users_created AFTER INSERT ON users
BEGIN
    INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
    VALUES ('user_created', NEW.id, NEW.created_at, NEW.created_at);
END;

-- The change time, not the hash: a hash upgraded to newer parameters on
-- sign-in is the same password.
CREATE TRIGGER users_password_changed AFTER UPDATE OF password_changed_at ON users
WHEN NEW.password_changed_at IS NOT OLD.password_changed_at
BEGIN
    INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
    VALUES ('password_changed', NEW.id, NEW.password_changed_at, NEW.password_changed_at);
END;

CREATE TRIGGER users_email_changed AFTER UPDATE OF email_normalized ON users
WHEN NEW.email_normalized IS NOT OLD.email_normalized
BEGIN
    INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
    VALUES ('email_changed', NEW.id,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER users_disabled AFTER UPDATE OF disabled_at ON users
WHEN OLD.disabled_at IS NULL AND NEW.disabled_at IS NOT NULL
BEGIN
    INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
    VALUES ('disabled', NEW.id, NEW.disabled_at, NEW.disabled_at);
END;

CREATE TRIGGER users_enabled AFTER UPDATE OF disabled_at ON users
WHEN OLD.disabled_at IS NOT NULL AND NEW.disabled_at IS NULL
BEGIN
    INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
    VALUES ('enabled', NEW.id,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN
    INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
    VALUES ('deleted', OLD.id,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
