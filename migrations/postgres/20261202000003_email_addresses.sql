-- Email verification and change. A verified address records when its link
-- was followed; changing the address (through a link sent to the new one)
-- verifies the new address. Existing accounts start unverified. Keep in step
-- with ../sqlite.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

-- An email-change link carries the address it confirms, and the session that
-- asked for it: that one stays signed in, every other session ends.
ALTER TABLE email_tokens ADD COLUMN new_email text;
ALTER TABLE email_tokens ADD COLUMN new_email_normalized text;
ALTER TABLE email_tokens ADD COLUMN session_id uuid;
