-- Single-use links sent by email (password reset, and later email
-- verification and change). Stored only as SHA-256 hashes; a link is spent
-- (used_at set) when followed, or when a newer link or a password change
-- supersedes it.
CREATE TABLE email_tokens (
    token_hash BLOB    PRIMARY KEY NOT NULL,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;

CREATE INDEX email_tokens_live_by_user ON email_tokens (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX email_tokens_by_expiry ON email_tokens (expires_at);

-- Mail waiting for delivery: written in the same transaction as the token it
-- carries, deleted once the SMTP server (or the outbox directory) took it.
-- next_attempt_at doubles as a lease: a worker that claims a message moves it
-- into the future, so another instance does not send it at the same time.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      INTEGER NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    text_body       TEXT    NOT NULL,
    html_body       TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
) STRICT;

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
