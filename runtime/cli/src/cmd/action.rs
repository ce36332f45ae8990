//! `squall action list|get`.

use crate::Failure;
use crate::client::Client;
use crate::output::{bytes, json_text, out, print_json, print_table, table, text};
use clap::Subcommand;
use serde_json::Value;
use squall_core::Ref;

/// `squall action` subcommands.
#[derive(Subcommand)]
pub enum ActionCommand {
    /// List the actions of the loaded packs
    List {
        /// Only this pack's actions
        #[arg(long)]
        pack: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one action: parameters, limits, capabilities, and whether its component loads
    Get {
        /// Action ref, e.g. core.http
        reference: Ref,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: ActionCommand) -> Result<u8, Failure> {
    match command {
        ActionCommand::List { pack, json } => {
            let list = client
                .list(
                    "/api/v1/actions",
                    &[("pack", pack), ("limit", Some("1000".into()))],
                )
                .await?;
            if json {
                print_json(&list);
                return Ok(0);
            }
            let mut t = table(&["ref", "pack", "runner_type", "description"]);
            for a in list.as_array().into_iter().flatten() {
                t.add_row(["ref", "pack", "runner_type", "description"].map(|k| text(&a[k])));
            }
            print_table(&t);
            Ok(0)
        }
        ActionCommand::Get { reference, json } => {
            let a = client
                .get(&format!("/api/v1/actions/{reference}"))
                .await?
                .body;
            if json {
                print_json(&a);
                return Ok(0);
            }
            let mut t = table(&["property", "value"]);
            for key in [
                "ref",
                "description",
                "enabled",
                "runner_type",
                "entry_point",
                "metadata_file",
                "idempotent",
            ] {
                t.add_row(vec![key.to_string(), text(&a[key])]);
            }
            let l = &a["limits"];
            let mut limits = format!(
                "fuel {}, timeout {} s, memory {}, max_output {}",
                l["fuel"],
                l["timeout"],
                bytes(l["memory"].as_u64().unwrap_or(0)),
                bytes(l["max_output"].as_u64().unwrap_or(0))
            );
            if let Some(capped) = a["limits_capped_by_operator"]
                .as_array()
                .filter(|c| !c.is_empty())
            {
                let names: Vec<String> = capped.iter().map(text).collect();
                limits.push_str(&format!(" (capped by the operator: {})", names.join(", ")));
            }
            t.add_row(vec!["limits".to_string(), limits]);
            t.add_row(vec![
                "http requested".to_string(),
                json_text(&a["capabilities"]["http_requested"]),
            ]);
            t.add_row(vec![
                "http granted".to_string(),
                json_text(&a["capabilities"]["http_granted"]),
            ]);
            let c = &a["component"];
            let status = match c["sha256"].as_str() {
                Some(sha) => format!("{} (sha256:{sha})", text(&c["path"])),
                None => format!("BROKEN: {}", text(&c["error"])),
            };
            t.add_row(vec!["component".to_string(), status]);
            print_table(&t);
            let params = a["parameters"].as_object().cloned().unwrap_or_default();
            if !params.is_empty() {
                let mut p = table(&[
                    "parameter",
                    "type",
                    "required",
                    "default",
                    "flags",
                    "description",
                ]);
                for (name, spec) in &params {
                    let flags: Vec<String> = ["immutable", "secret"]
                        .into_iter()
                        .filter(|f| spec[*f] == Value::Bool(true))
                        .map(str::to_string)
                        .chain(spec["position"].as_u64().map(|n| format!("position {n}")))
                        .collect();
                    p.add_row(vec![
                        name.clone(),
                        text(&spec["type"]),
                        (spec["required"] == Value::Bool(true)).to_string(),
                        if spec["default"].is_null() {
                            String::new()
                        } else {
                            json_text(&spec["default"])
                        },
                        flags.join(", "),
                        text(&spec["description"]),
                    ]);
                }
                out("\n");
                print_table(&p);
            }
            Ok(0)
        }
    }
}
