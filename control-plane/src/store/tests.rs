//! Store behaviour on SQLite, and on Postgres when `GATEWAY_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used)]

use gateway_config::{Backend, ErrorKind, Kind, PathMatch, Route, Target, Upstream};

use super::test_support::{postgres, sqlite};
use super::*;

fn upstream(name: &str) -> Upstream {
    Upstream {
        name: name.into(),
        tags: vec!["team-a".into()],
        targets: vec![Target {
            address: "127.0.0.1:9000".into(),
            weight: 1,
        }],
        ..Default::default()
    }
}

fn route(name: &str, upstream: &str) -> Route {
    Route {
        name: name.into(),
        tags: vec![],
        hosts: vec![],
        paths: vec![PathMatch::Prefix("/".into())],
        methods: vec![],
        strip_prefix: false,
        preserve_host: false,
        upgrades: vec![],
        backends: vec![Backend {
            upstream: upstream.into(),
            weight: 1,
        }],
        priority: 0,
        ..Default::default()
    }
}

async fn history_rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM resource_history")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn exercise_resources(store: &Store) {
    assert_eq!(store.head_revision().await.unwrap(), 0);
    let empty = store.latest_config().await.unwrap();
    assert_eq!(empty.revision, 0);
    assert_eq!(empty.committed_at, 0);

    let created = store
        .write(Change::Create(upstream("api")), "tester")
        .await
        .unwrap();
    assert_eq!(created.revision, 1);
    assert!(created.created);
    let record = created.record.unwrap();
    assert_eq!(record.revision, 1);
    assert_eq!(store.get::<Upstream>("api").await.unwrap(), Some(record));

    let duplicate = store.write(Change::Create(upstream("api")), "t").await;
    assert!(matches!(duplicate, Err(StoreError::AlreadyExists { .. })));
    let dangling = store.write(Change::Create(route("r", "nope")), "t").await;
    match dangling {
        Err(StoreError::Invalid(errors)) => {
            assert_eq!(errors.0[0].error, ErrorKind::UnknownReference);
            assert_eq!(errors.0[0].field, "backends[0].upstream");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store.head_revision().await.unwrap(), 1);

    let r = store
        .write(Change::Create(route("r", "api")), "t")
        .await
        .unwrap();
    assert_eq!(r.revision, 2);
    let route_created = r.record.unwrap().created_at;
    assert_eq!(
        store
            .get::<Route>("r")
            .await
            .unwrap()
            .unwrap()
            .entity
            .created_at_unix_ms,
        route_created
    );

    let in_use = store
        .write(Change::<Upstream>::Delete("api".into()), "t")
        .await;
    match in_use {
        Err(StoreError::InUse { routes, .. }) => assert_eq!(routes, ["r"]),
        other => panic!("unexpected {other:?}"),
    }
    let missing = store.write(Change::<Route>::Delete("zz".into()), "t").await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));

    let mut changed = route("r", "api");
    changed.priority = 9;
    let replaced = store.write(Change::Put(changed), "t").await.unwrap();
    assert!(!replaced.created);
    let record = replaced.record.unwrap();
    assert_eq!(record.created_at, route_created);
    assert_eq!(record.entity.priority, 9);
    assert_eq!(record.revision, 3);

    // The same content again is no change: no revision, and the stored record comes back.
    let mut same = route("r", "api");
    same.priority = 9;
    let repeated = store.write(Change::Put(same), "t").await.unwrap();
    assert_eq!(repeated.revision, 3);
    assert!(repeated.latest.is_none());
    assert!(repeated.changes.is_empty());
    let record = repeated.record.unwrap();
    assert_eq!(record.revision, 3);
    assert_eq!(record.created_at, route_created);

    let put_new = store
        .write(Change::Put(upstream("web")), "t")
        .await
        .unwrap();
    assert!(put_new.created);

    let (page, more) = store.list::<Upstream>(None, 1, None).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(more);
    let (page, more) = store.list::<Upstream>(Some("api"), 1, None).await.unwrap();
    assert_eq!(page[0].entity.name, "web");
    assert!(!more);
    let (tagged, _) = store
        .list::<Upstream>(None, 10, Some("team-a"))
        .await
        .unwrap();
    assert_eq!(tagged.len(), 2);
    let (none, _) = store.list::<Route>(None, 10, Some("team-a")).await.unwrap();
    assert!(none.is_empty());

    let deleted = store
        .write(Change::<Route>::Delete("r".into()), "t")
        .await
        .unwrap();
    assert_eq!(deleted.revision, 5);
    assert!(deleted.record.is_none());
    assert_eq!(history_rows(store).await, 5);

    let latest = store.latest_config().await.unwrap();
    assert_eq!(Some(latest.clone()), deleted.latest.map(|l| l.state));
    assert_eq!(latest.to_config().upstreams.len(), 2);
    assert!(latest.to_config().routes.is_empty());

    let (revisions, more) = store.list_revisions(None, 2).await.unwrap();
    assert!(more);
    assert_eq!(revisions[0].revision, 5);
    assert_eq!(revisions[0].message, "delete route r");
    assert_eq!(revisions[1].message, "create upstream web");
    let (older, _) = store.list_revisions(Some(4), 10).await.unwrap();
    assert_eq!(older.len(), 3);
    assert_eq!(older[2].actor, "tester");
    assert_eq!(older[0].message, "update route r");
    assert_eq!(older[0].digest.len(), 64);
}

