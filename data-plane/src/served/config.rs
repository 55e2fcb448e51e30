//! The served config in its domain form: what deltas apply to, what the digest is computed over
//! and what the cache file holds.
//!
//! Each entity is kept with its hash (the digest's input) and its wire encoding (the cache
//! file's content), computed once when the entity arrives. Entities sit behind `Arc`s in
//! [`SharedMap`]s, so a revision that changes one route out of thousands shares every other
//! entity, and all but one chunk of the map, with the one before: a delta copies what it changes,
//! and digesting the config or writing the cache costs 32 bytes or a memory copy per entity
//! instead of a serialization.

use std::collections::HashSet;
use std::sync::Arc;

use gateway_config::{
    Certificate, Config, DigestState, EntityHash, FieldError, Hashable, Kind, Route, Upstream,
    ValidationErrors, WireError, entity_hash,
};
use gateway_proto::v1;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use super::shared_map::SharedMap;

/// Field number of `ConfigPush.upserts`.
const UPSERTS_FIELD: u32 = 4;

/// One entity with its digest hash and its wire encoding.
#[derive(Debug, PartialEq, Eq)]
pub struct Held<T> {
    pub value: T,
    hash: EntityHash,
    wire: Box<[u8]>,
}

impl<T: Hashable> Held<T> {
    fn new(value: T, wire: Box<[u8]>) -> Arc<Self> {
        let hash = entity_hash(&value);
        Arc::new(Held { value, hash, wire })
    }
}

type Entities<T> = SharedMap<Arc<Held<T>>>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedConfig {
    upstreams: Entities<Upstream>,
    routes: Entities<Route>,
    certificates: Entities<Certificate>,
    /// Every entity's hash, kept with the entities so that a delta updates the digest in
    /// proportion to what it changes.
    hashes: DigestState,
}

/// What a delta changed, entity by entity.
#[derive(Debug, Default)]
pub struct Changes {
    /// Upstreams added or replaced, in their new form.
    pub upstreams_upserted: Vec<Arc<Held<Upstream>>>,
    /// Names of upstreams that no longer exist.
    pub upstreams_removed: Vec<Arc<str>>,
    /// Routes removed or replaced, in their old form.
    pub routes_before: Vec<Arc<Held<Route>>>,
    /// Routes added or replaced, in their new form.
    pub routes_after: Vec<Arc<Held<Route>>>,
    /// Certificates added or replaced, in their new form.
    pub certificates_upserted: Vec<Arc<Held<Certificate>>>,
    /// Whether any certificate was added, replaced or removed.
    pub certificates_changed: bool,
}

impl Changes {
    /// Whether the set of upstream names changed (not just an upstream's settings).
    pub fn upstream_names_changed(&self, before: &ServedConfig) -> bool {
        !self.upstreams_removed.is_empty()
            || self
                .upstreams_upserted
                .iter()
                .any(|u| !before.upstreams.contains_key(u.value.name.as_str()))
    }
}

enum Entity {
    Upstream(Arc<Held<Upstream>>),
    Route(Arc<Held<Route>>),
    Certificate(Arc<Held<Certificate>>),
}

fn entity(resource: v1::Resource) -> Result<Entity, WireError> {
    let wire = resource.encode_to_vec().into_boxed_slice();
    match resource.resource {
        Some(v1::resource::Resource::Upstream(u)) => {
            Ok(Entity::Upstream(Held::new(Upstream::try_from(u)?, wire)))
        }
        Some(v1::resource::Resource::Route(r)) => {
            Ok(Entity::Route(Held::new(Route::try_from(r)?, wire)))
        }
        Some(v1::resource::Resource::Certificate(c)) => Ok(Entity::Certificate(Held::new(
            Certificate::try_from(c)?,
            wire,
        ))),
        None => Err(WireError::EmptyResource),
    }
}

