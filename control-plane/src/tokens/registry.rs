//! The tokens a replica knows, by the hash of their secret, so that checking a request's token
//! costs a hash and a map lookup rather than a database query. The map is refreshed from the
//! database every [`REFRESH`] (so a token revoked through another replica stops working here
//! within that), at once after this replica's own changes, and on a miss (so a token created
//! through another replica works at once). While the database is down the last map stays in use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::attempts::Attempts;
use super::role::Role;
use super::secret;
use crate::store::{Revocation, Store, StoreError, TokenRow, now_ms};

/// How often the map is read again from the database.
pub const REFRESH: Duration = Duration::from_secs(2);

/// The name the first admin token is stored under.
pub const BOOTSTRAP_NAME: &str = "bootstrap";

/// A token as a request is checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub role: Role,
    pub expires_at: Option<i64>,
}

/// What the registry says about a presented secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Valid(Arc<Known>),
    /// The token exists but its expiry has passed.
    Expired(String),
    Unknown,
}

/// What starting with a first admin token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// No admin token existed: this one was stored as `bootstrap`.
    Stored,
    /// An admin token exists already; the given one was not stored.
    AdminExists,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    by_hash: RwLock<HashMap<String, Arc<Known>>>,
    /// Whether any token exists: until one does, the admin API (on loopback only) is open.
    any: AtomicBool,
    attempts: Attempts,
}

/// The replica's tokens; cheap to clone.
#[derive(Debug, Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
}

fn known_of(row: &TokenRow) -> Option<Known> {
    Some(Known {
        name: row.name.clone(),
        role: Role::parse(&row.role)?,
        expires_at: row.expires_at,
    })
}

impl Tokens {
    /// Reads every token from the database.
    pub async fn load(store: Store) -> Result<Tokens, StoreError> {
        let tokens = Tokens {
            inner: Arc::new(Inner {
                store,
                by_hash: RwLock::default(),
                any: AtomicBool::new(false),
                attempts: Attempts::default(),
            }),
        };
        tokens.refresh().await?;
        Ok(tokens)
    }

    /// Whether requests need a token.
    pub fn required(&self) -> bool {
        self.inner.any.load(Ordering::Relaxed)
    }

    pub fn attempts(&self) -> &Attempts {
        &self.inner.attempts
    }

