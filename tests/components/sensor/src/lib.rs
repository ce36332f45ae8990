//! A sensor component for the tests: what it does is picked by the sensor's class name (the
//! part of its ref after the pack), its pack config gives details.
//!
//! | class name | `poll` |
//! |---|---|
//! | `Noop` | nothing |
//! | `Counter` | increments the pack-local key `n` and emits `<pack>.tick` `{"n": n}` |
//! | `Loop…` | spins forever (fuel or the wall clock must stop it) |
//! | `Flood` | emits `<pack>.tick` until the host refuses, then returns `Ok` |
//! | `Burst` | emits 100 `<pack>.tick` per poll, counting in key `n`, until `n` reaches config `total` (default 3000) |
//! | `Fail` | returns an error |
//! | `Secret` | reads the system key named by config `key` and emits `<pack>.tick` `{"n": <its length>}` |
//!
//! `webhook` (any class name): emits `<pack>.tick` `{"n": <body length>}` and answers 202
//! `{"seen": <body length>}`, plus `"headers": [<names>]` (the header names it was handed)
//! when the request has an `x-echo-headers` header.

use serde_json::json;
use squall_plugin::Error;
use squall_plugin::sensor::{self, Sensor, SensorContext, WebhookRequest, WebhookResponse};
use std::hint::black_box;

struct Test;

fn tick(ctx: &SensorContext) -> String {
    format!("{}.tick", ctx.pack)
}

impl Sensor for Test {
    fn poll(ctx: &SensorContext) -> Result<(), Error> {
        let class = ctx.sensor_ref.rsplit('.').next().unwrap_or_default();
        match class {
            "Noop" => Ok(()),
            "Counter" => {
                let n: u64 = sensor::datastore::get("n")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
                    + 1;
                sensor::datastore::set("n", &n.to_string(), None)?;
                squall_plugin::log::info(format!("tick {n}"));
                sensor::emit(&tick(ctx), &json!({"n": n}))
            }
            c if c.starts_with("Loop") => {
                let mut x: u64 = 0;
                loop {
                    x = black_box(x.wrapping_add(1));
                }
            }
            "Flood" => {
                let mut n = 0u64;
                while sensor::emit(&tick(ctx), &json!({"n": n})).is_ok() {
                    n += 1;
                }
                Ok(())
            }
            "Secret" => {
                let key = ctx
                    .config
                    .get("key")
                    .and_then(|k| k.as_str())
                    .unwrap_or("secret");
                let value = sensor::datastore::get_system(key)?.unwrap_or_default();
                sensor::emit(&tick(ctx), &json!({"n": value.len()}))
            }
            "Burst" => {
                let n: u64 = sensor::datastore::get("n")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let total = ctx
                    .config
                    .get("total")
                    .and_then(|t| t.as_u64())
                    .unwrap_or(3000);
                let end = (n + 100).min(total);
                for i in n..end {
                    sensor::emit(&tick(ctx), &json!({"n": i + 1}))?;
                }
                sensor::datastore::set("n", &end.to_string(), None)
            }
            "Fail" => Err(Error::new("the outside system is down")),
            other => Err(Error::new(format!("unknown test sensor class {other:?}"))),
        }
    }

    fn webhook(ctx: &SensorContext, request: WebhookRequest) -> Result<WebhookResponse, Error> {
        let n = request.body.len();
        sensor::emit(&tick(ctx), &json!({"n": n}))?;
        if request.header("x-echo-headers").is_some() {
            let names: Vec<&str> = request.headers.iter().map(|(k, _)| k.as_str()).collect();
            return Ok(WebhookResponse::new(
                202,
                json!({"seen": n, "headers": names}),
            ));
        }
        Ok(WebhookResponse::new(202, json!({"seen": n})))
    }
}

squall_plugin::sensor!(Test);