async fn exercise_nodes(store: &Store) {
    let hello = HelloRecord {
        id: "w1".into(),
        group: "g".into(),
        build: "b".into(),
        applied_revision: 0,
        applied_digest: String::new(),
    };
    store
        .node_connected(&hello, "rep", "s1", 1_000)
        .await
        .unwrap();
    store.node_acked("w1", "s1", 3, "d3", 2_000).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].applied_revision, 3);
    assert!(nodes[0].connected);
    assert_eq!(nodes[0].last_seen, 2_000);

    store
        .node_nacked("w1", "s1", "broken", 3_000)
        .await
        .unwrap();
    assert_eq!(
        store.list_nodes().await.unwrap()[0].last_error.as_deref(),
        Some("broken")
    );

    // The worker reconnects on a new stream before the old one is noticed closing.
    store
        .node_connected(&hello, "rep", "s2", 4_000)
        .await
        .unwrap();
    store.node_disconnected("w1", "s1", 5_000).await.unwrap();
    let node = &store.list_nodes().await.unwrap()[0];
    assert!(node.connected);
    assert_eq!(node.first_seen, 1_000);
    assert_eq!(node.last_error, None);
    store.node_seen("w1", "s2", 6_000).await.unwrap();
    store.node_disconnected("w1", "s2", 7_000).await.unwrap();
    let node = &store.list_nodes().await.unwrap()[0];
    assert!(!node.connected);
    assert_eq!(node.last_seen, 7_000);
}

#[tokio::test]
async fn sqlite_store() {
    let db = sqlite().await;
    exercise_resources(&db.store).await;
    exercise_nodes(&db.store).await;
    // Migrations run again on restart without harm.
    let again = Store::connect(&db.url).await.unwrap();
    assert_eq!(again.head_revision().await.unwrap(), 5);
}

#[tokio::test]
async fn postgres_store() {
    let Some(db) = postgres().await else {
        return;
    };
    exercise_resources(&db.store).await;
    exercise_nodes(&db.store).await;
    db.cleanup().await;
}

#[tokio::test]
async fn concurrent_writers_get_distinct_revisions() {
    let db = sqlite().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(Change::Create(upstream(&format!("u{i}"))), "t")
                .await
                .unwrap()
                .revision
        }));
    }
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.unwrap());
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    let result = Store::connect("postgres://postgres@127.0.0.1:1/none").await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))));
}

