//! `/api/v1/actions`, `/api/v1/packs`.

use super::error::parse;
use super::{ApiError, ApiState, Page, listed, paged};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use squall_core::RunnerType;
use squall_core::{Action, Ref};
use std::sync::Arc;

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
            shown["component"] = component_json(&registry, &action).await?;
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

/// An action's component as `GET /api/v1/actions/{ref}` shows it: `{"path", "sha256",
/// "loads": true}` once ready, `{"path", "loads": false, "error"}` when it does not load, and
/// while the server's background compiler has not finished it `{"path", "loads": null,
/// "state": "waiting"|"compiling", "since"?}` — the API never waits for a compilation. Without
/// a background compiler (a CLI in-process) the component is compiled here.
async fn component_json(
    registry: &Arc<crate::Registry>,
    action: &squall_core::Action,
) -> Result<Value, ApiError> {
    use crate::registry::ComponentState;
    let path = action.entry_path.clone();
    let state = registry.component_state(&path);
    let pending = matches!(
        state,
        None | Some(ComponentState::Waiting | ComponentState::Compiling { .. })
    );
    if pending && registry.compiles_in_background() {
        let mut v = serde_json::to_value(state.unwrap_or(ComponentState::Waiting))
            .expect("component states serialize");
        v["path"] = json!(path);
        v["loads"] = Value::Null;
        return Ok(v);
    }
    let registry = registry.clone();
    let action = action.clone();
    let prepared = tokio::task::spawn_blocking(move || registry.prepare(&action))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(match prepared {
        Ok(c) => json!({"path": path, "sha256": c.sha256(), "loads": true}),
        Err(e) => json!({"path": path, "loads": false, "error": e.to_string()}),
    })
}

/// The components of `p` and how far each one's compilation got (see
/// [`crate::Registry::component_state`]): `[{"path", "state": "waiting"|"compiling"|"ready"|
/// "failed", "since"?, "sha256"?, "ms"?, "error"?}]`.
fn components_json(registry: &crate::Registry, p: &squall_core::pack::Pack) -> Value {
    use crate::registry::ComponentState;
    let mut paths: Vec<&std::path::Path> = p
        .actions
        .values()
        .filter(|a| matches!(a.runner_type, RunnerType::Wasm | RunnerType::PythonScript))
        .map(|a| a.entry_path.as_path())
        .chain(p.sensors.values().map(|s| s.entry_path.as_path()))
        .collect();
    paths.sort();
    paths.dedup();
    let items: Vec<Value> = paths
        .into_iter()
        .map(|path| {
            let state = registry
                .component_state(path)
                .unwrap_or(ComponentState::Waiting);
            let mut v = serde_json::to_value(state).expect("component states serialize");
            v["path"] = json!(path);
            v
        })
        .collect();
    Value::Array(items)
}

/// A loaded pack as the API shows it: its `pack.yaml` fields (StackStorm's `PackAPI`: `ref`,
/// `name`, `description`, `version`, `author`, `email`, `keywords`, ...) plus `path` and how
/// many actions, rules, trigger types, sensors and policies loaded, and
/// `installed_version` when its directory is a link (`squall pack install`'s).
fn pack_json(p: &squall_core::pack::Pack) -> Value {
    let mut v = serde_json::to_value(&p.meta).expect("pack metadata serializes");
    v["path"] = json!(p.path);
    // A pack installed by `squall pack install` is a link to a version in the store.
    if let Ok(target) = std::fs::read_link(&p.path) {
        v["installed_version"] = json!(target.file_name().map(|n| n.to_string_lossy()));
    }
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

/// One loaded pack by ref (StackStorm's `GET /api/v1/packs/{ref_or_id}`), with Squall's
/// `generation` and `loaded_at` of the packs version serving, `installed_version` when `squall
/// pack install` put it there, and — from a server — `components`: each component file and
/// how far its compilation got (see [`components_json`]).
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
    let packs = state.services.registry().packs();
    let pack = packs
        .pack(&reference)
        .ok_or_else(|| ApiError::NotFound(format!("pack {reference:?} not found")))?;
    let mut shown = pack_json(pack);
    // Only a server compiles in the background; a CLI in-process has no such progress.
    if state.services.registry().compiles_in_background() {
        shown["components"] = components_json(state.services.registry(), pack);
    }
    shown["generation"] = json!(packs.generation());
    shown["loaded_at"] = json!(packs.loaded_at().to_string());
    Ok(axum::Json(shown))
}

