-- Keys for the admin HTTP API (`portcullis admin api-key create NAME`). A key
-- is `pck_<id>_<secret>`: the id finds the row, the secret is kept only as
-- its SHA-256 and compared in constant time. Names are unique among live keys.
CREATE TABLE admin_api_keys (
    id           TEXT    PRIMARY KEY NOT NULL,
    name         TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE UNIQUE INDEX admin_api_keys_live_name ON admin_api_keys (name) WHERE revoked_at IS NULL;
