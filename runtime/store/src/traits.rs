//! The storage traits, one per aggregate, plus [`BatchStore`] for writes that must land
//! together. [`Store`] is all of them.

use crate::{Batch, StoreError};
use async_trait::async_trait;
use squall_core::apikey::ApiKey;
use squall_core::chain::ChainState;
use squall_core::datastore::{KeyRef, KeyScope, KeyValuePair};
use squall_core::enforcement::RuleEnforcement;
use squall_core::trigger::TriggerInstanceStatus;
use squall_core::workflow::WorkflowState;
use squall_core::{
    Execution, ExecutionId, ExecutionStatus, Ref, TriggerInstance, TriggerInstanceId,
};

/// Which executions to list: newest first, optionally only one action's, one status's and/or
/// one workflow's task executions, skipping `offset` and returning at most `limit`
/// (StackStorm's `limit`/`offset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionFilter {
    /// Only this action's executions.
    pub action: Option<Ref>,
    /// Only the task executions of this workflow execution (StackStorm's `parent`).
    pub parent: Option<ExecutionId>,
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
            parent: None,
            status: None,
            offset: 0,
            limit: 50,
        }
    }
}

/// Durable execution records. Writes return once durable.
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

    /// How many records match `filter` (ignoring its offset and limit).
    ///
    /// # Errors
    /// Transaction errors.
    async fn count(&self, filter: &ExecutionFilter) -> Result<u64, StoreError>;
}

/// Conductor states of workflow executions (written through [`Batch`], together with the
/// executions they request).
#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// The state of the workflow execution `id`.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn workflow(&self, id: ExecutionId) -> Result<Option<WorkflowState>, StoreError>;

    /// The state of the ActionChain execution `id` (kept where a workflow's is, written with
    /// [`crate::Batch::put_workflow_json`]).
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn chain(&self, id: ExecutionId) -> Result<Option<ChainState>, StoreError>;
}

/// Which trigger instances to list: newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerInstanceFilter {
    /// Only this trigger type's instances.
    pub trigger: Option<Ref>,
    /// Only instances in this status.
    pub status: Option<TriggerInstanceStatus>,
    /// How many to skip.
    pub offset: usize,
    /// How many at most (default 50).
    pub limit: usize,
}

impl Default for TriggerInstanceFilter {
    fn default() -> Self {
        TriggerInstanceFilter {
            trigger: None,
            status: None,
            offset: 0,
            limit: 50,
        }
    }
}

/// Durable trigger instances (written through [`Batch`]).
#[async_trait]
pub trait TriggerInstanceStore: Send + Sync {
    /// One instance by id.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn trigger_instance(
        &self,
        id: TriggerInstanceId,
    ) -> Result<Option<TriggerInstance>, StoreError>;

    /// Instances matching `filter`, newest first.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn trigger_instances(
        &self,
        filter: &TriggerInstanceFilter,
    ) -> Result<Vec<TriggerInstance>, StoreError>;

    /// How many instances match `filter` (ignoring offset and limit).
    ///
    /// # Errors
    /// Transaction errors.
    async fn count_trigger_instances(
        &self,
        filter: &TriggerInstanceFilter,
    ) -> Result<u64, StoreError>;
}

/// Which rule enforcements to list: newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforcementFilter {
    /// Only this rule's.
    pub rule: Option<Ref>,
    /// Only those for this trigger instance.
    pub trigger_instance: Option<TriggerInstanceId>,
    /// Only those that requested this execution.
    pub execution: Option<ExecutionId>,
    /// How many to skip.
    pub offset: usize,
    /// How many at most (default 50).
    pub limit: usize,
}

impl Default for EnforcementFilter {
    fn default() -> Self {
        EnforcementFilter {
            rule: None,
            trigger_instance: None,
            execution: None,
            offset: 0,
            limit: 50,
        }
    }
}

