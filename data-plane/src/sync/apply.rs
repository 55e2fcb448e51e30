//! Applying one ConfigPush: rebuild the config (full or delta), validate it, check its digest,
//! compile it and swap it in. Any failure leaves the served config untouched and becomes a NACK
//! with per-resource details, cut short so that a push with errors everywhere still makes a NACK
//! far below [`gateway_proto::MAX_WORKER_MESSAGE_BYTES`] (and a status line and log line of
//! sensible length).

use std::fmt::{self, Write as _};
use std::sync::Arc;

use gateway_config::{Kind, ValidationErrors, WireError};
use gateway_proto::v1;
use gateway_proto::v1::worker_message::Message;

use crate::routing::RouteError;
use crate::served::{Carryover, CompileError, Compiled, ServedConfig, Source, State};
use crate::upstream::UpstreamError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error(
        "delta base mismatch: the push is a delta on revision {base}, but this worker serves {served}"
    )]
    DeltaBaseMismatch { base: u64, served: String },
    #[error("revision {revision} is older than the served revision {served}")]
    Regression { revision: u64, served: u64 },
    #[error("malformed push: {0}")]
    Wire(#[from] WireError),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] ValidationErrors),
    #[error("digest mismatch: the push says {expected}, the applied config has {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("cannot compile the configuration: {0}")]
    Compile(#[from] CompileError),
}

/// What a successful push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Swapped,
    /// The push described exactly the config already served.
    AlreadyServed,
}

impl ApplyError {
    /// The resources the error concerns, for the NACK.
    pub fn details(&self) -> Vec<v1::ResourceError> {
        match self {
            ApplyError::Invalid(errors) => errors
                .0
                .iter()
                .map(|e| detail(e.kind, &e.name, &e.field, &e.message))
                .collect(),
            ApplyError::Wire(error) => wire_detail(error).into_iter().collect(),
            ApplyError::Compile(error) => vec![compile_detail(error)],
            ApplyError::DeltaBaseMismatch { .. }
            | ApplyError::Regression { .. }
            | ApplyError::DigestMismatch { .. } => Vec::new(),
        }
    }
}

