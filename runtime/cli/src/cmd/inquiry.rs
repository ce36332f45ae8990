//! `squall inquiry list|get|respond`: questions `core.ask` asks (StackStorm's inquiries), and
//! answering them so the waiting workflow goes on.

use crate::Failure;
use crate::client::{Client, query};
use crate::output::{json_text, one_line, print_json, print_table, records, table, timestamp};
use clap::Subcommand;
use http::Method;
use jiff::Timestamp;
use serde_json::{Value, json};
use squall_core::ExecutionId;

/// `squall inquiry` subcommands.
#[derive(Subcommand)]
pub enum InquiryCommand {
    /// List pending inquiries, newest first
    List {
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
    /// Show one inquiry: its schema, who may answer, when it expires, the response once given
    Get {
        /// The inquiry id (the id of the `core.ask` execution)
        id: ExecutionId,
        /// Print the whole record as JSON
        #[arg(long)]
        json: bool,
    },
    /// Answer a pending inquiry with JSON matching its schema, e.g. '{"continue": true}'
    Respond {
        /// The inquiry id (the id of the `core.ask` execution)
        id: ExecutionId,
        /// The response: a JSON value (usually an object) the inquiry's schema accepts
        #[arg(value_name = "JSON")]
        response: String,
        /// Print `{id, response}` as JSON
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `squall inquiry` subcommand.
///
/// # Errors
/// Exit code 2 for a response that is not JSON, an unknown inquiry, a response the schema
/// rejects or an inquiry no longer pending (the server's reason is the message); 3 when Squall
/// fails.
pub async fn run(client: &Client, command: InquiryCommand) -> Result<u8, Failure> {
    match command {
        InquiryCommand::List {
            limit,
            offset,
            json,
        } => {
            let path = format!(
                "/api/v1/inquiries{}",
                query(&[
                    ("limit", Some(limit.to_string())),
                    ("offset", Some(offset.to_string())),
                ])
            );
            let reply = client.get(&path).await?;
            if json {
                print_json(&reply.body);
            } else {
                let columns = [
                    "id",
                    "parent",
                    "roles",
                    "users",
                    "route",
                    "ttl",
                    "expires_at",
                ];
                let mut t = table(&columns);
                for inquiry in reply.body.as_array().into_iter().flatten() {
                    t.add_row(columns.iter().map(|k| cell(inquiry, k)).collect::<Vec<_>>());
                }
                print_table(&t);
                let shown = reply.body.as_array().map_or(0, Vec::len);
                if let Some(total) = reply.total.filter(|t| *t as usize > shown) {
                    eprintln!("({shown} of {total} shown; use -n and --offset for more)");
                }
            }
        }
        InquiryCommand::Get { id, json } => {
            let inquiry = client.get(&format!("/api/v1/inquiries/{id}")).await?.body;
            if json {
                print_json(&inquiry);
            } else {
                print_table(&details(&inquiry));
            }
        }
        InquiryCommand::Respond { id, response, json } => {
            let value: Value = serde_json::from_str(&response)
                .map_err(|e| Failure::input(format!("response {response:?} is not JSON: {e}")))?;
            let answered = client
                .call(
                    Method::PUT,
                    &format!("/api/v1/inquiries/{id}"),
                    Some(json!({"id": id.to_string(), "response": value})),
                )
                .await?
                .body;
            if json {
                print_json(&answered);
            } else {
                print_table(&records(
                    &json!([answered]),
                    &[("id", "/id"), ("response", "/response")],
                ));
            }
        }
    }
    Ok(0)
}

/// The property/value table of `inquiry get`.
fn details(inquiry: &Value) -> comfy_table::Table {
    let mut t = table(&["property", "value"]);
    for key in [
        "id",
        "status",
        "parent",
        "route",
        "roles",
        "users",
        "ttl",
        "start_timestamp",
        "expires_at",
        "schema",
        "response",
    ] {
        if matches!(key, "response" | "parent") && inquiry.get(key).is_none_or(Value::is_null) {
            continue;
        }
        let value = match key {
            "schema" => inquiry.get(key).map(json_text).unwrap_or_default(),
            _ => cell(inquiry, key),
        };
        t.add_row(vec![key.to_string(), value]);
    }
    t
}

/// One field of an inquiry as a table shows it: strings bare, timestamps to the millisecond,
/// `ttl` in minutes, anything else as one-line JSON.
fn cell(inquiry: &Value, key: &str) -> String {
    match inquiry.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if key.ends_with("_timestamp") || key == "expires_at" => s
            .parse::<Timestamp>()
            .map(|t| timestamp(&t))
            .unwrap_or_else(|_| s.clone()),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if key == "ttl" => {
            format!("{} min", n.to_string().trim_end_matches(".0"))
        }
        Some(other) => one_line(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_naturally() {
        let inquiry = json!({
            "id": "01a2",
            "ttl": 1440.0,
            "roles": [],
            "route": "",
            "expires_at": "2026-12-02T10:26:41.811234567Z",
            "parent": null,
            "schema": {"type": "object"},
        });
        for (key, shown) in [
            ("id", "01a2"),
            ("ttl", "1440 min"),
            ("roles", "[]"),
            ("route", ""),
            ("expires_at", "2026-12-02T10:26:41.811Z"),
            ("parent", ""),
            ("users", ""),
            ("schema", r#"{"type": "object"}"#),
        ] {
            assert_eq!(cell(&inquiry, key), shown, "{key}");
        }
        assert_eq!(cell(&json!({"ttl": 0.5}), "ttl"), "0.5 min");
    }
}
