-- Keys for the admin HTTP API (`portcullis admin api-key create NAME`). A key
-- is `pck_<id>_<secret>`: the id finds the row, the secret is kept only as
-- its SHA-256 and compared in constant time. Names are unique among live keys.
-- Keep in step with ../sqlite.
CREATE TABLE admin_api_keys (
    id           text        PRIMARY KEY,
    name         text        NOT NULL,
    secret_hash  bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE UNIQUE INDEX admin_api_keys_live_name ON admin_api_keys (name) WHERE revoked_at IS NULL;
