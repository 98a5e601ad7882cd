-- The one source of session events (webhooks now, live sign-out later):
-- a trigger on `sessions` writes a row in the same transaction as the
-- change, so a rolled-back change records nothing and a committed one is
-- never lost, whichever code path (or process) made it. Keep in step with
-- ../sqlite.
--
-- The latest `exp` of the access tokens issued for a session, in the same
-- unit as the JWT's (Unix seconds); set with every token issued.
ALTER TABLE sessions ADD COLUMN access_expires_at bigint;

CREATE TABLE session_events (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text        NOT NULL,
    session_id        uuid        NOT NULL,
    user_id           uuid        NOT NULL,
    reason            text,
    access_expires_at bigint,
    ip                text,
    user_agent        text,
    occurred_at       timestamptz NOT NULL,
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL,
    last_status       integer,
    last_error        text,
    delivered_at      timestamptz,
    dead_at           timestamptz
);

CREATE INDEX session_events_due ON session_events (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX session_events_by_time ON session_events (occurred_at);

CREATE FUNCTION record_session_event() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO session_events (kind, session_id, user_id, access_expires_at, ip, user_agent,
                                    occurred_at, next_attempt_at)
        VALUES ('created', NEW.id, NEW.user_id, NEW.access_expires_at, NEW.ip, NEW.user_agent,
                NEW.created_at, NEW.created_at);
    ELSIF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
        INSERT INTO session_events (kind, session_id, user_id, reason, access_expires_at, ip,
                                    user_agent, occurred_at, next_attempt_at)
        VALUES ('revoked', NEW.id, NEW.user_id, NEW.revoked_reason, NEW.access_expires_at, NEW.ip,
                NEW.user_agent, NEW.revoked_at, NEW.revoked_at);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER sessions_events AFTER INSERT OR UPDATE OF revoked_at ON sessions
    FOR EACH ROW EXECUTE FUNCTION record_session_event();
