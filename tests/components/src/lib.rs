//! Paths of the test components, built from source by this crate's build script.
//!
//! - [`TEST_HOSTILE`]: `tests/components/hostile`, a component that misbehaves on request
//!   (`{"mode": "loop" | "memory" | "recurse" | ...}`; see its source for the list).
//! - [`TEST_SENSOR`]: `tests/components/sensor`, a sensor whose class name picks what its poll
//!   does (`Noop`, `Counter`, `Loop`, `Flood`, `Fail`, `Secret`; see its source).
//! - [`CONFORMANCE_ACTION`], [`CONFORMANCE_SENSOR`]: `tests/components/conformance-*`, the
//!   conformance action and sensor written with the Rust SDK
//!   (`tests/fixtures/conformance/README.md`).

include!(concat!(env!("OUT_DIR"), "/paths.rs"));
