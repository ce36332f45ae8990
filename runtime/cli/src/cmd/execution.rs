//! `squall execution list|get|tail|cancel|pause|resume|re-run`.

use super::run::{FollowArgs, declared, execution, follow, parse_parameters, summary, user};
use crate::Failure;
use crate::client::{Client, query};
use crate::output::{
    bytes, elapsed, json_text, one_line, out, print_json, print_table, printable, table, timestamp,
};
use crate::progress::Progress;
use clap::Subcommand;
use http::Method;
use serde_json::{Map, Value, json};
use squall_core::{Execution, ExecutionId, ExecutionStatus, Ref};
use std::collections::HashMap;

/// Most records one list request returns (the API's ceiling).
const PAGE: usize = 1000;

/// `squall execution` subcommands.
#[derive(Subcommand)]
pub enum ExecutionCommand {
    /// List executions, newest first
    List {
        /// Only this action's executions
        #[arg(long, value_name = "REF")]
        action: Option<Ref>,
        /// Only executions in this status (requested, running, succeeded, failed, timeout, ...)
        #[arg(long)]
        status: Option<ExecutionStatus>,
        /// Only the task executions of this workflow execution (adds a `task` column)
        #[arg(long, value_name = "ID")]
        parent: Option<ExecutionId>,
        /// How many to show (a server returns at most 1000 per call)
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: usize,
        /// How many to skip
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Print JSON records
        #[arg(long)]
        json: bool,
    },
    /// Show one execution: parameters, status, result, output, log, timings, limits; for a
    /// workflow, then its task executions, oldest first
    Get {
        /// The execution id
        id: ExecutionId,
        /// Print the whole record as JSON (without the task executions)
        #[arg(long)]
        json: bool,
    },
    /// Follow an execution: print each status change until it completes, then its result
    Tail {
        /// The execution id
        id: ExecutionId,
    },
    /// Cancel an execution: a queued one never runs, a running one is stopped
    Cancel {
        /// The execution id
        id: ExecutionId,
    },
    /// Pause a running workflow: no new task starts; `paused` once its running tasks end
    Pause {
        /// The workflow execution id
        id: ExecutionId,
    },
    /// Resume a paused workflow
    Resume {
        /// The workflow execution id
        id: ExecutionId,
    },
    /// Run an execution again as a new one, then wait for it as `squall run` does: a workflow
    /// from the given tasks (default: its failed tasks; tasks that completed keep their
    /// results), anything else with the same parameters, overridden by those given
    #[command(name = "re-run")]
    ReRun {
        /// The execution id
        id: ExecutionId,
        /// Workflow tasks to run again, comma-separated or repeated
        #[arg(long, value_name = "TASK", value_delimiter = ',')]
        tasks: Vec<String>,
        /// Parameters overriding the original ones, as KEY=VALUE (as `squall run` takes them);
        /// not with --tasks
        #[arg(value_name = "KEY=VALUE")]
        parameters: Vec<String>,
        #[command(flatten)]
        follow: FollowArgs,
    },
}