impl ServedConfig {
    /// The config a full push describes; an entity named twice is an error.
    pub fn from_resources(resources: Vec<v1::Resource>) -> Result<Self, WireError> {
        let mut config = ServedConfig::default();
        let mut hashes = (Vec::new(), Vec::new(), Vec::new());
        for resource in resources {
            match entity(resource)? {
                Entity::Upstream(u) => {
                    hashes.0.push(u.hash);
                    insert_new(
                        &mut config.upstreams,
                        Kind::Upstream,
                        &u.value.name,
                        u.clone(),
                    )?
                }
                Entity::Route(r) => {
                    hashes.1.push(r.hash);
                    insert_new(&mut config.routes, Kind::Route, &r.value.name, r.clone())?
                }
                Entity::Certificate(c) => {
                    hashes.2.push(c.hash);
                    insert_new(
                        &mut config.certificates,
                        Kind::Certificate,
                        &c.value.name,
                        c.clone(),
                    )?
                }
            }
        }
        // In bulk: one pass over the hashes rather than a bucket rehash per entity.
        config.hashes.extend(Kind::Upstream, hashes.0);
        config.hashes.extend(Kind::Route, hashes.1);
        config.hashes.extend(Kind::Certificate, hashes.2);
        Ok(config)
    }

    pub fn from_config(config: &Config) -> Self {
        let resources = gateway_config::resources_from_config(config);
        // Resources made from a config convert back without error.
        Self::from_resources(resources).unwrap_or_default()
    }

    /// This config with a delta applied: removals first, then upserts (which may replace). An
    /// entity upserted twice in one delta is refused, as in a full push. `self` is left as it
    /// was.
    pub fn with_changes(
        &self,
        upserts: Vec<v1::Resource>,
        removals: Vec<v1::ResourceKey>,
    ) -> Result<(ServedConfig, Changes), WireError> {
        let mut next = self.clone();
        let mut changes = Changes::default();
        for key in removals {
            match v1::Kind::try_from(key.kind) {
                Ok(v1::Kind::Upstream) => match next.upstreams.remove_entry(key.name.as_str()) {
                    Some((name, old)) => {
                        next.hashes.remove(Kind::Upstream, &old.hash);
                        changes.upstreams_removed.push(name);
                    }
                    None => return Err(missing(Kind::Upstream, key.name)),
                },
                Ok(v1::Kind::Route) => match next.routes.remove(key.name.as_str()) {
                    Some(old) => {
                        next.hashes.remove(Kind::Route, &old.hash);
                        changes.routes_before.push(old);
                    }
                    None => return Err(missing(Kind::Route, key.name)),
                },
                Ok(v1::Kind::Certificate) => match next.certificates.remove(key.name.as_str()) {
                    Some(old) => {
                        next.hashes.remove(Kind::Certificate, &old.hash);
                        changes.certificates_changed = true;
                    }
                    None => return Err(missing(Kind::Certificate, key.name)),
                },
                _ => return Err(WireError::UnknownKind(key.kind)),
            }
        }
        let mut upserted: HashSet<(Kind, Arc<str>)> = HashSet::with_capacity(upserts.len());
        let mut first_time = |kind: Kind, name: &Arc<str>| {
            if upserted.insert((kind, name.clone())) {
                Ok(())
            } else {
                Err(WireError::Duplicate {
                    kind,
                    name: name.to_string(),
                })
            }
        };
        for resource in upserts {
            match entity(resource)? {
                Entity::Upstream(u) => {
                    let name: Arc<str> = u.value.name.as_str().into();
                    first_time(Kind::Upstream, &name)?;
                    let old = next.upstreams.insert(name, u.clone());
                    next.rehash(Kind::Upstream, old.as_ref().map(|old| &old.hash), u.hash);
                    if old.is_none_or(|old| old.value != u.value) {
                        changes.upstreams_upserted.push(u);
                    }
                }
                Entity::Route(r) => {
                    let name: Arc<str> = r.value.name.as_str().into();
                    first_time(Kind::Route, &name)?;
                    let old = next.routes.insert(name, r.clone());
                    next.rehash(Kind::Route, old.as_ref().map(|old| &old.hash), r.hash);
                    match old {
                        Some(old) if old.value == r.value => {}
                        Some(old) => {
                            changes.routes_before.push(old);
                            changes.routes_after.push(r);
                        }
                        None => changes.routes_after.push(r),
                    }
                }
                Entity::Certificate(c) => {
                    let name: Arc<str> = c.value.name.as_str().into();
                    first_time(Kind::Certificate, &name)?;
                    let old = next.certificates.insert(name, c.clone());
                    next.rehash(Kind::Certificate, old.as_ref().map(|old| &old.hash), c.hash);
                    if old.is_none_or(|old| old.value != c.value) {
                        changes.certificates_upserted.push(c);
                        changes.certificates_changed = true;
                    }
                }
            }
        }
        Ok((next, changes))
    }

