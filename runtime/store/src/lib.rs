//! `squall-store`: where Squall keeps what it must not lose.
//!
//! One trait per aggregate — [`ExecutionStore`], [`WorkflowStore`], [`TriggerInstanceStore`],
//! [`EnforcementStore`], [`KeyValueStore`], [`ApiKeyStore`], [`RuleStateStore`] — plus
//! [`BatchStore`] for writes that must land together ([`Batch`]); [`Store`] is all of them, so
//! services run on the embedded store or, later, a distributed one. [`RedbStore`] implements
//! them over one redb file in the data directory (`<data-dir>/squall.redb`).
//!
//! redb calls block, so [`RedbStore`] keeps them off the async runtime: writes go to one writer
//! thread that commits them in batches (group commit: every write waiting when a commit starts
//! shares it, and each caller is answered only after its commit is durable), reads run on
//! tokio's blocking pool. Several processes may open the same file at once (redb's
//! multi-writer mode), so a CLI can read what a server wrote.

mod batch;
mod error;
mod process;
mod redb_store;
mod traits;

pub use batch::Batch;
pub use error::StoreError;
pub use redb_store::{DEFAULT_CACHE_SIZE, FILE_NAME, RedbStore};
pub use traits::{
    ApiKeyStore, BatchStore, EnforcementFilter, EnforcementStore, ExecutionFilter, ExecutionStore,
    KeyValueStore, Liveness, RuleStateStore, Store, TriggerInstanceFilter, TriggerInstanceStore,
    WorkflowStore,
};
