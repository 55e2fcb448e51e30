//! Checks of a certificate: its PEM, the order of its chain, its key, the names it is served for
//! and its client CA; and, across certificates, that no server name is claimed twice.
//!
//! Whether a certificate is within its validity period depends on the clock, so it is a check
//! of its own ([`Certificate::validity_errors`]) that the control plane makes when a certificate
//! is written: a worker restarting from its cache after a certificate expired must still load
//! the config, and serve the other certificates.

use std::collections::HashMap;

use super::error::{ErrorKind, FieldError, Kind, Report, ValidationErrors};
use super::fields::{
    check_len, check_name_pattern, check_tags, check_token, validate_name, within_count,
};
use super::limits::{
    MAX_CA_PEM_LEN, MAX_CERT_CHAIN_LEN, MAX_CERT_PEM_LEN, MAX_KEY_PEM_LEN, MAX_SNIS,
};
use crate::model::{Certificate, ClientAuth};
use crate::x509::{
    ParsedCertificate, certificate_ders, key_matches, parse_certificate, private_key_der,
    signed_by, signing_key,
};

impl Certificate {
    /// Errors in this certificate alone, without looking at other entities or the clock.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.collect_errors(&mut errors);
        ValidationErrors(errors).into_result()
    }

    pub(crate) fn collect_errors(&self, errors: &mut Vec<FieldError>) {
        let mut report = Report {
            kind: Kind::Certificate,
            name: &self.name,
            errors,
        };
        if let Err(message) = validate_name(&self.name) {
            report.invalid("name", message);
        }
        check_tags(&self.tags, &mut report);
        let chain = check_chain(&self.cert, &mut report);
        if let Some(leaf) = chain.as_ref().and_then(|c| c.first()) {
            self.check_key(leaf, &mut report);
            self.check_snis(leaf, &mut report);
        }
        if let Some(client_auth) = &self.client_auth {
            check_client_auth(client_auth, &mut report);
        }
    }

    /// Errors for each certificate of the chain that is not valid at `now` (Unix seconds).
    pub fn validity_errors(&self, now: i64) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut report = Report {
            kind: Kind::Certificate,
            name: &self.name,
            errors: &mut errors,
        };
        let Ok(ders) = certificate_ders(&self.cert) else {
            return errors;
        };
        for (i, der) in ders.into_iter().enumerate() {
            let Ok(parsed) = parse_certificate(der) else {
                continue;
            };
            let which = if i == 0 {
                "the certificate".to_owned()
            } else {
                format!("certificate {i} of the chain")
            };
            if now > parsed.not_after {
                report.invalid(
                    "cert",
                    format!("{which} expired at {}", parsed.info.not_after),
                );
            } else if now < parsed.not_before {
                report.invalid(
                    "cert",
                    format!("{which} is not valid before {}", parsed.info.not_before),
                );
            }
        }
        errors
    }

    fn check_key(&self, leaf: &ParsedCertificate, report: &mut Report<'_>) {
        let Some(key) = &self.key else {
            report.invalid("key", "is required");
            return;
        };
        if let Err(message) = check_len(key.pem(), MAX_KEY_PEM_LEN) {
            report.invalid("key", message);
            return;
        }
        let signing = match private_key_der(key.pem()).and_then(|der| signing_key(&der)) {
            Ok(signing) => signing,
            Err(message) => {
                report.invalid("key", message);
                return;
            }
        };
        if !key_matches(signing.as_ref(), &leaf.spki) {
            report.invalid(
                "key",
                "does not belong to the certificate (the first certificate of `cert`)",
            );
        }
    }

    fn check_snis(&self, leaf: &ParsedCertificate, report: &mut Report<'_>) {
        if self.snis.is_empty() {
            if leaf.dns_names.is_empty() {
                report.invalid(
                    "snis",
                    "the certificate names no DNS name (subjectAltName), so `snis` cannot default \
                     to them; a certificate without DNS names cannot be served by name",
                );
            }
            for (i, name) in leaf.dns_names.iter().enumerate() {
                if let Err(message) = check_server_name(name) {
                    report.invalid("cert", format!("DNS name {i}: {message}"));
                }
            }
            return;
        }
        if !within_count(self.snis.len(), MAX_SNIS, "snis", "names", report) {
            return;
        }
        let mut seen = HashMap::new();
        for (i, sni) in self.snis.iter().enumerate() {
            let field = format!("snis[{i}]");
            if let Err(message) = check_server_name(sni) {
                report.invalid(field, message);
                continue;
            }
            let lower = sni.to_ascii_lowercase();
            if let Some(first) = seen.insert(lower.clone(), i) {
                report.invalid(field, format!("repeats snis[{first}]"));
                continue;
            }
            if !covers(&leaf.dns_names, &lower) {
                report.invalid(
                    field,
                    format!(
                        "`{lower}` is not covered by the certificate's DNS names ({})",
                        if leaf.dns_names.is_empty() {
                            "none".to_owned()
                        } else {
                            leaf.dns_names.join(", ")
                        }
                    ),
                );
            }
        }
    }
}

