-- Passkeys (WebAuthn discoverable credentials). Keep in step with ../postgres.

-- One row per passkey. credential is the library's record of it (public
-- key, sign counter, backup flags) as JSON: no secret, but the counter and
-- flags change with use. credential_id is unique across accounts: a
-- discoverable sign-in names the credential before it names the account.
CREATE TABLE passkeys (
    id            BLOB    PRIMARY KEY NOT NULL,
    user_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB    NOT NULL UNIQUE,
    credential    TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
) STRICT;

CREATE INDEX passkeys_by_user ON passkeys (user_id);

-- Registration and sign-in ceremonies in flight: the library's state, kept
-- server-side (so every instance finishes what another started), single use
-- (deleted by the statement that finishes it) and short-lived. user_id is the
-- account adding a passkey; NULL for a sign-in, which names no one yet.
CREATE TABLE webauthn_challenges (
    id         BLOB    PRIMARY KEY NOT NULL,
    purpose    TEXT    NOT NULL,
    user_id    BLOB    REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);
