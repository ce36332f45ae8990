//! `/api/v1/keys`: the datastore's system scope, as StackStorm's key-value API.

use super::{ApiError, ApiState, listed};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use squall_core::datastore::{KeyValuePair, SYSTEM_SCOPE, validate_key_name};
use squall_store::Batch;

/// Filters of `GET /api/v1/keys`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// Only keys whose name starts with this.
    pub prefix: Option<String>,
}

/// `PUT /api/v1/keys/{name}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct KeyBody {
    /// The value (text; JSON text for structure).
    pub value: String,
    /// The key's name; must match the path when given.
    #[serde(default)]
    pub name: Option<String>,
    /// Only `st2kv.system` (or `system`) is supported.
    #[serde(default)]
    pub scope: Option<String>,
}

fn record(kv: &KeyValuePair) -> Value {
    serde_json::to_value(kv).expect("records serialize")
}

/// Lists keys by name.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(KeyQuery),
    responses((status = 200, body = Vec<Value>)))]
pub async fn list_keys(
    State(state): State<ApiState>,
    Query(q): Query<KeyQuery>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let keys = state
        .services
        .store()
        .keys(q.prefix.as_deref().unwrap_or(""))
        .await?;
    let total = keys.len() as u64;
    Ok(listed(keys.iter().map(record).collect(), total))
}

/// One key.
#[utoipa::path(get, path = "/api/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "Key name")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_key(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let kv = state
        .services
        .store()
        .key(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("key {name:?} not found")))?;
    Ok(axum::Json(record(&kv)))
}

/// Sets a key.
#[utoipa::path(put, path = "/api/v1/keys/{name}", tag = "keys", request_body = KeyBody,
    params(("name" = String, Path, description = "Key name")),
    responses((status = 200, body = Value), (status = 400, body = super::Fault)))]
pub async fn put_key(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    validate_key_name(&name).map_err(ApiError::BadRequest)?;
    let req: KeyBody = state.read(raw)?;
    if let Some(n) = req.name.as_deref()
        && n != name
    {
        return Err(ApiError::BadRequest(format!(
            "body name {n:?} does not match the path's {name:?}"
        )));
    }
    if let Some(scope) = req.scope.as_deref()
        && scope != SYSTEM_SCOPE
        && scope != "system"
    {
        return Err(ApiError::BadRequest(format!(
            "scope {scope:?} is not supported (use {SYSTEM_SCOPE})"
        )));
    }
    let kv = KeyValuePair {
        name,
        value: req.value,
        scope: SYSTEM_SCOPE.into(),
    };
    let mut batch = Batch::new();
    batch.put_key(&kv);
    state.services.store().commit(batch).await?;
    Ok(axum::Json(record(&kv)))
}

/// Deletes a key.
#[utoipa::path(delete, path = "/api/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "Key name")),
    responses((status = 204), (status = 404, body = super::Fault)))]
pub async fn delete_key(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.services.store().key(&name).await?.is_none() {
        return Err(ApiError::NotFound(format!("key {name:?} not found")));
    }
    let mut batch = Batch::new();
    batch.delete_key(&name);
    state.services.store().commit(batch).await?;
    Ok(StatusCode::NO_CONTENT)
}
