//! `squall run <ref> [k=v ...]`.

use crate::Failure;
use crate::client::Client;
use crate::output::{elapsed, json_text, out, print_json};
use crate::progress::Progress;
use clap::Args;
use http::Method;
use serde_json::{Map, Value, json};
use squall_core::param::Parameters;
use squall_core::{Execution, ExecutionStatus, Ref};
use std::time::Duration;

/// `squall run` arguments.
#[derive(Args)]
pub struct RunArgs {
    /// Action ref, e.g. core.echo
    reference: String,
    /// Parameters as KEY=VALUE, converted to each parameter's declared type as `st2 run` does
    /// (numbers, true/false, comma lists, JSON objects). A VALUE without KEY= fills the next
    /// parameter that has a `position`.
    #[arg(value_name = "KEY=VALUE")]
    parameters: Vec<String>,
    /// Print the whole execution record as JSON
    #[arg(long)]
    json: bool,
    /// Do not wait: print the execution id and return
    #[arg(long = "async", short = 'a')]
    detach: bool,
}

/// Who runs it: `$USER`, else `squall`.
pub fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "squall".into())
}

/// Turns `KEY=VALUE` and positional arguments into typed parameters.
pub fn parse_parameters(
    declared: &Parameters,
    args: &[String],
) -> Result<Map<String, Value>, Failure> {
    let mut given = Map::new();
    let mut positional = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                let value = declared.cast_cli(key, value).map_err(Failure::input)?;
                given.insert(key.to_string(), value);
            }
            _ => positional.push(arg),
        }
    }
    let named: Vec<String> = given.keys().cloned().collect();
    let mut slots = declared
        .specs()
        .into_iter()
        .filter(|s| s.position.is_some() && !named.contains(&s.name));
    for value in positional {
        let spec = slots.next().ok_or_else(|| {
            Failure::input(format!(
                "{value:?} is not KEY=VALUE and no positional parameter is left to take it"
            ))
        })?;
        let cast = declared
            .cast_cli(&spec.name, value)
            .map_err(Failure::input)?;
        given.insert(spec.name.clone(), cast);
    }
    Ok(given)
}

/// The summary `squall run` prints.
pub fn summary(e: &Execution) -> String {
    let took = e.elapsed_seconds.map(elapsed).unwrap_or_default();
    let mut text = format!(
        "id: {}  status: {} ({took})\nresult: {}\n",
        e.id,
        e.status,
        json_text(&e.result)
    );
    for denial in &e.output.denials {
        text.push_str(&format!("denied: {denial}\n"));
    }
    text
}

/// Reads an execution record from an API answer.
pub fn execution(body: Value) -> Result<Execution, Failure> {
    serde_json::from_value(body)
        .map_err(|e| Failure::internal(format!("unexpected execution record: {e}")))
}

/// Polls until the execution completes.
pub async fn wait(client: &Client, id: &str) -> Result<Execution, Failure> {
    let mut pause = Duration::from_millis(10);
    loop {
        let e = execution(client.get(&format!("/api/v1/executions/{id}")).await?.body)?;
        if e.status.is_completed() {
            return Ok(e);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

pub async fn run(client: &Client, args: RunArgs) -> Result<u8, Failure> {
    let reference: Ref = args.reference.parse().map_err(Failure::input)?;
    let action = client
        .get(&format!("/api/v1/actions/{reference}"))
        .await?
        .body;
    let declared = action
        .get("parameters")
        .and_then(Value::as_object)
        .map(Parameters::from_yaml)
        .transpose()
        .map_err(Failure::internal)?
        .unwrap_or(Parameters::from_yaml(&Map::new()).map_err(Failure::internal)?);
    let given = parse_parameters(&declared, &args.parameters)?;
    if args.detach && client.is_local() {
        return Err(Failure::input(
            "--async needs a running `squall serve` to finish the work (no server answered); \
             run without --async to wait here",
        ));
    }
    let progress = Progress::start(format!("running {reference}"));
    let body = json!({"action": reference.to_string(), "parameters": given, "user": user()});
    let requested = execution(
        client
            .call(Method::POST, "/api/v1/executions", Some(body))
            .await?
            .body,
    )?;
    if args.detach {
        drop(progress);
        if args.json {
            print_json(&requested);
        } else {
            out(&format!(
                "id: {}  status: {}\n",
                requested.id, requested.status
            ));
        }
        return Ok(0);
    }
    let done = wait(client, &requested.id.to_string()).await?;
    drop(progress);
    if args.json {
        print_json(&done);
    } else {
        out(&summary(&done));
    }
    Ok(if done.status == ExecutionStatus::Succeeded {
        0
    } else {
        1
    })
}
