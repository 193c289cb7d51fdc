//! Durations written the same way everywhere: `90s`, `5m`, `2h`, `14d`.
//!
//! One integer and one unit, nothing else: no fractions, no compound forms
//! (`1h30m`), no whitespace. A single spelling keeps CLI flags, channel specs,
//! the signed index and the CRD comparable by eye.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The regular expression the JSON Schemas publish for a duration.
pub const PATTERN: &str = "^[0-9]+[smhd]$";

/// A span of time, in whole seconds, written as `<n><unit>` with unit `s`, `m`, `h` or `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    secs: u64,
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration: write e.g. `90s`, `5m`, `2h` or `14d`")]
    Empty,
    /// The last character is not one of `s`, `m`, `h`, `d`.
    #[error("duration `{0}` has no unit: write e.g. `90s`, `5m`, `2h` or `14d`")]
    MissingUnit(String),
    /// The part before the unit is not a plain decimal integer.
    #[error("duration `{0}` is not a whole number followed by s, m, h or d")]
    BadNumber(String),
    /// The number of seconds does not fit in 64 bits.
    #[error("duration `{0}` is too large")]
    Overflow(String),
}

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self { secs }
    }

    /// A duration of `mins` minutes (saturating).
    pub const fn from_mins(mins: u64) -> Self {
        Self {
            secs: mins.saturating_mul(60),
        }
    }

    /// A duration of `days` days (saturating).
    pub const fn from_days(days: u64) -> Self {
        Self {
            secs: days.saturating_mul(86_400),
        }
    }

    /// The sum, saturating at `u64::MAX` seconds.
    pub const fn saturating_add(self, other: Self) -> Self {
        Self {
            secs: self.secs.saturating_add(other.secs),
        }
    }

    /// Whole seconds.
    pub const fn as_secs(self) -> u64 {
        self.secs
    }

    /// As a standard library duration (for timeouts and sleeps).
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.secs)
    }

    /// As a `time` duration (for adding to timestamps); saturates at `i64::MAX` seconds.
    pub fn to_time(self) -> time::Duration {
        time::Duration::seconds(i64::try_from(self.secs).unwrap_or(i64::MAX))
    }

    /// Parses `90s`, `5m`, `2h`, `14d`.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let Some(unit) = text.chars().last() else {
            return Err(DurationError::Empty);
        };
        let factor: u64 = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(DurationError::MissingUnit(text.to_owned())),
        };
        let digits = &text[..text.len() - 1];
        // u64::from_str accepts a leading `+`; the one spelling rule does not.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DurationError::BadNumber(text.to_owned()));
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_owned()))?;
        n.checked_mul(factor)
            .map(Self::from_secs)
            .ok_or_else(|| DurationError::Overflow(text.to_owned()))
    }
}

impl fmt::Display for Duration {
    /// The largest unit that divides the duration exactly, so `parse(format(d)) == d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.secs;
        if s != 0 && s % 86_400 == 0 {
            write!(f, "{}d", s / 86_400)
        } else if s != 0 && s % 3_600 == 0 {
            write!(f, "{}h", s / 3_600)
        } else if s != 0 && s % 60 == 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.to_std()
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "description": "A whole number and a unit: s, m, h or d (e.g. 90s, 5m, 2h, 14d).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(Duration::parse("90s").unwrap().as_secs(), 90);
        assert_eq!(Duration::parse("5m").unwrap().as_secs(), 300);
        assert_eq!(Duration::parse("2h").unwrap().as_secs(), 7_200);
        assert_eq!(Duration::parse("14d").unwrap().as_secs(), 1_209_600);
        assert_eq!(Duration::parse("0s").unwrap().as_secs(), 0);
    }

    #[test]
    fn rejects_other_spellings() {
        assert_eq!(Duration::parse(""), Err(DurationError::Empty));
        for bad in [
            "5", "5 m", "+5m", "-5m", "1h30m", "1.5h", "m", "5w", "5M", " 5m",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(matches!(
            Duration::parse("99999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            Duration::parse("999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn formats_with_the_largest_exact_unit() {
        for (secs, text) in [
            (0, "0s"),
            (90, "90s"),
            (300, "5m"),
            (5_400, "90m"),
            (7_200, "2h"),
            (1_209_600, "14d"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(d.to_string(), text);
            assert_eq!(Duration::parse(text).unwrap(), d);
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d: Duration = serde_json::from_str("\"5m\"").unwrap();
        assert_eq!(d, Duration::from_mins(5));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"5m\"");
        let err = serde_json::from_str::<Duration>("300").unwrap_err();
        assert!(err.to_string().contains("string"), "{err}");
        let err = serde_json::from_str::<Duration>("\"5x\"").unwrap_err();
        assert!(err.to_string().contains("5x"), "{err}");
    }

    #[test]
    fn schema_has_the_pattern() {
        let schema = schemars::schema_for!(Duration);
        assert_eq!(
            schema.get("pattern").and_then(|p| p.as_str()),
            Some(PATTERN)
        );
    }
}
