-- Second factors: authenticator apps (TOTP, RFC 6238), one-time recovery
-- codes, and sign-ins waiting for their second step. Keep in step with
-- ../sqlite.

-- One authenticator app per account. The secret is sealed with the data key
-- (XChaCha20-Poly1305, bound to the account's id), so a copy of the database
-- alone yields no codes. enabled_at NULL: set up, not yet confirmed with a
-- code; it counts for nothing. last_step is the highest 30-second step a code
-- was accepted for: each code is accepted once.
CREATE TABLE user_totp (
    user_id       uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed text        NOT NULL,
    created_at    timestamptz NOT NULL,
    enabled_at    timestamptz,
    last_step     bigint      NOT NULL DEFAULT 0
);

-- One-time recovery codes, kept only as a salted SHA-256; a used one is
-- deleted.
CREATE TABLE recovery_codes (
    user_id   uuid  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- A sign-in whose password was right, waiting for its second step. Its token
-- (kept as SHA-256) travels in an HttpOnly cookie or the answer's mfa_token;
-- it is not a session and opens nothing but POST /auth/login/mfa.
-- password_hash is the hash the password was checked against: the session is
-- created only if it is still the account's.
CREATE TABLE mfa_challenges (
    token_hash    bytea       PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0
);

CREATE INDEX mfa_challenges_by_user ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
