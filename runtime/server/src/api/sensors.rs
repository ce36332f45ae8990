//! `/api/v1/sensortypes`: the loaded sensors and their live status, as StackStorm's sensor type
//! API (`GET` list and one, `PUT` to enable or disable).

use super::error::parse;
use super::{ApiError, ApiState, Page, paged};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;
use squall_core::Ref;

/// Filters of `GET /api/v1/sensortypes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SensorQuery {
    /// Only this pack's sensors.
    pub pack: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) sensors.
    pub enabled: Option<bool>,
}

/// `PUT /api/v1/sensortypes/{ref}` body: StackStorm's client sends the whole sensor type;
/// Squall applies `enabled` and ignores the rest (sensors are content: edit the YAML).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SensorUpdate {
    /// Enable or disable the sensor (kept across restarts).
    pub enabled: bool,
}

fn to_json(view: crate::SensorView) -> Value {
    let mut v = serde_json::to_value(&view).expect("sensor views serialize");
    if let Value::Object(m) = &mut v {
        m.insert(
            "uid".into(),
            Value::String(format!("sensor_type:{}:{}", view.pack, view.name)),
        );
    }
    v
}

/// Lists sensors by ref, each with its live `status`.
#[utoipa::path(get, path = "/api/v1/sensortypes", tag = "sensors", params(SensorQuery, Page),
    responses((status = 200, description = "Sensors by ref; total in X-Total-Count", body = Vec<Value>)))]
pub async fn list_sensors(
    State(state): State<ApiState>,
    Query(q): Query<SensorQuery>,
    Query(page): Query<Page>,
) -> impl axum::response::IntoResponse {
    let all: Vec<crate::SensorView> = state
        .services
        .sensors()
        .list()
        .into_iter()
        .filter(|s| q.pack.as_deref().is_none_or(|p| s.pack == p))
        .filter(|s| q.enabled.is_none_or(|on| s.enabled == on))
        .collect();
    paged(all, page, to_json)
}

/// One sensor with its live status: state (`running`, `backing_off`, `disabled`, `failed`,
/// `stopped`), counters, last error, next poll.
#[utoipa::path(get, path = "/api/v1/sensortypes/{reference}", tag = "sensors",
    params(("reference" = String, Path, description = "Sensor ref, <pack>.<class_name>")),
    responses((status = 200, body = Value), (status = 404, body = super::Fault)))]
pub async fn get_sensor(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let r: Ref = parse(&reference)?;
    state
        .services
        .sensors()
        .get(&r)
        .map(|v| axum::Json(to_json(v)))
        .ok_or_else(|| ApiError::NotFound(format!("sensor {r} not found")))
}

/// Enables or disables a sensor at once; the change is stored and survives restarts.
#[utoipa::path(put, path = "/api/v1/sensortypes/{reference}", tag = "sensors", request_body = SensorUpdate,
    params(("reference" = String, Path, description = "Sensor ref")),
    responses((status = 200, body = Value), (status = 400, body = super::Fault), (status = 404, body = super::Fault)))]
pub async fn update_sensor(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let r: Ref = parse(&reference)?;
    let update: SensorUpdate = state.read(raw)?;
    state
        .services
        .sensors()
        .set_enabled(&r, update.enabled)
        .await?
        .map(|v| axum::Json(to_json(v)))
        .ok_or_else(|| ApiError::NotFound(format!("sensor {r} not found")))
}
