//! Write a Squall sensor in Rust: a type implementing [`Sensor`], exported with
//! [`sensor!`](crate::sensor!).
//!
//! A sensor is a component of the `squall:plugin/sensor` world (see `wit/squall.wit`). The host
//! calls [`Sensor::poll`] every `poll_interval` seconds and [`Sensor::webhook`] for each
//! `POST /api/v1/webhooks/<url>` to a url the sensor lists in its metadata (`webhooks:`). Either
//! may [`emit`] trigger instances and keep state between calls in the pack's datastore
//! ([`datastore`]); both are kept only when the call returns `Ok`, together, so a poll that
//! fails half-way emits nothing and a restart resumes from the last successful call.
//!
//! ```ignore
//! use squall_plugin::sensor::{self, Sensor, SensorContext};
//! use squall_plugin::Error;
//!
//! struct Ticker;
//!
//! impl Sensor for Ticker {
//!     fn poll(ctx: &SensorContext) -> Result<(), Error> {
//!         let n: u64 = sensor::datastore::get("n")?.and_then(|v| v.parse().ok()).unwrap_or(0);
//!         sensor::datastore::set("n", &(n + 1).to_string(), None)?;
//!         sensor::emit("mypack.tick", &serde_json::json!({"n": n + 1}))
//!     }
//! }
//!
//! squall_plugin::sensor!(Ticker);
//! ```
//!
//! Outbound HTTP works as in actions ([`crate::http`]), under the pack's grants; log lines
//! ([`crate::log`]) go to the server's log, tagged with the sensor's ref.

use crate::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Raw bindings for the `squall:plugin/sensor` world. The interfaces it shares with the action
/// world (`log`, `wasi:http`) are the ones in [`crate::bindings`], so [`crate::log`] and
/// [`crate::http`] serve both.
#[allow(missing_docs, clippy::all, unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "squall:plugin/sensor",
        pub_export_macro: true,
        export_macro_name: "export_sensor",
        default_bindings_module: "squall_plugin::sensor::bindings",
        with: {
            "squall:plugin/log@0.1.1": crate::bindings::squall::plugin::log,
            "wasi:http/types@0.2.12": crate::bindings::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": crate::bindings::wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": crate::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::wasi::clocks::monotonic_clock,
        },
        generate_all,
    });
}

use bindings::squall::plugin::{datastore as kv, emit as wit_emit, sensor_types as wit};

/// Facts about the sensor being called.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorContext {
    /// The sensor's ref, `<pack>.<class_name>`.
    pub sensor_ref: String,
    /// Its pack.
    pub pack: String,
    /// The pack's configuration (`configs/<pack>.yaml`, defaults filled in); `{}` when none.
    pub config: serde_json::Value,
}

impl SensorContext {
    /// The pack's configuration as `T`.
    ///
    /// # Errors
    /// An [`Error`] naming the serde problem when the config does not fit `T`.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(self.config.clone())
            .map_err(|e| Error::new(format!("pack config does not fit the sensor's type: {e}")))
    }
}

/// A request to one of the sensor's webhook urls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The url it came to (`github` for `POST /api/v1/webhooks/github`).
    pub url: String,
    /// Headers, names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// The first value of header `name` (matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    ///
    /// # Errors
    /// An [`Error`] naming the JSON problem.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::new(format!("webhook body is not the expected JSON: {e}")))
    }
}

/// The answer to a webhook request: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookResponse {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
}

impl WebhookResponse {
    /// A response with `status` and `body`.
    pub fn new(status: u16, body: serde_json::Value) -> Self {
        WebhookResponse { status, body }
    }
}