    /// Checks every entity (`changes: None`), or only what `changes` touched on top of a config
    /// that passed this check: changed entities on their own, and references wherever a change
    /// could break one.
    pub fn validate(&self, changes: Option<&Changes>) -> Result<(), ValidationErrors> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut check = |result: Result<(), ValidationErrors>| {
            if let Err(ValidationErrors(found)) = result {
                errors.extend(found);
            }
        };
        let exists = |name: &str| self.upstreams.contains_key(name);
        match changes {
            None => {
                self.upstreams
                    .values()
                    .for_each(|u| check(u.value.validate()));
                self.routes.values().for_each(|r| check(r.value.validate()));
                self.certificates
                    .values()
                    .for_each(|c| check(c.value.validate()));
                for route in self.routes.values() {
                    route.value.reference_errors(exists, &mut errors);
                }
            }
            Some(changes) => {
                changes
                    .upstreams_upserted
                    .iter()
                    .for_each(|u| check(u.value.validate()));
                changes
                    .routes_after
                    .iter()
                    .for_each(|r| check(r.value.validate()));
                changes
                    .certificates_upserted
                    .iter()
                    .for_each(|c| check(c.value.validate()));
                if changes.upstreams_removed.is_empty() {
                    for route in &changes.routes_after {
                        route.value.reference_errors(exists, &mut errors);
                    }
                } else {
                    for route in self.routes.values() {
                        route.value.reference_errors(exists, &mut errors);
                    }
                }
            }
        }
        if changes.is_none_or(|c| c.certificates_changed) {
            for certificate in self.certificates.values() {
                errors.extend(gateway_config::server_name_conflicts_with(
                    &certificate.value,
                    self.certificates
                        .values()
                        .map(|c| &c.value)
                        .take_while(|c| c.name < certificate.value.name),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors))
        }
    }

    /// Equal to `gateway_config::digest` of the same config.
    pub fn digest(&self) -> String {
        self.hashes.digest()
    }

    /// An entity's hash `old` (when it replaced one) gives way to `new`.
    fn rehash(&mut self, kind: Kind, old: Option<&EntityHash>, new: EntityHash) {
        if let Some(old) = old {
            self.hashes.remove(kind, old);
        }
        self.hashes.insert(kind, new);
    }

    /// The encoded full `ConfigPush` of this config, as the cache file holds it.
    pub fn encode_full_push(
        &self,
        revision: u64,
        digest: &str,
        committed_at_unix_ms: i64,
    ) -> Vec<u8> {
        let header = v1::ConfigPush {
            revision,
            digest: digest.to_owned(),
            base_revision: 0,
            upserts: Vec::new(),
            removals: Vec::new(),
            committed_at_unix_ms,
        };
        let pieces = self
            .upstreams
            .values()
            .map(|u| &u.wire)
            .chain(self.routes.values().map(|r| &r.wire))
            .chain(self.certificates.values().map(|c| &c.wire));
        let size: usize = pieces.clone().map(|w| w.len() + 16).sum();
        // Protobuf merges concatenated fields, repeated ones appending in order: the header and
        // then each upsert as its own field is the same message as one encoded whole.
        let mut buf = header.encode_to_vec();
        buf.reserve(size);
        for wire in pieces {
            encode_key(UPSERTS_FIELD, WireType::LengthDelimited, &mut buf);
            encode_varint(wire.len() as u64, &mut buf);
            buf.extend_from_slice(wire);
        }
        buf
    }

    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    pub fn upstream_count(&self) -> usize {
        self.upstreams.len()
    }

