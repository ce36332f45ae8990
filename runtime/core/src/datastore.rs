//! The key-value datastore's records, as StackStorm's key-value pair API object
//! (`st2common/models/api/keyvalue.py`).
//!
//! Keys live in a scope:
//! - `st2kv.system` ([`KeyScope::System`]): shared by every rule, action and workflow
//!   (`{{ st2kv.system.<name> }}`). Pack-local keys of components are system keys named
//!   `<pack>:<name>` ([`pack_key_name`]).
//! - `st2kv.user` ([`KeyScope::User`]): one set per user (`{{ st2kv.user.<name> }}` reads the
//!   keys of the user an execution runs as). StackStorm stores them under the reference
//!   `<user>:<name>` ([`KeyRef::reference`]); the API shows `name` and `user` apart.
//!
//! Values are strings (JSON text for structure). A `secret` value is stored encrypted
//! (`encrypted: true`, the value is then the ciphertext); the cipher lives in the server. A key
//! with an `expire_timestamp` is gone once that instant passes (set with a `ttl` in seconds).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The scope of shared keys (`st2kv.system`).
pub const SYSTEM_SCOPE: &str = "st2kv.system";
/// The scope of per-user keys (`st2kv.user`).
pub const USER_SCOPE: &str = "st2kv.user";
/// The list filter for both scopes (StackStorm's `scope=all`).
pub const ALL_SCOPE: &str = "all";

/// The longest `ttl` accepted, in seconds (100 years).
pub const MAX_TTL: u64 = 100 * 365 * 24 * 3600;

/// Why a key, user, scope or ttl was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key name has characters outside the allowed set, or a bad length.
    #[error("key name {0:?} must be 1-255 letters, digits or _ - . : /")]
    InvalidName(String),
    /// The user name is empty, too long, or has a `:` or a control character.
    #[error("user {0:?} must be 1-255 characters without ':' or control characters")]
    InvalidUser(String),
    /// Not one of the scope names.
    #[error("invalid scope {0:?}: allowed scopes are st2kv.system (system) and st2kv.user (user)")]
    InvalidScope(String),
    /// `ttl` is 0 or longer than [`MAX_TTL`].
    #[error("ttl {0} is out of range: it is in seconds, from 1 to {MAX_TTL}")]
    InvalidTtl(i64),
}

/// Where a key lives.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum KeyScope {
    /// `st2kv.system`: shared.
    #[default]
    #[serde(rename = "st2kv.system")]
    System,
    /// `st2kv.user`: per user.
    #[serde(rename = "st2kv.user")]
    User,
}

impl KeyScope {
    /// The full name, `st2kv.system` or `st2kv.user`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::System => SYSTEM_SCOPE,
            KeyScope::User => USER_SCOPE,
        }
    }

    /// Parses a scope as StackStorm's API accepts it: `system`, `st2kv.system`, `user` or
    /// `st2kv.user`.
    ///
    /// # Errors
    /// [`KeyError::InvalidScope`] naming the text (`all` included: it is a filter, see
    /// [`parse_scope_filter`]).
    pub fn parse(text: &str) -> Result<KeyScope, KeyError> {
        match text {
            "system" | SYSTEM_SCOPE => Ok(KeyScope::System),
            "user" | USER_SCOPE => Ok(KeyScope::User),
            other => Err(KeyError::InvalidScope(other.to_string())),
        }
    }
}

impl std::fmt::Display for KeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyScope {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyScope::parse(s)
    }
}

/// Parses a list filter: a scope (see [`KeyScope::parse`]) or `all` (`None`: both scopes).
///
/// # Errors
/// [`KeyError::InvalidScope`].
pub fn parse_scope_filter(text: &str) -> Result<Option<KeyScope>, KeyError> {
    if text == ALL_SCOPE {
        return Ok(None);
    }
    KeyScope::parse(text).map(Some)
}

/// Which key: a scope, the user for [`KeyScope::User`], and the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef {
    /// The scope.
    pub scope: KeyScope,
    /// The owner of a user-scope key; `None` in the system scope.
    pub user: Option<String>,
    /// The name, without the user.
    pub name: String,
}

impl KeyRef {
    /// The system-scope key `name`.
    pub fn system(name: &str) -> KeyRef {
        KeyRef {
            scope: KeyScope::System,
            user: None,
            name: name.to_string(),
        }
    }

    /// The key `name` of `user`.
    pub fn user(user: &str, name: &str) -> KeyRef {
        KeyRef {
            scope: KeyScope::User,
            user: Some(user.to_string()),
            name: name.to_string(),
        }
    }

