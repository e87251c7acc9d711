//! The data directory is herald's user's alone: the directory 0700 and
//! every file in it 0600, whatever the umask (the database holds the secret
//! that signs callback tokens, and operations' personal data).
//!
//! SQLite creates the `-wal` and `-shm` files itself, giving them the
//! database file's mode; so the database file is made (empty, which SQLite
//! takes as a new database) with 0600 before SQLite opens it. A directory
//! or file left open to others — by an older herald, or made by hand — is
//! tightened, and a warning says so; one herald cannot tighten (not its
//! owner) is warned about and left.

use std::{fs, io, path::Path};

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and any missing parents) 0700, or tightens it if it exists.
pub fn prepare_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)?;
    ensure(dir, DIR_MODE);
    Ok(())
}

/// Opens `path` for writing, creating it (without truncating) 0600.
pub fn open_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    ensure(path, FILE_MODE);
    Ok(file)
}

/// Tightens every file in `dir` (the `-wal` and `-shm` of an older run,
/// anything made by hand).
pub fn tighten_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        // Not through a symbolic link: what it points at is not ours to change.
        if fs::symlink_metadata(&path)?.is_file() {
            ensure(&path, FILE_MODE);
        }
    }
    Ok(())
}

/// Gives `path` exactly `mode` (the umask may have taken bits from a new
/// one); a warning tells when it was open to others.
#[cfg(unix)]
fn ensure(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(current) = fs::metadata(path).map(|m| m.permissions().mode() & 0o777) else { return };
    if current == mode {
        return;
    }
    let (was, now) = (format!("{current:o}"), format!("{mode:o}"));
    match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        Ok(()) if current & 0o077 != 0 => {
            tracing::warn!(path = %path.display(), was, now, "the data directory was open to other users: tightened")
        }
        Ok(()) => {}
        Err(e) => {
            tracing::error!(path = %path.display(), was, error = %e, "the data directory's modes could not be set")
        }
    }
}

#[cfg(not(unix))]
fn ensure(_: &Path, _: u32) {}
