//! `squall workflow inspect <FILE>...`: checks Orquesta workflow files locally, as
//! `st2 workflow inspect` does, without a server.

use crate::Failure;
use crate::output::out;
use crate::settings::Settings;
use clap::Subcommand;
use squall_core::workflow::{WorkflowError, WorkflowSpec, inspect};
use squall_core::{Action, PackSet, Ref};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const INSPECT_EXIT_CODES: &str = "\
Exit codes:
  0  every file is a sound workflow
  2  a file has problems, cannot be read or does not parse (each problem printed)";

/// `squall workflow` subcommands.
#[derive(Subcommand)]
pub enum WorkflowCommand {
    /// Check workflow files before they run: syntax, `do` naming unknown tasks, expressions,
    /// variables read before they are assigned, actions the packs (--packs) do not have and
    /// their parameters. Prints `<file>: <field>: <problem>` per problem, `<file>: ok` per
    /// clean file
    #[command(after_help = INSPECT_EXIT_CODES)]
    Inspect {
        /// Workflow YAML files (e.g. packs/ops/actions/workflows/deploy.yaml)
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// Runs a `squall workflow` subcommand. Needs no server: actions come from the packs
/// directories of `settings`. Pack problems that are not about the files inspected go to
/// stderr as `warning: ...` lines.
///
/// # Errors
/// None of its own: problems in the files are printed and give exit code 2.
pub fn run(settings: &Settings, command: WorkflowCommand) -> Result<u8, Failure> {
    match command {
        WorkflowCommand::Inspect { files } => {
            let packs = settings.load_packs();
            let inspected: BTreeSet<PathBuf> = files.iter().filter_map(|f| canonical(f)).collect();
            for e in &packs.errors {
                if !canonical(&e.path).is_some_and(|p| inspected.contains(&p)) {
                    eprintln!("warning: {e}");
                }
            }
            let mut failed = 0;
            let mut problems = 0;
            for file in &files {
                let found = inspect_file(file, &packs);
                if found.is_empty() {
                    out(&format!("{}: ok\n", file.display()));
                    continue;
                }
                failed += 1;
                problems += found.len();
                let lines: String = found
                    .iter()
                    .map(|e| format!("{}: {e}\n", file.display()))
                    .collect();
                out(&lines);
            }
            if failed == 0 {
                return Ok(0);
            }
            eprintln!(
                "{problems} problem{} in {failed} of {} file{}",
                plural(problems),
                files.len(),
                plural(files.len())
            );
            Ok(2)
        }
    }
}

/// Every problem of the workflow in `file`, in file order; empty when it is sound.
fn inspect_file(file: &Path, packs: &PackSet) -> Vec<WorkflowError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            return vec![WorkflowError {
                field: String::new(),
                message: format!("cannot read: {e}"),
            }];
        }
    };
    let spec = match WorkflowSpec::parse(&text) {
        Ok(spec) => spec,
        // A YAML error's excerpt names its source `<input>`.
        Err(mut e) => {
            e.message = e.message.replace("<input>", &file.display().to_string());
            return vec![e];
        }
    };
    let lookup = |r: &str| -> Option<Action> { packs.action(&r.parse::<Ref>().ok()?).cloned() };
    inspect(&spec, Some(&lookup))
}

fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
