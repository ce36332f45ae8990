//! `squall policy list|get`, as `st2 policy list|get`.

use crate::Failure;
use crate::client::{Client, query};
use crate::output::{json_text, print_json, print_table, records, table};
use clap::Subcommand;
use serde_json::Value;
use squall_core::Ref;

/// `squall policy` subcommands.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// List the policies of the loaded packs
    List {
        /// Only this pack's policies
        #[arg(long)]
        pack: Option<String>,
        /// Only the policies of this action
        #[arg(long, value_name = "REF")]
        action: Option<Ref>,
        /// Only policies of this type: action.concurrency, action.concurrency.attr, action.retry
        #[arg(long, value_name = "TYPE")]
        policy_type: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one policy
    Get {
        /// Policy ref, e.g. ops.http.concurrency
        reference: Ref,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

const COLUMNS: [(&str, &str); 5] = [
    ("ref", "/ref"),
    ("resource_ref", "/resource_ref"),
    ("policy_type", "/policy_type"),
    ("enabled", "/enabled"),
    ("parameters", "/parameters"),
];

pub async fn run(client: &Client, command: PolicyCommand) -> Result<u8, Failure> {
    match command {
        PolicyCommand::List {
            pack,
            action,
            policy_type,
            json,
        } => {
            let path = format!(
                "/api/v1/policies{}",
                query(&[
                    ("pack", pack),
                    ("resource_ref", action.map(|a| a.to_string())),
                    ("policy_type", policy_type),
                    ("limit", Some("1000".into())),
                ])
            );
            let list = client.get(&path).await?.body;
            if json {
                print_json(&list);
            } else {
                print_table(&records(&list, &COLUMNS));
            }
        }
        PolicyCommand::Get { reference, json } => {
            let p = client
                .get(&format!("/api/v1/policies/{reference}"))
                .await?
                .body;
            if json {
                print_json(&p);
                return Ok(0);
            }
            let mut t = table(&["property", "value"]);
            for key in [
                "ref",
                "description",
                "enabled",
                "resource_ref",
                "policy_type",
                "parameters",
                "metadata_file",
            ] {
                let shown = match &p[key] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => json_text(other),
                };
                t.add_row(vec![key.to_string(), shown]);
            }
            print_table(&t);
        }
    }
    Ok(0)
}
