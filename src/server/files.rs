//! Private files: the data directory, the SQLite database with its `-wal`
//! and `-shm` files, and the key file hold password hashes, session keys and
//! signing keys, so only the server's own user may read them.

use anyhow::Context;
use std::{
    fs::{DirBuilder, OpenOptions, Permissions},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

/// Creates `dir` (and its parents) with mode 0700 where missing. An existing
/// directory is left as the operator made it.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("Failed to create the directory {}", dir.display()))
}

/// Makes sure the SQLite database at `path` exists with mode 0600 before
/// SQLite opens it (SQLite gives its `-wal` and `-shm` files the database
/// file's mode), and restricts an existing one, and its companions, that
/// others could read.
pub fn private_sqlite_file(path: &Path) -> anyhow::Result<()> {
    let name = path.as_os_str();
    if name.is_empty() || name == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        private_dir(parent)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = name.to_owned();
        file.push(suffix);
        restrict(Path::new(&file))?;
    }
    Ok(())
}

/// Sets an existing file that others can read to 0600, saying so.
pub fn restrict(path: &Path) -> anyhow::Result<()> {
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    if metadata.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(0o600))
            .with_context(|| format!("Failed to restrict {} to mode 0600", path.display()))?;
        tracing::warn!(path = %path.display(), "the file was readable by others; restricted it to 0600");
    }
    Ok(())
}
