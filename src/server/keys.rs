//! The JWT signing keys: from `PORTCULLIS_JWT_KEYS`, or (SQLite only) a key
//! generated once into the data directory.

use anyhow::Context;
use base64::{Engine as _, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use std::{io::Write, os::unix::fs::OpenOptionsExt};

use super::{
    config::{Engine, JwtKeySpec, Settings, parse_jwt_keys},
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
    if engine == Engine::Postgres {
        anyhow::bail!(
            "PORTCULLIS_JWT_KEYS must be set with PostgreSQL: instances sharing a database \
             must share the signing key, and a generated key file is per instance"
        );
    }
    let path = settings.data_dir.join("jwt-signing.key");
    if path.exists() {
        super::files::restrict(&path)?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        let keys = parse_jwt_keys(text.trim())
            .map_err(|e| anyhow::anyhow!("{} is invalid: {e}", path.display()))?;
        tracing::warn!(path = %path.display(), "using the JWT signing key from the data directory; set PORTCULLIS_JWT_KEYS in production");
        return Ok(keys);
    }
    let secret = generate_jwt_secret();
    let kid = format!("local-{}", &hex_prefix(&Sha256::digest(&secret)));
    let line = format!("{kid}:{}", STANDARD.encode(&secret));
    // Written whole to a private temporary file, then linked into place: a
    // second instance starting at the same moment either sees no file or a
    // complete one, and exactly one key wins.
    let temporary = settings
        .data_dir
        .join(format!(".jwt-signing.key.{}", std::process::id()));
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
                "no PORTCULLIS_JWT_KEYS set: generated a signing key in the data directory (fine for one \
                 instance and for development; configure PORTCULLIS_JWT_KEYS in production)"
            );
            parse_jwt_keys(&line).map_err(|e| anyhow::anyhow!("{e}"))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            load_jwt_keys(settings, engine)
        }
        Err(error) => Err(error).with_context(|| format!("Failed to create {}", path.display())),
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
