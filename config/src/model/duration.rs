//! Durations as people write them in config files: `250ms`, `5s`, `1m 30s`.
//!
//! Any `humantime` text parses, so that a stored document always loads; validation then takes
//! only what the wire carries exactly, whole milliseconds up to a bound (see
//! `validate::fields::check_duration`), so that a worker rebuilds the very same value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration written and read as text (`humantime` syntax).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn from_millis(millis: u64) -> Duration {
        Duration(std::time::Duration::from_millis(millis))
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// Whole milliseconds, saturating; what the wire carries.
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the duration is a whole number of milliseconds, the wire's unit.
    pub fn is_whole_millis(self) -> bool {
        self.0.subsec_nanos().is_multiple_of(1_000_000)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(text.trim())
            .map(Duration)
            .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 250ms, 5s or 1m"))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// In the API description a duration is what it is on the wire: a string.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Duration {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A duration in `humantime` syntax: numbers with units (ms, s, m, h, d, w, or \
                 their long forms), e.g. `250ms`, `5s`, `1.5s`, `1m 30s`. It must be a whole \
                 number of milliseconds, and at most 7 days.",
            ))
            // Every duration the API writes matches, and most that it reads: a hint for
            // generated clients, not the whole grammar (which the server checks).
            .pattern(Some(r"^\s*([0-9]+(\.[0-9]+)?\s*[A-Za-zµ]+\s*)+$"))
            .examples(["5s", "250ms", "1m 30s"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Duration {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let d: Duration = serde_json::from_str("\"1m 30s\"").unwrap();
        assert_eq!(d.as_std(), std::time::Duration::from_secs(90));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1m 30s\"");
        assert_eq!("250ms".parse::<Duration>().unwrap().as_millis(), 250);
        assert!(serde_json::from_str::<Duration>("\"soon\"").is_err());
        assert!(serde_json::from_str::<Duration>("5").is_err());
    }
}