fn detail(kind: Kind, name: &str, field: &str, message: &str) -> v1::ResourceError {
    v1::ResourceError {
        kind: v1::Kind::from(kind).into(),
        name: name.to_owned(),
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn wire_detail(error: &WireError) -> Option<v1::ResourceError> {
    let message = error.to_string();
    match error {
        WireError::Duplicate { kind, name } | WireError::MissingRemoval { kind, name } => {
            Some(detail(*kind, name, "name", &message))
        }
        WireError::UnknownBalance { name, .. } => {
            Some(detail(Kind::Upstream, name, "balance", &message))
        }
        WireError::EmptyPathMatch { name, index } => Some(detail(
            Kind::Route,
            name,
            &format!("paths[{index}]"),
            &message,
        )),
        WireError::Invalid {
            kind, name, field, ..
        } => Some(detail(*kind, name, field, &message)),
        WireError::EmptyResource | WireError::UnknownKind(_) => None,
    }
}

fn compile_detail(error: &CompileError) -> v1::ResourceError {
    let message = error.to_string();
    match error {
        CompileError::Upstream(UpstreamError::BadAddress {
            upstream, index, ..
        }) => detail(
            Kind::Upstream,
            upstream,
            &format!("targets[{index}].address"),
            &message,
        ),
        CompileError::Upstream(UpstreamError::NoWeight { upstream }) => {
            detail(Kind::Upstream, upstream, "targets", &message)
        }
        CompileError::Route(RouteError::UnknownUpstream { route, index, .. }) => detail(
            Kind::Route,
            route,
            &format!("backends[{index}].upstream"),
            &message,
        ),
        CompileError::Route(RouteError::BadMethod { route, index, .. }) => {
            detail(Kind::Route, route, &format!("methods[{index}]"), &message)
        }
        CompileError::Route(RouteError::NoWeight { route }) => {
            detail(Kind::Route, route, "backends", &message)
        }
        CompileError::Certificate(error) => {
            detail(Kind::Certificate, &error.name, error.field, &message)
        }
    }
}

/// What a push turns into once validated and compiled, before anything is stored.
#[derive(Debug)]
pub enum Prepared {
    Swap(Box<Compiled>),
    /// The push described exactly the config already served.
    AlreadyServed,
}

/// Rebuilds, validates, checks and compiles the config that `push` describes on top of
/// `current` (the served config, if any), with the upstream runtimes and regexes of
/// `carryover`. Touches no state the request path reads.
pub fn prepare(
    carryover: &Arc<Carryover>,
    current: Option<&Compiled>,
    push: v1::ConfigPush,
) -> Result<Prepared, ApplyError> {
    let served = current.map(|c| c.revision);
    let full = push.base_revision == 0;
    if !full && served != Some(push.base_revision) {
        return Err(ApplyError::DeltaBaseMismatch {
            base: push.base_revision,
            served: served.map_or_else(|| "nothing".to_owned(), |r| format!("revision {r}")),
        });
    }
    if let Some(served) = served
        && push.revision < served
    {
        if !full {
            return Err(ApplyError::Regression {
                revision: push.revision,
                served,
            });
        }
        tracing::warn!(
            revision = push.revision,
            served,
            "the control plane pushed an older revision in full; applying it"
        );
    }
    let (config, changes) = match current {
        Some(current) if !full => {
            let (config, changes) = current.config.with_changes(push.upserts, push.removals)?;
            (config, Some(changes))
        }
        _ => (ServedConfig::from_resources(push.upserts)?, None),
    };
    // The served config was validated when it was applied; a delta is checked where it changed.
    config.validate(changes.as_ref())?;
    let actual = config.digest();
    if actual != push.digest {
        return Err(ApplyError::DigestMismatch {
            expected: push.digest,
            actual,
        });
    }
    if let Some(current) = current
        && current.revision == push.revision
        && current.digest == actual
    {
        return Ok(Prepared::AlreadyServed);
    }
    let compiled = match (current, &changes) {
        (Some(current), Some(changes)) => current.patch(push.revision, actual, config, changes)?,
        _ => Compiled::build(carryover, push.revision, actual, config)?,
    };
    Ok(Prepared::Swap(Box::new(compiled)))
}

/// Applies `push` to `state`: on success the new config is served, on failure nothing changes.
pub fn apply_push(state: &State, push: v1::ConfigPush) -> Result<Applied, ApplyError> {
    let current = state.current();
    match prepare(state.carryover(), current.as_deref(), push)? {
        Prepared::Swap(compiled) => {
            state.store_from(*compiled, Source::ControlPlane);
            Ok(Applied::Swapped)
        }
        Prepared::AlreadyServed => {
            state.set_source(Source::ControlPlane);
            Ok(Applied::AlreadyServed)
        }
    }
}

/// Longest NACK message (and status-port error and log line), in bytes.
const NACK_MESSAGE_MAX: usize = 8 * 1024;
/// Most per-resource details in one NACK; the message says how many there were.
const NACK_DETAILS_MAX: usize = 100;
/// Longest name, field or message of one detail, in bytes.
const DETAIL_TEXT_MAX: usize = 1024;

/// `value` as text of at most `max` bytes (plus an ellipsis when cut); formatting stops at the
/// limit, so a huge error is never rendered whole.
fn bounded(value: &dyn fmt::Display, max: usize) -> String {
    struct Bounded {
        text: String,
        max: usize,
        cut: bool,
    }
    impl fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.max - self.text.len();
            if s.len() <= room {
                self.text.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            self.cut = true;
            Err(fmt::Error)
        }
    }
    let mut out = Bounded {
        text: String::new(),
        max,
        cut: false,
    };
    let _ = write!(out, "{value}");
    if out.cut {
        out.text.push('…');
    }
    out.text
}

/// The NACK of `error`: its text and at most [`NACK_DETAILS_MAX`] details, each cut short.
fn nack_of(revision: u64, error: &ApplyError, message: String) -> v1::Nack {
    let mut details = error.details();
    let total = details.len();
    details.truncate(NACK_DETAILS_MAX);
    for detail in &mut details {
        for text in [&mut detail.name, &mut detail.field, &mut detail.message] {
            if text.len() > DETAIL_TEXT_MAX {
                *text = bounded(&text.as_str(), DETAIL_TEXT_MAX);
            }
        }
    }
    let message = if total > details.len() {
        format!("{message} ({} of {total} problems detailed)", details.len())
    } else {
        message
    };
    v1::Nack {
        revision,
        message,
        details,
    }
}

/// Applies `push` and returns the ACK or NACK to send, logging and recording the outcome.
pub fn handle_push(state: &State, push: v1::ConfigPush) -> v1::WorkerMessage {
    let revision = push.revision;
    let started = std::time::Instant::now();
    let message = match apply_push(state, push) {
        Ok(applied) => {
            if applied == Applied::Swapped {
                let apply_ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::info!(revision, apply_ms, "applied configuration");
            } else {
                tracing::debug!(revision, "configuration already served");
            }
            state.set_last_error(None);
            state.metrics().config_applied();
            Message::Ack(v1::Ack { revision })
        }
        Err(error) => {
            let text = bounded(&error, NACK_MESSAGE_MAX);
            tracing::warn!(
                revision,
                error = %text,
                "rejected configuration push; keeping the previous configuration"
            );
            state.set_last_error(Some(format!("revision {revision}: {text}")));
            state.metrics().config_rejected();
            Message::Nack(nack_of(revision, &error, text))
        }
    };
    v1::WorkerMessage {
        message: Some(message),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::{Config, digest, resources_from_config};

    use super::*;
    use crate::served::NodeIdentity;

    fn state() -> State {
        State::new(NodeIdentity {
            id: "n".into(),
            group: "g".into(),
        })
    }

    fn config(targets: &[&str]) -> Config {
        let targets: Vec<String> = targets
            .iter()
            .map(|t| format!(r#"{{"address": "{t}"}}"#))
            .collect();
        let json = format!(
            r#"{{"upstreams": [{{"name": "api", "targets": [{}]}}],
                "routes": [{{"name": "r", "paths": [{{"prefix": "/"}}],
                             "backends": [{{"upstream": "api"}}]}}]}}"#,
            targets.join(",")
        );
        serde_json::from_str(&json).unwrap()
    }

    fn full_push(revision: u64, config: &Config) -> v1::ConfigPush {
        v1::ConfigPush {
            revision,
            digest: digest(config),
            base_revision: 0,
            upserts: resources_from_config(config),
            removals: vec![],
            committed_at_unix_ms: 0,
        }
    }

    fn served(state: &State) -> (u64, usize) {
        let current = state.current().unwrap();
        (
            current.revision,
            current.upstreams[0].runtime().targets().len(),
        )
    }

    fn nack(message: v1::WorkerMessage) -> v1::Nack {
        match message.message {
            Some(Message::Nack(nack)) => nack,
            other => panic!("expected a NACK, got {other:?}"),
        }
    }

    #[test]
    fn full_push_builds_and_swaps() {
        let state = state();
        let reply = handle_push(&state, full_push(1, &config(&["127.0.0.1:1"])));
        assert_eq!(reply.message, Some(Message::Ack(v1::Ack { revision: 1 })));
        assert_eq!(served(&state), (1, 1));
        apply_push(
            &state,
            full_push(2, &config(&["127.0.0.1:1", "127.0.0.1:2"])),
        )
        .unwrap();
        assert_eq!(served(&state), (2, 2));
        assert_eq!(state.current().unwrap().routes.len(), 1);
    }

    #[test]
    fn empty_revision_zero_makes_a_fresh_worker_ready() {
        let state = state();
        let push = full_push(0, &Config::default());
        assert_eq!(apply_push(&state, push), Ok(Applied::Swapped));
        assert_eq!(state.current().unwrap().revision, 0);
    }

    #[test]
    fn invalid_push_nacks_with_details_and_keeps_the_old_config() {
        let state = state();
        apply_push(&state, full_push(1, &config(&["127.0.0.1:1"]))).unwrap();
        let bad = config(&["no-port"]);
        let reply = nack(handle_push(&state, full_push(2, &bad)));
        assert_eq!(reply.revision, 2);
        assert!(
            reply.message.contains("invalid configuration"),
            "{}",
            reply.message
        );
        assert_eq!(reply.details.len(), 1);
        assert_eq!(reply.details[0].kind, i32::from(v1::Kind::Upstream));
        assert_eq!(reply.details[0].name, "api");
        assert_eq!(reply.details[0].field, "targets[0].address");
        assert_eq!(served(&state), (1, 1));
        assert!(state.last_error().unwrap().contains("revision 2"));
    }

    fn with_certificate(
        config: &Config,
        cert: &rcgen::Certificate,
        key: &rcgen::KeyPair,
    ) -> Config {
        let mut config = config.clone();
        let certificate = gateway_config::Certificate {
            name: "site".into(),
            cert: cert.pem(),
            key: Some(gateway_config::PrivateKey::new(key.serialize_pem())),
            ..Default::default()
        };
        config.certificates = [(certificate.name.clone(), certificate)].into();
        config
    }

    fn served_fingerprints(state: &State) -> Vec<String> {
        let current = state.current().unwrap();
        current
            .tls
            .entries()
            .iter()
            .map(|e| e.fingerprint.clone())
            .collect()
    }

    #[test]
    fn a_certificate_the_worker_cannot_load_nacks_and_the_old_set_stays() {
        let state = state();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["site.test".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let good = with_certificate(&config(&["127.0.0.1:1"]), &cert, &key);
        apply_push(&state, full_push(1, &good)).unwrap();
        let loaded = served_fingerprints(&state);
        assert_eq!(loaded.len(), 1);

        // The certificate of revision 2 comes with the key of another one.
        let other_key = rcgen::KeyPair::generate().unwrap();
        let other = params.self_signed(&other_key).unwrap();
        let mismatched = with_certificate(&config(&["127.0.0.1:1"]), &other, &key);
        let reply = nack(handle_push(&state, full_push(2, &mismatched)));
        assert_eq!(reply.revision, 2);
        assert_eq!(reply.details.len(), 1, "{reply:?}");
        assert_eq!(reply.details[0].kind, i32::from(v1::Kind::Certificate));
        assert_eq!(reply.details[0].name, "site");
        assert_eq!(reply.details[0].field, "key");
        assert!(
            !reply.message.contains("PRIVATE KEY"),
            "the NACK shows no key: {}",
            reply.message
        );
        assert_eq!(state.current().unwrap().revision, 1);
        assert_eq!(served_fingerprints(&state), loaded);
    }

    #[test]
    fn digest_mismatch_nacks() {
        let state = state();
        apply_push(&state, full_push(1, &config(&["127.0.0.1:1"]))).unwrap();
        let mut push = full_push(2, &config(&["127.0.0.1:2"]));
        push.digest = "0".repeat(64);
        let reply = nack(handle_push(&state, push));
        assert!(
            reply.message.starts_with("digest mismatch"),
            "{}",
            reply.message
        );
        assert_eq!(served(&state), (1, 1));
    }

    #[test]
    fn deltas_apply_on_their_base_only() {
        let state = state();
        let base = config(&["127.0.0.1:1"]);
        apply_push(&state, full_push(1, &base)).unwrap();
        let next = config(&["127.0.0.1:1", "127.0.0.1:2"]);
        let delta = |base_revision, revision| v1::ConfigPush {
            revision,
            digest: digest(&next),
            base_revision,
            upserts: vec![resources_from_config(&next).remove(0)],
            removals: vec![],
            committed_at_unix_ms: 0,
        };
        assert_eq!(
            apply_push(&state, delta(7, 8)),
            Err(ApplyError::DeltaBaseMismatch {
                base: 7,
                served: "revision 1".into()
            })
        );
        assert_eq!(apply_push(&state, delta(1, 2)), Ok(Applied::Swapped));
        assert_eq!(served(&state), (2, 2));
        let reply = nack(handle_push(&state, delta(1, 2)));
        assert_eq!(
            reply.message,
            "delta base mismatch: the push is a delta on revision 1, but this worker serves revision 2"
        );
        let fresh = self::state();
        let reply = nack(handle_push(&fresh, delta(1, 2)));
        assert!(
            reply.message.ends_with("this worker serves nothing"),
            "{}",
            reply.message
        );
        assert!(fresh.current().is_none());
        assert!(
            fresh
                .metrics()
                .render()
                .contains("gateway_config_rejects_total 1")
        );
    }

    #[test]
    fn older_revisions_only_in_full() {
        let state = state();
        apply_push(&state, full_push(5, &config(&["127.0.0.1:1"]))).unwrap();
        let old = config(&["127.0.0.1:9"]);
        let delta = v1::ConfigPush {
            base_revision: 5,
            ..full_push(3, &old)
        };
        assert_eq!(
            apply_push(&state, delta),
            Err(ApplyError::Regression {
                revision: 3,
                served: 5
            })
        );
        assert_eq!(apply_push(&state, full_push(3, &old)), Ok(Applied::Swapped));
        assert_eq!(state.current().unwrap().revision, 3);
    }

    #[test]
    fn a_nack_stays_small_however_many_problems_the_push_has() {
        use prost::Message as _;

        let state = state();
        let mut bad = Config::default();
        for i in 0..2_000 {
            let name = format!("route-{i:04}");
            let route = gateway_config::Route {
                name: name.clone(),
                // Two problems per route, one of them about a kilobyte of path.
                paths: vec![gateway_config::PathMatch::Prefix(format!(
                    "no-slash-{}",
                    "x".repeat(1000)
                ))],
                backends: vec![gateway_config::Backend {
                    upstream: "missing".into(),
                    weight: 1,
                }],
                ..Default::default()
            };
            bad.routes.insert(name, route);
        }
        let reply = handle_push(&state, full_push(1, &bad));
        let encoded = reply.encoded_len();
        let nack = nack(reply);
        assert!(
            encoded < gateway_proto::MAX_WORKER_MESSAGE_BYTES / 4,
            "{encoded} bytes"
        );
        assert_eq!(nack.details.len(), NACK_DETAILS_MAX);
        assert!(
            nack.message
                .ends_with(&format!("({NACK_DETAILS_MAX} of 4000 problems detailed)")),
            "{}",
            &nack.message[nack.message.len().saturating_sub(200)..]
        );
        assert!(nack.message.len() < NACK_MESSAGE_MAX + 100);
        assert!(
            nack.details
                .iter()
                .all(|d| d.message.len() <= DETAIL_TEXT_MAX + 3)
        );
        assert!(state.last_error().unwrap().len() < NACK_MESSAGE_MAX + 100);
    }

    #[test]
    fn bounded_text_cuts_on_a_character_boundary() {
        assert_eq!(bounded(&"short", 10), "short");
        assert_eq!(bounded(&"ééé", 3), "é…");
        assert_eq!(bounded(&"abcdef", 3), "abc…");
        assert_eq!(bounded(&"abc", 3), "abc");
    }

    #[test]
    fn repeated_push_is_acked_without_rebuilding() {
        let state = state();
        let c = config(&["127.0.0.1:1"]);
        apply_push(&state, full_push(1, &c)).unwrap();
        let before = state.current().unwrap();
        assert_eq!(
            apply_push(&state, full_push(1, &c)),
            Ok(Applied::AlreadyServed)
        );
        assert!(std::sync::Arc::ptr_eq(&before, &state.current().unwrap()));
    }
}
