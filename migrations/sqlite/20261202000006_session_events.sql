-- The one source of session events (webhooks now, live sign-out later):
-- triggers on `sessions` write a row in the same transaction as the change,
-- so a rolled-back change records nothing and a committed one is never lost,
-- whichever code path (or process) made it.
--
-- The latest `exp` of the access tokens issued for a session, in the same
-- unit as the JWT's (Unix seconds); set with every token issued.
ALTER TABLE sessions ADD COLUMN access_expires_at INTEGER;

CREATE TABLE session_events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT    NOT NULL,          -- 'created' or 'revoked'
    session_id        BLOB    NOT NULL,
    user_id           BLOB    NOT NULL,
    reason            TEXT,                      -- sessions.revoked_reason
    access_expires_at INTEGER,
    ip                TEXT,
    user_agent        TEXT,
    occurred_at       INTEGER NOT NULL,
    -- Webhook delivery: due at next_attempt_at (a lease while delivering),
    -- done at delivered_at, given up at dead_at.
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    last_status       INTEGER,
    last_error        TEXT,
    delivered_at      INTEGER,
    dead_at           INTEGER
) STRICT;

CREATE INDEX session_events_due ON session_events (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX session_events_by_time ON session_events (occurred_at);

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
