//! Certificates through the admin API: write-only keys, keys sealed at rest, export and apply
//! without keys, rollback, and every sort of bad input refused with its field and nothing stored.

#![allow(clippy::unwrap_used)]

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use super::tests::{Api, api};

struct Pair {
    cert: String,
    key: String,
}

fn issue(names: &[&str]) -> Pair {
    issue_with(names, |_| {})
}

fn issue_with(names: &[&str], edit: impl FnOnce(&mut rcgen::CertificateParams)) -> Pair {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    edit(&mut params);
    let cert = params.self_signed(&key).unwrap();
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn body(name: &str, pair: &Pair, snis: &[&str]) -> Value {
    json!({"name": name, "cert": pair.cert, "key": pair.key, "snis": snis})
}

/// The base64 body of a PEM key: what must never be found anywhere but sealed.
fn key_material(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect::<String>()
}

fn assert_hides(reply: &Value, pair: &Pair) {
    let text = reply.to_string();
    let material = key_material(&pair.key);
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    // Any 40-character stretch of the key would give it away.
    for start in (0..material.len().saturating_sub(40)).step_by(20) {
        assert!(
            !text.contains(&material[start..start + 40]),
            "key material in {text}"
        );
    }
}

async fn stored_specs(api: &Api) -> Vec<String> {
    let mut specs = Vec::new();
    for table in ["resources", "resource_history"] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT spec FROM {table} WHERE kind = 'certificate' AND spec IS NOT NULL"
        )))
        .fetch_all(api.db.store.pool())
        .await
        .unwrap();
        specs.extend(rows.iter().map(|row| row.get::<String, _>("spec")));
    }
    specs
}

#[tokio::test]
async fn a_key_is_write_only_sealed_at_rest_and_kept_across_export_and_apply() {
    let api = api().await;
    let site = issue(&["example.com", "*.example.com"]);
    let created = api
        .post("/v1/certificates", &body("site", &site, &[]).to_string())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_hides(&created.body, &site);
    let info = &created.body["info"];
    assert_eq!(info["key_type"], "ecdsa-p256");
    assert_eq!(info["sans"], json!(["example.com", "*.example.com"]));
    assert_eq!(info["fingerprint_sha256"].as_str().unwrap().len(), 64);
    assert!(created.body.get("key").is_none());

    // Every view of the certificate shows it without its key.
    let mut seen = Vec::new();
    for uri in [
        "/v1/certificates/site",
        "/v1/certificates",
        "/v1/config",
        "/v1/revisions/1",
        "/v1/revisions",
    ] {
        let reply = api.get(uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
        assert_hides(&reply.body, &site);
        seen.push(reply.body);
    }
    assert_eq!(seen[0]["info"], *info);
    let preview = api
        .call(
            Method::PUT,
            "/v1/certificates/site?dry_run=true",
            Some(&body("site", &site, &["example.com"]).to_string()),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_hides(&preview.body, &site);

    // At rest the key is sealed: no byte of it is in the database's JSON.
    let specs = stored_specs(&api).await;
    assert_eq!(specs.len(), 2);
    for spec in &specs {
        assert!(spec.contains("\"sealed_key\":\"v1:"), "{spec}");
        assert_hides(&Value::String(spec.clone()), &site);
    }
    // ... and it opens to the key that was given.
    let latest = api.db.store.latest_config().await.unwrap().to_config();
    assert_eq!(
        latest.certificates["site"].key.as_ref().unwrap().pem(),
        site.key
    );

    // The export applies again as it is: no change, no revision, the key kept.
    let export = seen[2].clone();
    let applied = api.put("/v1/config", &export.to_string()).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(applied.body["changed"], false, "{}", applied.body);
    assert_eq!(api.revisions().await, 1);

    // An export edited elsewhere (tags) keeps the key; so does a rename of the same leaf.
    let mut edited = export.clone();
    edited["certificates"][0]["tags"] = json!(["edge"]);
    edited["certificates"][0]["name"] = json!("renamed");
    let applied = api.put("/v1/config", &edited.to_string()).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_hides(&applied.body, &site);
    let latest = api.db.store.latest_config().await.unwrap().to_config();
    assert_eq!(
        latest.certificates["renamed"].key.as_ref().unwrap().pem(),
        site.key
    );
    // An entity write without the key keeps it too.
    let mut keyless = body("renamed", &site, &["a.example.com"]);
    keyless.as_object_mut().unwrap().remove("key");
    let replaced = api
        .put("/v1/certificates/renamed", &keyless.to_string())
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["snis"], json!(["a.example.com"]));

    let diff = api
        .get(&format!("/v1/revisions/1/diff/{}", api.revisions().await))
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
    assert!(!diff.body["changes"].as_array().unwrap().is_empty());
    assert_hides(&diff.body, &site);

    // Deleted and rolled back, the certificate comes back with its key.
    assert_eq!(
        api.delete("/v1/certificates/renamed").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get("/v1/certificates/renamed").await.status,
        StatusCode::NOT_FOUND
    );
    let listed = api.get("/v1/certificates").await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);
    let head = api.revisions().await;
    let rolled = api
        .post(&format!("/v1/revisions/{}/rollback", head - 1), "")
        .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    let current = api.hub.current().state.to_config();
    assert_eq!(
        current.certificates["renamed"].key.as_ref().unwrap().pem(),
        site.key
    );
}

