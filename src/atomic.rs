//! The one atomic file writer: a temporary file in the target's directory,
//! its mode set before any content is written, fsynced, then renamed into
//! place (replacing the target, or refusing to), and the directory fsynced.
//! A reader sees the old file or the new one, never half of one, even across
//! a crash; a failed write leaves no temporary file behind (it is removed
//! when dropped). Used for key files (0600, never replaced), site documents
//! and trust roots (0644), and the agent's chart cache.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// How a file is written.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// The file's permission bits, exact (the umask does not narrow them).
    pub mode: u32,
    /// Replace an existing file; when false, [`std::io::ErrorKind::AlreadyExists`].
    pub replace: bool,
    /// Create the parent directories first.
    pub create_dirs: bool,
}

impl WriteOptions {
    /// A public document (site files, trust roots): 0644, replaced.
    pub const PUBLIC: Self = Self {
        mode: 0o644,
        replace: true,
        create_dirs: true,
    };
    /// A secret that must never be overwritten (key files): 0600, not replaced.
    pub const SECRET_NEW: Self = Self {
        mode: 0o600,
        replace: false,
        create_dirs: false,
    };
    /// A private cache entry: 0600, replaced.
    pub const PRIVATE: Self = Self {
        mode: 0o600,
        replace: true,
        create_dirs: true,
    };
}

/// Writes `bytes` to `path` atomically with `opts`.
pub fn write(path: &Path, bytes: &[u8], opts: WriteOptions) -> std::io::Result<()> {
    write_with(path, opts, |file| file.write_all(bytes))
}

/// [`write()`] with the content written by `fill` into the temporary file (so a
/// test can fail it half-way as a full disk does); whatever `fill` returns as
/// an error removes the temporary file and leaves the target as it was.
pub fn write_with(
    path: &Path,
    opts: WriteOptions,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if opts.create_dirs {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(std::fs::Permissions::from_mode(opts.mode))
        .tempfile_in(dir)?;
    // The umask may have narrowed the mode; make it exact.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(opts.mode))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    if opts.replace {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    std::fs::File::open(dir)?.sync_all()
}

/// The prefix of the temporary files [`write_with`] creates.
const TEMP_PREFIX: &str = ".coxswain-tmp-";

/// Removes the temporary files a killed writer left in `dir` (a `kill -9`
/// runs no destructor, so [`write_with`]'s clean-up never happened), when
/// they are older than `min_age`: a younger one may belong to a writer that
/// is still at work (another process sharing the directory). Only regular
/// files with this module's prefix are touched; a missing directory is not
/// an error. Returns how many were removed.
pub fn remove_stale_temporaries(
    dir: &Path,
    min_age: std::time::Duration,
) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
        {
            continue;
        }
        // A DirEntry's metadata does not follow a symlink; a link is not ours.
        let meta = entry.metadata()?;
        if !meta.file_type().is_file() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age >= min_age {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Its writer finished (renamed or removed it) meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_replace_with_the_exact_mode_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/doc.json");
        write(&path, b"one", WriteOptions::PUBLIC).unwrap();
        write(&path, b"two", WriteOptions::PUBLIC).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o644);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["doc.json"]);
    }

    #[test]
    fn a_secret_is_0600_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write(&path, b"seed", WriteOptions::SECRET_NEW).unwrap();
        assert_eq!(mode(&path), 0o600);
        let e = write(&path, b"other", WriteOptions::SECRET_NEW).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"seed");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), b"x").unwrap();
        assert!(write(&path, b"doc", WriteOptions::PUBLIC).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".coxswain-tmp-abc");
        std::fs::write(&stale, b"half a chart").unwrap();
        std::fs::write(dir.path().join("sha256-00.tgz"), b"kept").unwrap();
        std::fs::create_dir(dir.path().join(".coxswain-tmp-dir")).unwrap();
        // Too young: a writer may still be at work.
        assert_eq!(
            remove_stale_temporaries(dir.path(), std::time::Duration::from_secs(3600)).unwrap(),
            0
        );
        assert!(stale.exists());
        assert_eq!(
            remove_stale_temporaries(dir.path(), std::time::Duration::ZERO).unwrap(),
            1
        );
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".coxswain-tmp-dir", "sha256-00.tgz"]);
        assert_eq!(
            remove_stale_temporaries(&dir.path().join("missing"), std::time::Duration::ZERO)
                .unwrap(),
            0
        );
    }
}
