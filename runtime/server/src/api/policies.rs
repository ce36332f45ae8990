//! `/api/v1/policies`, `/api/v1/policytypes`.

use super::error::parse;
use super::{ApiError, ApiState, Page, paged};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use squall_core::Ref;
use squall_core::policy::{Policy, PolicyType};

/// Filters of `GET /api/v1/policies` (StackStorm's names).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyQuery {
    /// Only this pack's policies.
    pub pack: Option<String>,
    /// Only policies of this action (a ref).
    pub resource_ref: Option<String>,
    /// Only policies of this type (`action.concurrency`, `action.concurrency.attr`,
    /// `action.retry`).
    pub policy_type: Option<String>,
}

/// A policy as StackStorm's policy API object.
pub fn policy_json(p: &Policy) -> Value {
    json!({
        "uid": format!("policy:{}:{}", p.reference.pack(), p.reference.name()),
        "ref": p.reference.to_string(),
        "pack": p.reference.pack(),
        "name": p.reference.name(),
        "description": p.description,
        "enabled": p.enabled,
        "resource_ref": p.resource_ref.to_string(),
        "policy_type": p.policy_type,
        "parameters": p.parameters,
        "metadata_file": p.metadata_file,
    })
}

/// A policy type as StackStorm's policy type API object.
pub fn policy_type_json(t: PolicyType) -> Value {
    json!({
        "uid": format!("policy_type:action:{}", t.name()),
        "ref": t.reference(),
        "resource_type": "action",
        "name": t.name(),
        "description": t.description(),
        "enabled": true,
        "parameters": t.parameters_schema(),
    })
}

/// Lists policies by ref.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", params(PolicyQuery, Page),
    responses((status = 200, description = "Policies by ref; the total in X-Total-Count", body = Vec<Value>)))]
pub async fn list_policies(
    State(state): State<ApiState>,
    Query(q): Query<PolicyQuery>,
    Query(page): Query<Page>,
) -> impl axum::response::IntoResponse {
    let packs = state.services.registry().packs();
    let all: Vec<&Policy> = packs
        .policies()
        .filter(|p| q.pack.as_deref().is_none_or(|x| p.reference.pack() == x))
        .filter(|p| {
            q.resource_ref
                .as_deref()
                .is_none_or(|x| p.resource_ref.to_string() == x)
        })
        .filter(|p| {
            q.policy_type
                .as_deref()
                .is_none_or(|x| p.policy_type.reference() == x)
        })
        .collect();
    paged(all, page, policy_json)
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/policies/{reference}", tag = "policies",
    params(("reference" = String, Path, description = "Policy ref")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_policy(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let r: Ref = parse(&reference)?;
    let packs = state.services.registry().packs();
    let policy = packs
        .policy(&r)
        .ok_or_else(|| ApiError::NotFound(format!("policy {r} not found")))?;
    Ok(axum::Json(policy_json(policy)))
}

/// Lists the policy types.
#[utoipa::path(get, path = "/api/v1/policytypes", tag = "policies", params(Page),
    responses((status = 200, description = "Policy types; the total in X-Total-Count", body = Vec<Value>)))]
pub async fn list_policy_types(Query(page): Query<Page>) -> impl axum::response::IntoResponse {
    paged(PolicyType::ALL.to_vec(), page, policy_type_json)
}

/// One policy type.
#[utoipa::path(get, path = "/api/v1/policytypes/{reference}", tag = "policies",
    params(("reference" = String, Path, description = "Policy type ref, e.g. action.concurrency")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_policy_type(Path(reference): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    let t = PolicyType::parse(&reference).map_err(ApiError::NotFound)?;
    Ok(axum::Json(policy_type_json(t)))
}
