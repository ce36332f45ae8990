//! `remediation.restart_service`: POSTs `{"service", "host"}` to `<endpoint>/restart` and
//! reports what the endpoint said. Fails unless it answers 2xx.

use serde::{Deserialize, Serialize};
use serde_json::json;
use squall_plugin::{Context, Error, http, log};
use std::time::Duration;

#[derive(Deserialize)]
struct Params {
    service: String,
    host: String,
    endpoint: String,
}

#[derive(Serialize)]
struct Output {
    service: String,
    host: String,
    restarted: bool,
    status_code: u16,
    response: String,
}

fn restart(ctx: &Context, p: Params) -> Result<Output, Error> {
    let url = format!("{}/restart", p.endpoint.trim_end_matches('/'));
    log::info(format!(
        "{}: restarting {} on {} via {url}",
        ctx.execution_id, p.service, p.host
    ));
    let body = json!({"service": p.service, "host": p.host, "execution": ctx.execution_id});
    let resp = http::Request::new("POST", &url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(10))
        .send()?;
    let out = Output {
        service: p.service,
        host: p.host,
        restarted: (200..300).contains(&resp.status),
        status_code: resp.status,
        response: resp.text(),
    };
    if out.restarted {
        Ok(out)
    } else {
        Err(Error::with_result(
            format!("{url} answered {}", out.status_code),
            out,
        ))
    }
}

squall_plugin::action!(restart);