/// Parses `cert` as a chain, leaf first, each certificate issued by the next; None when it is
/// not one (reported).
fn check_chain(pem: &str, report: &mut Report<'_>) -> Option<Vec<ParsedCertificate>> {
    if let Err(message) = check_len(pem, MAX_CERT_PEM_LEN) {
        report.invalid("cert", message);
        return None;
    }
    let ders = match certificate_ders(pem) {
        Ok(ders) => ders,
        Err(message) => {
            report.invalid("cert", message);
            return None;
        }
    };
    if ders.len() > MAX_CERT_CHAIN_LEN {
        report.invalid(
            "cert",
            format!(
                "holds {} certificates; a chain of at most {MAX_CERT_CHAIN_LEN} is allowed",
                ders.len()
            ),
        );
        return None;
    }
    let mut chain = Vec::with_capacity(ders.len());
    for (i, der) in ders.into_iter().enumerate() {
        match parse_certificate(der) {
            Ok(parsed) => chain.push(parsed),
            Err(message) => {
                report.invalid("cert", format!("certificate {i}: {message}"));
                return None;
            }
        }
    }
    for (i, pair) in chain.windows(2).enumerate() {
        if pair[0].issuer != pair[1].subject || signed_by(&pair[0], &pair[1]) == Some(false) {
            report.invalid(
                "cert",
                format!(
                    "the chain is out of order: certificate {} (`{}`) did not sign certificate \
                     {i} (issued by `{}`); list the leaf first, then each issuer",
                    i + 1,
                    pair[1].info.subject,
                    pair[0].info.issuer
                ),
            );
            return None;
        }
    }
    Some(chain)
}

