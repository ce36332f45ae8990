//! `squall pack config`: a pack's config as loaded (`configs/<pack>.yaml` against its
//! `config.schema.yaml`), like `st2 pack config` shows it.

use crate::Failure;
use crate::client::{Client, query};
use crate::output::{json_text, print_json, print_table, table};
use clap::Subcommand;
use serde_json::Value;

/// `squall pack` subcommands.
#[derive(Subcommand)]
pub enum PackCommand {
    /// Show a pack's config: values as written (templates are rendered only when used),
    /// defaults filled in, secrets shown as ******** unless --show-secrets. Problems found at
    /// load are printed on stderr and the exit code is 2.
    Config {
        /// Pack ref, e.g. core
        pack: String,
        /// Show secret values
        #[arg(long)]
        show_secrets: bool,
        /// Print JSON (StackStorm's config record: pack, values; plus file, errors)
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: PackCommand) -> Result<u8, Failure> {
    match command {
        PackCommand::Config {
            pack,
            show_secrets,
            json,
        } => {
            let path = format!(
                "/api/v1/configs/{pack}{}",
                query(&[("show_secrets", show_secrets.then(|| "true".to_string()))])
            );
            let config = client.get(&path).await?.body;
            if json {
                print_json(&config);
            } else {
                let mut t = table(&["key", "value"]);
                for (key, value) in config["values"].as_object().into_iter().flatten() {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => json_text(other),
                    };
                    t.add_row(vec![key.clone(), text]);
                }
                print_table(&t);
            }
            let errors = config["errors"].as_array().cloned().unwrap_or_default();
            for e in &errors {
                eprintln!("error: {}", e.as_str().unwrap_or_default());
            }
            Ok(if errors.is_empty() { 0 } else { 2 })
        }
    }
}