/// Runs a `squall execution` subcommand.
///
/// # Errors
/// Exit code 2 for an unknown execution, a request its status does not allow (HTTP 4xx) or
/// bad parameters; 3 when Squall fails.
pub async fn run(client: &Client, command: ExecutionCommand) -> Result<u8, Failure> {
    match command {
        ExecutionCommand::List {
            action,
            status,
            parent,
            limit,
            offset,
            json,
        } => {
            let path = format!(
                "/api/v1/executions{}",
                query(&[
                    ("action", action.map(|a| a.to_string())),
                    ("status", status.map(|s| s.to_string())),
                    ("parent", parent.map(|p| p.to_string())),
                    ("limit", Some(limit.to_string())),
                    ("offset", Some(offset.to_string())),
                ])
            );
            let reply = client.get(&path).await?;
            let found: Vec<Execution> =
                serde_json::from_value(reply.body).map_err(Failure::internal)?;
            if json {
                print_json(&found);
            } else {
                let tasks = parent.is_some();
                let mut header = vec!["id"];
                if tasks {
                    header.push("task");
                }
                header.extend(["action.ref", "context.user", "status", "start_timestamp"]);
                let mut t = table(&header);
                for e in &found {
                    let mut row = vec![e.id.to_string()];
                    if tasks {
                        row.push(task_name(e));
                    }
                    row.extend([
                        e.action.reference.to_string(),
                        e.user().to_string(),
                        status_text(e),
                        timestamp(&e.start_timestamp),
                    ]);
                    t.add_row(row);
                }
                print_table(&t);
                if let Some(total) = reply.total.filter(|t| *t as usize > found.len()) {
                    eprintln!(
                        "({} of {total} shown; use -n and --offset for more)",
                        found.len()
                    );
                }
            }
            Ok(0)
        }
        ExecutionCommand::Get { id, json } => {
            let e = execution(client.get(&format!("/api/v1/executions/{id}")).await?.body)?;
            if json {
                print_json(&e);
            } else {
                print_table(&details(&e));
                if e.action.runner_type.is_conducted() {
                    let tasks = tasks_of(client, &e).await?;
                    if !tasks.is_empty() {
                        out("\n");
                        print_table(&task_table(&tasks));
                    }
                }
            }
            Ok(0)
        }
        ExecutionCommand::Tail { id } => {
            let mut seen = 0;
            loop {
                let e = execution(client.get(&format!("/api/v1/executions/{id}")).await?.body)?;
                for change in &e.log[seen..] {
                    out(&format!(
                        "{} {}\n",
                        timestamp(&change.timestamp),
                        change.status
                    ));
                }
                seen = e.log.len();
                if e.status.is_completed() {
                    for (name, text) in [("stdout", &e.output.stdout), ("stderr", &e.output.stderr)]
                    {
                        if !text.is_empty() {
                            out(&format!("{name}:\n{}\n", printable(text.trim_end())));
                        }
                    }
                    out(&summary(&e));
                    return Ok(if e.status == ExecutionStatus::Succeeded {
                        0
                    } else {
                        1
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        ExecutionCommand::Cancel { id } => {
            let e = execution(
                client
                    .call(
                        http::Method::DELETE,
                        &format!("/api/v1/executions/{id}"),
                        None,
                    )
                    .await?
                    .body,
            )?;
            out(&summary(&e));
            Ok(0)
        }
        ExecutionCommand::Pause { id } => control(client, id, "pausing").await,
        ExecutionCommand::Resume { id } => control(client, id, "resuming").await,
        ExecutionCommand::ReRun {
            id,
            tasks,
            parameters,
            follow: how,
        } => {
            if !tasks.is_empty() && !parameters.is_empty() {
                return Err(Failure::input(
                    "--tasks and KEY=VALUE parameters cannot be combined: a workflow re-run \
                     from tasks keeps the original parameters",
                ));
            }
            let old = execution(client.get(&format!("/api/v1/executions/{id}")).await?.body)?;
            let overrides = if parameters.is_empty() {
                Map::new()
            } else {
                parse_parameters(&declared(client, &old.action.reference).await?, &parameters)?
            };
            how.check(client)?;
            let progress = Progress::start(format!("re-running {}", old.action.reference));
            let body = json!({"tasks": tasks, "parameters": overrides, "user": user()});
            let requested = execution(
                client
                    .call(
                        Method::POST,
                        &format!("/api/v1/executions/{id}/re_run"),
                        Some(body),
                    )
                    .await?
                    .body,
            )?;
            follow(client, &how, requested, progress).await
        }
    }
}

/// Asks for a status change (`pausing`, `resuming`) and prints the summary after it.
async fn control(client: &Client, id: ExecutionId, status: &str) -> Result<u8, Failure> {
    let e = execution(
        client
            .call(
                Method::PUT,
                &format!("/api/v1/executions/{id}"),
                Some(json!({"status": status})),
            )
            .await?
            .body,
    )?;
    out(&summary(&e));
    Ok(0)
}

/// The task a workflow's task execution runs (`context.orquesta.task_name`), with `[i]` for
/// the i-th item of a with-items task; empty for other executions.
fn task_name(e: &Execution) -> String {
    if let Some(node) = e.context.get("chain") {
        return node
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
    }
    let orquesta = e.context.get("orquesta");
    let name = orquesta
        .and_then(|o| o.get("task_name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match orquesta.and_then(|o| o.get("item_id")) {
        None | Some(Value::Null) => name.to_string(),
        Some(item) => format!("{name}[{}]", one_line(item)),
    }
}

/// Every task execution of workflow `wf`, oldest first (in the order they were requested).
async fn tasks_of(client: &Client, wf: &Execution) -> Result<Vec<Execution>, Failure> {
    let mut found: Vec<Execution> = Vec::new();
    loop {
        let path = format!(
            "/api/v1/executions{}",
            query(&[
                ("parent", Some(wf.id.to_string())),
                ("limit", Some(PAGE.to_string())),
                ("offset", Some(found.len().to_string())),
            ])
        );
        let reply = client.get(&path).await?;
        let page: Vec<Execution> = serde_json::from_value(reply.body).map_err(|e| {
            Failure::internal(format!("unexpected task executions of {}: {e}", wf.id))
        })?;
        let short = page.len() < PAGE;
        found.extend(page);
        if short || reply.total.is_some_and(|t| found.len() as u64 >= t) {
            break;
        }
    }
    // `children` is the request order; ids are time-sortable for any not listed there.
    let requested: HashMap<ExecutionId, usize> = wf
        .children
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, i))
        .collect();
    found.sort_by_key(|e| {
        let at = requested.get(&e.id).copied().unwrap_or(usize::MAX);
        (at, e.start_timestamp, e.id)
    });
    Ok(found)
}

/// The task table `execution get` prints after a workflow's details.
fn task_table(tasks: &[Execution]) -> comfy_table::Table {
    let mut t = table(&["id", "task", "action.ref", "status", "start_timestamp"]);
    for e in tasks {
        t.add_row(vec![
            e.id.to_string(),
            task_name(e),
            e.action.reference.to_string(),
            status_text(e),
            timestamp(&e.start_timestamp),
        ]);
    }
    t
}

fn status_text(e: &Execution) -> String {
    match e.elapsed_seconds {
        Some(s) => format!("{} ({})", e.status, elapsed(s)),
        None => e.status.to_string(),
    }
}

/// The property/value table of `execution get`.
fn details(e: &Execution) -> comfy_table::Table {
    let mut t = table(&["property", "value"]);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![k.to_string(), v]);
    };
    row("id", e.id.to_string());
    if let Some(parent) = &e.parent {
        row("parent", parent.to_string());
        row("task", task_name(e));
    }
    row("action.ref", e.action.reference.to_string());
    row("context.user", e.user().to_string());
    row(
        "parameters",
        json_text(&serde_json::Value::Object(e.parameters.clone())),
    );
    row("status", status_text(e));
    row("start_timestamp", timestamp(&e.start_timestamp));
    if let Some(end) = &e.end_timestamp {
        row("end_timestamp", timestamp(end));
    }
    row("result", json_text(&e.result));
    if let Some(l) = &e.limits {
        row(
            "limits",
            format!(
                "fuel {}, timeout {} s, memory {}, max_output {}",
                l.fuel,
                l.timeout.as_secs_f64(),
                bytes(l.memory),
                bytes(l.max_output)
            ),
        );
    }
    if let Some(u) = &e.usage {
        row("fuel_consumed", u.fuel_consumed.to_string());
        row("component", format!("sha256:{}", u.component_sha256));
    }
    let o = &e.output;
    if !o.stdout.is_empty() || o.stdout_dropped_bytes > 0 {
        row(
            "stdout",
            with_dropped(&printable(&o.stdout), o.stdout_dropped_bytes, "bytes"),
        );
    }
    if !o.stderr.is_empty() || o.stderr_dropped_bytes > 0 {
        row(
            "stderr",
            with_dropped(&printable(&o.stderr), o.stderr_dropped_bytes, "bytes"),
        );
    }
    if !o.log.is_empty() || o.log_dropped_lines > 0 {
        let lines: Vec<String> = o
            .log
            .iter()
            .map(|l| format!("{:5} {}", l.level, printable(&l.message)))
            .collect();
        row(
            "output.log",
            with_dropped(&lines.join("\n"), o.log_dropped_lines, "lines"),
        );
    }
    if !o.denials.is_empty() {
        row("denials", o.denials.join("\n"));
    }
    if !e.commands.is_empty() {
        row("commands", commands_text(&e.commands));
    }
    let log: Vec<String> = e
        .log
        .iter()
        .map(|c| format!("{} {}", timestamp(&c.timestamp), c.status))
        .collect();
    row("log", log.join("\n"));
    t
}

/// One line per command run: host, argv (shell-quoted), how it ended, duration, bytes, user
/// and process id.
fn commands_text(commands: &[squall_core::execution::CommandRun]) -> String {
    commands
        .iter()
        .map(|c| {
            let argv: Vec<String> = c
                .argv
                .iter()
                .map(|w| squall_core::command::shell_quote(w))
                .collect();
            let end = match (c.exit_code, c.signal) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => c.ended.clone(),
            };
            format!(
                "{}: {} → {end} in {} ms, {} out, {} err (user {}, pid {})",
                c.host,
                printable(&argv.join(" ")),
                c.duration_ms,
                bytes(c.stdout_bytes),
                bytes(c.stderr_bytes),
                c.user,
                c.pid
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn with_dropped(text: &str, dropped: u64, unit: &str) -> String {
    let text = text.trim_end();
    if dropped == 0 {
        text.to_string()
    } else {
        format!("{text}\n[... {dropped} more {unit} dropped: over max_output]")
    }
}
