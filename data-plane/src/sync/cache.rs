//! The local cache of the last applied config, so that a restarted worker serves at once, even
//! while no control plane answers.
//!
//! The file holds the encoded full `ConfigPush` of the applied revision (protobuf keeps every
//! field, including ones this build may not know). It is replaced atomically: written to a temp
//! file in the same directory, fsynced, renamed over the old one, and the directory fsynced, so a
//! crash leaves either the old or the new file, never a torn one. On load the content is checked
//! like any push (validation, digest, compilation); anything wrong makes the file ignored. It is
//! read only up to the size of the largest push the worker accepts, which is also the largest
//! file it can have written.
//!
//! The file holds the private keys of the config's certificates in the clear, so it is created
//! readable and writable by its owner only (mode 0600). It is not encrypted: a worker must read
//! it at start without any control plane, so the key that opened it would have to sit beside it
//! with the same permissions, which protects nothing more.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gateway_proto::{MAX_CONFIG_PUSH_BYTES, v1};
use prost::Message;

use crate::served::{Carryover, Compiled, Source, State};
use crate::sync::apply::{ApplyError, Prepared, prepare};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not an encoded config: {error}")]
    Decode {
        path: PathBuf,
        error: prost::DecodeError,
    },
    #[error(
        "{path} is larger than the {max} bytes this worker accepts in a push (--max-config-push)"
    )]
    TooLarge { path: PathBuf, max: usize },
    #[error("{path} holds a delta on revision {base}, not a whole config")]
    NotFull { path: PathBuf, base: u64 },
    #[error("{path} holds an unusable config: {error}")]
    Invalid { path: PathBuf, error: ApplyError },
}

/// Where the applied config is kept between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    path: PathBuf,
    /// Largest file read.
    max_bytes: usize,
}

