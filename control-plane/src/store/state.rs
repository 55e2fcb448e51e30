//! The config at one revision as this process keeps it: every entity behind an `Arc` in a
//! persistent ordered map, with its server-set metadata, its content hash and its size on the
//! wire. A revision that changes one entity shares every other one with the revision before it,
//! so a write costs in proportion to what it changes (the digest too, kept as a
//! [`DigestState`]), and the recent revisions kept side by side cost little more memory than one.
//!
//! It is also where the entity kinds meet the store ([`Entity`]), so that every part of the
//! store reaches a kind's map the same way.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use gateway_config::{
    Certificate, Change, Config, DigestState, EntityHash, FieldError, Hashable, Kind, Op,
    PrivateKey, Route, Upstream,
};
use gateway_proto::v1;
use imbl::OrdMap;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;
use crate::kek::Keyring;

/// An entity's identity across kinds.
pub type Key = (Kind, String);

/// An entity kind stored in the `resources` table.
pub trait Entity:
    Serialize + DeserializeOwned + Hashable + Clone + PartialEq + Send + Sync + 'static
{
    const KIND: Kind;

    fn name(&self) -> &str;

    /// Entities that carry their creation time in the model (routes, for precedence ties).
    fn set_created_at(&mut self, _unix_ms: i64) {}

    fn tags(&self) -> &[String];

    fn map_mut(config: &mut Config) -> &mut BTreeMap<String, Self>;

    fn entries(state: &State) -> &OrdMap<String, Arc<Stored<Self>>>;

    fn entries_mut(state: &mut State) -> &mut OrdMap<String, Arc<Stored<Self>>>;

    /// The entity as a ConfigSync resource.
    fn resource(&self) -> v1::Resource;

    /// How many entries the entity adds to a worker's route table.
    fn expansion(&self) -> u64 {
        0
    }

    /// The entity's own errors and its references that `state` cannot resolve.
    fn errors_in(&self, state: &State) -> Vec<FieldError>;

    /// The JSON the database holds for the entity.
    fn to_spec(&self, _keyring: Option<&Keyring>) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| StoreError::Database(e.to_string()))
    }

    /// The entity from the JSON the database holds.
    fn from_spec(name: &str, spec: &str, _keyring: Option<&Keyring>) -> Result<Self, StoreError> {
        serde_json::from_str(spec).map_err(|e| corrupt(Self::KIND, name, e.to_string()))
    }

    /// Fills in what input may leave out because `state` holds it already (a certificate's
    /// private key).
    fn keep_stored_secrets(&mut self, _state: &State) {}
}

fn corrupt(kind: Kind, name: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        kind: kind.as_str().to_owned(),
        name: name.to_owned(),
        message,
    }
}

/// The field of a stored certificate's JSON that holds its sealed private key.
const SEALED_KEY: &str = "sealed_key";

/// The associated data a certificate's key is sealed with: a sealed key moved to another
/// certificate's row does not open.
fn seal_context(name: &str) -> String {
    format!("certificate/{name}")
}

impl Entity for Certificate {
    const KIND: Kind = Kind::Certificate;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &[String] {
        &self.tags
    }

