//! The JWT signing keys (`PORTCULLIS_JWT_KEYS`) and the data key that seals
//! secrets at rest (`PORTCULLIS_DATA_KEY`): configured, or (SQLite only)
//! generated once into the data directory.

use anyhow::Context;
use base64::{Engine as _, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use std::{io::Write, os::unix::fs::OpenOptionsExt};

use super::{
    config::{Engine, JwtKeySpec, Settings, parse_data_keys, parse_jwt_keys},
    tokens::generate_jwt_secret,
};

/// `PORTCULLIS_JWT_KEYS` when set. Otherwise, on SQLite only, a key generated
/// once into the data directory (mode 0600) and reused on later starts. There
/// is no built-in fallback secret. With PostgreSQL the key must be configured:
/// instances sharing a database must share it.
pub fn load_jwt_keys(settings: &Settings, engine: Engine) -> anyhow::Result<Vec<JwtKeySpec>> {
    if let Some(keys) = &settings.jwt.keys {
        return Ok(keys.clone());
    }
    local_key(
        settings,
        engine,
        &LocalKey {
            variable: "PORTCULLIS_JWT_KEYS",
            purpose: "the signing key",
            file: "jwt-signing.key",
            generate: generate_jwt_secret,
            parse: parse_jwt_keys,
        },
    )
}

/// `PORTCULLIS_DATA_KEY` when set: the keys that seal secrets at rest (TOTP
/// secrets). Otherwise, on SQLite only, one generated into the data directory
/// like the signing key. With PostgreSQL it must be configured, the same on
/// every instance: a secret sealed by one must open on all.
pub fn load_data_keys(settings: &Settings, engine: Engine) -> anyhow::Result<Vec<JwtKeySpec>> {
    if let Some(keys) = &settings.data_keys {
        return Ok(keys.clone());
    }
    local_key(
        settings,
        engine,
        &LocalKey {
            variable: "PORTCULLIS_DATA_KEY",
            purpose: "the data key",
            file: "data-sealing.key",
            generate: || {
                let mut secret = vec![0u8; crate::server::mfa::sealing::KEY_BYTES];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
                secret
            },
            parse: parse_data_keys,
        },
    )
}

/// A key an instance may generate for itself when it is alone (SQLite).
struct LocalKey {
    variable: &'static str,
    purpose: &'static str,
    file: &'static str,
    generate: fn() -> Vec<u8>,
    parse: fn(&str) -> Result<Vec<JwtKeySpec>, crate::server::config::ConfigError>,
}

fn local_key(
    settings: &Settings,
    engine: Engine,
    key: &LocalKey,
) -> anyhow::Result<Vec<JwtKeySpec>> {
    let variable = key.variable;
    if engine == Engine::Postgres {
        anyhow::bail!(
            "{variable} must be set with PostgreSQL: instances sharing a database \
             must share {}, and a generated key file is per instance",
            key.purpose
        );
    }
    let path = settings.data_dir.join(key.file);
    if path.exists() {
        super::files::restrict(&path)?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        let keys = (key.parse)(text.trim())
            .map_err(|e| anyhow::anyhow!("{} is invalid: {e}", path.display()))?;
        tracing::warn!(path = %path.display(), "using {} from the data directory; set {variable} in production", key.purpose);
        return Ok(keys);
    }
    let secret = (key.generate)();
    let kid = format!("local-{}", &hex_prefix(&Sha256::digest(&secret)));
    let line = format!("{kid}:{}", STANDARD.encode(&secret));
    // Written whole to a private temporary file, then linked into place: a
    // second instance starting at the same moment either sees no file or a
    // complete one, and exactly one key wins.
    let temporary = settings
        .data_dir
        .join(format!(".{}.{}", key.file, std::process::id()));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("Failed to create {}", temporary.display()))?;
        writeln!(file, "{line}")
            .with_context(|| format!("Failed to write {}", temporary.display()))?;
        file.sync_all()
            .with_context(|| format!("Failed to sync {}", temporary.display()))?;
    }
    let linked = std::fs::hard_link(&temporary, &path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::warn!(
                path = %path.display(),
                "no {variable} set: generated {} in the data directory (fine for one \
                 instance and for development; configure {variable} in production)",
                key.purpose
            );
            (key.parse)(&line).map_err(|e| anyhow::anyhow!("{e}"))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            local_key(settings, engine, key)
        }
        Err(error) => Err(error).with_context(|| format!("Failed to create {}", path.display())),
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
