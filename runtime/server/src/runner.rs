//! The runner: request → durable record → run in the host → durable result.

use crate::Registry;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::execution::Usage;
use squall_core::param::ParamError;
use squall_core::{Execution, ExecutionStatus, Ref};
use squall_host::{RunContext, RunRequest};
use squall_store::{ExecutionStore, StoreError};
use std::sync::Arc;
use tracing::Instrument;

/// Why a request was refused before any execution was recorded (the API's 400/404, the CLI's
/// exit code 2) — or could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No loaded action has this ref.
    #[error("action {0} not found")]
    UnknownAction(Ref),
    /// The action's metadata says `enabled: false`.
    #[error("action {0} is disabled")]
    Disabled(Ref),
    /// The parameters do not fit the action's schema.
    #[error("{0}")]
    Parameters(#[from] ParamError),
    /// The record could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs actions and records them. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    registry: Arc<Registry>,
    store: Arc<dyn ExecutionStore>,
}

impl Runner {
    /// A runner over `registry` recording into `store`.
    pub fn new(registry: Arc<Registry>, store: Arc<dyn ExecutionStore>) -> Runner {
        Runner { registry, store }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ExecutionStore> {
        &self.store
    }

    /// Validates `given` against the action's parameters (filling defaults) and records a new
    /// execution in status `requested`. Returns once the record is durable.
    ///
    /// # Errors
    /// [`RequestError`]: unknown or disabled action, bad parameters (nothing is recorded), or
    /// a store failure.
    pub async fn request(
        &self,
        reference: &Ref,
        given: &Map<String, Value>,
        user: &str,
    ) -> Result<Execution, RequestError> {
        let action = self
            .registry
            .packs()
            .action(reference)
            .ok_or_else(|| RequestError::UnknownAction(reference.clone()))?;
        if !action.enabled {
            return Err(RequestError::Disabled(reference.clone()));
        }
        let parameters = action.parameters.resolve(given)?;
        let execution = Execution::new(action, parameters, user, Timestamp::now());
        self.store.create(&execution).await?;
        tracing::debug!(execution.id = %execution.id, action.ref = %reference, "execution requested");
        Ok(execution)
    }

    /// Runs a `requested` execution to completion: `scheduled` and `running` (with its limits)
    /// are recorded before the component starts, the result after it ends.
    ///
    /// # Errors
    /// Only store failures; every way the run itself can end is recorded in the execution.
    pub async fn execute(&self, mut execution: Execution) -> Result<Execution, StoreError> {
        let span = tracing::info_span!(
            "execution",
            execution.id = %execution.id,
            action.ref = %execution.action.reference,
        );
        async move {
            execution
                .transition(ExecutionStatus::Scheduled, Timestamp::now())
                .expect("a requested execution can be scheduled");
            let Some(resolved) = self.registry.resolve(&execution.action.reference) else {
                let message = format!("action {} is no longer loaded", execution.action.reference);
                return self.finish_failed(execution, message).await;
            };
            let registry = self.registry.clone();
            let action = resolved.action.clone();
            let prepared = tokio::task::spawn_blocking(move || registry.prepare(&action))
                .await
                .unwrap_or_else(|e| panic!("component preparation panicked: {e}"));
            let component = match prepared {
                Ok(c) => c,
                Err(e) => return self.finish_failed(execution, e.to_string()).await,
            };
            execution.limits = Some(resolved.limits);
            execution
                .transition(ExecutionStatus::Running, Timestamp::now())
                .expect("a scheduled execution can run");
            self.store.update(&execution).await?;

            let outcome = self
                .registry
                .host()
                .run(
                    &component,
                    RunRequest {
                        context: RunContext {
                            execution_id: execution.id.to_string(),
                            action_ref: execution.action.reference.to_string(),
                            pack: execution.action.pack.clone(),
                            user: execution.user().to_string(),
                        },
                        params: Value::Object(execution.parameters.clone()),
                        limits: resolved.limits,
                        http: resolved.http,
                    },
                )
                .await;
            tracing::info!(
                status = %outcome.status,
                wasm.fuel_used = outcome.fuel_consumed,
                ms = outcome.duration.as_secs_f64() * 1000.0,
                "execution finished"
            );
            execution.result = outcome.result;
            execution.output = outcome.output;
            execution.usage = Some(Usage {
                fuel_consumed: outcome.fuel_consumed,
                component_sha256: component.sha256().to_string(),
            });
            execution
                .transition(outcome.status, Timestamp::now())
                .expect("a running execution can complete");
            self.store.update(&execution).await?;
            Ok(execution)
        }
        .instrument(span)
        .await
    }

    /// [`Runner::request`] then [`Runner::execute`].
    ///
    /// # Errors
    /// As both.
    pub async fn run(
        &self,
        reference: &Ref,
        given: &Map<String, Value>,
        user: &str,
    ) -> Result<Execution, RequestError> {
        let execution = self.request(reference, given, user).await?;
        Ok(self.execute(execution).await?)
    }

    async fn finish_failed(
        &self,
        mut execution: Execution,
        message: String,
    ) -> Result<Execution, StoreError> {
        tracing::warn!(error = %message, "execution failed before running");
        execution.result = json!({ "error": message });
        execution
            .transition(ExecutionStatus::Failed, Timestamp::now())
            .expect("a scheduled execution can fail");
        self.store.update(&execution).await?;
        Ok(execution)
    }
}
