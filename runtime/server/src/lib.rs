//! `squall-server`: Squall's services, wired over the store and host traits.
//!
//! - [`Registry`]: loaded packs, operator config, host; an action's limits and capabilities,
//!   the rules listening to a trigger, rule enable state.
//! - [`Runner`]: request → durable execution record → run in the host → durable result; the
//!   command runners (`local-shell-cmd`, `local-shell-script`, `remote-shell-cmd`,
//!   `remote-shell-script` over SSH) under the pack's grants.
//! - [`Scheduler`]: runs `requested` executions on a bounded pool; cancel.
//! - [`Engine`]: matches trigger instances against rules and records enforcements and the
//!   executions they request, atomically.
//! - [`Workflows`]: the `orquesta` runner, conducting workflow executions durably; inquiries
//!   (`core.ask`) wait in `pending` for [`Services::respond`].
//! - `policies`: action concurrency and retry policies, applied by the scheduler and runner.
//! - [`Datastore`]: the key-value store (`st2kv.system`, `st2kv.user`), TTLs, secrets
//!   encrypted at rest, `core.st2.key_value_pair.*` triggers.
//! - [`Sensors`]: the sensor container: polls sensor components, routes webhooks to them,
//!   commits their trigger instances with their datastore state, backs off failing ones.
//! - [`Services`]: all of the above plus timers and crash recovery; [`Bus`] carries every
//!   change to the event stream.

mod announcement;
pub mod api;
mod backlog;
mod bus;
mod commands;
mod datastore;
mod engine;
mod http_runner;
mod injected;
mod mail;
mod policies;
mod python_keys;
mod registry;
mod remote;
mod runner;
mod scheduler;
mod sensors;
mod services;
mod timers;
mod workflows;

pub use bus::{Bus, Event};
pub use datastore::{Datastore, DatastoreError, KeyFilter, SetKey};
pub use engine::{Engine, SYSTEM_USER, action_trigger_payload};
pub use registry::{
    ComponentKind, ComponentState, Content, Loader, Registered, Registry, ReloadError,
    ResolvedAction,
};
pub use runner::{CANCELED_MESSAGE, RequestError, Runner};
pub use scheduler::{CancelError, Scheduler};
pub use sensors::{
    MAX_BACKOFF, SENSOR_SLOTS, SensorState, SensorStatus, SensorView, SensorWebhookError, Sensors,
    backoff,
};
pub use services::{DispatchError, Mode, Overloaded, RespondError, Services};
pub use workflows::{ControlError, Workflows};
