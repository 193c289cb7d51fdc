//! ed25519 key files.
//!
//! - `NAME.key`: the 32-byte seed as lowercase hex and a newline, mode 0600. Reading
//!   refuses a file that group or others can access, like ssh does.
//! - `NAME.pub`: the 32-byte public key as lowercase hex and a newline.
//! - keyid: lowercase hex SHA-256 of the raw 32-byte public key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::format::{SignatureEntry, Signatures, parse_lower_hex};

/// Key files are tiny; anything bigger is not a key file.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The OS random source failed.
    #[error("cannot get random bytes for a new key: {0}")]
    Random(getrandom::Error),
    /// A private key file that group or others can read or write.
    #[error(
        "{path}: private key file has mode {mode:04o}; it must not be accessible to group or others (chmod 600)"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not hex of the expected length.
    #[error("{path}: not a {what} (expected {hex_len} lowercase hex digits and a newline)")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// `private key` or `public key`.
        what: &'static str,
        /// Expected number of hex digits.
        hex_len: usize,
    },
    /// 32 bytes that are not a valid ed25519 public key (or a weak one).
    #[error("{origin}: not a usable ed25519 public key ({reason})")]
    BadPublicKey {
        /// Where the key came from.
        origin: String,
        /// Why.
        reason: String,
    },
    /// A key name that is not a plain file name.
    #[error("key name `{0}` must be letters, digits, `.`, `_` or `-`, not starting with `.`")]
    BadName(String),
    /// Refused to overwrite an existing key file.
    #[error("{0}: already exists; refusing to overwrite a key")]
    Exists(PathBuf),
    /// Not a regular file of at most 1 KiB (a FIFO, a device, a directory, a larger file).
    #[error(transparent)]
    NotReadable(crate::fsread::ReadError),
    /// Any other file system error.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        error: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |error| KeyError::Io {
        path: path.to_owned(),
        error,
    }
}

/// The keyid of a public key: lowercase hex SHA-256 of its 32 raw bytes.
pub fn keyid(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new signing key from the operating system's random source.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(KeyError::Random)?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// Signs `bytes` with each key (a key given twice signs once): the envelope written
/// beside `index.json` and `trust/<N>.json`.
pub fn sign(bytes: &[u8], keys: &[SigningKey]) -> Signatures {
    let mut entries: Vec<SignatureEntry> = Vec::with_capacity(keys.len());
    for key in keys {
        let keyid = keyid(&key.verifying_key());
        if entries.iter().any(|e| e.keyid == keyid) {
            continue;
        }
        entries.push(SignatureEntry {
            keyid,
            sig: hex::encode(key.sign(bytes).to_bytes()),
        });
    }
    Signatures::new(entries)
}

/// Parses a public key from lowercase hex, rejecting weak (small-order) points so
/// `verify_strict` has a sound key to check against.
pub fn public_from_hex(hex_text: &str, origin: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = parse_lower_hex::<32>(hex_text).ok_or_else(|| KeyError::BadPublicKey {
        origin: origin.to_owned(),
        reason: "expected 64 lowercase hex digits".to_owned(),
    })?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|e| KeyError::BadPublicKey {
        origin: origin.to_owned(),
        reason: e.to_string(),
    })?;
    if key.is_weak() {
        return Err(KeyError::BadPublicKey {
            origin: origin.to_owned(),
            reason: "weak (small-order) key".to_owned(),
        });
    }
    Ok(key)
}

/// Writes `DIR/NAME.key` (0600) and `DIR/NAME.pub`, each atomically (temp file + rename),
/// never overwriting an existing file. Returns both paths.
pub fn write_key_pair(
    dir: &Path,
    name: &str,
    key: &SigningKey,
) -> Result<(PathBuf, PathBuf), KeyError> {
    check_name(name)?;
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    for path in [&private, &public] {
        if path.exists() {
            return Err(KeyError::Exists(path.clone()));
        }
    }
    let mut seed_hex = hex::encode(key.to_bytes());
    seed_hex.push('\n');
    let written = write_new(&private, seed_hex.as_bytes(), 0o600);
    // Overwrite the copy of the seed we made, whatever happened.
    seed_hex.clear();
    seed_hex.shrink_to_fit();
    written?;
    write_new(
        &public,
        format!("{}\n", hex::encode(key.verifying_key().as_bytes())).as_bytes(),
        0o644,
    )?;
    Ok((private, public))
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_owned()))
    }
}

/// Creates `path` with `mode` set before any content is written, then renames into place
/// without replacing an existing file.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let opts = crate::atomic::WriteOptions {
        mode,
        ..crate::atomic::WriteOptions::SECRET_NEW
    };
    crate::atomic::write(path, contents, opts).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.to_owned())
        } else {
            KeyError::Io {
                path: path.to_owned(),
                error,
            }
        }
    })
}

