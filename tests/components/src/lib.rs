//! Paths of the test components, built from source by this crate's build script.
//!
//! - [`TEST_HOSTILE`]: `tests/components/hostile`, a component that misbehaves on request
//!   (`{"mode": "loop" | "memory" | "recurse" | ...}`; see its source for the list).

include!(concat!(env!("OUT_DIR"), "/paths.rs"));
