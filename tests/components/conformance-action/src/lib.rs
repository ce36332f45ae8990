//! The conformance action with the Rust SDK (see `tests/fixtures/conformance/README.md`).

use serde::Deserialize;
use serde_json::{Value, json};
use squall_plugin::{Context, Error, http, log};

#[derive(Deserialize)]
struct Params {
    op: String,
    text: String,
    count: i64,
    flag: bool,
    data: Value,
    url: String,
}

fn run(ctx: &Context, p: Params) -> Result<Value, Error> {
    match p.op.as_str() {
        "echo" => Ok(json!({"text": p.text, "count": p.count, "flag": p.flag, "data": p.data})),
        "fail" => Err(Error::with_result(
            "conformance failure",
            json!({"code": 42, "text": p.text}),
        )),
        "log" => {
            log::debug("debug line");
            log::info("info line");
            log::warn("warn line");
            log::error("error line");
            Ok(json!({"logged": 4}))
        }
        "context" => Ok(json!({
            "execution_id": ctx.execution_id,
            "action_ref": ctx.action_ref,
            "pack": ctx.pack,
            "user": ctx.user,
        })),
        "http" => {
            let answer = http::Request::new("GET", &p.url)
                .send()
                .map_err(|e| Error::new(format!("http: {e}")))?;
            Ok(json!({"status": answer.status, "body": answer.text()}))
        }
        other => Err(Error::new(format!("unknown op {other}"))),
    }
}

squall_plugin::action!(run);
