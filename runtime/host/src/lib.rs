//! `squall-host`: the WebAssembly host that runs action components safely.
//!
//! - [`Host`]: one wasmtime engine (component model, fuel, epoch interruption, pooling
//!   allocator), a linker with WASI 0.2, `wasi:http/outgoing-handler` and the `squall:plugin`
//!   imports, and a cache of precompiled components keyed by content hash and engine
//!   compatibility ([`Host::prepare`] → [`PreparedComponent`]).
//! - [`Host::run`]: one execution in a fresh store and instance under [`squall_core::Limits`]
//!   (fuel, wall-clock timeout, linear memory, output size) with only the capabilities granted:
//!   no filesystem, no environment, no sockets; outbound HTTP through the pack's
//!   [`squall_core::capability::HttpPolicy`]. It returns a [`RunOutcome`], never an error: a
//!   trap is an outcome (`timeout` or `failed`) whose message names the limit and its value.
//!
//! Facts this follows are in `shared/WASM-NOTES.md` (wasmtime 48).

mod bindings;
mod cache;
mod capture;
mod engine;
mod outbound;
mod run;
mod state;

pub use engine::{EPOCH_TICK, Host, HostConfig, HostError, LoadError, PreparedComponent};
pub use run::{RunContext, RunOutcome, RunRequest};