fn check_client_auth(client_auth: &ClientAuth, report: &mut Report<'_>) {
    if let Err(message) = check_len(&client_auth.ca, MAX_CA_PEM_LEN) {
        report.invalid("client_auth.ca", message);
    } else {
        match certificate_ders(&client_auth.ca) {
            Err(message) => report.invalid("client_auth.ca", message),
            Ok(ders) => {
                for (i, der) in ders.into_iter().enumerate() {
                    match parse_certificate(der) {
                        Err(message) => {
                            report.invalid("client_auth.ca", format!("certificate {i}: {message}"))
                        }
                        Ok(parsed) if !parsed.is_ca => report.invalid(
                            "client_auth.ca",
                            format!(
                                "certificate {i} (`{}`) is not a CA certificate (its \
                                 basicConstraints do not say CA:TRUE)",
                                parsed.info.subject
                            ),
                        ),
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    for (field, header) in [
        ("client_auth.subject_header", &client_auth.subject_header),
        (
            "client_auth.fingerprint_header",
            &client_auth.fingerprint_header,
        ),
    ] {
        if let Some(header) = header
            && let Err(message) = check_token(header, "header name")
        {
            report.invalid(field, message);
        }
    }
}

/// An exact server name or a `*.suffix` wildcard.
fn check_server_name(name: &str) -> Result<(), String> {
    check_name_pattern(name, "server names are sent")
}

/// Whether a certificate with DNS names `names` (lower case) is valid for `sni` (lower case):
/// an exact name is covered by itself or by a wildcard one label up; a wildcard only by itself.
fn covers(names: &[String], sni: &str) -> bool {
    names.iter().any(|name| {
        if name == sni {
            return true;
        }
        if sni.starts_with("*.") {
            return false;
        }
        match (name.strip_prefix("*."), sni.split_once('.')) {
            (Some(suffix), Some((label, rest))) => !label.is_empty() && rest == suffix,
            _ => false,
        }
    })
}

/// Server names that a certificate of `certificates` claims while an earlier one (in iteration
/// order) already does: one error per name, on the later certificate.
pub(crate) fn server_name_conflicts<'a>(
    certificates: impl IntoIterator<Item = &'a Certificate>,
) -> Vec<FieldError> {
    let mut owners: HashMap<String, &str> = HashMap::new();
    let mut errors = Vec::new();
    for certificate in certificates {
        for (i, name) in certificate.server_names().into_iter().enumerate() {
            match owners.get(&name) {
                Some(owner) if *owner != certificate.name => {
                    errors.push(conflict(certificate, i, &name, owner));
                }
                Some(_) => {}
                None => {
                    owners.insert(name, &certificate.name);
                }
            }
        }
    }
    errors
}

/// The errors for the server names of `certificate` that one of `others` also claims.
pub fn server_name_conflicts_with<'a>(
    certificate: &Certificate,
    others: impl IntoIterator<Item = &'a Certificate>,
) -> Vec<FieldError> {
    let names = certificate.server_names();
    let mut errors = Vec::new();
    for other in others {
        if other.name == certificate.name {
            continue;
        }
        let theirs = other.server_names();
        for (i, name) in names.iter().enumerate() {
            if theirs.contains(name) {
                errors.push(conflict(certificate, i, name, &other.name));
            }
        }
    }
    errors
}

fn conflict(certificate: &Certificate, index: usize, name: &str, owner: &str) -> FieldError {
    FieldError {
        kind: Kind::Certificate,
        name: certificate.name.clone(),
        field: if certificate.snis.is_empty() {
            "snis".into()
        } else {
            format!("snis[{index}]")
        },
        message: format!("`{name}` is already served by certificate `{owner}`"),
        error: ErrorKind::Conflict,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::PrivateKey;

    struct Issued {
        cert: String,
        key: String,
    }

    fn ca() -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test ca");
        let cert = params.self_signed(&key).unwrap();
        (rcgen::Issuer::new(params, key), cert.pem())
    }

    fn leaf(names: &[&str], issuer: Option<&rcgen::Issuer<'static, rcgen::KeyPair>>) -> Issued {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        let cert = match issuer {
            Some(issuer) => params.signed_by(&key, issuer).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn certificate(name: &str, issued: &Issued, snis: &[&str]) -> Certificate {
        Certificate {
            name: name.into(),
            cert: issued.cert.clone(),
            key: Some(PrivateKey::new(issued.key.clone())),
            snis: snis.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn fields(certificate: &Certificate) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        certificate.collect_errors(&mut errors);
        errors.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn a_certificate_with_its_key_and_covered_names_passes() {
        let issued = leaf(&["example.com", "*.example.com"], None);
        let cert = certificate(
            "site",
            &issued,
            &["example.com", "a.example.com", "*.example.com"],
        );
        assert_eq!(fields(&cert), []);
        assert_eq!(
            certificate("site", &issued, &[]).server_names(),
            ["example.com", "*.example.com"]
        );
    }

    #[test]
    fn names_the_field_of_each_problem() {
        let issued = leaf(&["example.com", "*.example.com"], None);
        let cert = certificate(
            "site",
            &issued,
            &[
                "a.b.example.com",
                "x.*.com",
                "*.example.com",
                "*.EXAMPLE.com",
                "other.test",
            ],
        );
        let errors = fields(&cert);
        let at: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            at,
            ["snis[0]", "snis[1]", "snis[3]", "snis[4]"],
            "{errors:?}"
        );
        assert!(errors[1].1.contains("leading `*.`"));
        assert!(errors[2].1.contains("repeats snis[2]"));

        let other = leaf(&["example.com"], None);
        let mut mismatched = certificate("site", &issued, &[]);
        mismatched.key = Some(PrivateKey::new(other.key.clone()));
        assert!(fields(&mismatched)[0].1.contains("does not belong"));

        let mut keyless = certificate("site", &issued, &[]);
        keyless.key = None;
        assert_eq!(fields(&keyless), [("key".into(), "is required".into())]);

        let garbage = Certificate {
            cert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            ..certificate("site", &issued, &[])
        };
        assert_eq!(fields(&garbage)[0].0, "cert");
    }

    #[test]
    fn a_chain_must_list_each_issuer_after_what_it_issued() {
        let (issuer, ca_pem) = ca();
        let issued = leaf(&["api.test"], Some(&issuer));
        let in_order = Issued {
            cert: format!("{}{}", issued.cert, ca_pem),
            key: issued.key.clone(),
        };
        assert_eq!(fields(&certificate("c", &in_order, &[])), []);
        let reversed = Issued {
            cert: format!("{}{}", ca_pem, issued.cert),
            key: issued.key.clone(),
        };
        let errors = fields(&certificate("c", &reversed, &[]));
        assert!(
            errors
                .iter()
                .any(|(f, m)| f == "cert" && m.contains("out of order")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_client_ca_must_be_a_ca() {
        let (_, ca_pem) = ca();
        let issued = leaf(&["api.test"], None);
        let mut cert = certificate("c", &issued, &[]);
        cert.client_auth = Some(ClientAuth {
            ca: ca_pem,
            mode: Default::default(),
            subject_header: Some("x-client-subject".into()),
            fingerprint_header: Some("bad header".into()),
        });
        assert_eq!(
            fields(&cert)
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>(),
            ["client_auth.fingerprint_header"]
        );
        cert.client_auth.as_mut().unwrap().ca = issued.cert.clone();
        cert.client_auth.as_mut().unwrap().fingerprint_header = None;
        let errors = fields(&cert);
        assert!(errors[0].1.contains("not a CA"), "{errors:?}");
    }

    #[test]
    fn validity_is_checked_against_the_given_time() {
        let issued = leaf(&["api.test"], None);
        let cert = certificate("c", &issued, &[]);
        assert!(cert.validity_errors(crate::x509::unix_now()).is_empty());
        assert!(
            cert.validity_errors(i64::MAX)[0]
                .message
                .contains("expired")
        );
        assert!(
            cert.validity_errors(0)[0]
                .message
                .contains("not valid before")
        );
    }

    #[test]
    fn a_server_name_belongs_to_one_certificate() {
        let a = leaf(&["a.test", "*.shared.test"], None);
        let b = leaf(&["b.test", "x.shared.test", "*.shared.test"], None);
        let first = certificate("a", &a, &[]);
        let second = certificate("b", &b, &["b.test", "x.shared.test"]);
        assert!(server_name_conflicts([&first, &second]).is_empty());
        let third = certificate("c", &b, &["*.shared.test"]);
        let errors = server_name_conflicts([&first, &second, &third]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].name, "c");
        assert_eq!(errors[0].field, "snis[0]");
        assert_eq!(errors[0].error, ErrorKind::Conflict);
        assert_eq!(
            server_name_conflicts_with(&third, [&first, &second, &third]).len(),
            1
        );
    }
}
