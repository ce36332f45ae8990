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
//! - [`Host::call_sensor`]: one `on-poll` or `on-webhook` call of a sensor component
//!   ([`Host::prepare_sensor`]) under the same limits, with the `datastore` and `emit`
//!   interfaces buffered: a [`SensorOutcome`] carries the call's trigger instances and key
//!   writes only when it succeeded, for the caller to commit together.
//!
//! - [`process`]: the `process` capability's host side: a granted command run with a cleared
//!   environment, in its own process group, under `setrlimit` bounds, killed whole at its
//!   deadline or on cancel, with a ledger that outlives a crash.
//! - [`ssh`]: the `ssh` capability's host side: one command on a remote host over SSH, host
//!   keys checked against a known-hosts file, through a bastion when given, bounded and timed.
//!
//! Facts this follows are in `shared/WASM-NOTES.md` (wasmtime 48).

mod bindings;
mod cache;
mod capture;
mod engine;
mod outbound;
pub mod process;
mod reserved;
mod run;
mod sensor;
pub mod ssh;
mod state;

pub use engine::{
    EPOCH_TICK, Host, HostConfig, HostError, LoadError, PreparedComponent, PreparedSensor,
};
pub use run::{
    GateError, KeyGate, MailGate, MailMessage, ReadOnlyDir, RunContext, RunOutcome, RunRequest,
    TriggerGate,
};
pub use sensor::{
    KeyWrite, MAX_KEY_WRITES, MAX_VALUE_BYTES, SensorBackend, SensorEntry, SensorOutcome,
    SensorRequest, WebhookCall,
};
