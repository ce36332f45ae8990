//! `squall action list|get`.

use crate::Failure;
use crate::output::{bytes, json_text, out, print_json, print_table, table};
use crate::settings::{Settings, warn_pack_errors};
use clap::Subcommand;
use serde_json::{Value, json};
use squall_core::Ref;
use squall_server::Registry;

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

pub async fn run(settings: &Settings, command: ActionCommand) -> Result<u8, Failure> {
    match command {
        ActionCommand::List { pack, json } => {
            let packs = settings.load_packs();
            warn_pack_errors(&packs);
            let actions: Vec<_> = packs
                .actions()
                .filter(|a| pack.as_deref().is_none_or(|p| a.reference.pack() == p))
                .collect();
            if json {
                let list: Vec<Value> = actions
                    .iter()
                    .map(|a| {
                        json!({
                            "ref": a.reference.to_string(),
                            "pack": a.reference.pack(),
                            "name": a.reference.name(),
                            "runner_type": a.runner_type,
                            "enabled": a.enabled,
                            "description": a.description,
                        })
                    })
                    .collect();
                print_json(&list);
            } else {
                let mut t = table(&["ref", "pack", "runner_type", "description"]);
                for a in actions {
                    t.add_row(vec![
                        a.reference.to_string(),
                        a.reference.pack().to_string(),
                        a.runner_type.to_string(),
                        a.description.clone(),
                    ]);
                }
                print_table(&t);
            }
            Ok(0)
        }
        ActionCommand::Get { reference, json } => {
            let packs = settings.load_packs();
            let registry = Registry::new(packs, settings.config.clone(), settings.host()?);
            let Some(resolved) = registry.resolve(&reference) else {
                warn_pack_errors(registry.packs());
                return Err(Failure::input(format!(
                    "action {reference} not found in {}",
                    settings.packs_dir.display()
                )));
            };
            let a = &resolved.action;
            let component = {
                let registry = &registry;
                match registry.prepare(a) {
                    Ok(c) => json!({"path": a.entry_path, "sha256": c.sha256(), "loads": true}),
                    Err(e) => json!({"path": a.entry_path, "loads": false, "error": e.to_string()}),
                }
            };
            let params: Vec<Value> = a.parameters.specs().into_iter().map(|s| json!(s)).collect();
            let record = json!({
                "ref": a.reference.to_string(),
                "pack": a.reference.pack(),
                "name": a.reference.name(),
                "description": a.description,
                "enabled": a.enabled,
                "runner_type": a.runner_type,
                "entry_point": a.entry_point,
                "metadata_file": a.metadata_file,
                "parameters": params,
                "limits": resolved.limits,
                "limits_capped_by_operator": resolved.capped,
                "capabilities": {
                    "http_requested": resolved.http.requested,
                    "http_granted": resolved.http.granted,
                },
                "component": component,
            });
            if json {
                print_json(&record);
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
            ] {
                let v = &record[key];
                t.add_row(vec![
                    key.to_string(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                ]);
            }
            let l = &resolved.limits;
            let mut limits = format!(
                "fuel {}, timeout {} s, memory {}, max_output {}",
                l.fuel,
                l.timeout.as_secs_f64(),
                bytes(l.memory),
                bytes(l.max_output)
            );
            if !resolved.capped.is_empty() {
                limits.push_str(&format!(
                    " (capped by the operator: {})",
                    resolved.capped.join(", ")
                ));
            }
            t.add_row(vec!["limits".to_string(), limits]);
            t.add_row(vec![
                "http requested".to_string(),
                json_text(&record["capabilities"]["http_requested"]),
            ]);
            t.add_row(vec![
                "http granted".to_string(),
                json_text(&record["capabilities"]["http_granted"]),
            ]);
            let c = &record["component"];
            let status = match c["sha256"].as_str() {
                Some(sha) => format!("{} (sha256:{sha})", a.entry_path.display()),
                None => format!("BROKEN: {}", c["error"].as_str().unwrap_or_default()),
            };
            t.add_row(vec!["component".to_string(), status]);
            print_table(&t);
            let mut p = table(&[
                "parameter",
                "type",
                "required",
                "default",
                "flags",
                "description",
            ]);
            for s in a.parameters.specs() {
                let mut flags = Vec::new();
                if s.immutable {
                    flags.push("immutable".to_string());
                }
                if s.secret {
                    flags.push("secret".to_string());
                }
                if let Some(pos) = s.position {
                    flags.push(format!("position {pos}"));
                }
                p.add_row(vec![
                    s.name.clone(),
                    s.kind.clone().unwrap_or_default(),
                    s.required.to_string(),
                    s.default.as_ref().map(json_text).unwrap_or_default(),
                    flags.join(", "),
                    s.description.clone().unwrap_or_default(),
                ]);
            }
            if !a.parameters.specs().is_empty() {
                out("\n");
                print_table(&p);
            }
            Ok(0)
        }
    }
}
