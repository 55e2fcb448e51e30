//! Certificates for the tests, written out in DER by hand.
//!
//! The tests need validity periods relative to now (a certificate with ten days left), which no
//! fixture file can have, and gatewayctl has no certificate generator among its dependencies
//! (adding rcgen would change the workspace's Cargo.lock). What is built here is a real X.509 v3
//! certificate that `gateway_config::x509` reads exactly as the admin API does — names, P-256 key
//! type, validity, fingerprint — with a signature nobody checks: gatewayctl verifies none, and the
//! fake admin API only describes certificates. The "private key" is a PEM block of the right
//! label around bytes that are no key, since gatewayctl only carries a key.

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A certificate PEM for `dns_names` (the first one also its subject's CN), valid from
/// `not_before` through `not_after` (Unix seconds).
pub fn certificate(dns_names: &[&str], not_before: i64, not_after: i64) -> String {
    const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

    let common_name = dns_names.first().copied().unwrap_or("test");
    let name = seq(&[tlv(
        0x31,
        &seq(&[oid(&[0x55, 0x04, 0x03]), tlv(0x0c, common_name.as_bytes())]),
    )]);
    let sans: Vec<u8> = dns_names
        .iter()
        .flat_map(|dns| tlv(0x82, dns.as_bytes()))
        .collect();
    let extensions = tlv(
        0xa3,
        &seq(&[seq(&[oid(SUBJECT_ALT_NAME), tlv(0x04, &tlv(0x30, &sans))])]),
    );
    // An uncompressed P-256 point: 0x04, then x and y.
    let mut point = vec![0x04];
    point.extend(1..=64u8);
    let spki = seq(&[
        seq(&[oid(EC_PUBLIC_KEY), oid(PRIME256V1)]),
        bit_string(&point),
    ]);
    // A positive serial that differs between certificates, as serials must.
    let mut serial = vec![0x01];
    serial.extend(not_after.to_be_bytes());
    serial.extend(common_name.bytes().take(8));
    let algorithm = seq(&[oid(ECDSA_WITH_SHA256)]);
    let tbs = seq(&[
        tlv(0xa0, &tlv(0x02, &[0x02])),
        tlv(0x02, &serial),
        algorithm.clone(),
        name.clone(),
        seq(&[time(not_before), time(not_after)]),
        name,
        spki,
        extensions,
    ]);
    let signature = seq(&[tlv(0x02, &[0x01]), tlv(0x02, &[0x01])]);
    pem(
        "CERTIFICATE",
        &seq(&[tbs, algorithm, bit_string(&signature)]),
    )
}

/// A PEM block labelled as a PKCS#8 private key; the same every time.
pub fn private_key() -> String {
    pem(
        "PRIVATE KEY",
        b"not a key: gatewayctl carries the key to the admin API and never reads it",
    )
}

/// A DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(encoded: &[u8]) -> Vec<u8> {
    tlv(0x06, encoded)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = vec![0x00];
    content.extend_from_slice(bytes);
    tlv(0x03, &content)
}

/// UTCTime through 2049, GeneralizedTime after, as RFC 5280 has it.
fn time(unix: i64) -> Vec<u8> {
    let (year, month, day) = civil_from_days(unix.div_euclid(DAY));
    let seconds = unix.rem_euclid(DAY);
    let clock = format!(
        "{month:02}{day:02}{:02}{:02}{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    );
    if (1950..2050).contains(&year) {
        tlv(0x17, format!("{:02}{clock}", year % 100).as_bytes())
    } else {
        tlv(0x18, format!("{year:04}{clock}").as_bytes())
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::x509;

    use super::*;

    #[test]
    fn the_gateway_reads_what_is_built() {
        let not_before = 1_700_000_000;
        let not_after = 2_600_000_000; // 2052: GeneralizedTime
        let pem = certificate(&["api.test", "*.api.test"], not_before, not_after);
        let info = x509::leaf_info(&pem).unwrap();
        assert_eq!(info.sans, ["api.test", "*.api.test"]);
        assert_eq!(info.key_type, "ecdsa-p256");
        assert_eq!(info.subject, "CN=api.test");
        assert_eq!(info.not_before, "2023-11-14T22:13:20Z");
        assert_eq!(info.not_after, "2052-05-22T14:13:20Z");
        assert_eq!(info.not_after_unix, not_after);
        assert_eq!(info.fingerprint_sha256.len(), 64);
        let other =
            x509::leaf_info(&certificate(&["api.test"], not_before, not_after - 1)).unwrap();
        assert_ne!(other.fingerprint_sha256, info.fingerprint_sha256);
        assert!(x509::private_key_der(&private_key()).is_ok());
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(time(0), tlv(0x17, b"700101000000Z"));
    }
}