    /// Routes in name order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values().map(|r| &r.value)
    }

    /// Certificates in name order.
    pub fn certificates(&self) -> impl Iterator<Item = &Certificate> {
        self.certificates.values().map(|c| &c.value)
    }

    pub fn certificate_count(&self) -> usize {
        self.certificates.len()
    }

    /// Upstreams in name order, each with its shared holder (compare with `Arc::ptr_eq`).
    pub fn upstreams(&self) -> impl Iterator<Item = &Arc<Held<Upstream>>> {
        self.upstreams.values()
    }

    /// The plain config, for status pages and tests.
    pub fn to_config(&self) -> Config {
        Config {
            upstreams: self
                .upstreams
                .iter()
                .map(|(name, u)| (name.to_string(), u.value.clone()))
                .collect(),
            routes: self
                .routes
                .iter()
                .map(|(name, r)| (name.to_string(), r.value.clone()))
                .collect(),
            certificates: self
                .certificates
                .iter()
                .map(|(name, c)| (name.to_string(), c.value.clone()))
                .collect(),
        }
    }
}

/// Adds an entity of a full config, where each name comes once.
fn insert_new<T>(
    entities: &mut Entities<T>,
    kind: Kind,
    name: &str,
    held: Arc<Held<T>>,
) -> Result<(), WireError> {
    match entities.insert(name.into(), held) {
        None => Ok(()),
        Some(_) => Err(WireError::Duplicate {
            kind,
            name: name.to_owned(),
        }),
    }
}

