//! The one bounded local file reader: what `coxswain publish`, key loading and
//! directory sites read from disk goes through [`read`].
//!
//! - Only regular files are read. The type is checked with `stat` (or `lstat`)
//!   *before* the file is opened, so a FIFO, a device or a socket is never
//!   opened at all; the open itself uses `O_NONBLOCK` and the result is checked
//!   again with `fstat` (same file, still regular), so a file swapped for a
//!   FIFO in between cannot block the reader either.
//! - The size cap is enforced before reading (the `stat` size) and while
//!   reading (through `Read::take(cap + 1)`), never after reading it all.
//! - [`Rules::no_links`] refuses symbolic links (`O_NOFOLLOW`) and files with
//!   more than one hard link, for files inside a chart directory, where a link
//!   could lead outside the chart.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// What [`read`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The most bytes read; a larger file is refused.
    pub cap: u64,
    /// Whether a symbolic link is followed (else refused).
    pub follow_symlinks: bool,
    /// Whether a file with more than one hard link is read (else refused).
    pub hard_links: bool,
}

impl Rules {
    /// A regular file, reached through symbolic links or not (a key mounted from a
    /// Kubernetes Secret is a link), of at most `cap` bytes.
    pub const fn regular(cap: u64) -> Self {
        Rules {
            cap,
            follow_symlinks: true,
            hard_links: true,
        }
    }

    /// A regular file that is neither a symbolic link nor hard-linked elsewhere, of at most
    /// `cap` bytes: for files inside a chart directory.
    pub const fn no_links(cap: u64) -> Self {
        Rules {
            cap,
            follow_symlinks: false,
            hard_links: false,
        }
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be inspected, opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a regular file (refused before it was opened).
    #[error("{path} is a {what}, not a regular file")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is: `FIFO`, `socket`, `character device`, `block device`, `directory`.
        what: &'static str,
    },
    /// A symbolic link where none is allowed.
    #[error("{path} is a symbolic link")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A file with other hard links, where none is allowed.
    #[error("{path} has {links} hard links (it may be a file from outside the directory)")]
    HardLink {
        /// The file.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// Larger than the cap.
    #[error("{path} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size as far as seen: the `stat` size, or `limit + 1` when it grew while
        /// being read.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// The file changed between the check and the open.
    #[error("{path} was replaced while being opened")]
    Changed {
        /// The file.
        path: PathBuf,
    },
}

impl ReadError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// What a non-regular file is, for messages.
fn kind_of(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("directory")
    } else if t.is_fifo() {
        Some("FIFO")
    } else if t.is_socket() {
        Some("socket")
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_block_device() {
        Some("block device")
    } else if t.is_symlink() {
        Some("symbolic link")
    } else {
        Some("special file")
    }
}

fn check(path: &Path, meta: &Metadata, rules: Rules) -> Result<(), ReadError> {
    if meta.file_type().is_symlink() {
        return Err(ReadError::Symlink {
            path: path.to_owned(),
        });
    }
    if let Some(what) = kind_of(meta) {
        return Err(ReadError::NotRegular {
            path: path.to_owned(),
            what,
        });
    }
    if !rules.hard_links && meta.nlink() > 1 {
        return Err(ReadError::HardLink {
            path: path.to_owned(),
            links: meta.nlink(),
        });
    }
    if meta.len() > rules.cap {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            limit: rules.cap,
        });
    }
    Ok(())
}

/// Reads `path` under `rules` (see the module documentation).
pub fn read(path: &Path, rules: Rules) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let before = if rules.follow_symlinks {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(io)?;
    check(path, &before, rules)?;
    let mut flags = libc::O_NONBLOCK;
    if !rules.follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|source| {
            // O_NOFOLLOW on a link that appeared since the check.
            if source.raw_os_error() == Some(libc::ELOOP) {
                ReadError::Symlink {
                    path: path.to_owned(),
                }
            } else {
                io(source)
            }
        })?;
    let opened = file.metadata().map_err(io)?;
    check(path, &opened, rules)?;
    if (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
        return Err(ReadError::Changed {
            path: path.to_owned(),
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    // The file may grow after the fstat: the take() keeps the cap honest.
    file.take(rules.cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > rules.cap {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit: rules.cap,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn regular_files_are_read_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read(&file, Rules::regular(5)).unwrap(), b"12345");
        assert!(matches!(
            read(&file, Rules::regular(4)),
            Err(ReadError::TooLarge { limit: 4, .. })
        ));
        assert!(
            read(&dir.path().join("none"), Rules::regular(4))
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("pipe");
        fifo(&pipe);
        // No writer ever opens the FIFO: a reader that opened it would block here.
        for rules in [Rules::regular(10), Rules::no_links(10)] {
            match read(&pipe, rules) {
                Err(ReadError::NotRegular { what: "FIFO", path }) => assert_eq!(path, pipe),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            read(Path::new("/dev/zero"), Rules::regular(10)),
            Err(ReadError::NotRegular {
                what: "character device",
                ..
            })
        ));
        assert!(matches!(
            read(dir.path(), Rules::regular(10)),
            Err(ReadError::NotRegular {
                what: "directory",
                ..
            })
        ));
        // A symbolic link to the FIFO is refused too when followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&pipe, &link).unwrap();
        assert!(matches!(
            read(&link, Rules::regular(10)),
            Err(ReadError::NotRegular { what: "FIFO", .. })
        ));
    }

    #[test]
    fn no_links_refuses_symlinks_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read(&link, Rules::regular(10)).unwrap(), b"x");
        assert!(matches!(
            read(&link, Rules::no_links(10)),
            Err(ReadError::Symlink { .. })
        ));
        assert_eq!(read(&file, Rules::no_links(10)).unwrap(), b"x");
        std::fs::hard_link(&file, dir.path().join("h")).unwrap();
        match read(&file, Rules::no_links(10)) {
            Err(ReadError::HardLink { links: 2, path }) => assert_eq!(path, file),
            other => panic!("{other:?}"),
        }
        assert_eq!(read(&file, Rules::regular(10)).unwrap(), b"x");
    }
}
