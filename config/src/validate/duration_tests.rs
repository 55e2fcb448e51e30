//! Generated durations through every duration field of the model: whatever validation accepts
//! crosses the wire (integer milliseconds) and comes back as the very same entity, still valid
//! and with the same digest, as a worker rebuilds it; whatever it refuses is refused on that field
//! with the message that says why.

#![allow(clippy::unwrap_used)]

use std::time::Duration as StdDuration;

use serde_json::json;

use super::limits::{MAX_DURATION_MS, MIN_DNS_REFRESH_MS, MIN_PROBE_INTERVAL_MS};
use crate::model::{
    ActiveHealthCheck, Config, Duration, HealthCheck, PassiveHealthCheck, Retries, Route, Upstream,
    UpstreamTimeouts,
};
use crate::{config_from_resources, digest, resources_from_config};

/// SplitMix64: deterministic, so that a failing case fails again on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Every unit `humantime` reads, in every spelling.
const UNITS: &[&str] = &[
    "ns", "nsec", "nanos", "us", "µs", "usec", "ms", "msec", "millis", "s", "sec", "secs",
    "second", "seconds", "m", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour",
    "hours", "d", "day", "days", "w", "wk", "wks", "week", "weeks", "M", "month", "months", "y",
    "yr", "yrs", "year", "years",
];

/// Numbers around the bounds of every unit: zero, one, the minimum intervals, a second, a
/// minute, a day and a week in each unit, and numbers too large for any unit.
const EDGE_NUMBERS: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    59,
    60,
    99,
    100,
    101,
    168,
    169,
    999,
    1_000,
    1_001,
    10_080,
    10_081,
    86_400,
    604_799,
    604_800,
    604_801,
    999_999,
    1_000_000,
    1_000_001,
    604_799_999,
    604_800_000,
    604_800_001,
    604_800_000_000_000,
    604_800_000_000_001,
    u32::MAX as u64,
    u64::MAX,
];

const FRACTIONS: &[&str] = &[
    "",
    "",
    "",
    ".0",
    ".5",
    ".25",
    ".001",
    ".0001",
    ".000001",
    ".000000001",
    ".999",
    ".999999999",
    ".0000000001",
];

fn number(rng: &mut Rng) -> String {
    let whole = match rng.below(3) {
        0 => *rng.pick(EDGE_NUMBERS),
        1 => rng.below(1_000),
        _ => {
            let digits = rng.below(13) as u32;
            rng.below(10u64.pow(digits))
        }
    };
    format!("{whole}{}", rng.pick(FRACTIONS))
}

/// Durations as people write them, one to four parts, and the text of values right at and
/// around the bounds.
fn generated(count: usize) -> Vec<String> {
    let mut rng = Rng(0x5eed_0fd1_ce00);
    let near = |ms: u64| {
        let base = StdDuration::from_millis(ms);
        [
            StdDuration::ZERO,
            StdDuration::from_nanos(1),
            StdDuration::from_micros(1),
            StdDuration::from_millis(1),
        ]
        .into_iter()
        .flat_map(move |delta| [base.checked_sub(delta), base.checked_add(delta)])
        .flatten()
    };
    let mut texts: Vec<String> = [0, 1, MIN_PROBE_INTERVAL_MS, 1_000, MAX_DURATION_MS]
        .into_iter()
        .flat_map(near)
        .map(|d| humantime::format_duration(d).to_string())
        .collect();
    texts.extend(
        [
            "1500us",
            "0.5ms",
            "1s 1ns",
            "1s1ns",
            "1.5s",
            "1.0005s",
            "0.001s",
            " 250ms ",
            "7d",
            "1w",
            "168h",
            "10080m",
            "604800s",
            "7d 1ms",
            "1w 1ns",
            "6d 23h 59m 59s 999ms",
            "1M",
            "1y",
            "0s",
            "0ms",
            "0ns",
            "1ns",
            "999999ns",
            "1000000ns",
            "1000001ns",
            "",
            "soon",
            "5",
            "-1s",
            "1 s",
            "1s 1s",
            "1ms 0us",
        ]
        .map(str::to_owned),
    );
    while texts.len() < count {
        let parts = 1 + rng.below(4);
        let mut text = String::new();
        for part in 0..parts {
            if part > 0 {
                let separator: &&str = rng.pick(&["", " ", "  "]);
                text.push_str(separator);
            }
            if rng.below(2) == 0 {
                text.push_str(&number(&mut rng));
                let unit: &&str = rng.pick(UNITS);
                text.push_str(unit);
            } else {
                // Most such parts are valid: a small whole number of a unit of a millisecond or
                // more (which a week bounds).
                let (unit, most) =
                    *rng.pick(&[("ms", 100_000), ("s", 1_000), ("m", 100), ("h", 24)]);
                text.push_str(&format!("{}{unit}", rng.below(most)));
            }
        }
        texts.push(text);
    }
    texts
}

