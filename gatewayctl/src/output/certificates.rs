//! Certificates for people: the list table, the details of one, and the warnings about those that
//! expire soon or have expired.
//!
//! Everything shown comes from the `info` the admin API computes from the chain (names, key type,
//! fingerprint, validity); the PEM itself is not read here, and the key is never in an answer.
//! Days left are counted from `info.not_after_unix`, the same instant as `info.not_after`, so that
//! no date has to be parsed; a certificate without `info` (a chain the server could not read)
//! still gets its row, with dashes.

use comfy_table::{Table, TableStyle};
use serde::Deserialize;
use serde_json::Value;

use super::cells::{finish, or_dash, revision_cell, rows, table};
use super::error::{OutputError, shape};

const DAY: i64 = 86_400;
/// Fewer days left than this and a certificate is warned about: time to renew it, while a
/// renewal that fails can still be retried.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Deserialize)]
struct CertificateRow {
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    snis: Vec<String>,
    #[serde(default)]
    client_auth: Option<ClientAuthRow>,
    #[serde(default)]
    info: Option<InfoRow>,
    #[serde(default)]
    revision: Option<u64>,
    #[serde(default)]
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct ClientAuthRow {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    subject_header: Option<String>,
    #[serde(default)]
    fingerprint_header: Option<String>,
}

#[derive(Default, Deserialize)]
struct InfoRow {
    #[serde(default)]
    key_type: Option<String>,
    #[serde(default)]
    fingerprint_sha256: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    sans: Vec<String>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    not_after_unix: Option<i64>,
}

/// How long a certificate has left at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Whole days, rounded down: 0 is less than a day.
    Days(i64),
    Expired,
    /// The answer does not say when it expires.
    Unknown,
}

impl CertificateRow {
    fn info(&self) -> &InfoRow {
        static NONE: InfoRow = InfoRow {
            key_type: None,
            fingerprint_sha256: None,
            subject: None,
            issuer: None,
            sans: Vec::new(),
            not_before: None,
            not_after: None,
            not_after_unix: None,
        };
        self.info.as_ref().unwrap_or(&NONE)
    }

    fn left(&self, now: i64) -> Left {
        match self.info().not_after_unix {
            None => Left::Unknown,
            // The gateway takes a certificate as valid through its `not_after` second.
            Some(not_after) if now > not_after => Left::Expired,
            Some(not_after) => Left::Days((not_after - now) / DAY),
        }
    }

    /// `snis`, or what an empty list means.
    fn snis_cell(&self) -> String {
        if self.snis.is_empty() {
            "(sans)".to_owned()
        } else {
            self.snis.join(",")
        }
    }
}

fn days_cell(left: Left) -> String {
    match left {
        Left::Days(days) => days.to_string(),
        Left::Expired => "expired".to_owned(),
        Left::Unknown => "-".to_owned(),
    }
}

fn joined_or_dash(values: &[String]) -> String {
    or_dash(Some(&values.join(",")))
}

/// One row per certificate. `now` is Unix seconds.
pub fn certificates_table(items: &[Value], now: i64) -> Result<String, OutputError> {
    let rows: Vec<CertificateRow> = rows(items, "certificate")?;
    let mut table = table(&["NAME", "SNIS", "SANS", "KEY TYPE", "NOT AFTER", "DAYS LEFT"]);
    for row in rows {
        let info = row.info();
        table.add_row(vec![
            row.name.clone(),
            row.snis_cell(),
            joined_or_dash(&info.sans),
            or_dash(info.key_type.as_deref()),
            or_dash(info.not_after.as_deref()),
            days_cell(row.left(now)),
        ]);
    }
    Ok(finish(&table))
}

