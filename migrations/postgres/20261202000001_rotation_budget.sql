-- Refresh-token rotation is rate-limited per session: a fixed window (its
-- start) and the rotations counted in it.
ALTER TABLE sessions ADD COLUMN rotation_window_start timestamptz;
ALTER TABLE sessions ADD COLUMN rotations_in_window integer NOT NULL DEFAULT 0;
-- Pruning retired tokens and finding a session's oldest one.
CREATE INDEX refresh_tokens_by_session_generation ON refresh_tokens (session_id, generation);
DROP INDEX refresh_tokens_by_session;
