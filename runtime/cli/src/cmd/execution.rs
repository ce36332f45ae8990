//! `squall execution list|get|tail|cancel`.

use super::run::{execution, summary};
use crate::Failure;
use crate::client::{Client, query};
use crate::output::{
    bytes, elapsed, json_text, out, print_json, print_table, printable, table, timestamp,
};
use clap::Subcommand;
use squall_core::{Execution, ExecutionId, ExecutionStatus, Ref};

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
    /// Show one execution: parameters, status, result, output, log, timings, limits
    Get {
        /// The execution id
        id: ExecutionId,
        /// Print the whole record as JSON
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
}

pub async fn run(client: &Client, command: ExecutionCommand) -> Result<u8, Failure> {
    match command {
        ExecutionCommand::List {
            action,
            status,
            limit,
            offset,
            json,
        } => {
            let path = format!(
                "/api/v1/executions{}",
                query(&[
                    ("action", action.map(|a| a.to_string())),
                    ("status", status.map(|s| s.to_string())),
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
                let mut t = table(&[
                    "id",
                    "action.ref",
                    "context.user",
                    "status",
                    "start_timestamp",
                ]);
                for e in &found {
                    t.add_row(vec![
                        e.id.to_string(),
                        e.action.reference.to_string(),
                        e.user().to_string(),
                        status_text(e),
                        timestamp(&e.start_timestamp),
                    ]);
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
    }
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
    let log: Vec<String> = e
        .log
        .iter()
        .map(|c| format!("{} {}", timestamp(&c.timestamp), c.status))
        .collect();
    row("log", log.join("\n"));
    t
}

fn with_dropped(text: &str, dropped: u64, unit: &str) -> String {
    let text = text.trim_end();
    if dropped == 0 {
        text.to_string()
    } else {
        format!("{text}\n[... {dropped} more {unit} dropped: over max_output]")
    }
}