/// Durable rule enforcements (written through [`Batch`]).
#[async_trait]
pub trait EnforcementStore: Send + Sync {
    /// Enforcements matching `filter`, newest first.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn enforcements(
        &self,
        filter: &EnforcementFilter,
    ) -> Result<Vec<RuleEnforcement>, StoreError>;

    /// How many match `filter` (ignoring offset and limit).
    ///
    /// # Errors
    /// Transaction errors.
    async fn count_enforcements(&self, filter: &EnforcementFilter) -> Result<u64, StoreError>;
}

/// The datastore (written through [`Batch`]). System and user keys are kept apart; reads never
/// return a key whose `expire_timestamp` has passed (sweeping them away is
/// [`Batch::delete_expired_keys`], when [`KeyValueStore::expired_keys`] finds some).
#[async_trait]
pub trait KeyValueStore: Send + Sync {
    /// One key, unless expired.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn key(&self, key: &KeyRef) -> Result<Option<KeyValuePair>, StoreError>;

    /// The unexpired keys of `scope` whose name starts with `prefix`, by name: of `user` only
    /// when given (in the system scope `user` is ignored), else of every user.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn keys(
        &self,
        scope: KeyScope,
        user: Option<&str>,
        prefix: &str,
    ) -> Result<Vec<KeyValuePair>, StoreError>;

    /// One key, unless expired, without going through the async runtime (for template lookups,
    /// which are synchronous). Blocks on a read transaction.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    fn key_blocking(&self, key: &KeyRef) -> Result<Option<KeyValuePair>, StoreError>;

    /// Keys whose `expire_timestamp` is at or before `now`, soonest first, at most `limit`
    /// (read from an expiry index, not a scan).
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn expired_keys(
        &self,
        now: jiff::Timestamp,
        limit: usize,
    ) -> Result<Vec<KeyValuePair>, StoreError>;
}

/// API keys (written through [`Batch`]).
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// The key whose SHA-256 hex digest is `hash`.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Every key, oldest first.
    ///
    /// # Errors
    /// Transaction errors; [`StoreError::Corrupt`].
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
}

/// Rule and sensor enable/disable overrides set through the API (written through [`Batch`]).
#[async_trait]
pub trait RuleStateStore: Send + Sync {
    /// Every rule whose enabled flag was set, with the flag.
    ///
    /// # Errors
    /// Transaction errors.
    async fn rule_overrides(&self) -> Result<Vec<(String, bool)>, StoreError>;

    /// Every sensor whose enabled flag was set, with the flag.
    ///
    /// # Errors
    /// Transaction errors.
    async fn sensor_overrides(&self) -> Result<Vec<(String, bool)>, StoreError>;
}

/// Which processes share the store and which are alive, so a starting server only takes over
/// work whose owner is gone.
pub trait Liveness: Send + Sync {
    /// This process's id in the store.
    fn process(&self) -> &str;

    /// Whether the process `id` is still running (this process is).
    fn is_alive(&self, id: &str) -> bool;
}

/// Atomic multi-record writes.
#[async_trait]
pub trait BatchStore: Send + Sync {
    /// Commits every write of `batch` in one durable transaction, or none of them.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] / [`StoreError::NotFound`] when a create or update is
    /// refused (then nothing of the batch is written); transaction errors.
    async fn commit(&self, batch: Batch) -> Result<(), StoreError>;
}

/// Everything Squall stores.
pub trait Store:
    ExecutionStore
    + WorkflowStore
    + TriggerInstanceStore
    + EnforcementStore
    + KeyValueStore
    + ApiKeyStore
    + RuleStateStore
    + BatchStore
    + Liveness
{
}

impl<T> Store for T where
    T: ExecutionStore
        + WorkflowStore
        + TriggerInstanceStore
        + EnforcementStore
        + KeyValueStore
        + ApiKeyStore
        + RuleStateStore
        + BatchStore
        + Liveness
{
}
