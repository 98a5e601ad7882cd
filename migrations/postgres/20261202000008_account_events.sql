-- The event source grows from sessions to accounts and throttle locks:
-- `user.*` events come from a trigger on `users`, in the transaction of the
-- change, like the session events; `login.throttled` rows are written by the
-- application in the transaction of the lock's audit row. Such rows name no
-- session, and a network's lock no user. Keep in step with ../sqlite.
ALTER TABLE session_events
    ALTER COLUMN session_id DROP NOT NULL,
    ALTER COLUMN user_id DROP NOT NULL,
    -- A throttle lock: which kind of key ('account', 'device', 'backstop',
    -- 'ip'), the network for 'ip', and when it ends.
    ADD COLUMN key_kind text,
    ADD COLUMN network text,
    ADD COLUMN locked_until timestamptz;

CREATE INDEX session_events_by_user ON session_events (user_id);

CREATE FUNCTION record_user_event() RETURNS trigger AS $$
DECLARE
    happened timestamptz := now();
    what text;
    who uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        what := 'user_created';
        happened := NEW.created_at;
        who := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        what := 'deleted';
        who := OLD.id;
    ELSE
        who := NEW.id;
        -- The change time, not the hash: a hash upgraded to newer
        -- parameters on sign-in is the same password.
        IF NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at THEN
            INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
            VALUES ('password_changed', who, NEW.password_changed_at, NEW.password_changed_at);
        END IF;
        IF NEW.email_normalized IS DISTINCT FROM OLD.email_normalized THEN
            INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
            VALUES ('email_changed', who, happened, happened);
        END IF;
        IF OLD.disabled_at IS NULL AND NEW.disabled_at IS NOT NULL THEN
            INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
            VALUES ('disabled', who, NEW.disabled_at, NEW.disabled_at);
        ELSIF OLD.disabled_at IS NOT NULL AND NEW.disabled_at IS NULL THEN
            INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
            VALUES ('enabled', who, happened, happened);
        END IF;
        RETURN NULL;
    END IF;
    INSERT INTO session_events (kind, user_id, occurred_at, next_attempt_at)
    VALUES (what, who, happened, happened);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_events
    AFTER INSERT OR DELETE OR UPDATE OF password_changed_at, email_normalized, disabled_at
    ON users FOR EACH ROW EXECUTE FUNCTION record_user_event();
