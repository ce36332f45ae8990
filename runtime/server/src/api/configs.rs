//! `/api/v1/configs`: packs' configs as loaded (StackStorm's config API), secret values masked
//! unless `show_secrets=true`.
//!
//! A config is `{"pack", "values", "file", "errors"}`: `pack` and `values` as StackStorm's
//! `ConfigAPI` (values as written in `configs/<pack>.yaml`, templates not rendered, defaults
//! filled in); Squall adds the config `file` and the `errors` found at load (empty when valid).

use super::{ApiError, ApiState, Page, paged};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use squall_core::pack_config::PackConfig;

/// Options of the config endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// Show secret values instead of `********` (default false).
    #[serde(default)]
    pub show_secrets: bool,
}

fn record(config: &PackConfig, show_secrets: bool) -> Value {
    let values = if show_secrets {
        config.values.clone()
    } else {
        config.masked()
    };
    let errors: Vec<String> = config.errors.iter().map(ToString::to_string).collect();
    json!({
        "pack": config.pack,
        "values": values,
        "file": config.file.display().to_string(),
        "errors": errors,
    })
}

/// Lists the configs of the loaded packs that have one (a `config.schema.yaml` or a
/// `configs/<pack>.yaml`), by pack.
#[utoipa::path(get, path = "/api/v1/configs", tag = "configs", params(Page, ConfigQuery),
    responses((status = 200, body = Vec<Value>)))]
pub async fn list_configs(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
    Query(q): Query<ConfigQuery>,
) -> impl axum::response::IntoResponse {
    let packs = state.services.registry().packs();
    let configs: Vec<&PackConfig> = packs
        .packs
        .values()
        .filter_map(|p| p.config.as_ref())
        .collect();
    paged(configs, page, |c| record(c, q.show_secrets))
}

/// One pack's config.
#[utoipa::path(get, path = "/api/v1/configs/{pack}", tag = "configs",
    params(("pack" = String, Path, description = "Pack ref"), ConfigQuery),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_config(
    State(state): State<ApiState>,
    Path(pack): Path<String>,
    Query(q): Query<ConfigQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let packs = state.services.registry().packs();
    let loaded = packs
        .pack(&pack)
        .ok_or_else(|| ApiError::NotFound(format!("pack {pack:?} not found")))?;
    let config = loaded.config.as_ref().ok_or_else(|| {
        ApiError::NotFound(format!(
            "pack {pack:?} has no config (no config.schema.yaml nor configs/{pack}.yaml)"
        ))
    })?;
    Ok(axum::Json(record(config, q.show_secrets)))
}
