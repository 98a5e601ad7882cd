-- Live sign-out: PostgreSQL announces the ends of sessions with NOTIFY (see
-- ../postgres). One SQLite instance tails `session_events` instead, whose
-- ids its single writer assigns in commit order, so nothing changes here;
-- this file keeps the two histories in step.
SELECT 1;