    fn map_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.certificates
    }

    fn entries(state: &State) -> &OrdMap<String, Arc<Stored<Self>>> {
        &state.certificates
    }

    fn entries_mut(state: &mut State) -> &mut OrdMap<String, Arc<Stored<Self>>> {
        &mut state.certificates
    }

    fn resource(&self) -> v1::Resource {
        v1::Resource {
            resource: Some(v1::resource::Resource::Certificate(self.into())),
        }
    }

    /// Also whether the certificate is valid now: it is being written.
    fn errors_in(&self, state: &State) -> Vec<FieldError> {
        let mut errors = self.validate().err().map(|e| e.0).unwrap_or_default();
        if errors.is_empty() {
            errors.extend(self.validity_errors(gateway_config::x509::unix_now()));
        }
        errors.extend(gateway_config::server_name_conflicts_with(
            self,
            state.certificates.values().map(|s| &s.entity),
        ));
        errors
    }

    /// The certificate's JSON without `info` (computed when shown) and with its key sealed.
    fn to_spec(&self, keyring: Option<&Keyring>) -> Result<String, StoreError> {
        let mut value =
            serde_json::to_value(self).map_err(|e| StoreError::Database(e.to_string()))?;
        if let Some(object) = value.as_object_mut() {
            object.remove("info");
            if let Some(key) = &self.key {
                let keyring = keyring.ok_or(StoreError::NoKeyring)?;
                let sealed = keyring
                    .seal(&seal_context(&self.name), key.pem().as_bytes())
                    .map_err(|e| StoreError::Sealing(e.to_string()))?;
                object.insert(SEALED_KEY.into(), sealed.into());
            }
        }
        serde_json::to_string(&value).map_err(|e| StoreError::Database(e.to_string()))
    }

    fn from_spec(name: &str, spec: &str, keyring: Option<&Keyring>) -> Result<Self, StoreError> {
        let mut value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| corrupt(Kind::Certificate, name, e.to_string()))?;
        let sealed = value
            .as_object_mut()
            .and_then(|object| object.remove(SEALED_KEY));
        let mut certificate: Certificate = serde_json::from_value(value)
            .map_err(|e| corrupt(Kind::Certificate, name, e.to_string()))?;
        if let Some(sealed) = sealed {
            let sealed = sealed.as_str().ok_or_else(|| {
                corrupt(Kind::Certificate, name, "the sealed key is not text".into())
            })?;
            let keyring = keyring.ok_or(StoreError::NoKeyring)?;
            let pem = keyring
                .open(&seal_context(name), sealed)
                .map_err(|e| StoreError::Sealing(format!("certificate `{name}`: {e}")))?;
            let pem = String::from_utf8(pem)
                .map_err(|_| corrupt(Kind::Certificate, name, "the key is not text".into()))?;
            certificate.key = Some(PrivateKey::new(pem));
        }
        Ok(certificate)
    }

    /// A certificate written without its key keeps the key stored for the same leaf
    /// certificate: its own, or, renamed, another one's.
    fn keep_stored_secrets(&mut self, state: &State) {
        if self.key.is_some() {
            return;
        }
        let Some(fingerprint) = leaf_fingerprint(&self.cert) else {
            return;
        };
        let same_leaf = |stored: &Stored<Certificate>| {
            stored.entity.key.is_some()
                && leaf_fingerprint(&stored.entity.cert).as_ref() == Some(&fingerprint)
        };
        let found = state
            .certificates
            .get(&self.name)
            .filter(|stored| same_leaf(stored))
            .or_else(|| state.certificates.values().find(|stored| same_leaf(stored)));
        if let Some(stored) = found {
            self.key = stored.entity.key.clone();
        }
    }
}

/// A stored certificate's JSON with its key sealed again by the keyring's first key; None when
/// that key sealed it already (or it has no key).
pub fn reseal_spec(
    name: &str,
    spec: &str,
    keyring: &Keyring,
) -> Result<Option<String>, StoreError> {
    let mut value: serde_json::Value =
        serde_json::from_str(spec).map_err(|e| corrupt(Kind::Certificate, name, e.to_string()))?;
    let Some(object) = value.as_object_mut() else {
        return Ok(None);
    };
    let Some(sealed) = object.get(SEALED_KEY).and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    if !keyring.is_stale(sealed) {
        return Ok(None);
    }
    let context = seal_context(name);
    let plain = keyring
        .open(&context, sealed)
        .map_err(|e| StoreError::Sealing(format!("certificate `{name}`: {e}")))?;
    let resealed = keyring
        .seal(&context, &plain)
        .map_err(|e| StoreError::Sealing(e.to_string()))?;
    object.insert(SEALED_KEY.into(), resealed.into());
    serde_json::to_string(&value)
        .map(Some)
        .map_err(|e| StoreError::Database(e.to_string()))
}

