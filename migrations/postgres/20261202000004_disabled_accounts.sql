-- An operator can disable an account (`portcullis admin disable`): every
-- session ends and no sign-in, refresh or recovery works until it is enabled.
-- Keep in step with ../sqlite.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
ALTER TABLE users ADD COLUMN disabled_reason text;