/// What a sensor does. Implement `poll` for polling sensors, `webhook` for push-style ones (or
/// both); the defaults do nothing and answer 404.
pub trait Sensor {
    /// One poll. Return `Err` to report a failed poll (nothing it emitted or stored is kept;
    /// the host backs the sensor off).
    ///
    /// # Errors
    /// Whatever the sensor reports.
    fn poll(ctx: &SensorContext) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// One webhook request.
    ///
    /// # Errors
    /// An `Err` answers 500 and keeps nothing.
    fn webhook(ctx: &SensorContext, request: WebhookRequest) -> Result<WebhookResponse, Error> {
        let _ = (ctx, request);
        Ok(WebhookResponse::new(
            404,
            serde_json::json!({"faultstring": "this sensor takes no webhooks"}),
        ))
    }
}

/// Emits one trigger instance of `trigger` (`<pack>.<name>`, one of the sensor's
/// `trigger_types`) with `payload`.
///
/// # Errors
/// The host's message when the trigger type is not the sensor's, the payload does not fit its
/// `payload_schema`, or the per-call `max_emits` limit is reached.
pub fn emit(trigger: &str, payload: &impl Serialize) -> Result<(), Error> {
    let json = serde_json::to_string(payload)?;
    wit_emit::emit(trigger, &json).map_err(Error::new)
}

/// The pack's datastore keys (pack-local) and the shared system keys.
pub mod datastore {
    use super::kv;
    use crate::Error;

    /// The pack-local key `name`, or `None`.
    ///
    /// # Errors
    /// A bad key name.
    pub fn get(name: &str) -> Result<Option<String>, Error> {
        kv::get(name).map_err(Error::new)
    }

    /// Sets the pack-local key `name`, expiring after `ttl_seconds` when given.
    ///
    /// # Errors
    /// A bad key name or an over-long value.
    pub fn set(name: &str, value: &str, ttl_seconds: Option<u32>) -> Result<(), Error> {
        kv::set(name, value, ttl_seconds).map_err(Error::new)
    }

    /// Deletes the pack-local key `name`; `false` when it was not set.
    ///
    /// # Errors
    /// A bad key name.
    pub fn delete(name: &str) -> Result<bool, Error> {
        kv::delete(name).map_err(Error::new)
    }

    /// The system-scope key `name`; secrets only when granted to the pack.
    ///
    /// # Errors
    /// A bad key name, or a secret the pack was not granted.
    pub fn get_system(name: &str) -> Result<Option<String>, Error> {
        kv::get_system(name).map_err(Error::new)
    }
}

/// Exports a [`Sensor`] implementation as the component's `poll` and `webhook`.
#[macro_export]
macro_rules! sensor {
    ($sensor:ty) => {
        #[doc(hidden)]
        struct SquallSensorExport;

        impl $crate::sensor::bindings::Guest for SquallSensorExport {
            fn on_poll(
                ctx: $crate::sensor::bindings::SensorContext,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::sensor::__private::poll::<$sensor>(ctx)
            }

            fn on_webhook(
                ctx: $crate::sensor::bindings::SensorContext,
                request: $crate::sensor::bindings::WebhookRequest,
            ) -> ::std::result::Result<
                $crate::sensor::bindings::WebhookResponse,
                ::std::string::String,
            > {
                $crate::sensor::__private::webhook::<$sensor>(ctx, request)
            }
        }

        $crate::sensor::bindings::export_sensor!(SquallSensorExport);
    };
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    fn context(ctx: wit::SensorContext) -> SensorContext {
        SensorContext {
            sensor_ref: ctx.sensor_ref,
            pack: ctx.pack,
            config: serde_json::from_str(&ctx.config_json).unwrap_or_default(),
        }
    }

    /// The body of every generated `poll` export.
    pub fn poll<S: Sensor>(ctx: wit::SensorContext) -> Result<(), String> {
        S::poll(&context(ctx)).map_err(|e| e.message().to_string())
    }

    /// The body of every generated `webhook` export.
    pub fn webhook<S: Sensor>(
        ctx: wit::SensorContext,
        request: wit::WebhookRequest,
    ) -> Result<wit::WebhookResponse, String> {
        let request = WebhookRequest {
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let response = S::webhook(&context(ctx), request).map_err(|e| e.message().to_string())?;
        Ok(wit::WebhookResponse {
            status: response.status,
            body_json: response.body.to_string(),
        })
    }
}
