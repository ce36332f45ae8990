//! The REST API and event stream, under StackStorm's v1 paths and field names.
//!
//! [`app`] builds the router over running [`Services`]; `squall serve` binds it, and a CLI
//! with no server to talk to calls it in-process. Errors are `{"faultstring": "..."}` with
//! StackStorm's status codes; lists take `limit`/`offset` and return the total in
//! `X-Total-Count`. The OpenAPI document at `/api/v1/openapi.json` is generated from the
//! handlers' annotations ([`ApiDoc`]).

mod actions;
mod auth;
mod browser;
mod configs;
mod error;
mod executions;
mod inquiries;
mod keys;
mod policies;
mod rules;
mod runners;
mod sensors;
mod stream;
mod triggers;
mod webhooks;

use auth::ApiKeyScheme;
pub use auth::{Access, key_hash};
pub use error::{ApiError, Fault};

use crate::Services;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use utoipa::OpenApi;

/// What every handler gets.
#[derive(Clone)]
pub struct ApiState {
    /// The running services.
    pub services: Services,
    /// Whether requests need an API key.
    pub access: Access,
}

impl ApiState {
    /// A request body, refused over `[server] max_body`.
    ///
    /// # Errors
    /// [`ApiError::TooLarge`]; [`ApiError::BadRequest`] if unreadable.
    fn body(
        &self,
        raw: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    ) -> Result<axum::body::Bytes, ApiError> {
        error::body(raw, self.services.registry().config().server.max_body)
    }

    /// A request body as JSON of type `T` (see [`ApiState::body`]).
    ///
    /// # Errors
    /// As [`ApiState::body`]; [`ApiError::BadRequest`] naming the JSON error.
    fn read<T: serde::de::DeserializeOwned>(
        &self,
        raw: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    ) -> Result<T, ApiError> {
        error::json(&self.body(raw)?)
    }
}

/// `limit` and `offset` of list endpoints (StackStorm's names). Defaults: 50 and 0; `limit`
/// is capped at 1000.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many to return (default 50, at most 1000).
    pub limit: Option<usize>,
    /// How many to skip (default 0).
    pub offset: Option<usize>,
}

impl Page {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(50).min(1000)
    }

    fn offset(&self) -> usize {
        self.offset.unwrap_or(0)
    }
}

/// A list response: the items and `X-Total-Count`.
fn listed(items: Vec<Value>, total: u64) -> (HeaderMap, axum::Json<Vec<Value>>) {
    let mut headers = HeaderMap::new();
    headers.insert("X-Total-Count", HeaderValue::from(total));
    (headers, axum::Json(items))
}

/// One page of an in-memory list (actions, rules, trigger types), as [`listed`].
fn paged<T>(
    all: Vec<T>,
    page: Page,
    to_json: impl Fn(T) -> Value,
) -> (HeaderMap, axum::Json<Vec<Value>>) {
    let total = all.len() as u64;
    let items = all
        .into_iter()
        .skip(page.offset())
        .take(page.limit())
        .map(to_json)
        .collect();
    listed(items, total)
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Squall API", description = "StackStorm-compatible v1 API of Squall: actions, executions (workflows: pause, resume, re-run), inquiries, rules, rule enforcements, sensors, policies, policy types, runner types, trigger types, trigger instances, webhooks, packs, pack configs, keys."),
    paths(
        actions::list_actions, actions::get_action, actions::list_packs, actions::get_pack, actions::register_packs,
        executions::list_executions, executions::create_execution, executions::get_execution, executions::cancel_execution,
        executions::update_execution, executions::rerun_execution,
        inquiries::list_inquiries, inquiries::get_inquiry, inquiries::respond,
        rules::list_rules, rules::get_rule, rules::update_rule, rules::list_enforcements,
        triggers::list_trigger_types, triggers::get_trigger_type, triggers::list_trigger_instances, triggers::get_trigger_instance,
        webhooks::list_webhooks, webhooks::post_webhook,
        keys::list_keys, keys::get_key, keys::put_key, keys::delete_key,
        configs::list_configs, configs::get_config,
        sensors::list_sensors, sensors::get_sensor, sensors::update_sensor,
        policies::list_policies, policies::get_policy, policies::list_policy_types, policies::get_policy_type,
        runners::list_runner_types, runners::get_runner_type,
        stream::stream,
    ),
    components(schemas(Fault, executions::ExecutionRequest, executions::ExecutionUpdate, executions::ReRun, inquiries::InquiryResponse, rules::RuleUpdate, sensors::SensorUpdate, keys::KeyBody, webhooks::GenericTrigger)),
    modifiers(&ApiKeyScheme),
)]
pub struct ApiDoc;

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