impl Cache {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Cache {
            path: path.into(),
            max_bytes: MAX_CONFIG_PUSH_BYTES,
        }
    }

    /// Reads files up to `max_bytes` (the worker's push limit) instead of the default
    /// [`MAX_CONFIG_PUSH_BYTES`].
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// `gateway-cache/<group>.pb` under the working directory; characters that could leave the
    /// directory or confuse a shell are replaced in the group name.
    pub fn default_for_group(group: &str) -> Self {
        let safe: String = group
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = if safe.is_empty() { "default" } else { &safe };
        Cache::new(Path::new("gateway-cache").join(format!("{name}.pb")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole config `compiled` as an encoded full push, the form the cache file holds.
    pub fn snapshot(compiled: &Compiled, committed_at_unix_ms: i64) -> Vec<u8> {
        compiled
            .config
            .encode_full_push(compiled.revision, &compiled.digest, committed_at_unix_ms)
    }

    /// Replaces the cache file with `push`, atomically.
    #[cfg(test)]
    pub fn write_push(&self, push: &v1::ConfigPush) -> Result<(), CacheError> {
        self.write(&push.encode_to_vec())
    }

    /// Replaces the cache file with `encoded` (a full push), atomically.
    pub fn write(&self, encoded: &[u8]) -> Result<(), CacheError> {
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |error| CacheError::Io {
                action,
                path,
                error,
            }
        };
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        let temp = dir.join(format!(
            ".{}.{}-{:08x}.tmp",
            self.path
                .file_name()
                .map_or_else(|| "cache".into(), |n| n.to_string_lossy()),
            std::process::id(),
            fastrand::u32(..)
        ));
        let written = (|| {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp).map_err(io("create", &temp))?;
            file.write_all(encoded).map_err(io("write", &temp))?;
            file.sync_all().map_err(io("fsync", &temp))?;
            fs::rename(&temp, &self.path).map_err(io("rename into place", &self.path))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
            return written;
        }
        // Makes the rename itself durable; not every platform allows opening a directory.
        if let Ok(dir) = File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// The cached push, `None` when there is no cache file.
    pub fn read(&self) -> Result<Option<v1::ConfigPush>, CacheError> {
        let Some(bytes) = self.read_bytes()? else {
            return Ok(None);
        };
        let push =
            v1::ConfigPush::decode(bytes.as_slice()).map_err(|error| CacheError::Decode {
                path: self.path.clone(),
                error,
            })?;
        if push.base_revision != 0 {
            return Err(CacheError::NotFull {
                path: self.path.clone(),
                base: push.base_revision,
            });
        }
        Ok(Some(push))
    }

    /// The file's content, at most `max_bytes` of it; `None` when there is no file.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>, CacheError> {
        let io = |error| CacheError::Io {
            action: "read",
            path: self.path.clone(),
            error,
        };
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io(error)),
        };
        let too_large = || CacheError::TooLarge {
            path: self.path.clone(),
            max: self.max_bytes,
        };
        let len = file.metadata().map_err(io)?.len();
        if len > self.max_bytes as u64 {
            return Err(too_large());
        }
        // The length is a hint only: the file may grow between the two calls, and the read stays
        // bounded by the limit whatever it does.
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(self.max_bytes as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > self.max_bytes {
            return Err(too_large());
        }
        Ok(Some(bytes))
    }

    /// The cached config, checked and compiled with `carryover`; `None` when there is no cache
    /// file.
    pub fn load(&self, carryover: &Arc<Carryover>) -> Result<Option<Compiled>, CacheError> {
        let Some(push) = self.read()? else {
            return Ok(None);
        };
        match prepare(carryover, None, push) {
            Ok(Prepared::Swap(compiled)) => Ok(Some(*compiled)),
            // Unreachable without a current config; treated as "nothing cached".
            Ok(Prepared::AlreadyServed) => Ok(None),
            Err(error) => Err(CacheError::Invalid {
                path: self.path.clone(),
                error,
            }),
        }
    }

    /// Serves the cached config if there is a valid one, and says whether it did. A bad file is
    /// logged and ignored: the worker then waits for the control plane as if it had no cache.
    pub fn restore(&self, state: &State) -> bool {
        match self.load(state.carryover()) {
            Ok(Some(compiled)) => {
                tracing::info!(
                    revision = compiled.revision,
                    path = %self.path.display(),
                    "serving the cached configuration until the control plane answers"
                );
                state.store_from(compiled, Source::Cache);
                true
            }
            Ok(None) => {
                tracing::info!(path = %self.path.display(), "no cached configuration");
                false
            }
            Err(error) => {
                tracing::warn!(%error, "ignoring the configuration cache");
                false
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::{Config, digest};

    use super::*;
    use crate::served::NodeIdentity;

    fn config(address: &str) -> Config {
        let json = format!(
            r#"{{"upstreams": [{{"name": "api", "targets": [{{"address": "{address}"}}]}}],
                "routes": [{{"name": "r", "paths": [{{"prefix": "/"}}],
                             "backends": [{{"upstream": "api"}}]}}]}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    fn compiled(revision: u64, address: &str) -> Compiled {
        let config = config(address);
        Compiled::compile(revision, digest(&config), config).unwrap()
    }

    fn snapshot_push(compiled: &Compiled) -> v1::ConfigPush {
        v1::ConfigPush::decode(Cache::snapshot(compiled, 0).as_slice()).unwrap()
    }

    fn state() -> State {
        State::new(NodeIdentity {
            id: "n".into(),
            group: "g".into(),
        })
    }

    #[test]
    fn round_trip_serves_the_cached_revision() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("nested/dir/edge.pb"));
        assert!(
            cache.load(&Arc::default()).unwrap().is_none(),
            "no file yet"
        );
        let original = compiled(7, "127.0.0.1:1");
        cache.write(&Cache::snapshot(&original, 1234)).unwrap();
        assert_eq!(cache.read().unwrap().unwrap().committed_at_unix_ms, 1234);

        let state = state();
        assert!(cache.restore(&state));
        let served = state.current().unwrap();
        assert_eq!(served.revision, 7);
        assert_eq!(served.digest, original.digest);
        assert_eq!(served.config, original.config);
        assert_eq!(state.source(), Some(Source::Cache));
    }

    #[test]
    fn writes_replace_atomically_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("g.pb"));
        cache
            .write(&Cache::snapshot(&compiled(1, "127.0.0.1:1"), 0))
            .unwrap();
        // A reader holding the old file keeps reading the old content: the new one is a new inode.
        let old = File::open(cache.path()).unwrap();
        cache
            .write(&Cache::snapshot(&compiled(2, "127.0.0.1:2"), 0))
            .unwrap();
        let old_content = {
            use std::io::Read;
            let mut bytes = Vec::new();
            (&old).read_to_end(&mut bytes).unwrap();
            v1::ConfigPush::decode(bytes.as_slice()).unwrap()
        };
        assert_eq!(old_content.revision, 1);
        assert_eq!(cache.load(&Arc::default()).unwrap().unwrap().revision, 2);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["g.pb"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(cache.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the file may hold private keys");
        }
    }

    #[test]
    fn corrupt_or_unusable_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("g.pb"));
        let state = state();

        fs::write(cache.path(), b"\xff\xff\xff not protobuf").unwrap();
        assert!(matches!(
            cache.load(&Arc::default()),
            Err(CacheError::Decode { .. })
        ));
        assert!(!cache.restore(&state));

        let mut push = snapshot_push(&compiled(3, "127.0.0.1:1"));
        push.digest = "0".repeat(64);
        cache.write_push(&push).unwrap();
        assert!(matches!(
            cache.load(&Arc::default()),
            Err(CacheError::Invalid {
                error: ApplyError::DigestMismatch { .. },
                ..
            })
        ));
        assert!(!cache.restore(&state));

        let mut push = snapshot_push(&compiled(3, "127.0.0.1:1"));
        push.base_revision = 2;
        cache.write_push(&push).unwrap();
        assert!(matches!(
            cache.load(&Arc::default()),
            Err(CacheError::NotFull { .. })
        ));
        assert!(state.current().is_none());
        assert_eq!(state.source(), None);
    }

    #[test]
    fn files_over_the_push_limit_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = Cache::snapshot(&compiled(1, "127.0.0.1:1"), 0);
        let cache = Cache::new(dir.path().join("g.pb"));
        cache.write(&bytes).unwrap();
        let exact = cache.clone().with_max_bytes(bytes.len());
        assert_eq!(exact.read().unwrap().unwrap().revision, 1);
        let smaller = cache.with_max_bytes(bytes.len() - 1);
        assert!(matches!(smaller.read(), Err(CacheError::TooLarge { .. })));
        assert!(!smaller.restore(&state()));
    }

    #[test]
    fn default_path_is_per_group_and_stays_in_its_directory() {
        assert_eq!(
            Cache::default_for_group("edge").path(),
            Path::new("gateway-cache/edge.pb")
        );
        assert_eq!(
            Cache::default_for_group("../etc/x").path(),
            Path::new("gateway-cache/___etc_x.pb")
        );
        assert_eq!(
            Cache::default_for_group("").path(),
            Path::new("gateway-cache/default.pb")
        );
    }
}
