//! `squall-core`: Squall's model, shared by every other crate.
//!
//! Pure data and rules — no network, no database, no async; the only I/O is reading pack files
//! in [`pack::PackSet::load`] and the config file in [`config::Config::load`].
//!
//! - [`reference::Ref`]: `<pack>.<name>` names.
//! - [`pack::PackSet`]: packs loaded from a directory, with every problem as a
//!   [`pack::PackError`] naming file and field.
//! - [`pack_config::PackConfig`]: a pack's `config.schema.yaml` and `configs/<pack>.yaml`,
//!   validated, with secrets known for masking and templates rendered on use.
//! - [`action::Action`]: validated action metadata; [`param::Parameters`]: its parameter schema
//!   (validation, defaults, CLI casting, secret masking).
//! - [`limits::Limits`]: fuel, timeout, memory and output bounds, resolved from defaults,
//!   action overrides and operator ceilings.
//! - [`capability`]: outbound-HTTP patterns and the request ∩ grant policy; [`command`]: the
//!   command patterns operators grant and how a command line is split.
//! - [`config::Config`]: the operator's `squall.toml`.
//! - [`execution::Execution`]: the execution record and its status lifecycle.
//! - [`units`]: durations (`"30s"`) and sizes (`"64MiB"`) as operators write them.
//! - [`trigger`]: trigger types (StackStorm's built-ins and packs' own) and trigger instances.
//! - [`workflow`]: Orquesta workflows — spec, expressions (Jinja and YAQL), inspection, and the
//!   conductor state machine; [`chain`]: StackStorm's ActionChains, conducted the same way;
//!   [`inquiry`]: `core.ask` questions and their responses.
//! - [`runner_type::RunnerType`]: the runner types with StackStorm's runner parameters;
//!   [`local_runner`]: the local runners' arguments, results and statuses, as StackStorm's.
//! - [`policy::Policy`]: concurrency and retry policies attached to actions.
//! - [`rule::Rule`]: rules, with [`criteria`] (StackStorm's operators) and [`template`]s (Jinja
//!   with StackStorm's filters); [`enforcement::RuleEnforcement`]: what a match launched.

pub mod action;
pub mod apikey;
pub mod capability;
pub mod chain;
pub mod command;
pub mod config;
pub mod criteria;
pub mod datastore;
pub mod enforcement;
pub mod execution;
mod id;
pub mod inquiry;
pub mod json;
pub mod limits;
pub mod local_runner;
pub mod pack;
pub mod pack_config;
pub mod pack_files;
pub mod param;
pub mod policy;
pub mod python;
pub mod reference;
pub mod rule;
pub mod runner_type;
pub mod schedule;
pub mod sensor;
pub mod template;
pub mod trigger;
pub mod units;
pub mod workflow;

pub use action::{Action, RunnerType};
pub use config::Config;
pub use execution::{Execution, ExecutionId, ExecutionStatus};
pub use limits::Limits;
pub use pack::{PackError, PackSet};
pub use reference::Ref;
pub use rule::Rule;
pub use trigger::{TriggerInstance, TriggerInstanceId, TriggerType};