/// One duration field: where errors about it are reported, the least it takes, and a config
/// (an upstream `api` and a route `r` that sends to it) with `value` in that field and every
/// other field valid whatever `value` is.
struct Field {
    path: &'static str,
    min_ms: u64,
    config: fn(Duration) -> Config,
}

fn config_with(route: Route, upstream: Upstream) -> Config {
    let mut config = Config::default();
    config.upstreams.insert(upstream.name.clone(), upstream);
    config.routes.insert(route.name.clone(), route);
    config
}

fn base_route() -> Route {
    let mut route: Route = serde_json::from_value(json!({
        "name": "r", "paths": [{"prefix": "/api"}], "backends": [{"upstream": "api"}]
    }))
    .unwrap();
    route.created_at_unix_ms = 1_700_000_000_000;
    route
}

fn base_upstream() -> Upstream {
    serde_json::from_value(json!({"name": "api", "targets": [{"address": "10.0.0.1:80"}]})).unwrap()
}

fn with_route(edit: impl FnOnce(&mut Route)) -> Config {
    let mut route = base_route();
    edit(&mut route);
    config_with(route, base_upstream())
}

fn with_upstream(edit: impl FnOnce(&mut Upstream)) -> Config {
    let mut upstream = base_upstream();
    edit(&mut upstream);
    config_with(base_route(), upstream)
}

fn active(edit: impl FnOnce(&mut ActiveHealthCheck)) -> Option<HealthCheck> {
    let mut check = ActiveHealthCheck::default();
    edit(&mut check);
    Some(HealthCheck {
        active: Some(check),
        passive: None,
    })
}

const FIELDS: &[Field] = &[
    Field {
        path: "timeout",
        min_ms: 1,
        config: |d| with_route(|r| r.timeout = Some(d)),
    },
    Field {
        path: "retries.per_try_timeout",
        min_ms: 1,
        config: |d| {
            with_route(|r| {
                r.retries = Some(Retries {
                    attempts: 2,
                    per_try_timeout: Some(d),
                    ..Default::default()
                });
            })
        },
    },
    Field {
        path: "retries.backoff",
        min_ms: 0,
        config: |d| {
            with_route(|r| {
                r.retries = Some(Retries {
                    attempts: 2,
                    backoff: Some(d),
                    ..Default::default()
                });
            })
        },
    },
    Field {
        path: "health_check.active.interval",
        min_ms: MIN_PROBE_INTERVAL_MS,
        config: |d| {
            with_upstream(|u| {
                u.health_check = active(|a| {
                    a.interval = d;
                    // Never longer than a valid interval.
                    a.timeout = Duration::from_millis(MIN_PROBE_INTERVAL_MS);
                });
            })
        },
    },
    Field {
        path: "health_check.active.timeout",
        min_ms: 1,
        config: |d| {
            with_upstream(|u| {
                u.health_check = active(|a| {
                    a.timeout = d;
                    // Never shorter than a valid timeout.
                    a.interval = Duration::from_millis(MAX_DURATION_MS);
                });
            })
        },
    },
    Field {
        path: "health_check.passive.eject_for",
        min_ms: 1,
        config: |d| {
            with_upstream(|u| {
                u.health_check = Some(HealthCheck {
                    active: None,
                    passive: Some(PassiveHealthCheck {
                        eject_for: d,
                        ..Default::default()
                    }),
                });
            })
        },
    },
    Field {
        path: "timeouts.connect",
        min_ms: 1,
        config: |d| {
            with_upstream(|u| {
                u.timeouts = Some(UpstreamTimeouts {
                    connect: Some(d),
                    idle: None,
                });
            })
        },
    },
    Field {
        path: "timeouts.idle",
        min_ms: 1,
        config: |d| {
            with_upstream(|u| {
                u.timeouts = Some(UpstreamTimeouts {
                    connect: None,
                    idle: Some(d),
                });
            })
        },
    },
    Field {
        path: "dns_refresh",
        min_ms: MIN_DNS_REFRESH_MS,
        config: |d| with_upstream(|u| u.dns_refresh = Some(d)),
    },
];

