//! `/api/v1/actions`, `/api/v1/packs`.

use super::error::parse;
use super::{ApiError, ApiState, Page, listed, paged};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use squall_core::RunnerType;
use squall_core::{Action, Ref};

/// Filters of `GET /api/v1/actions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    /// Only this pack's actions.
    pub pack: Option<String>,
}

/// An action as StackStorm's action API object (`parameters` as declared, extras included),
/// plus Squall's resolved `limits` and `idempotent`.
pub fn action_json(state: &ApiState, a: &Action) -> Value {
    let mut parameters = Map::new();
    for s in a.parameters.specs() {
        let mut p = s.schema.clone();
        if let Some(d) = &s.default {
            p.insert("default".into(), d.clone());
        }
        for (flag, on) in [
            ("required", s.required),
            ("immutable", s.immutable),
            ("secret", s.secret),
        ] {
            if on {
                p.insert(flag.into(), Value::Bool(true));
            }
        }
        if let Some(pos) = s.position {
            p.insert("position".into(), json!(pos));
        }
        parameters.insert(s.name.clone(), Value::Object(p));
    }
    let limits = state
        .services
        .registry()
        .resolve(&a.reference)
        .map(|r| r.limits);
    json!({
        "uid": format!("action:{}:{}", a.reference.pack(), a.reference.name()),
        "ref": a.reference.to_string(),
        "pack": a.reference.pack(),
        "name": a.reference.name(),
        "description": a.description,
        "enabled": a.enabled,
        "runner_type": a.runner_type,
        "entry_point": a.entry_point,
        "parameters": parameters,
        "output_schema": a.output_schema,
        "tags": a.tags,
        "metadata_file": a.metadata_file,
        "limits": limits,
        "idempotent": a.idempotent,
    })
}

/// Lists actions by ref.
#[utoipa::path(get, path = "/api/v1/actions", tag = "actions", params(ActionQuery, Page),
    responses((status = 200, description = "Actions by ref; the total in X-Total-Count", body = Vec<Value>)))]
pub async fn list_actions(
    State(state): State<ApiState>,
    Query(q): Query<ActionQuery>,
    Query(page): Query<Page>,
) -> impl axum::response::IntoResponse {
    let packs = state.services.registry().packs();
    let all: Vec<&Action> = packs
        .actions()
        .filter(|a| q.pack.as_deref().is_none_or(|p| a.reference.pack() == p))
        .collect();
    paged(all, page, |a| action_json(&state, a))
}

/// One action, with whether its component loads and its pack's capabilities.
#[utoipa::path(get, path = "/api/v1/actions/{reference}", tag = "actions",
    params(("reference" = String, Path, description = "Action ref, e.g. core.http")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_action(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let r: Ref = parse(&reference)?;
    let registry = state.services.registry().clone();
    let action = registry
        .packs()
        .action(&r)
        .ok_or_else(|| ApiError::NotFound(format!("action {r} not found")))?
        .clone();
    let mut shown = action_json(&state, &action);
    let resolved = registry.resolve(&r);
    match action.runner_type {
        RunnerType::Wasm | RunnerType::PythonScript => {
            let prepared = tokio::task::spawn_blocking(move || registry.prepare(&action))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            shown["component"] = match prepared {
                Ok(c) => json!({"path": c.path(), "sha256": c.sha256(), "loads": true}),
                Err(e) => json!({"loads": false, "error": e.to_string()}),
            };
        }
        RunnerType::Orquesta => {
            let tasks: Vec<&str> = action
                .workflow
                .iter()
                .flat_map(|w| w.tasks.iter().map(|t| t.name.as_str()))
                .collect();
            shown["workflow"] = json!({"path": action.entry_path, "tasks": tasks});
        }
        RunnerType::ActionChain => {
            let nodes: Vec<&str> = action
                .chain
                .iter()
                .flat_map(|c| c.chain.iter().map(|n| n.name.as_str()))
                .collect();
            shown["chain"] = json!({"path": action.entry_path, "nodes": nodes});
        }
        RunnerType::LocalShellCmd
        | RunnerType::LocalShellScript
        | RunnerType::RemoteShellCmd
        | RunnerType::RemoteShellScript => {
            let g = registry.config().grants(action.reference.pack());
            if action.runner_type.runs_script() {
                shown["script"] = json!({"path": action.entry_path});
            }
            shown["command_grants"] = json!({
                "commands": g.commands, "shell": g.shell, "scripts": g.scripts, "sudo": g.sudo,
                "env": g.env, "cwd": g.cwd, "run_as": g.run_as, "ssh_hosts": g.ssh_hosts,
            });
        }
        RunnerType::HttpRequest => {
            let g = registry.config().grants(action.reference.pack());
            shown["http_allow"] = json!(g.http_allow);
        }
        RunnerType::Inquirer | RunnerType::Noop | RunnerType::Announcement => {}
    }
    if let Some(r) = resolved {
        shown["limits_capped_by_operator"] = json!(r.capped);
        shown["capabilities"] =
            json!({"http_requested": r.http.requested, "http_granted": r.http.granted});
    }
    Ok(axum::Json(shown))
}

/// A loaded pack as the API shows it: its `pack.yaml` fields (StackStorm's `PackAPI`: `ref`,
/// `name`, `description`, `version`, `author`, `email`, `keywords`, ...) plus `path` and how
/// many actions, rules, trigger types, sensors and policies loaded.
fn pack_json(p: &squall_core::pack::Pack) -> Value {
    let mut v = serde_json::to_value(&p.meta).expect("pack metadata serializes");
    v["path"] = json!(p.path);
    v["actions"] = json!(p.actions.len());
    v["rules"] = json!(p.rules.len());
    v["trigger_types"] = json!(p.trigger_types.len());
    v["sensors"] = json!(p.sensors.len());
    v["policies"] = json!(p.policies.len());
    v
}

/// Lists the loaded packs.
#[utoipa::path(get, path = "/api/v1/packs", tag = "packs",
    responses((status = 200, description = "Packs by ref", body = Vec<Value>)))]
pub async fn list_packs(State(state): State<ApiState>) -> impl axum::response::IntoResponse {
    let packs = state.services.registry().packs();
    let items: Vec<Value> = packs.packs.values().map(pack_json).collect();
    let total = items.len() as u64;
    listed(items, total)
}

/// One loaded pack by ref (StackStorm's `GET /api/v1/packs/{ref_or_id}`).
///
/// # Errors
/// 404 naming the pack when none of that ref is loaded.
#[utoipa::path(get, path = "/api/v1/packs/{reference}", tag = "packs",
    params(("reference" = String, Path, description = "Pack ref, e.g. core")),
    responses((status = 200, description = "The pack", body = Value),
               (status = 404, description = "No such pack")))]
pub async fn get_pack(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let registry = state.services.registry().clone();
    let pack = registry
        .packs()
        .pack(&reference)
        .ok_or_else(|| ApiError::NotFound(format!("pack {reference:?} not found")))?;
    Ok(axum::Json(pack_json(pack)))
}