/// `certificate get`: one field a line, since a fingerprint and a subject do not fit a row.
pub fn certificate_details(item: &Value, now: i64) -> Result<String, OutputError> {
    let row = CertificateRow::deserialize(item).map_err(|e| shape("certificate", e))?;
    let info = row.info();
    let mut lines = vec![
        ("NAME", row.name.clone()),
        ("TAGS", joined_or_dash(&row.tags)),
        ("SNIS", row.snis_cell()),
        ("SANS", joined_or_dash(&info.sans)),
        ("SUBJECT", or_dash(info.subject.as_deref())),
        ("ISSUER", or_dash(info.issuer.as_deref())),
        ("KEY TYPE", or_dash(info.key_type.as_deref())),
        (
            "FINGERPRINT (SHA-256)",
            or_dash(info.fingerprint_sha256.as_deref()),
        ),
        ("NOT BEFORE", or_dash(info.not_before.as_deref())),
        ("NOT AFTER", or_dash(info.not_after.as_deref())),
        ("DAYS LEFT", days_cell(row.left(now))),
    ];
    match &row.client_auth {
        None => lines.push(("CLIENT AUTH", "-".to_owned())),
        Some(client) => {
            // The model's default, which the server may leave out.
            let mode = client.mode.as_deref().unwrap_or("required");
            lines.push(("CLIENT AUTH", mode.to_owned()));
            lines.push((
                "CLIENT SUBJECT HEADER",
                or_dash(client.subject_header.as_deref()),
            ));
            lines.push((
                "CLIENT FINGERPRINT HEADER",
                or_dash(client.fingerprint_header.as_deref()),
            ));
        }
    }
    lines.push(("REVISION", revision_cell(row.revision)));
    lines.push(("UPDATED", or_dash(row.updated_at.as_deref())));

    let mut table = Table::new();
    table.load_style(TableStyle::new());
    table.force_no_tty();
    for (key, value) in lines {
        table.add_row(vec![key.to_owned(), value]);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    Ok(finish(&table))
}

/// One line (without `warning: `) per certificate that has expired or has fewer than
/// [`EXPIRY_WARNING_DAYS`] left. Items this version cannot read are skipped: the table reports
/// them, and a JSON listing must not fail over a warning.
pub fn expiry_warnings(items: &[Value], now: i64) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| CertificateRow::deserialize(item).ok())
        .filter_map(|row| {
            let not_after = or_dash(row.info().not_after.as_deref());
            match row.left(now) {
                Left::Expired => Some(format!(
                    "certificate \"{}\" has expired (not after {not_after})",
                    row.name
                )),
                Left::Days(days) if days < EXPIRY_WARNING_DAYS => {
                    let when = match days {
                        0 => "in less than a day".to_owned(),
                        1 => "in 1 day".to_owned(),
                        n => format!("in {n} days"),
                    };
                    Some(format!(
                        "certificate \"{}\" expires {when} (not after {not_after})",
                        row.name
                    ))
                }
                Left::Days(_) | Left::Unknown => None,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_750_000_000;

    fn item(name: &str, snis: &[&str], not_after_unix: i64) -> Value {
        json!({"name": name, "cert": "-----BEGIN CERTIFICATE-----\n...", "snis": snis,
               "info": {"key_type": "ecdsa-p256", "fingerprint_sha256": "ab".repeat(32),
                        "subject": format!("CN={name}.test"), "issuer": "CN=Test CA",
                        "sans": [format!("{name}.test"), format!("*.{name}.test")],
                        "not_before": "2025-01-01T00:00:00Z", "not_after": "2025-12-31T00:00:00Z",
                        "not_after_unix": not_after_unix},
               "revision": 4, "updated_at": "2025-06-01T00:00:00.000Z"})
    }

    fn lines(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn days_left_round_down_and_expiry_is_marked() {
        let items = vec![
            item("fresh", &[], NOW + 200 * DAY + 5),
            item("soon", &["soon.test"], NOW + 30 * DAY - 1),
            item("today", &[], NOW),
            item("old", &[], NOW - 1),
        ];
        let text = certificates_table(&items, NOW).unwrap();
        let rows = lines(&text);
        assert_eq!(
            rows[0],
            [
                "NAME", "SNIS", "SANS", "KEY", "TYPE", "NOT", "AFTER", "DAYS", "LEFT"
            ]
        );
        assert_eq!(
            rows[1],
            [
                "fresh",
                "(sans)",
                "fresh.test,*.fresh.test",
                "ecdsa-p256",
                "2025-12-31T00:00:00Z",
                "200"
            ]
        );
        assert_eq!(rows[2][1], "soon.test");
        assert_eq!(rows[2][5], "29");
        // Valid through its last second.
        assert_eq!(rows[3][5], "0");
        assert_eq!(rows[4][5], "expired");
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");

        assert_eq!(
            expiry_warnings(&items, NOW),
            [
                "certificate \"soon\" expires in 29 days (not after 2025-12-31T00:00:00Z)",
                "certificate \"today\" expires in less than a day (not after 2025-12-31T00:00:00Z)",
                "certificate \"old\" has expired (not after 2025-12-31T00:00:00Z)",
            ]
        );
        // Thirty days left is not fewer than thirty.
        assert!(expiry_warnings(&[item("a", &[], NOW + 30 * DAY)], NOW).is_empty());
        assert_eq!(
            expiry_warnings(&[item("a", &[], NOW + DAY)], NOW),
            ["certificate \"a\" expires in 1 day (not after 2025-12-31T00:00:00Z)"]
        );
    }

    #[test]
    fn a_certificate_without_info_still_gets_its_row() {
        let items = vec![json!({"name": "raw", "cert": "x"})];
        assert_eq!(
            lines(&certificates_table(&items, NOW).unwrap())[1],
            ["raw", "(sans)", "-", "-", "-", "-"]
        );
        assert!(expiry_warnings(&items, NOW).is_empty());
        assert!(matches!(
            certificates_table(&[json!({"snis": []})], NOW),
            Err(OutputError::Shape {
                what: "certificate",
                ..
            })
        ));
        // A listing in JSON warns about what it can read and skips the rest.
        assert_eq!(
            expiry_warnings(&[json!({"snis": 1}), item("old", &[], NOW - DAY)], NOW).len(),
            1
        );
    }

    #[test]
    fn details_show_one_field_a_line() {
        let mut value = item("api", &["api.test"], NOW + 10 * DAY);
        value["tags"] = json!(["edge", "prod"]);
        value["client_auth"] = json!({"ca": "-----BEGIN CERTIFICATE-----\n...", "mode": "optional",
                                      "subject_header": "x-client-subject"});
        let text = certificate_details(&value, NOW).unwrap();
        let fingerprint = "ab".repeat(32);
        let expected = [
            "NAME                        api".to_owned(),
            "TAGS                        edge,prod".to_owned(),
            "SNIS                        api.test".to_owned(),
            "SANS                        api.test,*.api.test".to_owned(),
            "SUBJECT                     CN=api.test".to_owned(),
            "ISSUER                      CN=Test CA".to_owned(),
            "KEY TYPE                    ecdsa-p256".to_owned(),
            format!("FINGERPRINT (SHA-256)       {fingerprint}"),
            "NOT BEFORE                  2025-01-01T00:00:00Z".to_owned(),
            "NOT AFTER                   2025-12-31T00:00:00Z".to_owned(),
            "DAYS LEFT                   10".to_owned(),
            "CLIENT AUTH                 optional".to_owned(),
            "CLIENT SUBJECT HEADER       x-client-subject".to_owned(),
            "CLIENT FINGERPRINT HEADER   -".to_owned(),
            "REVISION                    4".to_owned(),
            "UPDATED                     2025-06-01T00:00:00.000Z".to_owned(),
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");
        assert!(!text.contains("BEGIN"), "{text}");

        // Without client authentication there are no header lines to show.
        let plain = lines(&certificate_details(&item("web", &[], NOW - DAY), NOW).unwrap());
        assert_eq!(plain[10], ["DAYS", "LEFT", "expired"]);
        assert_eq!(plain[11], ["CLIENT", "AUTH", "-"]);
        assert_eq!(plain[12][0], "REVISION");
    }
}
