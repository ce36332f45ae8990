//! `squall-server`: Squall's services, wired over the store and host traits.
//!
//! - [`Registry`]: the loaded packs, the operator's config and the host; resolves an action's
//!   limits and capabilities and prepares its component once.
//! - [`Runner`]: turns a request into a durable execution record and runs it
//!   (`requested → scheduled → running → succeeded | failed | timeout`), writing each step to
//!   the [`squall_store::ExecutionStore`] before going on.

mod registry;
mod runner;

pub use registry::{Registry, ResolvedAction};
pub use runner::{RequestError, Runner};
