-- Passkeys (WebAuthn discoverable credentials). Keep in step with ../sqlite.

-- One row per passkey. credential is the library's record of it (public
-- key, sign counter, backup flags) as JSON: no secret, but the counter and
-- flags change with use. credential_id is unique across accounts: a
-- discoverable sign-in names the credential before it names the account.
CREATE TABLE passkeys (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea       NOT NULL UNIQUE,
    credential    text        NOT NULL,
    name          text        NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz
);

CREATE INDEX passkeys_by_user ON passkeys (user_id);

-- Registration and sign-in ceremonies in flight: the library's state, kept
-- server-side (so every instance finishes what another started), single use
-- (deleted by the statement that finishes it) and short-lived. user_id is the
-- account adding a passkey; NULL for a sign-in, which names no one yet.
CREATE TABLE webauthn_challenges (
    id         bytea       PRIMARY KEY,
    purpose    text        NOT NULL,
    user_id    uuid        REFERENCES users (id) ON DELETE CASCADE,
    state      text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);