/// The config at every kept revision, as written, must be rebuilt from history after pruning.
async fn exercise_history(store: Store) {
    let store = store.with_retention(3);
    let mut expected = Vec::new();
    let mut record = |latest: Option<Advance>| {
        let latest = latest.unwrap().state;
        expected.push((latest.revision, latest.to_config()));
    };
    record(
        store
            .write(Change::Create(upstream("a")), "t")
            .await
            .unwrap()
            .latest,
    ); // 1
    record(
        store
            .write(Change::Create(upstream("b")), "t")
            .await
            .unwrap()
            .latest,
    ); // 2
    record(
        store
            .write(Change::Create(route("r", "a")), "t")
            .await
            .unwrap()
            .latest,
    ); // 3
    let mut changed = upstream("b");
    changed.targets[0].weight = 7;
    record(store.write(Change::Put(changed), "t").await.unwrap().latest); // 4
    record(
        store
            .write(Change::<Upstream>::Delete("b".into()), "t")
            .await
            .unwrap()
            .latest,
    ); // 5
    record(
        store
            .write(Change::Create(upstream("c")), "t")
            .await
            .unwrap()
            .latest,
    ); // 6
    record(
        store
            .write(Change::<Route>::Delete("r".into()), "t")
            .await
            .unwrap()
            .latest,
    ); // 7

    let kept = store.kept_range().await.unwrap().unwrap();
    assert_eq!((kept.oldest, kept.latest), (5, 7));
    for (revision, config) in &expected {
        match store.config_at(*revision).await {
            Ok(at) if *revision >= 5 => {
                assert_eq!(&at.config, config, "revision {revision}");
                assert_eq!(at.row.digest, gateway_config::digest(config));
            }
            Err(StoreError::RevisionNotKept { kept, .. }) if *revision < 5 => {
                assert_eq!(kept.unwrap().oldest, 5);
            }
            other => panic!("revision {revision}: {other:?}"),
        }
    }
    // Baselines only: `b` (deleted at 5) and `r` (deleted at 7, but live at 5 and 6) stay
    // reconstructible, nothing older remains.
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT revision, name FROM resource_history ORDER BY revision, name")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (1, "a".to_owned()),
            (3, "r".to_owned()),
            (6, "c".to_owned()),
            (7, "r".to_owned())
        ]
    );
    let err = store.config_at(2).await.unwrap_err();
    assert!(
        err.to_string().contains("kept revisions are 5 to 7"),
        "{err}"
    );
}

async fn exercise_apply(store: &Store) {
    let mut desired = gateway_config::Config::default();
    desired.upstreams.insert("a".into(), upstream("a"));
    desired.routes.insert("r".into(), route("r", "a"));
    let dry = WriteOptions {
        dry_run: true,
        ..WriteOptions::by("t")
    };
    let preview = store
        .apply_config(desired.clone(), "apply config", &dry)
        .await
        .unwrap();
    assert!(preview.changed && preview.latest.is_none());
    assert_eq!(preview.changes.len(), 2);
    assert_eq!(store.head_revision().await.unwrap(), 0);

    let stale = WriteOptions {
        if_match: Some(3),
        ..WriteOptions::by("t")
    };
    let refused = store.apply_config(desired.clone(), "m", &stale).await;
    assert!(matches!(
        refused,
        Err(StoreError::PreconditionFailed {
            expected: 3,
            current: 0
        })
    ));

    let current = WriteOptions {
        if_match: Some(0),
        message: Some("first".into()),
        ..WriteOptions::by("t")
    };
    let applied = store
        .apply_config(desired.clone(), "apply config", &current)
        .await
        .unwrap();
    assert_eq!(applied.revision, 1);
    assert_eq!(applied.changes.len(), 2);
    let (log, _) = store.list_revisions(None, 1).await.unwrap();
    assert_eq!(log[0].message, "first");
    let created = store.get::<Route>("r").await.unwrap().unwrap().created_at;

    let again = store
        .apply_config(desired.clone(), "apply config", &WriteOptions::by("t"))
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(again.revision, 1);
    assert_eq!(store.head_revision().await.unwrap(), 1);

    desired.upstreams.insert("b".into(), upstream("b"));
    desired.routes.clear();
    let next = store
        .apply_config(desired, "apply config", &WriteOptions::by("t"))
        .await
        .unwrap();
    assert_eq!(next.revision, 2);
    assert_eq!(next.changes.len(), 2);
    assert!(store.get::<Route>("r").await.unwrap().is_none());
    let at_one = store.config_at(1).await.unwrap();
    assert_eq!(at_one.config.routes["r"].created_at_unix_ms, created);
}