fn leaf_fingerprint(pem: &str) -> Option<String> {
    gateway_config::x509::leaf_info(pem).map(|info| info.fingerprint_sha256)
}

impl Entity for Upstream {
    const KIND: Kind = Kind::Upstream;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &[String] {
        &self.tags
    }

    fn map_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.upstreams
    }

    fn entries(state: &State) -> &OrdMap<String, Arc<Stored<Self>>> {
        &state.upstreams
    }

    fn entries_mut(state: &mut State) -> &mut OrdMap<String, Arc<Stored<Self>>> {
        &mut state.upstreams
    }

    fn resource(&self) -> v1::Resource {
        v1::Resource {
            resource: Some(v1::resource::Resource::Upstream(self.into())),
        }
    }

    fn errors_in(&self, _state: &State) -> Vec<FieldError> {
        self.validate().err().map(|e| e.0).unwrap_or_default()
    }
}

impl Entity for Route {
    const KIND: Kind = Kind::Route;

    fn name(&self) -> &str {
        &self.name
    }

    fn set_created_at(&mut self, unix_ms: i64) {
        self.created_at_unix_ms = unix_ms;
    }

    fn tags(&self) -> &[String] {
        &self.tags
    }

    fn map_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.routes
    }

    fn entries(state: &State) -> &OrdMap<String, Arc<Stored<Self>>> {
        &state.routes
    }

    fn entries_mut(state: &mut State) -> &mut OrdMap<String, Arc<Stored<Self>>> {
        &mut state.routes
    }

    fn resource(&self) -> v1::Resource {
        v1::Resource {
            resource: Some(v1::resource::Resource::Route(self.into())),
        }
    }

    fn expansion(&self) -> u64 {
        Route::expansion(self)
    }

    fn errors_in(&self, state: &State) -> Vec<FieldError> {
        let mut errors = self.validate().err().map(|e| e.0).unwrap_or_default();
        self.reference_errors(|name| state.upstreams.contains_key(name), &mut errors);
        errors
    }
}

/// A stored entity with its server-set metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    pub entity: T,
    pub created_at: i64,
    pub updated_at: i64,
    /// The revision that last changed the entity.
    pub revision: i64,
}

/// Server-set metadata of a stored entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntityMeta {
    pub created_at: i64,
    pub updated_at: i64,
    /// The revision that last changed the entity.
    pub revision: i64,
}

/// One entity as a [`State`] holds it.
#[derive(Debug, PartialEq)]
pub struct Stored<T> {
    pub entity: T,
    pub meta: EntityMeta,
    /// [`gateway_config::entity_hash`] of the entity, the piece of the config digest it adds.
    pub hash: EntityHash,
    /// What the entity adds to the encoded full push.
    pub push_len: usize,
}

impl<T: Entity> Stored<T> {
    pub fn new(entity: T, meta: EntityMeta) -> Stored<T> {
        let hash = gateway_config::entity_hash(&entity);
        let resource_len = entity.resource().encoded_len();
        // A repeated field costs its tag and length prefix besides the message.
        let push_len = 1 + prost::length_delimiter_len(resource_len) + resource_len;
        Stored {
            entity,
            meta,
            hash,
            push_len,
        }
    }

    pub fn record(&self) -> Record<T> {
        Record {
            entity: self.entity.clone(),
            created_at: self.meta.created_at,
            updated_at: self.meta.updated_at,
            revision: self.meta.revision,
        }
    }
}

/// The whole config at one revision, entities shared with the revisions around it; cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct State {
    pub revision: i64,
    /// Commit time in unix milliseconds; 0 for the empty revision 0.
    pub committed_at: i64,
    /// [`gateway_config::digest`] of the config, kept current by [`State::seal`].
    pub digest: String,
    upstreams: OrdMap<String, Arc<Stored<Upstream>>>,
    routes: OrdMap<String, Arc<Stored<Route>>>,
    certificates: OrdMap<String, Arc<Stored<Certificate>>>,
    /// Every entity's hash, bucketed so that the digest follows a change in constant time.
    hashes: DigestState,
    /// Sum of every route's [`Entity::expansion`].
    expansion: u64,
    /// Sum of every entity's [`Stored::push_len`].
    push_len: usize,
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.revision == other.revision
            && self.committed_at == other.committed_at
            && self.digest == other.digest
            && self.upstreams == other.upstreams
            && self.routes == other.routes
            && self.certificates == other.certificates
    }
}

