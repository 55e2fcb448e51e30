//! Key-encryption keys: what the control plane seals certificate private keys with before they
//! reach the database, so that a copy of the database (a backup, a replica, a dump) holds no
//! usable key.
//!
//! A keyring file holds one or more 256-bit keys, one per line as 64 hex digits (`#` starts a
//! comment). The first key seals; every key opens. A key is rotated by putting a new one first
//! in the file of every replica and restarting them: at start a replica seals again, with the
//! first key, every stored value that another key sealed (current entities and kept history
//! alike), after which the old key can be removed from the files. Each sealed value names the key
//! that sealed it by the first bytes of the key's SHA-256, so opening tries exactly one key.
//!
//! Sealing is AES-256-GCM from `ring` (the crypto provider rustls already uses), with a random
//! 96-bit nonce per value and the entity's kind and name as associated data, so that a sealed
//! key moved to another row does not open.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// Marks the format of a sealed value: `v1:<key id>:<hex of nonce, ciphertext and tag>`.
const VERSION: &str = "v1";
/// Bytes of a key's SHA-256 that name it in a sealed value.
const KEY_ID_LEN: usize = 4;
/// Keys in one file: a rotation needs two; more is a mistake.
const MAX_KEYS: usize = 16;
/// Largest keyring file read.
const MAX_FILE_LEN: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("cannot read the key-encryption key file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot create the key-encryption key file {path}: {error}")]
    Create {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("key-encryption key file {path}, line {line}: {message}")]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("key-encryption key file {path} holds no key")]
    Empty { path: PathBuf },
    #[error("the sealed value is damaged: {0}")]
    Damaged(&'static str),
    #[error(
        "the value was sealed with key-encryption key {0}, which the keyring does not hold; \
         give the control plane the keyring that sealed it"
    )]
    UnknownKey(String),
    #[error("the sealed value does not open with key-encryption key {0}: wrong key, or altered")]
    Forged(String),
    #[error("the system random source failed")]
    Random,
}

/// The keys of one keyring file.
pub struct Keyring {
    /// Seals; first in the file.
    keys: Vec<Kek>,
    path: PathBuf,
}

struct Kek {
    id: String,
    key: LessSafeKey,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("keys", &ids)
            .finish()
    }
}

impl Keyring {
    /// Reads a keyring file.
    pub fn load(path: &Path) -> Result<Keyring, KekError> {
        let text = read_limited(path)?;
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let format = |message: String| KekError::Format {
                path: path.to_owned(),
                line: index + 1,
                message,
            };
            let bytes = hex::decode(line)
                .map_err(|_| format("a key is 64 hex digits (32 random bytes)".into()))?;
            if bytes.len() != 32 {
                return Err(format(format!(
                    "a key is 64 hex digits (32 random bytes), not {}",
                    line.len()
                )));
            }
            if keys.len() == MAX_KEYS {
                return Err(format(format!("at most {MAX_KEYS} keys are allowed")));
            }
            keys.push(Kek::new(&bytes).map_err(|_| format("unusable key".into()))?);
        }
        if keys.is_empty() {
            return Err(KekError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Keyring {
            keys,
            path: path.to_owned(),
        })
    }

    /// Reads the keyring file at `path`, creating it with one new random key (readable by its
    /// owner only) when it does not exist. Says whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Keyring, bool), KekError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| KekError::Random)?;
        let created = match create_owner_only(path) {
            Ok(mut file) => {
                let text = format!(
                    "# Key-encryption key of the gateway control plane: it seals the private keys \
                     of certificates in the database.\n# Keep it apart from database backups. \
                     Losing it loses every stored private key.\n{}\n",
                    hex::encode(key)
                );
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|error| KekError::Create {
                        path: path.to_owned(),
                        error,
                    })?;
                true
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(error) => {
                return Err(KekError::Create {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        Ok((Keyring::load(path)?, created))
    }

    /// The id of the key that seals.
    pub fn sealing_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `plaintext`, bound to `context` (which opening must give again).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, KekError> {
        let kek = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KekError::Random)?;
        let mut sealed = plaintext.to_vec();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| KekError::Damaged("too long to seal"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION}:{}:{}", kek.id, hex::encode(out)))
    }

    /// Opens what [`Keyring::seal`] sealed with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, KekError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KekError::Damaged("not a sealed value of this format"));
        };
        let kek = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| KekError::UnknownKey(id.to_owned()))?;
        let bytes = hex::decode(body).map_err(|_| KekError::Damaged("not hex"))?;
        if bytes.len() < NONCE_LEN {
            return Err(KekError::Damaged("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Damaged("bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = kek
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| KekError::Forged(kek.id.clone()))?;
        Ok(plain.to_vec())
    }

    /// Whether `sealed` was sealed with another key than the one that seals now.
    pub fn is_stale(&self, sealed: &str) -> bool {
        sealed
            .split(':')
            .nth(1)
            .is_none_or(|id| id != self.sealing_key_id())
    }
}

impl Kek {
    fn new(bytes: &[u8]) -> Result<Kek, ring::error::Unspecified> {
        let digest = Sha256::digest(bytes);
        Ok(Kek {
            id: hex::encode(&digest[..KEY_ID_LEN]),
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes)?),
        })
    }
}

