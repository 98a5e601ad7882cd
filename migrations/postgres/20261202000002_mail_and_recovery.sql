-- Single-use links sent by email (password reset, and later email
-- verification and change). Stored only as SHA-256 hashes; a link is spent
-- (used_at set) when followed, or when a newer link or a password change
-- supersedes it. Keep in step with ../sqlite.
CREATE TABLE email_tokens (
    token_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX email_tokens_live_by_user ON email_tokens (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX email_tokens_by_expiry ON email_tokens (expires_at);

-- Mail waiting for delivery: written in the same transaction as the token it
-- carries, deleted once the SMTP server (or the outbox directory) took it.
-- next_attempt_at doubles as a lease: a worker that claims a message moves it
-- into the future, so another instance does not send it at the same time.
CREATE TABLE mail_outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    recipient       text        NOT NULL,
    subject         text        NOT NULL,
    text_body       text        NOT NULL,
    html_body       text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text
);

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