impl Default for State {
    fn default() -> State {
        State::build(0, 0, Config::default(), &BTreeMap::new())
    }
}

impl State {
    /// `config` as revision `revision`, each entity with its metadata from `meta` (zeroes when
    /// absent).
    pub fn build(
        revision: i64,
        committed_at: i64,
        config: Config,
        meta: &BTreeMap<Key, EntityMeta>,
    ) -> State {
        let mut state = State {
            revision,
            committed_at,
            digest: String::new(),
            upstreams: OrdMap::new(),
            routes: OrdMap::new(),
            certificates: OrdMap::new(),
            hashes: DigestState::default(),
            expansion: 0,
            push_len: 0,
        };
        let meta_of = |kind: Kind, name: &String| {
            meta.get(&(kind, name.clone())).copied().unwrap_or_default()
        };
        // Hashed into the digest state in bulk, not one bucket rehash per entity.
        let mut hashes = (Vec::new(), Vec::new(), Vec::new());
        for (name, upstream) in config.upstreams {
            let stored = Stored::new(upstream, meta_of(Kind::Upstream, &name));
            hashes.0.push(stored.hash);
            state.put_unhashed(stored);
        }
        for (name, route) in config.routes {
            let stored = Stored::new(route, meta_of(Kind::Route, &name));
            hashes.1.push(stored.hash);
            state.put_unhashed(stored);
        }
        for (name, certificate) in config.certificates {
            let stored = Stored::new(certificate, meta_of(Kind::Certificate, &name));
            hashes.2.push(stored.hash);
            state.put_unhashed(stored);
        }
        state.hashes.extend(Kind::Upstream, hashes.0);
        state.hashes.extend(Kind::Route, hashes.1);
        state.hashes.extend(Kind::Certificate, hashes.2);
        state.seal(revision, committed_at);
        state
    }

    pub fn get<T: Entity>(&self, name: &str) -> Option<&Arc<Stored<T>>> {
        T::entries(self).get(name)
    }

    /// Entities of kind `T` by name, starting after `after`.
    pub fn iter_after<'a, T: Entity>(
        &'a self,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<Stored<T>>> + 'a {
        let start = match after {
            Some(after) => Bound::Excluded(after.to_owned()),
            None => Bound::Unbounded,
        };
        T::entries(self)
            .range((start, Bound::Unbounded))
            .map(|(_, stored)| stored)
    }

    /// Every route's table entries together, checked against the config's expansion budget.
    pub fn expansion(&self) -> u64 {
        self.expansion
    }

    /// The size of the encoded full push of this config.
    pub fn push_len(&self) -> usize {
        // The revision, digest, base revision and commit time: a few dozen bytes.
        self.push_len + 128
    }

    /// Adds or replaces an entity. The digest is stale until [`State::seal`].
    pub fn put<T: Entity>(&mut self, stored: Stored<T>) {
        self.expansion += stored.entity.expansion();
        self.push_len += stored.push_len;
        self.hashes.insert(T::KIND, stored.hash);
        let name = stored.entity.name().to_owned();
        if let Some(old) = T::entries_mut(self).insert(name, Arc::new(stored)) {
            self.forget(&old);
        }
    }

    /// Adds an entity whose name is new to the state, leaving its hash for the caller to add:
    /// [`State::build`] adds them all at once.
    fn put_unhashed<T: Entity>(&mut self, stored: Stored<T>) {
        self.expansion += stored.entity.expansion();
        self.push_len += stored.push_len;
        let name = stored.entity.name().to_owned();
        T::entries_mut(self).insert(name, Arc::new(stored));
    }

