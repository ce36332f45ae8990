//! `/api/v1/runnertypes`: the runner types and their runner parameters, as StackStorm's
//! `RunnerTypeAPI` (`st2common/models/api/action.py`).

use super::{ApiError, Page, paged};
use axum::extract::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};
use squall_core::runner_type::{RunnerType, RunnerTypeSpec};

/// Filters of `GET /api/v1/runnertypes` (StackStorm's names).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunnerQuery {
    /// Only the runner type with this name.
    pub name: Option<String>,
}

/// A runner type as StackStorm's API object: `id` (the name: Squall's runner types are built
/// in), `uid` (`runner_type:<name>`), `name`, `description`, `enabled`, `runner_package`,
/// `runner_module`, `runner_parameters`, `output_key`, `output_schema`.
pub fn runner_type_json(r: &RunnerTypeSpec) -> Value {
    let mut v = json!({
        "id": r.name,
        "uid": format!("runner_type:{}", r.name),
        "name": r.name,
        "description": r.description,
        "enabled": r.enabled,
        "runner_package": r.runner_package,
        "runner_module": r.runner_module,
        "runner_parameters": r.runner_parameters,
        "output_schema": r.output_schema.clone().unwrap_or_else(|| json!({})),
    });
    if let Some(key) = &r.output_key {
        v["output_key"] = json!(key);
    }
    v
}

/// Lists the runner types.
#[utoipa::path(get, path = "/api/v1/runnertypes", tag = "runnertypes", params(RunnerQuery, Page),
    responses((status = 200, description = "Runner types; the total in X-Total-Count", body = Vec<Value>)))]
pub async fn list_runner_types(
    Query(q): Query<RunnerQuery>,
    Query(page): Query<Page>,
) -> impl axum::response::IntoResponse {
    let all: Vec<&RunnerTypeSpec> = RunnerType::specs()
        .iter()
        .filter(|r| q.name.as_deref().is_none_or(|n| n == r.name))
        .collect();
    paged(all, page, runner_type_json)
}

/// One runner type, by name.
#[utoipa::path(get, path = "/api/v1/runnertypes/{name}", tag = "runnertypes",
    params(("name" = String, Path, description = "Runner type name, e.g. local-shell-cmd")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_runner_type(Path(name): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    RunnerType::specs()
        .iter()
        .find(|r| r.name == name)
        .map(|r| axum::Json(runner_type_json(r)))
        .ok_or_else(|| ApiError::NotFound(format!("runner type {name:?} not found")))
}
