//! `/api/v1/keys`: the datastore, as StackStorm's key-value API
//! (`st2api/controllers/v1/keyvalue.py`).
//!
//! - `GET /keys?prefix=&scope=&user=&decrypt=&limit=&offset=`; `GET /keys/{name}?scope=&user=&decrypt=`;
//!   `PUT /keys/{name}` with `{name, value, secret, encrypted, scope, user, ttl}`;
//!   `DELETE /keys/{name}?scope=&user=`.
//! - `scope`: `system` / `st2kv.system` (default), `user` / `st2kv.user`, or for lists `all`.
//!   A `user` without a `scope` means the user scope, as in StackStorm. User-scope keys belong
//!   to `user`, default `squall` (the user API requests act as).
//! - Records: `{name, value, secret, encrypted, scope, user, expire_timestamp}`. A secret's
//!   value is its ciphertext (`encrypted: true`) unless `decrypt=true` is asked for.

use super::{ApiError, ApiState, listed};
use crate::{DatastoreError, KeyFilter, SetKey};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use squall_core::datastore::{KeyRef, KeyScope, KeyValuePair, parse_scope_filter};

/// Filters of `GET /api/v1/keys`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    /// Only keys whose name starts with this.
    pub prefix: Option<String>,
    /// `system` / `st2kv.system` (default), `user` / `st2kv.user`, or `all` (both).
    pub scope: Option<String>,
    /// Whose user-scope keys (default `squall`); given without `scope`, means `scope=user`.
    pub user: Option<String>,
    /// Show secret values decrypted. Default `false`: their ciphertext.
    pub decrypt: Option<bool>,
    /// How many to return (default all).
    pub limit: Option<usize>,
    /// How many to skip (default 0).
    pub offset: Option<usize>,
}

/// Which key of `GET`/`DELETE /api/v1/keys/{name}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// `system` / `st2kv.system` (default) or `user` / `st2kv.user`.
    pub scope: Option<String>,
    /// Whose user-scope key (default `squall`); given without `scope`, means `scope=user`.
    pub user: Option<String>,
    /// (`GET` only) Show a secret value decrypted. Default `false`: its ciphertext.
    pub decrypt: Option<bool>,
}

/// `PUT /api/v1/keys/{name}` body (StackStorm's `KeyValuePairSetAPI`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct KeyBody {
    /// The value (text; JSON text for structure).
    pub value: String,
    /// The key's name; must match the path when given.
    #[serde(default)]
    pub name: Option<String>,
    /// Store the value encrypted (`st2 key set --encrypt`). Default `false`.
    #[serde(default)]
    pub secret: bool,
    /// The value is already a ciphertext of this datastore (what a read without `decrypt`
    /// returned); implies `secret`. Default `false`.
    #[serde(default)]
    pub encrypted: bool,
    /// `system` / `st2kv.system` (default) or `user` / `st2kv.user`; the `?scope=` query
    /// parameter is used when absent.
    #[serde(default)]
    pub scope: Option<String>,
    /// The owner of a user-scope key (default `squall`; the `?user=` query parameter when
    /// absent).
    #[serde(default)]
    pub user: Option<String>,
    /// Seconds until the key expires (at least 1). Default: never.
    #[serde(default)]
    pub ttl: Option<i64>,
}

impl From<DatastoreError> for ApiError {
    fn from(e: DatastoreError) -> Self {
        match e {
            DatastoreError::Invalid(_) | DatastoreError::BadCiphertext(_) => {
                ApiError::BadRequest(e.to_string())
            }
            DatastoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            DatastoreError::NoKeyFile
            | DatastoreError::KeyFileMissing { .. }
            | DatastoreError::KeyFile { .. }
            | DatastoreError::Decrypt { .. }
            | DatastoreError::Store(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// The key `name` in the scope and of the user a request names.
fn key_ref(
    name: &str,
    scope: Option<&str>,
    user: Option<&str>,
    body_scope: Option<&str>,
) -> Result<KeyRef, ApiError> {
    let scope = match body_scope.or(scope) {
        Some(s) => KeyScope::parse(s).map_err(DatastoreError::from)?,
        None if user.is_some() => KeyScope::User,
        None => KeyScope::System,
    };
    Ok(KeyRef::new(scope, user.unwrap_or(crate::SYSTEM_USER), name))
}

fn record(kv: &KeyValuePair) -> Value {
    serde_json::to_value(kv).expect("records serialize")
}

/// Lists keys: system keys, then user keys, each by name.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(KeyListQuery),
    responses((status = 200, body = Vec<Value>), (status = 400, body = super::Fault)))]
pub async fn list_keys(
    State(state): State<ApiState>,
    Query(q): Query<KeyListQuery>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let scope = match q.scope.as_deref() {
        Some(s) => parse_scope_filter(s).map_err(DatastoreError::from)?,
        None if q.user.is_some() => Some(KeyScope::User),
        None => Some(KeyScope::System),
    };
    let filter = KeyFilter {
        scope,
        user: Some(q.user.unwrap_or_else(|| crate::SYSTEM_USER.to_string())),
        prefix: q.prefix.unwrap_or_default(),
    };
    let keys = state
        .services
        .datastore()
        .list(&filter, q.decrypt.unwrap_or(false))
        .await?;
    let total = keys.len() as u64;
    let page = keys
        .iter()
        .skip(q.offset.unwrap_or(0))
        .take(q.limit.unwrap_or(usize::MAX))
        .map(record)
        .collect();
    Ok(listed(page, total))
}

/// One key.
#[utoipa::path(get, path = "/api/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "Key name"), KeyQuery),
    responses((status = 200, body = Value), (status = 400, body = super::Fault),
        (status = 404, body = super::Fault)))]
pub async fn get_key(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let key = key_ref(&name, q.scope.as_deref(), q.user.as_deref(), None)?;
    let kv = state
        .services
        .datastore()
        .get(&key, q.decrypt.unwrap_or(false))
        .await?
        .ok_or(DatastoreError::NotFound(key))?;
    Ok(axum::Json(record(&kv)))
}

/// Sets a key (creating or replacing it); returns it as stored (a secret's ciphertext).
#[utoipa::path(put, path = "/api/v1/keys/{name}", tag = "keys", request_body = KeyBody,
    params(("name" = String, Path, description = "Key name"), KeyQuery),
    responses((status = 200, body = Value), (status = 400, body = super::Fault)))]
pub async fn put_key(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<KeyQuery>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let req: KeyBody = state.read(raw)?;
    if let Some(n) = req.name.as_deref()
        && n != name
    {
        return Err(ApiError::BadRequest(format!(
            "body name {n:?} does not match the path's {name:?}"
        )));
    }
    let user = req.user.as_deref().or(q.user.as_deref());
    let key = key_ref(&name, q.scope.as_deref(), user, req.scope.as_deref())?;
    let kv = state
        .services
        .datastore()
        .set(SetKey {
            key,
            value: req.value,
            secret: req.secret,
            encrypted: req.encrypted,
            ttl: req.ttl,
        })
        .await?;
    Ok(axum::Json(record(&kv)))
}

/// Deletes a key.
#[utoipa::path(delete, path = "/api/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "Key name"), KeyQuery),
    responses((status = 204), (status = 400, body = super::Fault),
        (status = 404, body = super::Fault)))]
pub async fn delete_key(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<StatusCode, ApiError> {
    let key = key_ref(&name, q.scope.as_deref(), q.user.as_deref(), None)?;
    state.services.datastore().delete(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}