    /// Removes an entity; returns whether it was there. The digest is stale until
    /// [`State::seal`].
    pub fn remove<T: Entity>(&mut self, name: &str) -> bool {
        match T::entries_mut(self).remove(name) {
            Some(old) => {
                self.forget(&old);
                true
            }
            None => false,
        }
    }

    fn forget<T: Entity>(&mut self, old: &Stored<T>) {
        // An unchanged entity written again has the hash just inserted; it stays.
        if T::entries(self)
            .get(old.entity.name())
            .is_none_or(|now| now.hash != old.hash)
        {
            self.hashes.remove(T::KIND, &old.hash);
        }
        self.expansion = self.expansion.saturating_sub(old.entity.expansion());
        self.push_len = self.push_len.saturating_sub(old.push_len);
    }

    /// Marks the state as revision `revision` and brings the digest up to date.
    pub fn seal(&mut self, revision: i64, committed_at: i64) {
        self.revision = revision;
        self.committed_at = committed_at;
        self.digest = self.hashes.digest();
    }

    /// The entities as a plain config (a copy of each).
    pub fn to_config(&self) -> Config {
        let mut config = Config::default();
        for (name, stored) in &self.upstreams {
            config.upstreams.insert(name.clone(), stored.entity.clone());
        }
        for (name, stored) in &self.routes {
            config.routes.insert(name.clone(), stored.entity.clone());
        }
        for (name, stored) in &self.certificates {
            config
                .certificates
                .insert(name.clone(), stored.entity.clone());
        }
        config
    }

    /// Every entity as a ConfigSync resource, upstreams first, then routes, then certificates,
    /// each kind by name.
    pub fn resources(&self) -> Vec<v1::Resource> {
        let mut resources =
            Vec::with_capacity(self.upstreams.len() + self.routes.len() + self.certificates.len());
        resources.extend(self.upstreams.values().map(|s| s.entity.resource()));
        resources.extend(self.routes.values().map(|s| s.entity.resource()));
        resources.extend(self.certificates.values().map(|s| s.entity.resource()));
        resources
    }

    /// The changes that turn this state into `next`, in [`Config::diff`]'s order.
    pub fn diff_to(&self, next: &Config) -> Vec<Change> {
        let mut changes = Vec::new();
        diff_kind::<Upstream>(self, &next.upstreams, &mut changes);
        diff_kind::<Route>(self, &next.routes, &mut changes);
        diff_kind::<Certificate>(self, &next.certificates, &mut changes);
        changes
    }

    /// Fills in the private keys `config` leaves out from the certificates of this state
    /// ([`Entity::keep_stored_secrets`]).
    pub fn keep_stored_secrets(&self, config: &mut Config) {
        for certificate in config.certificates.values_mut() {
            certificate.keep_stored_secrets(self);
        }
    }

    /// Every field of every route that names `upstream`, as `(route, field)`.
    pub fn references_to(&self, upstream: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for stored in self.routes.values() {
            let mut errors = Vec::new();
            stored
                .entity
                .reference_errors(|name| name != upstream, &mut errors);
            found.extend(errors.into_iter().map(|e| (e.name, e.field)));
        }
        found
    }
}

/// A state reached from an older one, and the entities that differ between the two.
#[derive(Debug, Clone)]
pub struct Advance {
    pub state: State,
    /// The revision the state was reached from.
    pub since: i64,
    /// Every entity that differs from revision `since`, each once; None when the state was
    /// read whole, so that what changed is not known.
    pub changed: Option<Vec<Key>>,
}

/// One entity's change as the admin API reports it; None when `before` equals `after`.
pub fn change_of<T: Entity>(name: &str, before: Option<&T>, after: Option<&T>) -> Option<Change> {
    let op = match (before, after) {
        (None, Some(_)) => Op::Create,
        (Some(_), None) => Op::Delete,
        (Some(old), Some(new)) if old != new => Op::Update,
        _ => return None,
    };
    let document = |entity: &T| serde_json::to_value(entity).ok();
    Some(Change {
        kind: T::KIND,
        name: name.to_owned(),
        op,
        before: before.and_then(document),
        after: after.and_then(document),
    })
}

