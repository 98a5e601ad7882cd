-- An operator can disable an account (`portcullis admin disable`): every
-- session ends and no sign-in, refresh or recovery works until it is enabled.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
ALTER TABLE users ADD COLUMN disabled_reason TEXT;