#[tokio::test]
async fn sqlite_history_and_apply() {
    exercise_history(sqlite().await.store).await;
    exercise_apply(&sqlite().await.store).await;
}

#[tokio::test]
async fn postgres_history_and_apply() {
    let Some(db) = postgres().await else {
        return;
    };
    exercise_history(db.store.clone()).await;
    db.cleanup().await;
    let Some(db) = postgres().await else {
        return;
    };
    exercise_apply(&db.store).await;
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_writes_notify_other_replicas() {
    let Some(db) = postgres().await else {
        return;
    };
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    listener.listen(NOTIFY_CHANNEL).await.unwrap();
    db.store
        .write(Change::Create(upstream("a")), "t")
        .await
        .unwrap();
    let notification = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.payload(), format!("1 {}", db.store.replica()));
    assert!(crate::store::notified_by(
        notification.payload(),
        db.store.replica()
    ));
    assert!(!crate::store::notified_by(
        notification.payload(),
        "another-replica"
    ));
    // A refused write notifies nobody: the next notification is revision 2.
    assert!(
        db.store
            .write(Change::Create(upstream("a")), "t")
            .await
            .is_err()
    );
    db.store
        .write(Change::Create(upstream("b")), "t")
        .await
        .unwrap();
    let notification = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.payload(), format!("2 {}", db.store.replica()));
    drop(listener);
    db.cleanup().await;
}

/// A state that fell behind is brought forward from the history, by a writer or by a reader,
/// to exactly what reading everything gives; once the history no longer reaches back to it,
/// it is read whole.
async fn exercise_catch_up(store: Store) {
    let store = store.with_retention(4);
    let stale = store.latest_config().await.unwrap();
    store
        .write(Change::Create(upstream("a")), "t")
        .await
        .unwrap();
    let behind = store.latest_config().await.unwrap();
    store
        .write(Change::Create(upstream("b")), "t")
        .await
        .unwrap();
    store
        .write(Change::Create(route("r", "a")), "t")
        .await
        .unwrap();
    store
        .write(Change::<Upstream>::Delete("b".into()), "t")
        .await
        .unwrap();

    // A reader one revision behind gets the changes since, not the whole config.
    let caught = store.catch_up(&behind).await.unwrap();
    assert_eq!(caught.state, store.latest_config().await.unwrap());
    assert_eq!(caught.since, 1);
    let changed = caught.changed.unwrap();
    assert_eq!(
        changed,
        [
            (Kind::Upstream, "b".to_owned()),
            (Kind::Route, "r".to_owned())
        ]
    );
    let (digest, keys) = store.changes_between(1, 4).await.unwrap().unwrap();
    assert_eq!(digest, behind.digest);
    assert_eq!(keys.len(), 2);

    // A writer whose base is behind still writes on top of the latest revision.
    let written = store
        .write_with(
            &behind,
            Change::Create(upstream("c")),
            &WriteOptions::by("t"),
        )
        .await
        .unwrap();
    let latest = store.latest_config().await.unwrap();
    let advanced = written.latest.unwrap();
    assert_eq!(advanced.state, latest);
    assert_eq!(advanced.since, 1);
    assert!(
        advanced
            .changed
            .unwrap()
            .contains(&(Kind::Upstream, "c".to_owned()))
    );
    assert!(latest.get::<Route>("r").is_some());

    // Revision 0 and revision 1 are no longer kept: a reader that far behind reads whole.
    store
        .write(Change::Create(upstream("d")), "t")
        .await
        .unwrap();
    assert_eq!(store.kept_range().await.unwrap().unwrap().oldest, 3);
    let whole = store.catch_up(&stale).await.unwrap();
    assert!(whole.changed.is_none());
    assert_eq!(whole.state, store.latest_config().await.unwrap());
    assert!(store.changes_between(1, 6).await.unwrap().is_none());
    let written = store
        .write_with(
            &stale,
            Change::Create(upstream("e")),
            &WriteOptions::by("t"),
        )
        .await
        .unwrap();
    assert_eq!(
        written.latest.unwrap().state,
        store.latest_config().await.unwrap()
    );
}