/// What validation must say about `value` in a field that takes at least `min_ms`: nothing
/// (`None`), or this message. Written from the rule, not from the code that applies it.
fn expected_refusal(value: StdDuration, min_ms: u64) -> Option<String> {
    let nanos = value.as_nanos();
    if !nanos.is_multiple_of(1_000_000) {
        return Some("must be a whole number of milliseconds".into());
    }
    let millis = nanos / 1_000_000;
    if millis > u128::from(MAX_DURATION_MS) {
        Some("must be at most 7days (604800000ms)".into())
    } else if min_ms == 1 && millis == 0 {
        Some("must be above 0".into())
    } else if millis < u128::from(min_ms) {
        Some(format!("must be at least {min_ms}ms"))
    } else {
        None
    }
}

/// The config as a worker rebuilds it from a push: every entity to its wire message and back.
fn through_the_wire(config: &Config) -> Config {
    config_from_resources(resources_from_config(config)).unwrap()
}

#[test]
fn every_accepted_duration_crosses_the_wire_unchanged_and_every_refusal_says_why() {
    let (mut accepted, mut refused, mut unparsed) = (0, 0, 0);
    for text in generated(2_000) {
        let value: Duration = match serde_json::from_value(json!(text)) {
            Ok(value) => value,
            Err(error) => {
                let message = error.to_string();
                assert!(
                    message.contains("is not a duration") && message.contains("write e.g."),
                    "{text:?}: {message}"
                );
                unparsed += 1;
                continue;
            }
        };
        for field in FIELDS {
            let config = (field.config)(value);
            let case = format!("{text:?} ({:?}) in {}", value.as_std(), field.path);
            match (
                expected_refusal(value.as_std(), field.min_ms),
                config.validate(),
            ) {
                (None, Ok(())) => {
                    let back = through_the_wire(&config);
                    assert_eq!(back, config, "{case}");
                    assert!(back.validate().is_ok(), "{case}: {:?}", back.validate());
                    assert_eq!(digest(&back), digest(&config), "{case}");
                    // The document form (API answers, exports, the store) reads back the same.
                    let document = serde_json::to_string(&config).unwrap();
                    let reread: Config = serde_json::from_str(&document).unwrap();
                    assert_eq!(digest(&reread), digest(&config), "{case}: {document}");
                    accepted += 1;
                }
                (Some(expected), Err(errors)) => {
                    let [error] = errors.0.as_slice() else {
                        panic!("{case}: one error expected, got {errors}");
                    };
                    assert_eq!(error.field, field.path, "{case}");
                    assert!(error.message.starts_with(&expected), "{case}: {errors}");
                    refused += 1;
                }
                (expected, got) => panic!("{case}: expected {expected:?}, got {got:?}"),
            }
        }
    }
    // The generator reaches every outcome, many times.
    assert!(accepted > 2_000, "{accepted} accepted");
    assert!(refused > 2_000, "{refused} refused");
    assert!(unparsed > 10, "{unparsed} unparsed");
}

#[test]
fn duration_errors_name_the_field_of_the_document() {
    let route: Route = serde_json::from_value(json!({
        "name": "r", "backends": [{"upstream": "api"}], "timeout": "1500us",
        "retries": {"attempts": 1, "per_try_timeout": "0.5ms", "backoff": "1s 1ns"}
    }))
    .unwrap();
    let errors = route.validate().unwrap_err();
    let found: Vec<(&str, &str)> = errors
        .0
        .iter()
        .map(|e| (e.field.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "timeout",
                "must be a whole number of milliseconds (`1ms 500us` is not)"
            ),
            (
                "retries.per_try_timeout",
                "must be a whole number of milliseconds (`500us` is not)"
            ),
            (
                "retries.backoff",
                "must be a whole number of milliseconds (`1s 1ns` is not)"
            ),
        ]
    );
    let upstream: Upstream = serde_json::from_value(json!({
        "name": "api", "targets": [{"address": "10.0.0.1:80"}], "dns_refresh": "8d",
        "timeouts": {"idle": "7d"}
    }))
    .unwrap();
    let errors = upstream.validate().unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].field, "dns_refresh");
    assert_eq!(errors.0[0].message, "must be at most 7days (604800000ms)");
}
