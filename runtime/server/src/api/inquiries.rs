//! `/api/v1/inquiries`: executions of `inquirer` actions (`core.ask`) waiting for a response,
//! as StackStorm's inquiries API.

use super::error::parse;
use super::{ApiError, ApiState, Page, listed};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use squall_core::inquiry::Inquiry;
use squall_core::{Execution, ExecutionId, ExecutionStatus, RunnerType};
use squall_store::ExecutionFilter;

/// StackStorm's inquiry object: `{id, route, ttl, users, roles, schema}` plus Squall's
/// `status`, `parent` (the workflow execution) and `expires_at`.
fn inquiry_json(e: &Execution) -> Value {
    let q = Inquiry::of(e);
    let mut v = q.to_json();
    v["status"] = json!(e.status);
    v["parent"] = json!(e.parent.map(|p| p.to_string()));
    v["start_timestamp"] = json!(e.start_timestamp.to_string());
    v["expires_at"] = json!(q.expires_at(e.start_timestamp).to_string());
    if e.status.is_completed() {
        v["response"] = e.result.get("response").cloned().unwrap_or(Value::Null);
    }
    v
}

async fn find(state: &ApiState, id: &str) -> Result<Execution, ApiError> {
    let id: ExecutionId = parse(id)?;
    state
        .services
        .store()
        .get(id)
        .await?
        .filter(|e| e.action.runner_type == RunnerType::Inquirer)
        .ok_or_else(|| ApiError::NotFound(format!("inquiry {id} not found")))
}

/// Lists pending inquiries, newest first.
#[utoipa::path(get, path = "/api/v1/inquiries", tag = "inquiries", params(Page),
    responses((status = 200, description = "Pending inquiries; total in X-Total-Count", body = Vec<Value>)))]
pub async fn list_inquiries(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let filter = ExecutionFilter {
        status: Some(ExecutionStatus::Pending),
        limit: usize::MAX,
        ..Default::default()
    };
    let pending: Vec<Execution> = state
        .services
        .store()
        .list(&filter)
        .await?
        .into_iter()
        .filter(|e| e.action.runner_type == RunnerType::Inquirer)
        .collect();
    let total = pending.len() as u64;
    let items = pending
        .iter()
        .skip(page.offset())
        .take(page.limit())
        .map(inquiry_json)
        .collect();
    Ok(listed(items, total))
}

/// One inquiry (pending or not).
#[utoipa::path(get, path = "/api/v1/inquiries/{id}", tag = "inquiries",
    params(("id" = String, Path, description = "Inquiry (execution) id")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_inquiry(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(inquiry_json(&find(&state, &id).await?)))
}

/// `PUT /api/v1/inquiries/{id}` body, as StackStorm's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InquiryResponse {
    /// The inquiry id (optional; the path decides).
    #[serde(default)]
    pub id: Option<String>,
    /// The answer; must match the inquiry's schema.
    pub response: Value,
}

/// Answers an inquiry: validated against its schema; the waiting workflow goes on.
#[utoipa::path(put, path = "/api/v1/inquiries/{id}", tag = "inquiries",
    params(("id" = String, Path, description = "Inquiry (execution) id")), request_body = InquiryResponse,
    responses((status = 200, description = "`{id, response}`", body = Value),
              (status = 400, description = "The response does not match the schema", body = super::Fault),
              (status = 404, body = super::Fault),
              (status = 409, description = "Already answered, timed out or canceled", body = super::Fault)))]
pub async fn respond(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let req: InquiryResponse = state.read(raw)?;
    let e = find(&state, &id).await?;
    if let Some(given) = req.id.as_deref().filter(|g| *g != e.id.to_string()) {
        return Err(ApiError::BadRequest(format!(
            "the body's id {given:?} is not the inquiry in the path ({})",
            e.id
        )));
    }
    let done = state.services.respond(e.id, req.response).await?;
    Ok(axum::Json(json!({
        "id": done.id.to_string(),
        "response": done.result.get("response").cloned().unwrap_or(Value::Null),
    })))
}