/// Pruning one revision at a time keeps every kept revision exact, also across a window that
/// entities are deleted and recreated in.
async fn exercise_rolling_prune(store: Store) {
    let store = store.with_retention(3);
    let mut expected = Vec::new();
    let mut upstream_b = upstream("b");
    store
        .write(Change::Create(upstream("a")), "t")
        .await
        .unwrap();
    for round in 0..6u32 {
        let latest = if round % 3 == 1 {
            store
                .write(Change::<Upstream>::Delete("b".into()), "t")
                .await
        } else {
            upstream_b.targets[0].weight = round + 1;
            store.write(Change::Put(upstream_b.clone()), "t").await
        };
        let state = latest.unwrap().latest.unwrap().state;
        expected.push((state.revision, state.to_config()));
    }
    let kept = store.kept_range().await.unwrap().unwrap();
    for (revision, config) in &expected {
        if *revision >= kept.oldest {
            assert_eq!(&store.config_at(*revision).await.unwrap().config, config);
        }
    }
    // Only the rows the kept revisions need remain: the baseline of each entity plus one row
    // per change inside the window.
    assert!(history_rows(&store).await <= 2 + 3);
}

#[tokio::test]
async fn sqlite_catch_up_and_prune() {
    exercise_catch_up(sqlite().await.store).await;
    exercise_rolling_prune(sqlite().await.store).await;
}

#[tokio::test]
async fn postgres_catch_up_and_prune() {
    let Some(db) = postgres().await else {
        return;
    };
    exercise_catch_up(db.store.clone()).await;
    db.cleanup().await;
    let Some(db) = postgres().await else {
        return;
    };
    exercise_rolling_prune(db.store.clone()).await;
    db.cleanup().await;
}

/// Writes batched into one transaction each become a revision of their own, in order, each
/// planned on the one before; those that fail or change nothing make none and leave the rest
/// be.
async fn exercise_batch(store: &Store) {
    let options = |if_match: Option<i64>, dry_run: bool| WriteOptions {
        actor: "batch".into(),
        if_match,
        dry_run,
        ..WriteOptions::default()
    };
    let mut create_a = EntityWrite::new(Change::Create(upstream("a")), options(None, false));
    let mut create_a_again = EntityWrite::new(Change::Create(upstream("a")), options(None, false));
    let mut put_r = EntityWrite::new(Change::Put(route("r", "a")), options(Some(1), false));
    let mut stale = EntityWrite::new(Change::Put(upstream("b")), options(Some(0), false));
    let mut unchanged = EntityWrite::new(Change::Put(upstream("a")), options(None, false));
    let mut preview = EntityWrite::new(Change::<Route>::Delete("r".into()), options(None, true));
    let mut delete_r = EntityWrite::new(Change::<Route>::Delete("r".into()), options(None, false));
    let base = store.latest_config().await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let ended = store
        .run_batch(
            &base,
            &mut [
                &mut create_a,
                &mut create_a_again,
                &mut put_r,
                &mut stale,
                &mut unchanged,
                &mut preview,
                &mut delete_r,
            ],
            deadline,
        )
        .await;
    let revisions: Vec<_> = ended
        .iter()
        .map(|ended| {
            ended
                .as_ref()
                .map(|ended| (ended.revision, ended.latest.is_some()))
        })
        .collect();
    assert!(matches!(revisions[0], Ok((1, true))));
    assert!(matches!(ended[1], Err(StoreError::AlreadyExists { .. })));
    assert!(matches!(revisions[2], Ok((2, true))));
    assert!(matches!(
        ended[3],
        Err(StoreError::PreconditionFailed {
            expected: 0,
            current: 2
        })
    ));
    assert!(matches!(revisions[4], Ok((2, false))));
    assert!(matches!(revisions[5], Ok((2, false))));
    assert!(matches!(revisions[6], Ok((3, true))));

    // Each stored revision follows the one before it.
    let advances: Vec<&Advance> = ended
        .iter()
        .filter_map(|ended| ended.as_ref().ok()?.latest.as_ref())
        .collect();
    let since: Vec<i64> = advances.iter().map(|advance| advance.since).collect();
    assert_eq!(since, [0, 1, 2]);
    assert_eq!(advances[2].state, store.latest_config().await.unwrap());
    for advance in &advances {
        let stored = store.config_at(advance.state.revision).await.unwrap();
        assert_eq!(stored.config, advance.state.to_config());
    }
    assert_eq!(store.head_revision().await.unwrap(), 3);
    let (rows, _) = store.list_revisions(None, 10).await.unwrap();
    let messages: Vec<&str> = rows.iter().map(|row| row.message.as_str()).collect();
    assert_eq!(
        messages,
        ["delete route r", "create route r", "create upstream a"]
    );
    assert!(rows.iter().all(|row| row.actor == "batch"));
    let outcome = put_r.outcome(ended.into_iter().nth(2).unwrap().unwrap());
    assert!(outcome.created);
    assert_eq!(outcome.record.unwrap().revision, 2);
    let kept = store.latest_config().await.unwrap();
    assert!(kept.get::<Route>("r").is_none());
    assert!(kept.get::<Upstream>("a").is_some());
}