    /// The key `name` in `scope` (`user` is kept only in the user scope).
    pub fn new(scope: KeyScope, user: &str, name: &str) -> KeyRef {
        match scope {
            KeyScope::System => KeyRef::system(name),
            KeyScope::User => KeyRef::user(user, name),
        }
    }

    /// StackStorm's key reference, the name it is stored under in its scope: `name` in the
    /// system scope, `<user>:<name>` in the user scope.
    pub fn reference(&self) -> String {
        match (&self.scope, &self.user) {
            (KeyScope::User, Some(user)) => format!("{user}:{}", self.name),
            _ => self.name.clone(),
        }
    }

    /// Checks the name and, in the user scope, the user.
    ///
    /// # Errors
    /// [`KeyError::InvalidName`], [`KeyError::InvalidUser`].
    pub fn validate(&self) -> Result<(), KeyError> {
        validate_key_name(&self.name)?;
        if self.scope == KeyScope::User {
            validate_user(self.user.as_deref().unwrap_or(""))?;
        }
        Ok(())
    }
}

impl std::fmt::Display for KeyRef {
    /// `st2kv.system.<name>` or `st2kv.user.<user>:<name>`, for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.scope, self.reference())
    }
}

/// One key and its value, as stored and as StackStorm's API shows it (`{name, value, secret,
/// encrypted, scope, user, expire_timestamp}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValuePair {
    /// The key's name (without the user): letters, digits, `_`, `-`, `.`, `:`, `/`.
    pub name: String,
    /// The value; the ciphertext when `encrypted`.
    pub value: String,
    /// Its scope. Default `st2kv.system`.
    #[serde(default)]
    pub scope: KeyScope,
    /// The owner of a user-scope key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Whether the value is a secret: stored encrypted, shown decrypted only on request.
    #[serde(default)]
    pub secret: bool,
    /// Whether `value` holds the ciphertext (always so in the store for a secret; `false` once
    /// decrypted for a reader that asked).
    #[serde(default)]
    pub encrypted: bool,
    /// When the key expires (ISO 8601 UTC, e.g. `2025-06-01T12:00:00Z`); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_timestamp: Option<Timestamp>,
}

impl KeyValuePair {
    /// The plain (not secret, never expiring) system-scope key `name`.
    pub fn system(name: &str, value: &str) -> KeyValuePair {
        KeyValuePair {
            name: name.to_string(),
            value: value.to_string(),
            ..KeyValuePair::default()
        }
    }

    /// The plain key `name` of `user`.
    pub fn user(user: &str, name: &str, value: &str) -> KeyValuePair {
        KeyValuePair {
            scope: KeyScope::User,
            user: Some(user.to_string()),
            ..KeyValuePair::system(name, value)
        }
    }

    /// Which key this is.
    pub fn key_ref(&self) -> KeyRef {
        KeyRef {
            scope: self.scope,
            user: match self.scope {
                KeyScope::System => None,
                KeyScope::User => self.user.clone(),
            },
            name: self.name.clone(),
        }
    }

    /// Whether it has expired at `now` (an expired key is invisible to every read).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expire_timestamp.is_some_and(|t| t <= now)
    }

    /// Sets `expire_timestamp` to `now` + `ttl` seconds.
    ///
    /// # Errors
    /// [`KeyError::InvalidTtl`] unless 1 ≤ `ttl` ≤ [`MAX_TTL`].
    pub fn expire_after(&mut self, now: Timestamp, ttl: i64) -> Result<(), KeyError> {
        if ttl < 1 || ttl as u64 > MAX_TTL {
            return Err(KeyError::InvalidTtl(ttl));
        }
        // Microseconds, as StackStorm's timestamps (`2025-06-01T12:00:00.123456Z`).
        let at = now
            .round(jiff::Unit::Microsecond)
            .and_then(|t| t.checked_add(SignedDuration::from_secs(ttl)))
            .map_err(|_| KeyError::InvalidTtl(ttl))?;
        self.expire_timestamp = Some(at);
        Ok(())
    }
}

/// The system-scope name of the pack-local key `name` of `pack`: `<pack>:<name>` (StackStorm's
/// `sensor_service.set_value(local=True)` prefix).
pub fn pack_key_name(pack: &str, name: &str) -> String {
    format!("{pack}:{name}")
}