async fn root() -> axum::Json<Value> {
    axum::Json(serde_json::json!({
        "name": "squall",
        "version": env!("CARGO_PKG_VERSION"),
        "openapi": "/api/v1/openapi.json",
    }))
}

/// The router: API under `/api/v1`, stream at `/stream/v1/stream`.
pub fn app(state: ApiState) -> Router {
    let max_body =
        usize::try_from(state.services.registry().config().server.max_body).unwrap_or(usize::MAX);
    let api = Router::new()
        .route("/api/v1", get(root))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/actions", get(actions::list_actions))
        .route("/api/v1/actions/{reference}", get(actions::get_action))
        .route("/api/v1/packs", get(actions::list_packs))
        .route("/api/v1/packs/register", post(actions::register_packs))
        .route("/api/v1/packs/{reference}", get(actions::get_pack))
        .route(
            "/api/v1/executions",
            get(executions::list_executions).post(executions::create_execution),
        )
        .route(
            "/api/v1/executions/{id}",
            get(executions::get_execution)
                .put(executions::update_execution)
                .delete(executions::cancel_execution),
        )
        .route(
            "/api/v1/executions/{id}/re_run",
            post(executions::rerun_execution),
        )
        .route("/api/v1/inquiries", get(inquiries::list_inquiries))
        .route(
            "/api/v1/inquiries/{id}",
            get(inquiries::get_inquiry).put(inquiries::respond),
        )
        .route("/api/v1/rules", get(rules::list_rules))
        .route(
            "/api/v1/rules/{reference}",
            get(rules::get_rule).put(rules::update_rule),
        )
        .route("/api/v1/ruleenforcements", get(rules::list_enforcements))
        .route("/api/v1/triggertypes", get(triggers::list_trigger_types))
        .route(
            "/api/v1/triggertypes/{reference}",
            get(triggers::get_trigger_type),
        )
        .route(
            "/api/v1/triggerinstances",
            get(triggers::list_trigger_instances),
        )
        .route(
            "/api/v1/triggerinstances/{id}",
            get(triggers::get_trigger_instance),
        )
        .route("/api/v1/webhooks", get(webhooks::list_webhooks))
        .route("/api/v1/webhooks/{*url}", post(webhooks::post_webhook))
        .route("/api/v1/keys", get(keys::list_keys))
        .route(
            "/api/v1/keys/{name}",
            get(keys::get_key)
                .put(keys::put_key)
                .delete(keys::delete_key),
        )
        .route("/api/v1/sensortypes", get(sensors::list_sensors))
        .route(
            "/api/v1/sensortypes/{reference}",
            get(sensors::get_sensor).put(sensors::update_sensor),
        )
        .route("/api/v1/policies", get(policies::list_policies))
        .route("/api/v1/policies/{reference}", get(policies::get_policy))
        .route("/api/v1/policytypes", get(policies::list_policy_types))
        .route(
            "/api/v1/policytypes/{reference}",
            get(policies::get_policy_type),
        )
        .route("/api/v1/runnertypes", get(runners::list_runner_types))
        .route("/api/v1/runnertypes/{name}", get(runners::get_runner_type))
        .route("/api/v1/configs", get(configs::list_configs))
        .route("/api/v1/configs/{pack}", get(configs::get_config))
        .route("/stream/v1/stream", get(stream::stream))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) });
    api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require,
    ))
    // Outermost: a browser-borne request is refused before anything else looks at it.
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        browser::guard,
    ))
    .layer(DefaultBodyLimit::max(max_body))
    .with_state(state)
}
