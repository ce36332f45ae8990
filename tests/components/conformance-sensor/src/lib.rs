//! The conformance sensor with the Rust SDK (see `tests/fixtures/conformance/README.md`).

use serde_json::json;
use squall_plugin::Error;
use squall_plugin::sensor::{self, Sensor, SensorContext, WebhookRequest, WebhookResponse};

struct Conformance;

impl Sensor for Conformance {
    fn poll(_ctx: &SensorContext) -> Result<(), Error> {
        let n: u64 = sensor::datastore::get("n.rust")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            + 1;
        sensor::datastore::set("n.rust", &n.to_string(), None)?;
        squall_plugin::log::info(format!("poll {n}"));
        sensor::emit(
            "conformance.event",
            &json!({"lang": "rust", "n": n, "source": "poll"}),
        )
    }

    fn webhook(_ctx: &SensorContext, request: WebhookRequest) -> Result<WebhookResponse, Error> {
        if request.header("x-conformance") != Some("yes") {
            return Ok(WebhookResponse::new(401, json!({"error": "bad header"})));
        }
        let n = request.body.len();
        sensor::emit(
            "conformance.event",
            &json!({"lang": "rust", "n": n, "source": "webhook"}),
        )?;
        Ok(WebhookResponse::new(
            202,
            json!({"seen": n, "lang": "rust"}),
        ))
    }
}

squall_plugin::sensor!(Conformance);