/// The default keyring file of an embedded SQLite database: beside it.
pub fn default_path_for_sqlite(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    let mut file = PathBuf::from(path).into_os_string();
    file.push(".kek");
    Some(PathBuf::from(file))
}

fn read_limited(path: &Path) -> Result<String, KekError> {
    let read = |error| KekError::Read {
        path: path.to_owned(),
        error,
    };
    let metadata = std::fs::metadata(path).map_err(read)?;
    if metadata.len() > MAX_FILE_LEN as u64 {
        return Err(KekError::Format {
            path: path.to_owned(),
            line: 0,
            message: format!("is larger than {MAX_FILE_LEN} bytes"),
        });
    }
    std::fs::read_to_string(path).map_err(read)
}

#[cfg(unix)]
fn create_owner_only(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_owner_only(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db.kek");
        let (keyring, created) = Keyring::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = keyring.seal("certificate/a", b"secret key").unwrap();
        assert!(!sealed.contains(&hex::encode(b"secret key")));
        assert_eq!(
            keyring.open("certificate/a", &sealed).unwrap(),
            b"secret key"
        );
        assert!(matches!(
            keyring.open("certificate/b", &sealed),
            Err(KekError::Forged(_))
        ));
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(
            keyring.seal("certificate/a", b"secret key").unwrap(),
            sealed
        );

        let (again, created) = Keyring::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.open("certificate/a", &sealed).unwrap(), b"secret key");
    }

    #[test]
    fn a_rotated_keyring_opens_old_values_and_seals_with_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let old_path = dir.path().join("old");
        std::fs::write(&old_path, format!("{}\n", "11".repeat(32))).unwrap();
        let old = Keyring::load(&old_path).unwrap();
        let sealed = old.seal("c", b"k").unwrap();

        let rotated_path = dir.path().join("rotated");
        std::fs::write(
            &rotated_path,
            format!(
                "# new first\n{}\n{}  # old\n",
                "22".repeat(32),
                "11".repeat(32)
            ),
        )
        .unwrap();
        let rotated = Keyring::load(&rotated_path).unwrap();
        assert_eq!(rotated.open("c", &sealed).unwrap(), b"k");
        assert!(rotated.is_stale(&sealed));
        assert!(!rotated.is_stale(&rotated.seal("c", b"k").unwrap()));

        let new_only_path = dir.path().join("new");
        std::fs::write(&new_only_path, format!("{}\n", "22".repeat(32))).unwrap();
        let new_only = Keyring::load(&new_only_path).unwrap();
        assert!(matches!(
            new_only.open("c", &sealed),
            Err(KekError::UnknownKey(_))
        ));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(Keyring::load(&path), Err(KekError::Empty { .. })));
        std::fs::write(&path, "abcd\n").unwrap();
        let error = Keyring::load(&path).unwrap_err().to_string();
        assert!(
            error.contains("line 1") && error.contains("64 hex digits"),
            "{error}"
        );
        assert_eq!(
            default_path_for_sqlite("sqlite:///var/lib/g.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/g.db.kek"))
        );
        assert_eq!(default_path_for_sqlite("sqlite::memory:"), None);
        assert_eq!(default_path_for_sqlite("postgres://x/y"), None);
    }
}
