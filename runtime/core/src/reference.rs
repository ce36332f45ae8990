//! Refs: `<pack>.<name>`, the global name of an action, rule, sensor or trigger type.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A ref, `<pack>.<name>`, e.g. `core.http`, as StackStorm's `ResourceReference`: the pack is
/// everything before the first `.`, the name everything after it.
///
/// Pack names follow StackStorm's pack ref rule (`^[a-z0-9_]+$`); resource names may use
/// letters, digits, `_`, `-` and `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref {
    pack: String,
    name: String,
}

/// Why a string is not a valid ref, pack name or resource name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// No `.` separates a pack from a name.
    #[error("ref {0:?} is not of the form <pack>.<name>")]
    NoSeparator(String),
    /// The pack part breaks the pack naming rule.
    #[error("pack name {0:?} must match ^[a-z0-9_]+$")]
    BadPack(String),
    /// The name part is empty or has characters other than letters, digits, `_`, `-`, `.`.
    #[error("name {0:?} must be non-empty and use only letters, digits, '_', '-' and '.'")]
    BadName(String),
}

/// Checks a pack name (StackStorm's `^[a-z0-9_]+$`).
///
/// # Errors
/// [`RefError::BadPack`] when it does not match.
pub fn validate_pack_name(pack: &str) -> Result<(), RefError> {
    let ok = !pack.is_empty()
        && pack
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RefError::BadPack(pack.to_string()))
    }
}

/// Checks a resource name (action, rule, ...): letters, digits, `_`, `-`, `.`.
///
/// # Errors
/// [`RefError::BadName`] when it does not match.
pub fn validate_name(name: &str) -> Result<(), RefError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RefError::BadName(name.to_string()))
    }
}

impl Ref {
    /// Builds a ref from its parts.
    ///
    /// # Errors
    /// [`RefError`] when either part is invalid.
    pub fn new(pack: impl Into<String>, name: impl Into<String>) -> Result<Self, RefError> {
        let (pack, name) = (pack.into(), name.into());
        validate_pack_name(&pack)?;
        validate_name(&name)?;
        Ok(Ref { pack, name })
    }

    /// The pack part.
    pub fn pack(&self) -> &str {
        &self.pack
    }

    /// The name part.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for Ref {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (pack, name) = s
            .split_once('.')
            .ok_or_else(|| RefError::NoSeparator(s.to_string()))?;
        Ref::new(pack, name)
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.pack, self.name)
    }
}

impl Serialize for Ref {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pack_and_name_at_first_dot() {
        let r: Ref = "core.st2.webhook".parse().unwrap();
        assert_eq!((r.pack(), r.name()), ("core", "st2.webhook"));
        assert_eq!(r.to_string(), "core.st2.webhook");
    }

    #[test]
    fn rejects_bad_refs() {
        for (input, want) in [
            ("core", RefError::NoSeparator("core".into())),
            ("Core.echo", RefError::BadPack("Core".into())),
            (".echo", RefError::BadPack("".into())),
            ("core.", RefError::BadName("".into())),
            ("core.ec ho", RefError::BadName("ec ho".into())),
        ] {
            assert_eq!(input.parse::<Ref>().unwrap_err(), want, "{input}");
        }
    }

    #[test]
    fn serde_round_trips_as_string() {
        let r: Ref = serde_json::from_str("\"linux.check-disk\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"linux.check-disk\"");
        assert!(serde_json::from_str::<Ref>("\"nodot\"").is_err());
    }
}
