//! `squall run <ref> [k=v ...]`.

use crate::Failure;
use crate::output::{elapsed, json_text, out, print_json};
use crate::progress::Progress;
use crate::settings::{Settings, warn_pack_errors};
use clap::Args;
use serde_json::{Map, Value};
use squall_core::param::Parameters;
use squall_core::{Execution, ExecutionStatus, Ref};
use squall_server::RequestError;

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
    /// Print the whole execution record as JSON
    #[arg(long)]
    json: bool,
}

/// Who runs it: `$USER`, else `squall`.
fn user() -> String {
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

/// The summary `squall run` prints.
pub fn summary(e: &Execution) -> String {
    let took = e.elapsed_seconds.map(elapsed).unwrap_or_default();
    let mut text = format!(
        "id: {}  status: {} ({took})\nresult: {}\n",
        e.id,
        e.status,
        json_text(&e.result)
    );
    for denial in &e.output.denials {
        text.push_str(&format!("denied: {denial}\n"));
    }
    text
}

pub async fn run(settings: &Settings, args: RunArgs) -> Result<u8, Failure> {
    let reference: Ref = args.reference.parse().map_err(Failure::input)?;
    let runner = settings.runner()?;
    let packs = runner.registry().packs();
    let Some(action) = packs.action(&reference) else {
        warn_pack_errors(packs);
        return Err(Failure::input(format!(
            "action {reference} not found in {} (see `squall action list`)",
            settings.packs_dir.display()
        )));
    };
    let given = parse_parameters(&action.parameters, &args.parameters)?;
    let progress = Progress::start(format!("running {reference}"));
    let execution = runner
        .run(&reference, &given, &user())
        .await
        .map_err(|e| match e {
            RequestError::Store(_) => Failure::internal(e),
            other => Failure::input(other),
        })?;
    drop(progress);
    let shown = execution.masked();
    if args.json {
        print_json(&shown);
    } else {
        out(&summary(&shown));
    }
    Ok(if execution.status == ExecutionStatus::Succeeded {
        0
    } else {
        1
    })
}
