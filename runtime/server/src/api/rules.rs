//! `/api/v1/rules`, `/api/v1/ruleenforcements`.

use super::error::parse;
use super::{ApiError, ApiState, Page, listed, paged};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use squall_core::Ref;
use squall_core::rule::Rule;
use squall_store::{Batch, EnforcementFilter};

/// Filters of `GET /api/v1/rules`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleQuery {
    /// Only this pack's rules.
    pub pack: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) rules.
    pub enabled: Option<bool>,
}

/// `PUT /api/v1/rules/{ref}` body: StackStorm's client sends the whole rule; Squall applies
/// `enabled` and ignores the other fields (rules are content: edit the YAML to change them).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RuleUpdate {
    /// Enable or disable the rule (kept across restarts).
    pub enabled: bool,
}

/// A rule as StackStorm's rule API object.
pub fn rule_json(state: &ApiState, r: &Rule) -> Value {
    json!({
        "uid": format!("rule:{}:{}", r.reference.pack(), r.reference.name()),
        "ref": r.reference.to_string(),
        "pack": r.reference.pack(),
        "name": r.reference.name(),
        "description": r.description,
        "enabled": state.services.registry().rule_enabled(r),
        "type": {"ref": r.kind, "parameters": {}},
        "trigger": r.trigger,
        "criteria": r.criteria,
        "action": r.action,
        "metadata_file": r.metadata_file,
    })
}

fn find(state: &ApiState, reference: &str) -> Result<Rule, ApiError> {
    let r: Ref = parse(reference)?;
    state
        .services
        .registry()
        .packs()
        .rule(&r)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("rule {r} not found")))
}

/// Lists rules by ref.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(RuleQuery, Page),
    responses((status = 200, description = "Rules by ref; total in X-Total-Count", body = Vec<Value>)))]
pub async fn list_rules(
    State(state): State<ApiState>,
    Query(q): Query<RuleQuery>,
    Query(page): Query<Page>,
) -> impl axum::response::IntoResponse {
    let registry = state.services.registry();
    let packs = registry.packs();
    let all: Vec<&Rule> = packs
        .rules()
        .filter(|r| q.pack.as_deref().is_none_or(|p| r.reference.pack() == p))
        .filter(|r| q.enabled.is_none_or(|on| registry.rule_enabled(r) == on))
        .collect();
    paged(all, page, |r| rule_json(&state, r))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/rules/{reference}", tag = "rules",
    params(("reference" = String, Path, description = "Rule ref")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_rule(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(rule_json(&state, &find(&state, &reference)?)))
}

/// Enables or disables a rule; the change is stored and survives restarts.
#[utoipa::path(put, path = "/api/v1/rules/{reference}", tag = "rules", request_body = RuleUpdate,
    params(("reference" = String, Path, description = "Rule ref")),
    responses((status = 200, body = Value), (status = 400, body = super::Fault), (status = 404, body = super::Fault)))]
pub async fn update_rule(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let rule = find(&state, &reference)?;
    let update: RuleUpdate = state.read(raw)?;
    let mut batch = Batch::new();
    batch.set_rule_enabled(&rule.reference.to_string(), update.enabled);
    state.services.store().commit(batch).await?;
    state
        .services
        .registry()
        .set_rule_overrides([(rule.reference.clone(), update.enabled)]);
    tracing::info!(rule.ref = %rule.reference, enabled = update.enabled, "rule updated");
    Ok(axum::Json(rule_json(&state, &rule)))
}

/// Filters of `GET /api/v1/ruleenforcements`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnforcementQuery {
    /// Only this rule's (a ref).
    pub rule_ref: Option<String>,
    /// Only those for this trigger instance id.
    pub trigger_instance: Option<String>,
    /// Only the one that requested this execution id.
    pub execution: Option<String>,
}

/// Lists rule enforcements, newest first.
#[utoipa::path(get, path = "/api/v1/ruleenforcements", tag = "rules", params(EnforcementQuery, Page),
    responses((status = 200, description = "Enforcements, newest first; total in X-Total-Count", body = Vec<Value>),
              (status = 400, body = super::Fault)))]
pub async fn list_enforcements(
    State(state): State<ApiState>,
    Query(q): Query<EnforcementQuery>,
    Query(page): Query<Page>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let filter = EnforcementFilter {
        rule: q.rule_ref.as_deref().map(parse).transpose()?,
        trigger_instance: q.trigger_instance.as_deref().map(parse).transpose()?,
        execution: q.execution.as_deref().map(parse).transpose()?,
        offset: page.offset(),
        limit: page.limit(),
    };
    let store = state.services.store();
    let items = store
        .enforcements(&filter)
        .await?
        .iter()
        .map(|e| serde_json::to_value(e).expect("records serialize"))
        .collect();
    let total = store.count_enforcements(&filter).await?;
    Ok(listed(items, total))
}
