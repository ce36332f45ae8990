//! The execution store trait.

use crate::StoreError;
use async_trait::async_trait;
use squall_core::{Execution, ExecutionId, ExecutionStatus, Ref};

/// Which executions to list: newest first, optionally only one action's and/or one status,
/// skipping `offset` and returning at most `limit` (StackStorm's `limit`/`offset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionFilter {
    /// Only this action's executions.
    pub action: Option<Ref>,
    /// Only executions in this status.
    pub status: Option<ExecutionStatus>,
    /// How many to skip (after filtering).
    pub offset: usize,
    /// How many to return at most. Default 50, as `st2 execution list`.
    pub limit: usize,
}

impl Default for ExecutionFilter {
    fn default() -> Self {
        ExecutionFilter {
            action: None,
            status: None,
            offset: 0,
            limit: 50,
        }
    }
}

/// Durable execution records.
///
/// Every method returns only once its effect is durable (writes) or reads a committed state.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Stores a new record.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if the id is taken; transaction errors.
    async fn create(&self, execution: &Execution) -> Result<(), StoreError>;

    /// Replaces a stored record (a status change, a result).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the id is not stored; transaction errors.
    async fn update(&self, execution: &Execution) -> Result<(), StoreError>;

    /// One record by id.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`] if the record does not decode.
    async fn get(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError>;

    /// Records matching `filter`, newest first.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`] if a record does not decode.
    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError>;
}
