//! Paths of the test components, built from source by this crate's build script.
//!
//! - [`TEST_HOSTILE`]: `tests/components/hostile`, a component that misbehaves on request
//!   (`{"mode": "loop" | "memory" | "recurse" | ...}`; see its source for the list).
//! - [`TEST_SENSOR`]: `tests/components/sensor`, a sensor whose class name picks what its poll
//!   does (`Noop`, `Counter`, `Loop`, `Flood`, `Fail`, `Secret`; see its source).

include!(concat!(env!("OUT_DIR"), "/paths.rs"));
