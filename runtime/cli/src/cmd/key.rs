//! `squall key set|get|list|delete`: the datastore's system scope (`st2kv.system`).

use crate::Failure;
use crate::client::{Client, query};
use crate::output::{out, print_json, print_table, records};
use clap::Subcommand;
use http::Method;
use serde_json::json;

/// `squall key` subcommands.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Set a key
    Set {
        /// Key name
        name: String,
        /// Value (text; JSON text for structure)
        value: String,
    },
    /// Print a key's value
    Get {
        /// Key name
        name: String,
        /// Print the whole record as JSON
        #[arg(long)]
        json: bool,
    },
    /// List keys
    List {
        /// Only keys starting with this
        #[arg(long)]
        prefix: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a key
    Delete {
        /// Key name
        name: String,
    },
}

pub async fn run(client: &Client, command: KeyCommand) -> Result<u8, Failure> {
    match command {
        KeyCommand::Set { name, value } => {
            let kv = client
                .call(
                    Method::PUT,
                    &format!("/api/v1/keys/{name}"),
                    Some(json!({"name": name, "value": value})),
                )
                .await?
                .body;
            print_table(&records(
                &json!([kv]),
                &[("name", "/name"), ("value", "/value"), ("scope", "/scope")],
            ));
        }
        KeyCommand::Get { name, json } => {
            let kv = client.get(&format!("/api/v1/keys/{name}")).await?.body;
            if json {
                print_json(&kv);
            } else {
                out(&format!("{}\n", kv["value"].as_str().unwrap_or_default()));
            }
        }
        KeyCommand::List { prefix, json } => {
            let list = client
                .get(&format!("/api/v1/keys{}", query(&[("prefix", prefix)])))
                .await?
                .body;
            if json {
                print_json(&list);
            } else {
                print_table(&records(
                    &list,
                    &[("name", "/name"), ("value", "/value"), ("scope", "/scope")],
                ));
            }
        }
        KeyCommand::Delete { name } => {
            client
                .call(Method::DELETE, &format!("/api/v1/keys/{name}"), None)
                .await?;
            out(&format!("deleted {name}\n"));
        }
    }
    Ok(0)
}