    /// Reads the tokens from the database again.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let rows = self.inner.store.list_tokens().await?;
        let map: HashMap<String, Arc<Known>> = rows
            .iter()
            .filter_map(|row| Some((row.secret_sha256.clone(), Arc::new(known_of(row)?))))
            .collect();
        self.inner.any.store(!rows.is_empty(), Ordering::Relaxed);
        *self
            .inner
            .by_hash
            .write()
            .unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }

    /// Refreshes every [`REFRESH`] until `stopped`.
    pub async fn keep_fresh(self, mut stopped: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(REFRESH) => {}
                _ = stopped.wait_for(|stopped| *stopped) => return,
            }
            if let Err(error) = self.refresh().await {
                tracing::debug!(%error, "cannot refresh the admin tokens; keeping the last ones");
            }
        }
    }

    /// The token whose secret is `secret`, from memory (`None` when this replica does not know
    /// it: ask [`Tokens::lookup_stored`]).
    pub fn lookup_known(&self, secret: &str, now_ms: i64) -> Option<Lookup> {
        let hash = secret::sha256_hex(secret);
        let map = self.inner.by_hash.read().unwrap_or_else(|e| e.into_inner());
        map.get(&hash).map(|known| checked(known.clone(), now_ms))
    }

    /// The token whose secret is `secret`, from the database; remembered when found.
    pub async fn lookup_stored(&self, secret: &str, now_ms: i64) -> Result<Lookup, StoreError> {
        let hash = secret::sha256_hex(secret);
        let Some(row) = self.inner.store.token_by_hash(&hash).await? else {
            return Ok(Lookup::Unknown);
        };
        let Some(known) = known_of(&row) else {
            return Ok(Lookup::Unknown);
        };
        let known = Arc::new(known);
        self.inner
            .by_hash
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash, known.clone());
        self.inner.any.store(true, Ordering::Relaxed);
        Ok(checked(known, now_ms))
    }

    /// Creates a token and returns it with its secret, which is not kept anywhere.
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        expires_at: Option<i64>,
        created_by: &str,
    ) -> Result<(TokenRow, String), StoreError> {
        let secret = secret::generate().map_err(|e| StoreError::Database(e.to_string()))?;
        let row = TokenRow {
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            secret_sha256: secret::sha256_hex(&secret),
            created_at: now_ms(),
            expires_at,
            created_by: created_by.to_owned(),
        };
        self.inner.store.create_token(&row).await?;
        self.refresh_after_change().await;
        Ok((row, secret))
    }

    /// Revokes the token `name`. The last admin token cannot be revoked: nobody could manage
    /// tokens any more.
    pub async fn revoke(&self, name: &str) -> Result<(), RevokeError> {
        match self
            .inner
            .store
            .revoke_token(name, Role::Admin.as_str(), now_ms())
            .await?
        {
            Revocation::Revoked => {}
            Revocation::NotFound => {
                return Err(StoreError::NotFound {
                    kind: "token",
                    name: name.to_owned(),
                }
                .into());
            }
            Revocation::LastAdmin => return Err(RevokeError::LastAdmin(name.to_owned())),
        }
        self.refresh_after_change().await;
        Ok(())
    }

    /// Stores `secret` as the admin token `bootstrap` unless an admin token exists already:
    /// the first start of a cluster, or the way back in after every admin token was lost.
    pub async fn bootstrap(&self, secret: &str) -> Result<Bootstrap, StoreError> {
        let now = now_ms();
        let rows = self.inner.store.list_tokens().await?;
        let admin_exists = rows.iter().any(|row| {
            row.role == Role::Admin.as_str() && row.expires_at.is_none_or(|at| at > now)
        });
        if admin_exists {
            return Ok(Bootstrap::AdminExists);
        }
        // An expired or demoted `bootstrap` left from before gives way (another replica
        // starting at the same time may have removed it already).
        if rows.iter().any(|row| row.name == BOOTSTRAP_NAME) {
            match self.inner.store.delete_token(BOOTSTRAP_NAME).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        let row = TokenRow {
            name: BOOTSTRAP_NAME.to_owned(),
            role: Role::Admin.as_str().to_owned(),
            secret_sha256: secret::sha256_hex(secret),
            created_at: now,
            expires_at: None,
            created_by: BOOTSTRAP_NAME.to_owned(),
        };
        match self.inner.store.create_token(&row).await {
            Ok(()) => {}
            // Another replica of a cluster starting for the first time stored it first.
            Err(StoreError::AlreadyExists { .. }) => {
                self.refresh().await?;
                return Ok(Bootstrap::AdminExists);
            }
            Err(error) => return Err(error),
        }
        self.refresh().await?;
        Ok(Bootstrap::Stored)
    }

    /// Every stored token.
    pub async fn list(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.inner.store.list_tokens().await
    }

    /// The token named `name`, if there is one.
    pub async fn get(&self, name: &str) -> Result<Option<TokenRow>, StoreError> {
        self.inner.store.token_by_name(name).await
    }

    async fn refresh_after_change(&self) {
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "cannot reread the admin tokens after a change");
        }
    }
}