#[tokio::test]
async fn bad_certificates_are_refused_with_the_field_and_store_nothing() {
    let api = api().await;
    let site = issue(&["example.com", "*.example.com"]);
    let other = issue(&["example.com"]);
    let post = |value: Value| value.to_string();

    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({"name": "c", "cert": "not pem", "key": site.key}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cert",
            "CERTIFICATE",
        ),
        (
            json!({"name": "c", "cert": site.cert, "key": other.key}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "key",
            "does not belong",
        ),
        (
            json!({"name": "c", "cert": site.cert,
                   "key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "key",
            "encrypted",
        ),
        (
            json!({"name": "c", "cert": site.cert}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "key",
            "required",
        ),
        (
            body("c", &site, &["other.test"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "snis[0]",
            "not covered",
        ),
        (
            body("c", &site, &["a.*.example.com"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "snis[0]",
            "leading `*.`",
        ),
        (
            json!({"name": "c", "cert": format!("{}{}", site.cert, other.cert), "key": site.key}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cert",
            "out of order",
        ),
        (
            json!({"name": "c", "cert": site.cert, "key": site.key,
                   "client_auth": {"ca": other.cert}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "client_auth.ca",
            "not a CA",
        ),
        (
            json!({"name": "c", "cert": site.cert, "key": site.key, "password": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
            "unknown field",
        ),
    ];
    for (value, status, field, message) in cases {
        let reply = api
            .refused(Method::POST, "/v1/certificates", &post(value))
            .await;
        assert_eq!(reply.status, status, "{}", reply.body);
        assert_eq!(reply.field(), field, "{}", reply.body);
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{}",
            reply.body
        );
        assert_hides(&reply.body, &site);
    }

    let expired = issue_with(&["old.test"], |params| {
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    });
    let reply = api
        .refused(
            Method::POST,
            "/v1/certificates",
            &post(body("old", &expired, &[])),
        )
        .await;
    assert_eq!(reply.field(), "cert");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let future = issue_with(&["new.test"], |params| {
        params.not_before = rcgen::date_time_ymd(2200, 1, 1);
        params.not_after = rcgen::date_time_ymd(2201, 1, 1);
    });
    let reply = api
        .refused(
            Method::POST,
            "/v1/certificates",
            &post(body("new", &future, &[])),
        )
        .await;
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid before")
    );

    // One server name, two certificates: 409 on the second.
    let first = api
        .post("/v1/certificates", &post(body("a", &site, &[])))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let reply = api
        .refused(
            Method::POST,
            "/v1/certificates",
            &post(body("b", &other, &[])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert_eq!(reply.code(), "conflict");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("certificate `a`")
    );

    // In a whole document too, and the document stores nothing.
    let document = json!({"certificates": [body("a", &site, &[]), body("b", &other, &[])]});
    let reply = api
        .refused(Method::PUT, "/v1/config", &document.to_string())
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"]["details"][0]["name"], "b");
    // A document naming a new certificate without its key has nothing to keep.
    let document = json!({"certificates": [{"name": "z", "cert": other.cert}]});
    let reply = api
        .refused(Method::PUT, "/v1/config", &document.to_string())
        .await;
    assert_eq!(reply.field(), "key", "{}", reply.body);
    assert_eq!(api.revisions().await, 1);
}
