-- Live sign-out across instances: every end of a session recorded in the
-- event source is also announced on the channel `portcullis_session_ended`,
-- as "<session id> <stored reason>". NOTIFY is transactional: it is sent
-- when the change that ended the session commits, and never for one rolled
-- back. Listeners that lose their connection re-check their sessions, so a
-- notification missed meanwhile is not lost. (SQLite, one instance, tails
-- the table itself; its migration is a no-op kept for step.)
CREATE FUNCTION announce_session_end() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('portcullis_session_ended',
                      NEW.session_id::text || ' ' || COALESCE(NEW.reason, 'expired'));
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER session_events_announce_end
    AFTER INSERT ON session_events
    FOR EACH ROW
    WHEN (NEW.kind = 'revoked' AND NEW.session_id IS NOT NULL)
    EXECUTE FUNCTION announce_session_end();