/// Whether pack `reader` may read the system-scope key `name`: a name `<pack>:<rest>` is the
/// pack-local key of `<pack>` (see [`pack_key_name`]), and `<pack>.<class>:<rest>` the local
/// key of a StackStorm Python action or sensor class of `<pack>`; only that pack may read them.
/// StackStorm lets any reader see them, Squall keeps one pack's state from the others.
///
/// # Errors
/// A message naming the key and its owner.
pub fn check_pack_local_read(reader: &str, name: &str) -> Result<(), String> {
    match name.split_once(':') {
        Some((prefix, _)) => {
            let owner = prefix.split('.').next().unwrap_or(prefix);
            if owner == reader {
                Ok(())
            } else {
                Err(format!(
                    "key {name:?} is a local key of pack {owner:?}; only that pack may read it \
                     (pack {reader:?} asked)"
                ))
            }
        }
        None => Ok(()),
    }
}

/// Whether the system-scope key `name` is one of pack `pack`'s own local keys: `<pack>:<rest>`
/// (Squall's pack-local keys) or `<pack>.<Class>:<rest>` (a StackStorm Python action's or
/// sensor's local keys, `st2common/services/datastore.py`), with `<Class>` one dotted segment.
/// A name like `<pack>.api_token` (no class) is not: that is the operator's to grant.
pub fn owns_key(pack: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(pack) else {
        return false;
    };
    if rest.starts_with(':') {
        return true;
    }
    rest.strip_prefix('.')
        .and_then(|r| r.split_once(':'))
        .is_some_and(|(class, _)| !class.is_empty() && !class.contains('.'))
}

/// Why pack `pack` may not `verb` (`write`, `delete`) the key `name`: it is not one of its
/// local keys ([`owns_key`]). Shared by the action and sensor sides of `st2-datastore`.
pub fn write_refusal(pack: &str, verb: &str, name: &str) -> String {
    format!(
        "pack {pack:?} may not {verb} key {name:?}: a pack writes only its own local keys \
         ({pack}:<name> and {pack}.<Class>:<name>)"
    )
}

/// Keys one `st2-datastore` `list-values` call returns at most.
pub const MAX_LISTED: usize = 1000;

/// The prefixes to list for a pack asking for its own keys starting with `prefix`: the part of
/// its own namespaces (`<pack>:`, `<pack>.`) the prefix selects. Listing never reaches past them.
pub fn own_prefixes(pack: &str, prefix: &str) -> Vec<String> {
    [format!("{pack}:"), format!("{pack}.")]
        .into_iter()
        .filter_map(|own| {
            if prefix.starts_with(&own) {
                Some(prefix.to_string())
            } else if own.starts_with(prefix) {
                Some(own)
            } else {
                None
            }
        })
        .collect()
}

/// Checks a key name (1-255 chars of letters, digits, `_`, `-`, `.`, `:`, `/`).
///
/// # Errors
/// [`KeyError::InvalidName`] naming the key.
pub fn validate_key_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidName(name.to_string()))
    }
}

