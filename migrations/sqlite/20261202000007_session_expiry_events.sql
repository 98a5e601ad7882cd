-- A session that was never revoked ends by expiring; the sweeper deletes it
-- later. Its deletion is its `session.revoked` event (reason: expired), in
-- the sweeper's transaction. (An account's erasure deletes these again.)
CREATE TRIGGER sessions_expired AFTER DELETE ON sessions
WHEN OLD.revoked_at IS NULL
BEGIN
    INSERT INTO session_events (kind, session_id, user_id, reason, access_expires_at, ip,
                                user_agent, occurred_at, next_attempt_at)
    VALUES ('revoked', OLD.id, OLD.user_id, 'expired', OLD.access_expires_at, OLD.ip,
            OLD.user_agent, OLD.expires_at, OLD.expires_at);
END;
