//! `squall policy list|get`, as `st2 policy list|get`.

use crate::Failure;
use crate::client::Client;
use crate::output::{print_record, print_records};
use clap::Subcommand;
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

const PROPERTIES: [(&str, &str); 7] = [
    ("ref", "/ref"),
    ("description", "/description"),
    ("enabled", "/enabled"),
    ("resource_ref", "/resource_ref"),
    ("policy_type", "/policy_type"),
    ("parameters", "/parameters"),
    ("metadata_file", "/metadata_file"),
];

pub async fn run(client: &Client, command: PolicyCommand) -> Result<u8, Failure> {
    match command {
        PolicyCommand::List {
            pack,
            action,
            policy_type,
            json,
        } => {
            let list = client
                .list(
                    "/api/v1/policies",
                    &[
                        ("pack", pack),
                        ("resource_ref", action.map(|a| a.to_string())),
                        ("policy_type", policy_type),
                        ("limit", Some("1000".into())),
                    ],
                )
                .await?;
            print_records(&list, &COLUMNS, json);
        }
        PolicyCommand::Get { reference, json } => {
            let p = client
                .get(&format!("/api/v1/policies/{reference}"))
                .await?
                .body;
            print_record(&p, &PROPERTIES, json);
        }
    }
    Ok(0)
}