fn missing(kind: Kind, name: String) -> WireError {
    WireError::MissingRemoval { kind, name }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::{Backend, PathMatch, Target, digest, resources_from_config};

    use super::*;

    fn upstream(name: &str, address: &str) -> Upstream {
        Upstream {
            name: name.into(),
            targets: vec![Target {
                address: address.into(),
                weight: 1,
            }],
            ..Default::default()
        }
    }

    fn route(name: &str, path: &str, upstream: &str) -> Route {
        Route {
            name: name.into(),
            paths: vec![PathMatch::Prefix(path.into())],
            backends: vec![Backend {
                upstream: upstream.into(),
                weight: 1,
            }],
            ..Default::default()
        }
    }

    fn certificate(name: &str, host: &str) -> Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![host.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Certificate {
            name: name.into(),
            cert: cert.pem(),
            key: Some(gateway_config::PrivateKey::new(key.serialize_pem())),
            ..Default::default()
        }
    }

    #[test]
    fn certificates_are_held_hashed_validated_and_cached_with_their_keys() {
        let mut config = Config::default();
        config
            .certificates
            .insert("a".into(), certificate("a", "a.test"));
        let served = ServedConfig::from_resources(resources_from_config(&config)).unwrap();
        assert_eq!(served.digest(), digest(&config));
        assert!(served.validate(None).is_ok());
        assert_eq!(served.to_config(), config);

        // A delta adds one that claims the same name: refused by validation.
        let clash = certificate("b", "a.test");
        let upsert = v1::Resource {
            resource: Some(v1::resource::Resource::Certificate((&clash).into())),
        };
        let (next, changes) = served.with_changes(vec![upsert], vec![]).unwrap();
        assert!(changes.certificates_changed);
        let errors = next.validate(Some(&changes)).unwrap_err();
        assert_eq!(errors.0[0].name, "b");
        // Removing one is a change too, and the digest follows.
        let removal = v1::ResourceKey {
            kind: v1::Kind::Certificate.into(),
            name: "a".into(),
        };
        let (empty, changes) = served.with_changes(vec![], vec![removal]).unwrap();
        assert!(changes.certificates_changed);
        assert_eq!(empty.digest(), digest(&Config::default()));

        // The cache file's push holds the key.
        let push = v1::ConfigPush::decode(&served.encode_full_push(1, "d", 0)[..]).unwrap();
        let back = ServedConfig::from_resources(push.upserts).unwrap();
        assert_eq!(back.to_config(), config);
    }

    fn sample() -> Config {
        let mut config = Config::default();
        for (name, address) in [("b", "127.0.0.1:2"), ("a", "127.0.0.1:1")] {
            config
                .upstreams
                .insert(name.into(), upstream(name, address));
        }
        for (name, path, upstream) in [("r2", "/two", "b"), ("r1", "/one", "a"), ("r3", "/3", "a")]
        {
            config
                .routes
                .insert(name.into(), route(name, path, upstream));
        }
        config
    }

    fn resource_of(route: &Route) -> v1::Resource {
        v1::Resource {
            resource: Some(v1::resource::Resource::Route(route.into())),
        }
    }

    fn key(kind: v1::Kind, name: &str) -> v1::ResourceKey {
        v1::ResourceKey {
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn digest_and_cache_form_match_the_whole_config() {
        let config = sample();
        let served = ServedConfig::from_config(&config);
        assert_eq!(served.to_config(), config);
        assert_eq!(served.digest(), digest(&config));
        let bytes = served.encode_full_push(7, "d", 99);
        let push = v1::ConfigPush::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            push,
            v1::ConfigPush {
                revision: 7,
                digest: "d".into(),
                base_revision: 0,
                upserts: resources_from_config(&config),
                removals: vec![],
                committed_at_unix_ms: 99,
            }
        );
    }

    #[test]
    fn a_delta_gives_the_same_config_as_rebuilding_and_leaves_the_base_alone() {
        let base_config = sample();
        let base = ServedConfig::from_config(&base_config);
        let changed = route("r1", "/moved", "b");
        let added = route("r0", "/zero", "a");
        let unchanged = base_config.routes["r3"].clone();
        let (next, changes) = base
            .with_changes(
                vec![
                    resource_of(&changed),
                    resource_of(&added),
                    resource_of(&unchanged),
                ],
                vec![key(v1::Kind::Route, "r2")],
            )
            .unwrap();
        let mut expected = base_config.clone();
        expected.routes.remove("r2");
        expected.routes.insert("r1".into(), changed);
        expected.routes.insert("r0".into(), added);
        assert_eq!(next.to_config(), expected);
        assert_eq!(next.digest(), digest(&expected));
        assert_eq!(base.to_config(), base_config);
        let names = |held: &[Arc<Held<Route>>]| -> Vec<String> {
            held.iter().map(|r| r.value.name.clone()).collect()
        };
        assert_eq!(names(&changes.routes_before), ["r2", "r1"]);
        assert_eq!(names(&changes.routes_after), ["r1", "r0"]);
        assert!(!changes.upstream_names_changed(&base));
        assert!(next.validate(Some(&changes)).is_ok());
    }

    #[test]
    fn removing_an_upstream_in_use_fails_validation_of_the_delta() {
        let base = ServedConfig::from_config(&sample());
        let (next, changes) = base
            .with_changes(vec![], vec![key(v1::Kind::Upstream, "b")])
            .unwrap();
        assert!(changes.upstream_names_changed(&base));
        let errors = next.validate(Some(&changes)).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].name, "r2");
        assert_eq!(errors.0[0].field, "backends[0].upstream");
    }

    #[test]
    fn a_changed_route_is_checked_on_its_own_and_for_references() {
        let base = ServedConfig::from_config(&sample());
        let mut bad = route("r1", "no-slash", "missing");
        bad.backends[0].weight = 1;
        let (next, changes) = base.with_changes(vec![resource_of(&bad)], vec![]).unwrap();
        let errors = next.validate(Some(&changes)).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"backends[0].upstream"), "{fields:?}");
        assert!(
            fields.iter().any(|f| f.starts_with("paths[0]")),
            "{fields:?}"
        );
    }

    #[test]
    fn bad_deltas_are_refused() {
        let base = ServedConfig::from_config(&sample());
        assert!(matches!(
            base.with_changes(vec![], vec![key(v1::Kind::Route, "nope")]),
            Err(WireError::MissingRemoval { .. })
        ));
        assert!(matches!(
            base.with_changes(vec![v1::Resource { resource: None }], vec![]),
            Err(WireError::EmptyResource)
        ));
        let twice = vec![resource_of(&route("x", "/x", "a")); 2];
        assert!(matches!(
            ServedConfig::from_resources(twice.clone()),
            Err(WireError::Duplicate { .. })
        ));
        assert!(matches!(
            base.with_changes(twice, vec![]),
            Err(WireError::Duplicate { .. })
        ));
    }
}