#[tokio::test]
async fn sqlite_batch() {
    exercise_batch(&sqlite().await.store).await;
}

#[tokio::test]
async fn postgres_batch() {
    let Some(db) = postgres().await else {
        return;
    };
    exercise_batch(&db.store).await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_rotated_key_encryption_key_seals_every_stored_key_again() {
    use crate::kek::Keyring;
    use gateway_config::{Certificate, PrivateKey};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let (old_line, new_line) = ("11".repeat(32), "22".repeat(32));
    let keyring = |lines: &[&str], file: &str| {
        let path = dir.path().join(file);
        std::fs::write(&path, lines.join("\n")).unwrap();
        Arc::new(Keyring::load(&path).unwrap())
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["api.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let certificate = Certificate {
        name: "api".into(),
        cert: cert.pem(),
        key: Some(PrivateKey::new(key.serialize_pem())),
        ..Default::default()
    };
    let old = Store::connect(&url)
        .await
        .unwrap()
        .with_keyring(keyring(&[&old_line], "old"));
    old.write(Change::Create(certificate.clone()), "t")
        .await
        .unwrap();
    let mut renamed = certificate.clone();
    renamed.tags = vec!["edge".into()];
    old.write(Change::Put(renamed), "t").await.unwrap();

    // Without any keyring, or with only the new key, nothing opens.
    let bare = Store::connect(&url).await.unwrap();
    assert!(matches!(
        bare.latest_config().await,
        Err(StoreError::NoKeyring)
    ));
    let new_only = || async {
        Store::connect(&url)
            .await
            .unwrap()
            .with_keyring(keyring(&[&new_line], "new"))
    };
    assert!(matches!(
        new_only().await.latest_config().await,
        Err(StoreError::Sealing(_))
    ));

    // With the new key first and the old one after, every row is sealed again, once.
    let rotating = Store::connect(&url)
        .await
        .unwrap()
        .with_keyring(keyring(&[&new_line, &old_line], "rotating"));
    assert_eq!(rotating.reseal_stale_keys().await.unwrap(), 3);
    assert_eq!(rotating.reseal_stale_keys().await.unwrap(), 0);

    // Now the new key alone opens the current config and every kept revision.
    let store = new_only().await;
    let latest = store.latest_config().await.unwrap().to_config();
    assert_eq!(latest.certificates["api"].key, certificate.key);
    let first = store.config_at(1).await.unwrap().config;
    assert_eq!(first.certificates["api"].key, certificate.key);
}
