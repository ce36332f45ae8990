//! `squall-store`: where Squall keeps what it must not lose.
//!
//! Each aggregate has a trait, so the same services run on the embedded store or, later, on a
//! distributed one. Today: [`ExecutionStore`] (execution records), implemented by
//! [`RedbStore`] — one redb file in the data directory (`<data-dir>/squall.redb`).
//!
//! redb calls block, so [`RedbStore`] keeps them off the async runtime: writes go to one writer
//! thread that commits them in batches (group commit: every write waiting when a commit starts
//! shares it, and each caller is answered only after its batch is durable), reads run on
//! tokio's blocking pool. Several processes may open the same file at once (redb's
//! multi-writer mode), so a CLI can read what a server wrote.

mod error;
mod execution;
mod redb_store;

pub use error::StoreError;
pub use execution::{ExecutionFilter, ExecutionStore};
pub use redb_store::RedbStore;
