//! Per-execution resource limits: fuel, wall-clock timeout, linear memory, output size.
//!
//! An execution's limits are resolved in three steps: the operator's defaults
//! (`[limits.default]` in `squall.toml`, else [`Limits::DEFAULT`]), then the action YAML's
//! `limits:` block ([`LimitOverrides`]), each value finally capped at the operator's ceiling
//! (`[limits.max]`, else [`Limits::CEILING`]). The resolved values are recorded with the
//! execution.

use crate::units;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Resource limits for one execution. Serialized with units in the field docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Fuel units: wasmtime charges about one unit per WebAssembly instruction, and a core of
    /// this machine burns roughly 10^10 units per second in a tight loop. Running out ends the
    /// execution with status `timeout`. Default 100,000,000,000 (about ten seconds of pure
    /// compute); a trivial Rust action uses ~5,000, a JavaScript engine ~1,000,000 to start.
    pub fuel: u64,
    /// Wall-clock timeout, in seconds in records (`"60s"` or `60` in config). Default 60 s, as
    /// StackStorm's http runner. Exceeding it ends the execution with status `timeout`.
    #[serde(with = "units::duration")]
    pub timeout: Duration,
    /// Linear memory, in bytes (`"64MiB"` in config), summed over the component's memories.
    /// Default 64 MiB. Growing past it ends the execution with status `failed`.
    #[serde(with = "units::size")]
    pub memory: u64,
    /// Output bound, in bytes: the largest result accepted (a larger one fails the execution)
    /// and how much of stdout, stderr and log text each is kept (the rest is counted and
    /// dropped). Default 1 MiB.
    #[serde(with = "units::size")]
    pub max_output: u64,
}

impl Limits {
    /// Built-in defaults, used when neither the operator nor the action says otherwise.
    pub const DEFAULT: Limits = Limits {
        fuel: 100_000_000_000,
        timeout: Duration::from_secs(60),
        memory: 64 * 1024 * 1024,
        max_output: 1024 * 1024,
    };

    /// Built-in ceilings, used when the operator sets none: 10^13 fuel, 10 minutes, 1 GiB of
    /// memory, 16 MiB of output.
    pub const CEILING: Limits = Limits {
        fuel: 10_000_000_000_000,
        timeout: Duration::from_secs(600),
        memory: 1024 * 1024 * 1024,
        max_output: 16 * 1024 * 1024,
    };

    /// Resolves `defaults`, then `overrides`, each capped at `ceiling`.
    ///
    /// Returns the limits and the names of the fields that the ceiling lowered (so the caller
    /// can say so once, at pack load).
    pub fn resolve(
        defaults: &Limits,
        overrides: &LimitOverrides,
        ceiling: &Limits,
    ) -> (Limits, Vec<&'static str>) {
        let mut capped = Vec::new();
        let mut pick = |name: &'static str, default: u64, over: Option<u64>, max: u64| {
            let want = over.unwrap_or(default);
            if want > max {
                capped.push(name);
                max
            } else {
                want
            }
        };
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let limits = Limits {
            fuel: pick("fuel", defaults.fuel, overrides.fuel, ceiling.fuel),
            timeout: Duration::from_millis(pick(
                "timeout",
                millis(defaults.timeout),
                overrides.timeout.map(millis),
                millis(ceiling.timeout),
            )),
            memory: pick("memory", defaults.memory, overrides.memory, ceiling.memory),
            max_output: pick(
                "max_output",
                defaults.max_output,
                overrides.max_output,
                ceiling.max_output,
            ),
        };
        (limits, capped)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The `limits:` block of an action's metadata YAML (a Squall extension of StackStorm's
/// format); every field is optional and has the unit of the same field in [`Limits`].
///
/// ```yaml
/// limits:
///   timeout: 30s
///   memory: 32MiB
///   fuel: 50000000
///   max_output: 256KiB
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Fuel units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock timeout (seconds or `"30s"`).
    #[serde(
        default,
        with = "units::option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Linear memory (bytes or `"32MiB"`).
    #[serde(
        default,
        with = "units::option_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<u64>,
    /// Output bound (bytes or `"256KiB"`).
    #[serde(
        default,
        with = "units::option_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_output: Option<u64>,
}

/// The operator's `[limits]` table in `squall.toml`: defaults and ceilings. Each sub-table
/// may set any subset of the fields; the rest keep the built-in values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawLimitPolicy")]
pub struct LimitPolicy {
    /// What an action gets when its YAML does not say (`[limits.default]`).
    pub default: Limits,
    /// What no action can exceed (`[limits.max]`).
    pub max: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimitPolicy {
    #[serde(default)]
    default: LimitOverrides,
    #[serde(default)]
    max: LimitOverrides,
}

impl From<RawLimitPolicy> for LimitPolicy {
    fn from(raw: RawLimitPolicy) -> Self {
        LimitPolicy {
            default: raw.default.apply_to(Limits::DEFAULT),
            max: raw.max.apply_to(Limits::CEILING),
        }
    }
}

impl LimitOverrides {
    /// `base` with every field this block sets replaced (no capping).
    pub fn apply_to(&self, base: Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            timeout: self.timeout.unwrap_or(base.timeout),
            memory: self.memory.unwrap_or(base.memory),
            max_output: self.max_output.unwrap_or(base.max_output),
        }
    }
}

impl Default for LimitPolicy {
    fn default() -> Self {
        LimitPolicy {
            default: Limits::DEFAULT,
            max: Limits::CEILING,
        }
    }
}

impl LimitPolicy {
    /// [`Limits::resolve`] with this policy's defaults and ceiling.
    pub fn resolve(&self, overrides: &LimitOverrides) -> (Limits, Vec<&'static str>) {
        Limits::resolve(&self.default, overrides, &self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_defaults() {
        let over = LimitOverrides {
            timeout: Some(Duration::from_secs(5)),
            memory: Some(1 << 20),
            ..Default::default()
        };
        let (l, capped) = LimitPolicy::default().resolve(&over);
        assert_eq!(l.timeout, Duration::from_secs(5));
        assert_eq!(l.memory, 1 << 20);
        assert_eq!(l.fuel, Limits::DEFAULT.fuel);
        assert!(capped.is_empty());
    }

    #[test]
    fn ceiling_caps_each_field_and_says_which() {
        let over = LimitOverrides {
            fuel: Some(u64::MAX),
            timeout: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        let (l, capped) = LimitPolicy::default().resolve(&over);
        assert_eq!(l.fuel, Limits::CEILING.fuel);
        assert_eq!(l.timeout, Limits::CEILING.timeout);
        assert_eq!(capped, vec!["fuel", "timeout"]);
    }

    #[test]
    fn ceiling_also_caps_operator_defaults() {
        let policy = LimitPolicy {
            default: Limits {
                memory: 2 << 30,
                ..Limits::DEFAULT
            },
            max: Limits::CEILING,
        };
        let (l, capped) = policy.resolve(&LimitOverrides::default());
        assert_eq!(l.memory, Limits::CEILING.memory);
        assert_eq!(capped, vec!["memory"]);
    }

    #[test]
    fn yaml_block_accepts_units() {
        let over: LimitOverrides =
            serde_saphyr::from_str("timeout: 30s\nmemory: 32MiB\nmax_output: 1024\n").unwrap();
        assert_eq!(over.timeout, Some(Duration::from_secs(30)));
        assert_eq!(over.memory, Some(32 << 20));
        assert_eq!(over.max_output, Some(1024));
        let err = serde_saphyr::from_str::<LimitOverrides>("memroy: 1\n").unwrap_err();
        assert!(err.to_string().contains("memroy"), "{err}");
    }
}