/// Reads a key file: a regular file (a link to one is fine: Kubernetes mounts Secrets
/// through links) of at most [`MAX_KEY_FILE_BYTES`], refused when larger rather than cut.
fn read_small(path: &Path) -> Result<String, KeyError> {
    use crate::fsread::{ReadError, Rules, read};
    let bytes = read(path, Rules::regular(MAX_KEY_FILE_BYTES)).map_err(|e| match e {
        ReadError::Io { path, source } => KeyError::Io {
            path,
            error: source,
        },
        other => KeyError::NotReadable(other),
    })?;
    // Bytes that are not UTF-8 fail the key's parse, which names the file and the format.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads a private key file, refusing one that group or others can access.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = read_small(path)?;
    let key = parse_signing_key(&text);
    text.clear();
    key.ok_or_else(|| KeyError::Malformed {
        path: path.to_owned(),
        what: "private key",
        hex_len: 64,
    })
}

/// Parses the content of a `NAME.key` file (64 lowercase hex digits and a newline).
/// Prefer [`read_signing_key`], which also checks the file's mode; this is for content
/// that does not come from a file of its own (fixtures, generators).
pub fn parse_signing_key(text: &str) -> Option<SigningKey> {
    let mut seed = strip_newline(text).and_then(parse_lower_hex::<32>)?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Some(key)
}

/// Reads a public key file.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = read_small(path)?;
    let hex_text = strip_newline(&text).ok_or_else(|| KeyError::Malformed {
        path: path.to_owned(),
        what: "public key",
        hex_len: 64,
    })?;
    public_from_hex(hex_text, &path.display().to_string())
}

/// The file's content without its one trailing newline (which is required).
fn strip_newline(text: &str) -> Option<&str> {
    text.strip_suffix('\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_regular_and_small_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A FIFO that no one writes to: opening it would block; it is refused first.
        let pipe = dir.path().join("ci.key");
        let status = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap();
        assert!(status.success());
        fs::set_permissions(&pipe, fs::Permissions::from_mode(0o600)).unwrap();
        match read_signing_key(&pipe) {
            Err(KeyError::NotReadable(crate::fsread::ReadError::NotRegular {
                what: "FIFO",
                path,
            })) => assert_eq!(path, pipe),
            other => panic!("{other:?}"),
        }
        // A key file of more than 1 KiB is refused, not cut to its first KiB.
        let big = dir.path().join("big.pub");
        fs::write(&big, "a".repeat(2048)).unwrap();
        match read_verifying_key(&big) {
            Err(KeyError::NotReadable(crate::fsread::ReadError::TooLarge { limit, .. })) => {
                assert_eq!(limit, MAX_KEY_FILE_BYTES)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keygen_roundtrip_and_file_modes() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate().unwrap();
        let (private, public) = write_key_pair(dir.path(), "ci-1", &key).unwrap();
        assert_eq!(
            fs::metadata(&private).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = fs::read_to_string(&private).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        let back = read_signing_key(&private).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        let pubkey = read_verifying_key(&public).unwrap();
        assert_eq!(pubkey, key.verifying_key());
        let sig = back.sign(b"hello");
        pubkey.verify_strict(b"hello", &sig).unwrap();
        assert_eq!(keyid(&pubkey).len(), 64);
        // No stray temp files.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn refuses_overwrite_bad_names_and_loose_modes() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate().unwrap();
        write_key_pair(dir.path(), "k", &key).unwrap();
        assert!(matches!(
            write_key_pair(dir.path(), "k", &key),
            Err(KeyError::Exists(_))
        ));
        for bad in ["", ".hidden", "a/b", "../x", "a b"] {
            assert!(
                matches!(
                    write_key_pair(dir.path(), bad, &key),
                    Err(KeyError::BadName(_))
                ),
                "{bad}"
            );
        }
        let private = dir.path().join("k.key");
        fs::set_permissions(&private, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_signing_key(&private).unwrap_err();
        assert!(
            matches!(err, KeyError::InsecurePermissions { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("k.key"), "{err}");
    }

    #[test]
    fn rejects_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.key");
        for content in [
            "",
            "abcd\n",
            &"A".repeat(64),
            &format!("{}\n", "A".repeat(64)),
            &"a".repeat(64),
        ] {
            fs::write(&p, content).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            assert!(
                matches!(read_signing_key(&p), Err(KeyError::Malformed { .. })),
                "{content:?}"
            );
        }
        // The identity point is a small-order (weak) key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            public_from_hex(&hex::encode(identity), "x.pub"),
            Err(KeyError::BadPublicKey { .. })
        ));
    }

    #[test]
    fn keyid_is_sha256_of_raw_public_key() {
        // RFC 8032 test vector 1 public key.
        let pk = public_from_hex(
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "t",
        )
        .unwrap();
        let expected = hex::encode(Sha256::digest(pk.as_bytes()));
        assert_eq!(keyid(&pk), expected);
        assert!(
            keyid(&pk)
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
    }
}