fn checked(known: Arc<Known>, now_ms: i64) -> Lookup {
    match known.expires_at {
        Some(at) if at <= now_ms => Lookup::Expired(known.name.clone()),
        _ => Lookup::Valid(known),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("token `{0}` is the last admin token; create another admin token first")]
    LastAdmin(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::test_support;

    #[tokio::test]
    async fn tokens_are_found_by_secret_expire_and_keep_one_admin() {
        let db = test_support::sqlite().await;
        let tokens = Tokens::load(db.store.clone()).await.unwrap();
        assert!(!tokens.required());

        let (admin, admin_secret) = tokens.create("ci", Role::Admin, None, "t").await.unwrap();
        assert!(tokens.required());
        assert_eq!(admin.secret_sha256, secret::sha256_hex(&admin_secret));
        let now = now_ms();
        let Some(Lookup::Valid(known)) = tokens.lookup_known(&admin_secret, now) else {
            panic!("the new token is not known");
        };
        assert_eq!((known.name.as_str(), known.role), ("ci", Role::Admin));
        assert_eq!(tokens.lookup_known("gwt_nope", now), None);
        assert_eq!(
            tokens.lookup_stored("gwt_nope", now).await.unwrap(),
            Lookup::Unknown
        );

        let (_, viewer) = tokens
            .create("dash", Role::Viewer, Some(now + 1_000), "ci")
            .await
            .unwrap();
        assert!(matches!(
            tokens.lookup_known(&viewer, now),
            Some(Lookup::Valid(_))
        ));
        assert_eq!(
            tokens.lookup_known(&viewer, now + 1_000),
            Some(Lookup::Expired("dash".into()))
        );
        assert!(matches!(
            tokens.create("dash", Role::Viewer, None, "ci").await,
            Err(StoreError::AlreadyExists { .. })
        ));

        // Another replica's token is found on a miss.
        let other = Tokens::load(db.store.clone()).await.unwrap();
        let (_, editor) = other.create("bot", Role::Editor, None, "ci").await.unwrap();
        assert_eq!(tokens.lookup_known(&editor, now), None);
        assert!(matches!(
            tokens.lookup_stored(&editor, now).await.unwrap(),
            Lookup::Valid(_)
        ));

        assert!(matches!(
            tokens.revoke("ci").await,
            Err(RevokeError::LastAdmin(_))
        ));
        tokens.revoke("dash").await.unwrap();
        assert_eq!(tokens.lookup_known(&viewer, now), None);
        assert!(matches!(
            tokens.revoke("dash").await,
            Err(RevokeError::Store(StoreError::NotFound { .. }))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_admin_tokens_revoked_at_once_on_two_replicas_leave_one() {
        let mut databases = vec![test_support::sqlite().await];
        databases.extend(test_support::postgres().await);
        for db in databases {
            let one = Tokens::load(db.store.clone()).await.unwrap();
            let other = Tokens::load(db.store.clone()).await.unwrap();
            let mut survivor: Option<String> = None;
            for round in 0..20 {
                let (first, second) = (format!("first-{round}"), format!("second-{round}"));
                one.create(&first, Role::Admin, None, "t").await.unwrap();
                one.create(&second, Role::Admin, None, "t").await.unwrap();
                if let Some(left) = survivor.take() {
                    one.revoke(&left).await.unwrap();
                }
                let (a, b) = (one.clone(), other.clone());
                let (first_name, second_name) = (first.clone(), second.clone());
                let (revoked_first, revoked_second) = tokio::join!(
                    tokio::spawn(async move { a.revoke(&first_name).await }),
                    tokio::spawn(async move { b.revoke(&second_name).await }),
                );
                let outcomes = [revoked_first.unwrap(), revoked_second.unwrap()];
                let refused: Vec<_> = outcomes
                    .iter()
                    .filter(|outcome| matches!(outcome, Err(RevokeError::LastAdmin(_))))
                    .collect();
                assert_eq!(refused.len(), 1, "{}: round {round}: {outcomes:?}", db.url);
                let admins: Vec<String> = db
                    .store
                    .list_tokens()
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|row| row.role == Role::Admin.as_str())
                    .map(|row| row.name)
                    .collect();
                assert_eq!(admins.len(), 1, "{}: round {round}", db.url);
                survivor = admins.into_iter().next();
            }
            db.cleanup().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_starting_together_store_one_first_admin_token() {
        let mut databases = vec![test_support::sqlite().await];
        databases.extend(test_support::postgres().await);
        for db in databases {
            let given = "z".repeat(40);
            let starting: Vec<_> = (0..4)
                .map(|_| {
                    let store = db.store.clone();
                    let given = given.clone();
                    tokio::spawn(async move {
                        let tokens = Tokens::load(store).await.unwrap();
                        tokens.bootstrap(&given).await
                    })
                })
                .collect();
            let mut stored = 0;
            for started in starting {
                match started.await.unwrap() {
                    Ok(Bootstrap::Stored) => stored += 1,
                    Ok(Bootstrap::AdminExists) => {}
                    Err(error) => panic!("{}: a replica failed to start: {error}", db.url),
                }
            }
            assert_eq!(stored, 1, "{}", db.url);
            assert_eq!(db.store.list_tokens().await.unwrap().len(), 1, "{}", db.url);
            db.cleanup().await;
        }
    }

    #[tokio::test]
    async fn the_first_admin_token_is_stored_only_while_no_admin_exists() {
        let db = test_support::sqlite().await;
        let tokens = Tokens::load(db.store.clone()).await.unwrap();
        let given = "x".repeat(40);
        assert_eq!(tokens.bootstrap(&given).await.unwrap(), Bootstrap::Stored);
        assert!(matches!(
            tokens.lookup_known(&given, now_ms()),
            Some(Lookup::Valid(known)) if known.name == BOOTSTRAP_NAME && known.role == Role::Admin
        ));
        let again = "y".repeat(40);
        assert_eq!(
            tokens.bootstrap(&again).await.unwrap(),
            Bootstrap::AdminExists
        );
        assert_eq!(tokens.lookup_known(&again, now_ms()), None);
        let rows = db.store.list_tokens().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].secret_sha256.contains(&given));
    }
}