/// Checks the owner of a user-scope key: 1-255 characters, no `:` (it separates user and name
/// in the key reference), no control characters.
///
/// # Errors
/// [`KeyError::InvalidUser`] naming the user.
pub fn validate_user(user: &str) -> Result<(), KeyError> {
    let ok =
        !user.is_empty() && user.len() <= 255 && !user.chars().any(|c| c == ':' || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidUser(user.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_owns_its_local_and_class_local_keys_only() {
        assert!(owns_key("ops", "ops:state"));
        assert!(owns_key("ops", "ops.Counter:count"));
        assert!(!owns_key("ops", "ops.api_token"));
        assert!(!owns_key("ops", "ops.a.b:c"));
        assert!(!owns_key("ops", "ops.:c"));
        assert!(!owns_key("ops", "opsx.Counter:count"));
        assert!(!owns_key("ops", "ops"));
        assert!(!owns_key("ops", "other:x"));
        assert_eq!(own_prefixes("ops", ""), ["ops:", "ops."]);
        assert_eq!(own_prefixes("ops", "op"), ["ops:", "ops."]);
        assert_eq!(own_prefixes("ops", "ops.C"), ["ops.C"]);
        assert!(own_prefixes("ops", "opsx").is_empty());
        assert!(own_prefixes("ops", "other").is_empty());
    }

    #[test]
    fn pack_local_keys_are_readable_by_their_pack_only() {
        assert!(check_pack_local_read("monitor", "monitor:status.web").is_ok());
        assert!(check_pack_local_read("monitor", "github_token").is_ok());
        let e = check_pack_local_read("evil", "monitor:status.web").unwrap_err();
        assert!(e.contains("local key of pack \"monitor\""), "{e}");
        assert!(check_pack_local_read("ops", "ops.Counter:count").is_ok());
        let e = check_pack_local_read("evil", "ops.Counter:count").unwrap_err();
        assert!(e.contains("local key of pack \"ops\""), "{e}");
    }

    #[test]
    fn scopes_parse_as_stackstorm_names_them() {
        for (text, want) in [
            ("system", Ok(Some(KeyScope::System))),
            ("st2kv.system", Ok(Some(KeyScope::System))),
            ("user", Ok(Some(KeyScope::User))),
            ("st2kv.user", Ok(Some(KeyScope::User))),
            ("all", Ok(None)),
            ("pack", Err(KeyError::InvalidScope("pack".into()))),
            ("", Err(KeyError::InvalidScope("".into()))),
        ] {
            assert_eq!(parse_scope_filter(text), want, "{text}");
        }
        assert!(KeyScope::parse("all").is_err());
    }

    #[test]
    fn references_keep_system_and_user_keys_apart() {
        for (key, reference, shown) in [
            (KeyRef::system("a"), "a", "st2kv.system.a"),
            (KeyRef::user("alice", "a"), "alice:a", "st2kv.user.alice:a"),
            (
                KeyRef::system(&pack_key_name("github", "cursor")),
                "github:cursor",
                "st2kv.system.github:cursor",
            ),
            (
                KeyRef::new(KeyScope::System, "alice", "a"),
                "a",
                "st2kv.system.a",
            ),
        ] {
            assert_eq!(key.reference(), reference);
            assert_eq!(key.to_string(), shown);
        }
        assert_ne!(KeyRef::system("a"), KeyRef::user("alice", "a"));
        assert_eq!(
            KeyValuePair::user("bob", "n", "v").key_ref(),
            KeyRef::user("bob", "n")
        );
    }

    #[test]
    fn names_and_users_are_checked() {
        for (key, ok) in [
            (KeyRef::system("nginx.threshold"), true),
            (KeyRef::system("pack:a/b-c_d"), true),
            (KeyRef::system(""), false),
            (KeyRef::system("has space"), false),
            (KeyRef::system(&"x".repeat(256)), false),
            (KeyRef::user("alice", "k"), true),
            (KeyRef::user("a:b", "k"), false),
            (KeyRef::user("", "k"), false),
            (KeyRef::user("tab\there", "k"), false),
        ] {
            assert_eq!(key.validate().is_ok(), ok, "{key:?}");
        }
        assert_eq!(
            validate_key_name("a b").unwrap_err().to_string(),
            "key name \"a b\" must be 1-255 letters, digits or _ - . : /"
        );
    }

    #[test]
    fn ttl_sets_the_expiry_and_expired_keys_are_seen_as_such() {
        let now: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let mut kv = KeyValuePair::system("k", "v");
        assert!(!kv.is_expired(now));
        kv.expire_after(now, 60).unwrap();
        assert_eq!(
            kv.expire_timestamp.unwrap().to_string(),
            "2025-01-01T00:01:00Z"
        );
        for (at, expired) in [
            ("2025-01-01T00:00:59Z", false),
            ("2025-01-01T00:01:00Z", true),
            ("2025-01-02T00:00:00Z", true),
        ] {
            assert_eq!(kv.is_expired(at.parse().unwrap()), expired, "{at}");
        }
        for ttl in [0, -5, MAX_TTL as i64 + 1] {
            assert_eq!(kv.expire_after(now, ttl), Err(KeyError::InvalidTtl(ttl)));
        }
    }

    #[test]
    fn records_read_old_and_new_shapes() {
        let old: KeyValuePair =
            serde_json::from_str(r#"{"name":"a","value":"1","scope":"st2kv.system"}"#).unwrap();
        assert_eq!(old, KeyValuePair::system("a", "1"));
        let mut kv = KeyValuePair::user("alice", "t", "CIPHER");
        kv.secret = true;
        kv.encrypted = true;
        kv.expire_timestamp = Some("2025-01-01T00:00:00Z".parse().unwrap());
        let json = serde_json::to_value(&kv).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "t", "value": "CIPHER", "scope": "st2kv.user",
                "user": "alice", "secret": true, "encrypted": true,
                "expire_timestamp": "2025-01-01T00:00:00Z"})
        );
        assert_eq!(serde_json::from_value::<KeyValuePair>(json).unwrap(), kv);
    }
}