/// Deletions and updates in name order, then creations in name order, as [`Config::diff`].
fn diff_kind<T: Entity>(state: &State, next: &BTreeMap<String, T>, changes: &mut Vec<Change>) {
    for (name, stored) in T::entries(state) {
        let after = next.get(name);
        if after != Some(&stored.entity)
            && let Some(change) = change_of(name, Some(&stored.entity), after)
        {
            changes.push(change);
        }
    }
    for (name, entity) in next {
        if !T::entries(state).contains_key(name)
            && let Some(change) = change_of(name, None, Some(entity))
        {
            changes.push(change);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    const TWO: &str = r#"{"upstreams": [{"name": "a", "targets": [{"address": "h:1"}]},
                                        {"name": "b", "targets": [{"address": "h:2"}]}],
                          "routes": [{"name": "r", "paths": [{"prefix": "/r"}],
                                      "backends": [{"upstream": "a"}]}]}"#;

    #[test]
    fn digest_equals_the_config_digest_after_every_change() {
        let mut state = State::build(1, 5, config(TWO), &BTreeMap::new());
        assert_eq!(state.digest, gateway_config::digest(&config(TWO)));
        assert_eq!(state.to_config(), config(TWO));

        let before = state.clone();
        let mut route = state.get::<Route>("r").unwrap().entity.clone();
        route.priority = 3;
        state.put(Stored::new(route, EntityMeta::default()));
        assert!(state.remove::<Upstream>("b"));
        assert!(!state.remove::<Upstream>("b"));
        state.seal(2, 6);
        assert_eq!(state.digest, gateway_config::digest(&state.to_config()));
        assert_ne!(state.digest, before.digest);
        // The older revision is untouched and still shares the unchanged upstream.
        assert_eq!(before.to_config(), config(TWO));
        assert!(Arc::ptr_eq(
            before.get::<Upstream>("a").unwrap(),
            state.get::<Upstream>("a").unwrap()
        ));
    }

    #[test]
    fn running_sums_follow_puts_and_removes() {
        let mut state = State::build(1, 5, config(TWO), &BTreeMap::new());
        let full = v1::ConfigPush {
            revision: 1,
            digest: state.digest.clone(),
            base_revision: 0,
            upserts: state.resources(),
            removals: vec![],
            committed_at_unix_ms: 5,
        };
        assert!(state.push_len() >= full.encoded_len());
        assert!(state.push_len() <= full.encoded_len() + 128);
        let expansion = state.expansion();
        assert!(expansion >= 1);
        state.remove::<Route>("r");
        assert_eq!(state.expansion(), 0);
        state.remove::<Upstream>("a");
        state.remove::<Upstream>("b");
        assert_eq!(state.push_len(), 128);
    }

    #[test]
    fn diff_to_matches_the_config_diff() {
        let state = State::build(1, 5, config(TWO), &BTreeMap::new());
        let next = config(
            r#"{"upstreams": [{"name": "a", "targets": [{"address": "h:9"}]},
                              {"name": "c", "targets": [{"address": "h:3"}]}],
                "routes": [{"name": "r", "paths": [{"prefix": "/r"}],
                            "backends": [{"upstream": "a"}]}]}"#,
        );
        assert_eq!(state.diff_to(&next), config(TWO).diff(&next));
        assert!(state.diff_to(&config(TWO)).is_empty());
    }

    #[test]
    fn references_name_route_and_field() {
        let state = State::build(1, 5, config(TWO), &BTreeMap::new());
        assert_eq!(
            state.references_to("a"),
            [("r".to_owned(), "backends[0].upstream".to_owned())]
        );
        assert!(state.references_to("b").is_empty());
    }
}
