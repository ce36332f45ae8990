//! `/api/v1/triggertypes`, `/api/v1/triggerinstances`.

use super::error::parse;
use super::{ApiError, ApiState, Page, listed, paged};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;
use squall_core::trigger::TriggerInstanceStatus;
use squall_core::{Ref, TriggerInstanceId};
use squall_store::TriggerInstanceFilter;

/// Lists trigger types: StackStorm's built-ins, then packs'.
#[utoipa::path(get, path = "/api/v1/triggertypes", tag = "triggers", params(Page),
    responses((status = 200, description = "Trigger types; total in X-Total-Count", body = Vec<Value>)))]
pub async fn list_trigger_types(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
) -> impl axum::response::IntoResponse {
    let registry = state.services.registry();
    let packs = registry.packs();
    let all: Vec<_> = packs.trigger_types().collect();
    paged(all, page, |t| {
        serde_json::to_value(t).expect("trigger types serialize")
    })
}

/// One trigger type.
#[utoipa::path(get, path = "/api/v1/triggertypes/{reference}", tag = "triggers",
    params(("reference" = String, Path, description = "Trigger type ref, e.g. core.st2.webhook")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_trigger_type(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let r: Ref = parse(&reference)?;
    let t = state
        .services
        .registry()
        .trigger_type(&r)
        .ok_or_else(|| ApiError::NotFound(format!("trigger type {r} not found")))?;
    Ok(axum::Json(
        serde_json::to_value(t).expect("trigger types serialize"),
    ))
}

/// Filters of `GET /api/v1/triggerinstances`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TriggerInstanceQuery {
    /// Only this trigger type's instances (a ref).
    pub trigger: Option<String>,
    /// Only instances in this status (pending, processing, processed, processing_failed).
    pub status: Option<String>,
}

/// Lists trigger instances, newest first.
#[utoipa::path(get, path = "/api/v1/triggerinstances", tag = "triggers", params(TriggerInstanceQuery, Page),
    responses((status = 200, description = "Trigger instances, newest first; total in X-Total-Count", body = Vec<Value>),
              (status = 400, body = super::Fault)))]
pub async fn list_trigger_instances(
    State(state): State<ApiState>,
    Query(q): Query<TriggerInstanceQuery>,
    Query(page): Query<Page>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let filter = TriggerInstanceFilter {
        trigger: q.trigger.as_deref().map(parse).transpose()?,
        status: q
            .status
            .as_deref()
            .map(parse::<TriggerInstanceStatus>)
            .transpose()?,
        offset: page.offset(),
        limit: page.limit(),
    };
    let store = state.services.store();
    let items = store
        .trigger_instances(&filter)
        .await?
        .iter()
        .map(|t| serde_json::to_value(t).expect("records serialize"))
        .collect();
    let total = store.count_trigger_instances(&filter).await?;
    Ok(listed(items, total))
}

/// One trigger instance.
#[utoipa::path(get, path = "/api/v1/triggerinstances/{id}", tag = "triggers",
    params(("id" = String, Path, description = "Trigger instance id")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_trigger_instance(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id: TriggerInstanceId = parse(&id)?;
    let t = state
        .services
        .store()
        .trigger_instance(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("trigger instance {id} not found")))?;
    Ok(axum::Json(
        serde_json::to_value(t).expect("records serialize"),
    ))
}
