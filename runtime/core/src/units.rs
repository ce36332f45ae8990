//! Durations and sizes as operators write them.
//!
//! Squall's config and content accept a duration as a number of seconds (`30`, `0.5`) or a
//! humantime string (`"30s"`, `"2m"`, `"500ms"`), and a size as a number of bytes (`1048576`) or
//! a string with a unit (`"64MiB"`, `"1 GiB"`, `"512KB"`; `KiB`/`MiB`/`GiB` are powers of 1024,
//! `KB`/`MB`/`GB` powers of 1000). Both serialize back as plain numbers: seconds (`f64`) and
//! bytes (`u64`), so records stay easy to read from scripts.

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;
use std::time::Duration;

/// Parses `"30s"`-style text or a plain number of seconds.
///
/// # Errors
/// A message naming the value when it is neither.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("duration {text:?} must be a non-negative number of seconds"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?} ({e}); write e.g. \"30s\", \"2m\" or 30"))
}

/// Parses `"64MiB"`-style text or a plain number of bytes.
///
/// # Errors
/// A message naming the value when it is neither.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(bytes) = text.parse::<u64>() {
        return Ok(bytes);
    }
    text.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("invalid size {text:?} ({e}); write e.g. \"64MiB\" or 67108864"))
}

/// Serde for a [`Duration`] field: accepts seconds or `"30s"`, writes seconds as `f64`.
pub mod duration {
    use super::*;

    /// Writes the duration as seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Reads seconds (integer or float) or a humantime string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration: seconds as a number, or a string such as \"30s\"")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("duration {v} must not be negative")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v)
                .map_err(|_| E::custom(format!("duration {v} must be a non-negative number")))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
    }
}

/// Serde for an optional [`Duration`] field (see [`duration`]).
pub mod option_duration {
    use super::*;

    /// Writes seconds, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrap(#[serde(with = "super::duration")] Duration);
        Ok(<Option<Wrap> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
    }
}

/// Serde for a size field in bytes: accepts a number or `"64MiB"`, writes a number.
pub mod size {
    use super::*;

    /// Writes the size as bytes.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    /// Reads bytes or a string with a unit.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(SizeVisitor)
    }

    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a size: bytes as a number, or a string such as \"64MiB\"")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("size {v} must not be negative")))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_size(v).map_err(E::custom)
        }
    }
}

/// Serde for an optional size field (see [`size`]).
pub mod option_size {
    use super::*;

    /// Writes bytes, or nothing.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(v),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional size.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrap(#[serde(with = "super::size")] u64);
        Ok(<Option<Wrap> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_from_numbers_and_units() {
        for (input, want) in [
            ("30", Duration::from_secs(30)),
            ("0.5", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("250ms", Duration::from_millis(250)),
        ] {
            assert_eq!(parse_duration(input).unwrap(), want, "{input}");
        }
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
    }

    #[test]
    fn sizes_parse_from_numbers_and_units() {
        for (input, want) in [
            ("1048576", 1 << 20),
            ("64MiB", 64 << 20),
            ("1 GiB", 1 << 30),
            ("512KB", 512_000),
            ("10 MB", 10_000_000),
        ] {
            assert_eq!(parse_size(input).unwrap(), want, "{input}");
        }
        assert!(parse_size("lots").unwrap_err().contains("\"lots\""));
    }

    #[derive(serde::Deserialize, serde::Serialize)]
    struct Both {
        #[serde(with = "duration")]
        timeout: Duration,
        #[serde(with = "size")]
        memory: u64,
    }

    #[test]
    fn serde_reads_either_form_and_writes_numbers() {
        let a: Both = toml::from_str("timeout = \"1m\"\nmemory = \"2MiB\"").unwrap();
        let b: Both = toml::from_str("timeout = 60\nmemory = 2097152").unwrap();
        assert_eq!((a.timeout, a.memory), (b.timeout, b.memory));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"timeout":60.0,"memory":2097152}"#
        );
    }
}
