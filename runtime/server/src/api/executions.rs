//! `/api/v1/executions`.

use super::error::{json, parse};
use super::{ApiError, ApiState, Page, listed};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use squall_core::{Execution, ExecutionId, ExecutionStatus, Ref};
use squall_store::ExecutionFilter;

/// Filters of `GET /api/v1/executions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExecutionQuery {
    /// Only this action's executions (a ref).
    pub action: Option<String>,
    /// Only executions in this status.
    pub status: Option<String>,
    /// Only the task executions of this workflow execution.
    pub parent: Option<String>,
}

/// `POST /api/v1/executions` body, as StackStorm's live action create object.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionRequest {
    /// Action ref, e.g. `core.echo`.
    pub action: String,
    /// Parameters (validated against the action's schema; defaults filled in).
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// Who asks (StackStorm's `user`); default `squall`.
    #[serde(default)]
    pub user: Option<String>,
}

fn shown(e: &Execution) -> Value {
    serde_json::to_value(e.masked()).expect("records serialize")
}

/// Lists executions, newest first.
#[utoipa::path(get, path = "/api/v1/executions", tag = "executions", params(ExecutionQuery, Page),
    responses((status = 200, description = "Executions, newest first, secrets masked; total in X-Total-Count", body = Vec<Value>),
              (status = 400, body = super::Fault)))]
pub async fn list_executions(
    State(state): State<ApiState>,
    Query(q): Query<ExecutionQuery>,
    Query(page): Query<Page>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let filter = ExecutionFilter {
        action: q.action.as_deref().map(parse::<Ref>).transpose()?,
        parent: q.parent.as_deref().map(parse::<ExecutionId>).transpose()?,
        status: q
            .status
            .as_deref()
            .map(parse::<ExecutionStatus>)
            .transpose()?,
        offset: page.offset(),
        limit: page.limit(),
    };
    let store = state.services.store();
    let items = store.list(&filter).await?.iter().map(shown).collect();
    let total = store.count(&filter).await?;
    Ok(listed(items, total))
}

/// Requests an execution; it runs in the background. Poll `GET /api/v1/executions/{id}` or
/// follow the stream for its result.
#[utoipa::path(post, path = "/api/v1/executions", tag = "executions", request_body = ExecutionRequest,
    responses((status = 201, description = "Recorded as requested (durable)", body = Value),
              (status = 400, description = "Bad JSON, parameters or disabled action", body = super::Fault),
              (status = 404, description = "Unknown action", body = super::Fault),
              (status = 413, body = super::Fault),
              (status = 429, description = "Backlog full ([server] max_backlog); see Retry-After", body = super::Fault)))]
pub async fn create_execution(
    State(state): State<ApiState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let req: ExecutionRequest = state.read(raw)?;
    state.services.admit()?;
    let reference: Ref = parse(&req.action)?;
    let user = req.user.unwrap_or_else(|| crate::SYSTEM_USER.to_string());
    let e = state
        .services
        .request(&reference, &req.parameters, &user)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(shown(&e))))
}

/// One execution.
#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id: ExecutionId = parse(&id)?;
    let e = state
        .services
        .store()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("execution {id} not found")))?;
    Ok(axum::Json(shown(&e)))
}

/// Cancels an execution (StackStorm's `DELETE`): a queued one never runs, a running one is
/// stopped.
#[utoipa::path(delete, path = "/api/v1/executions/{id}", tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses((status = 200, description = "The execution, canceled", body = Value),
              (status = 404, body = super::Fault),
              (status = 409, description = "Already completed", body = super::Fault)))]
pub async fn cancel_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id: ExecutionId = parse(&id)?;
    let e = state.services.cancel(id).await?;
    Ok(axum::Json(shown(&e)))
}

/// `PUT /api/v1/executions/{id}` body: StackStorm's way to pause and resume a workflow.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ExecutionUpdate {
    /// `pausing` (pause), `resuming` (resume) or `canceling` (cancel).
    pub status: String,
}

/// Pauses, resumes or cancels an execution (workflows; cancel works for any).
#[utoipa::path(put, path = "/api/v1/executions/{id}", tag = "executions",
    params(("id" = String, Path, description = "Execution id")), request_body = ExecutionUpdate,
    responses((status = 200, description = "The execution after the request", body = Value),
              (status = 400, description = "Bad status, or not a workflow", body = super::Fault),
              (status = 404, body = super::Fault),
              (status = 409, description = "Not possible in its current status", body = super::Fault)))]
pub async fn update_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let id: ExecutionId = parse(&id)?;
    let req: ExecutionUpdate = state.read(raw)?;
    let w = state.services.workflows();
    let e = match req.status.as_str() {
        "pausing" | "paused" => w.pause(id).await?,
        "resuming" | "running" => w.resume(id).await?,
        "canceling" | "canceled" => state.services.cancel(id).await?,
        other => {
            return Err(ApiError::BadRequest(format!(
                "status {other:?} cannot be requested; use \"pausing\", \"resuming\" or \"canceling\""
            )));
        }
    };
    Ok(axum::Json(shown(&e)))
}

/// `POST /api/v1/executions/{id}/re_run` body, as StackStorm's.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReRun {
    /// Workflow tasks to run again (a workflow's failed tasks when empty); the tasks that
    /// completed keep their results.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Parameters overriding the original ones (not for a workflow re-run from tasks).
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// Who asks; default `squall`.
    #[serde(default)]
    pub user: Option<String>,
}

/// Runs an execution again, as `st2 execution re-run`: a workflow from named tasks (or from its
/// failed tasks when none are named and no parameters are given), keeping the results of the
/// tasks that completed; anything else — or a workflow given new parameters — as a new
/// execution with the same parameters, overridden by those given.
#[utoipa::path(post, path = "/api/v1/executions/{id}/re_run", tag = "executions",
    params(("id" = String, Path, description = "Execution id")), request_body = ReRun,
    responses((status = 201, description = "The new execution", body = Value),
              (status = 400, body = super::Fault), (status = 404, body = super::Fault),
              (status = 409, description = "The workflow is still running", body = super::Fault)))]
pub async fn rerun_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let id: ExecutionId = parse(&id)?;
    let bytes = state.body(raw)?;
    state.services.admit()?;
    let req: ReRun = if bytes.is_empty() {
        ReRun::default()
    } else {
        json(&bytes)?
    };
    let user = req.user.unwrap_or_else(|| crate::SYSTEM_USER.to_string());
    let old = state
        .services
        .store()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("execution {id} not found")))?;
    let workflow = old.action.runner_type == squall_core::RunnerType::Orquesta;
    if !req.tasks.is_empty() && !workflow {
        return Err(ApiError::BadRequest(format!(
            "execution {id} is not a workflow execution; tasks apply only to workflows"
        )));
    }
    if !req.tasks.is_empty() && !req.parameters.is_empty() {
        return Err(ApiError::BadRequest(
            "a workflow re-run from tasks keeps its parameters; give new parameters without \
             tasks to run the whole workflow again"
                .into(),
        ));
    }
    let e = if workflow && req.parameters.is_empty() {
        state
            .services
            .workflows()
            .rerun(id, &req.tasks, &user)
            .await?
    } else {
        let mut params = old.parameters.clone();
        params.extend(req.parameters);
        state
            .services
            .request(&old.action.reference, &params, &user)
            .await?
    };
    Ok((StatusCode::CREATED, axum::Json(shown(&e))))
}