/// The body of `POST /api/v1/packs/register`, as st2's `PackRegisterRequestAPI`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// Packs to read again; absent or empty: all of them.
    #[serde(default)]
    pub packs: Vec<String>,
    /// st2's content types to register (`action`, `rule`, `all`, ... singular or plural, as
    /// st2's `PackRegisterController.CONTENT_TYPES`); an unknown one is refused (st2 skips
    /// it silently). Squall always reloads packs whole — half a pack is never published — so
    /// any non-empty list reloads all; an empty list registers nothing, as st2.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// st2 fails the request on the first problem when true (its default). Squall always
    /// refuses a new version with problems and keeps the loaded one serving; `false` is
    /// refused rather than ignored.
    #[serde(default)]
    pub fail_on_failure: Option<bool>,
}

/// st2's `PackRegisterController.CONTENT_TYPES`.
const CONTENT_TYPES: [&str; 10] = [
    "runner",
    "action",
    "trigger",
    "sensor",
    "rule",
    "rule_type",
    "alias",
    "policy_type",
    "policy",
    "config",
];

/// Reloads packs from disk without a restart (StackStorm's `POST /api/v1/packs/register`,
/// `st2 pack register`; also SIGHUP): the new version is read and every component compiled
/// while the loaded one serves, then published whole (see [`crate::Services::reload`]).
/// Every pack is read again (one consistent version); `packs` names packs that must be there
/// and limits the counts. Answers st2's counts of what was registered: `{"runners",
/// "actions", "triggers", "sensors", "rules", "rule_types", "aliases", "policy_types",
/// "policies", "configs"}` (`aliases` 0: Squall does not load aliases yet).
///
/// # Errors
/// 400 listing every problem of the new version (file and field), or naming a pack not on
/// disk (st2's `Pack "x" not found on disk`); the loaded version keeps serving.
#[utoipa::path(post, path = "/api/v1/packs/register", tag = "packs",
    request_body = RegisterRequest,
    responses((status = 200, description = "What was registered", body = Value),
               (status = 400, description = "Refused; the loaded packs keep serving", body = super::Fault)))]
pub async fn register_packs(
    State(state): State<ApiState>,
    raw: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let body = state.body(raw)?;
    let req: RegisterRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RegisterRequest::default()
    } else {
        super::error::json(&body)?
    };
    let types = req.types.unwrap_or_else(|| vec!["all".into()]);
    if types.is_empty() {
        return Ok(axum::Json(json!({})));
    }
    for t in &types {
        let singular = match t.as_str() {
            "policies" => "policy",
            "aliases" => "alias",
            other => other.strip_suffix('s').unwrap_or(other),
        };
        if t != "all" && !CONTENT_TYPES.contains(&singular) {
            return Err(ApiError::BadRequest(format!(
                "types: unknown content type {t:?}; one of all, {}",
                CONTENT_TYPES.join(", ")
            )));
        }
    }
    if req.fail_on_failure == Some(false) {
        return Err(ApiError::BadRequest(
            "fail_on_failure: Squall publishes a new version of the packs only whole and \
             without problems; false is not supported"
                .into(),
        ));
    }
    let mut packs = req.packs;
    packs.sort();
    packs.dedup();
    match state.services.reload(&packs).await {
        // st2's keys: the built-in runner, rule and policy types are "registered" too.
        Ok(r) => Ok(axum::Json(json!({
            "runners": squall_core::RunnerType::ALL.len(),
            "actions": r.actions,
            "triggers": r.triggers,
            "sensors": r.sensors,
            "rules": r.rules,
            "rule_types": 2,
            "aliases": 0,
            "policy_types": squall_core::policy::PolicyType::ALL.len(),
            "policies": r.policies,
            "configs": r.configs,
        }))),
        Err(crate::ReloadError::NoLoader) => {
            Err(ApiError::Conflict(crate::ReloadError::NoLoader.to_string()))
        }
        Err(e @ crate::ReloadError::Store(_)) => Err(ApiError::Internal(e.to_string())),
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    }
}
