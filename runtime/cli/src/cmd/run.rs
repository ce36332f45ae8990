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
    #[command(flatten)]
    follow: FollowArgs,
}

/// What to do with an execution once requested (`squall run`, `squall execution re-run`).
#[derive(Args)]
pub struct FollowArgs {
    /// Print the whole execution record as JSON
    #[arg(long)]
    pub json: bool,
    /// Do not wait: print the execution id and return (needs a running `squall serve`)
    #[arg(long = "async", short = 'a')]
    pub detach: bool,
}

impl FollowArgs {
    /// Refuses `--async` when nothing would finish the work once this process exits.
    ///
    /// # Errors
    /// Exit code 2 when `--async` is given and the client runs in-process.
    pub fn check(&self, client: &Client) -> Result<(), Failure> {
        if self.detach && client.is_local() {
            return Err(Failure::input(
                "--async needs a running `squall serve` to finish the work (no server answered); \
                 run without --async to wait here",
            ));
        }
        Ok(())
    }
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

/// The summary `squall run` prints: `id: <id>  status: <status> (<elapsed>)`, then the result
/// (and any denials). The elapsed time is left out until the execution completes.
pub fn summary(e: &Execution) -> String {
    let took = e
        .elapsed_seconds
        .map(|s| format!(" ({})", elapsed(s)))
        .unwrap_or_default();
    let mut text = format!(
        "id: {}  status: {}{took}\nresult: {}\n",
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

/// Whether `run` stops waiting: the execution completed, or it waits for someone (`pending`
/// on an inquiry, or a workflow `paused`), as `st2 run` stops waiting.
pub fn is_settled(status: ExecutionStatus) -> bool {
    status.is_completed() || matches!(status, ExecutionStatus::Pending | ExecutionStatus::Paused)
}

/// Polls until the execution completes or waits for someone (see [`is_settled`]).
pub async fn wait(client: &Client, id: &str) -> Result<Execution, Failure> {
    let mut pause = Duration::from_millis(10);
    loop {
        let e = execution(client.get(&format!("/api/v1/executions/{id}")).await?.body)?;
        if is_settled(e.status) {
            return Ok(e);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// The declared parameters of the action `reference`, read from the API.
///
/// # Errors
/// Exit code 2 when the action is unknown; 3 when its schema cannot be read.
pub async fn declared(client: &Client, reference: &Ref) -> Result<Parameters, Failure> {
    let action = client
        .get(&format!("/api/v1/actions/{reference}"))
        .await?
        .body;
    let empty = Map::new();
    let schema = action
        .get("parameters")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    Parameters::from_yaml(schema).map_err(Failure::internal)
}

/// Runs `squall run`.
///
/// # Errors
/// Exit code 2 for a bad ref, bad parameters or an unknown action; 3 when Squall fails.
pub async fn run(client: &Client, args: RunArgs) -> Result<u8, Failure> {
    let reference: Ref = args.reference.parse().map_err(Failure::input)?;
    let given = parse_parameters(&declared(client, &reference).await?, &args.parameters)?;
    args.follow.check(client)?;
    let progress = Progress::start(format!("running {reference}"));
    let body = json!({"action": reference.to_string(), "parameters": given, "user": user()});
    let requested = execution(
        client
            .call(Method::POST, "/api/v1/executions", Some(body))
            .await?
            .body,
    )?;
    follow(client, &args.follow, requested, progress).await
}

/// What `run` does once the execution is requested: with `--async` print its id (or record)
/// and return 0; else wait for it (see [`wait`]), print the summary (or the record with
/// `--json`) and return 0 if it succeeded, 1 if not. `progress` is cleared before printing.
///
/// # Errors
/// API failures while polling.
pub async fn follow(
    client: &Client,
    args: &FollowArgs,
    requested: Execution,
    progress: Progress,
) -> Result<u8, Failure> {
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
    if let Some(note) = waiting_note(client, &done) {
        eprintln!("note: {note}");
    }
    Ok(if done.status == ExecutionStatus::Succeeded {
        0
    } else {
        1
    })
}

/// Why `run` returned before the execution completed, and what goes on from here.
fn waiting_note(client: &Client, e: &Execution) -> Option<String> {
    let id = e.id;
    match e.status {
        ExecutionStatus::Pending => Some(format!(
            "execution {id} is pending: it waits for a response \
             (squall inquiry respond {id} '<json>')"
        )),
        ExecutionStatus::Paused => {
            let later = if client.is_local() {
                "; a `squall serve` then carries it on (nothing runs it once this process exits)"
            } else {
                ""
            };
            Some(format!(
                "execution {id} is paused: it goes on once its inquiries are answered \
                 (squall inquiry list) or it is resumed (squall execution resume {id}){later}"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_stops_waiting_when_completed_or_waiting_for_someone() {
        for (status, settled) in [
            (ExecutionStatus::Requested, false),
            (ExecutionStatus::Running, false),
            (ExecutionStatus::Pausing, false),
            (ExecutionStatus::Resuming, false),
            (ExecutionStatus::Canceling, false),
            (ExecutionStatus::Pending, true),
            (ExecutionStatus::Paused, true),
            (ExecutionStatus::Succeeded, true),
            (ExecutionStatus::Failed, true),
            (ExecutionStatus::Canceled, true),
        ] {
            assert_eq!(is_settled(status), settled, "{status}");
        }
    }
}
