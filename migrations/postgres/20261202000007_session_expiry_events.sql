-- A session that was never revoked ends by expiring; the sweeper deletes it
-- later. Its deletion is its `session.revoked` event (reason: expired), in
-- the sweeper's transaction. (An account's erasure deletes these again.)
-- Keep in step with ../sqlite.
CREATE FUNCTION record_session_expiry() RETURNS trigger AS $$
BEGIN
    IF OLD.revoked_at IS NULL THEN
        INSERT INTO session_events (kind, session_id, user_id, reason, access_expires_at, ip,
                                    user_agent, occurred_at, next_attempt_at)
        VALUES ('revoked', OLD.id, OLD.user_id, 'expired', OLD.access_expires_at, OLD.ip,
                OLD.user_agent, OLD.expires_at, OLD.expires_at);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER sessions_expired AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION record_session_expiry();
