//! `squall`: the command-line interface of Squall, after StackStorm's `st2`.
//!
//! ```text
//! squall run core.echo message=hello        # run an action and wait for its result
//! squall execution list [--action REF] [--status S] [-n N]
//! squall execution get <id> [--json]
//! squall action list [--pack P] ; squall action get core.http
//! ```
//!
//! Data goes to stdout (tables, or JSON with `--json`); progress and errors go to stderr.

mod cmd;
mod output;
mod progress;
mod settings;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (for `run`: the execution succeeded)
  1  the execution ran but did not succeed (failed, timeout, ...)
  2  bad input: unknown action or execution, invalid parameters, bad config or arguments
  3  Squall itself failed (store, host)";

/// Squall: event-driven automation with sandboxed WebAssembly actions.
#[derive(Parser)]
#[command(name = "squall", version, after_help = EXIT_CODES, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes. Precedence: flag, then environment, then `squall.toml`, then
/// the default.
#[derive(Args, Clone, Debug)]
struct GlobalArgs {
    /// Data directory: the execution store and the compiled-component cache [default: ./.squall]
    #[arg(long, env = "SQUALL_DATA_DIR", global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Directory of packs to load [default: ./packs]
    #[arg(long, env = "SQUALL_PACKS", global = true, value_name = "DIR")]
    packs: Option<PathBuf>,
    /// Operator settings file [default: ./squall.toml when it exists]
    #[arg(long, env = "SQUALL_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); or set SQUALL_LOG (e.g. squall_host=debug)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Run an action and wait for its result, like `st2 run`
    Run(cmd::run::RunArgs),
    /// Recorded executions
    #[command(subcommand)]
    Execution(cmd::execution::ExecutionCommand),
    /// Actions of the loaded packs
    #[command(subcommand)]
    Action(cmd::action::ActionCommand),
}

/// An error with its exit code. Its message is printed once, by `main`.
#[derive(Debug)]
pub struct Failure {
    /// The exit code (see [`EXIT_CODES`]).
    pub code: u8,
    /// What to print on stderr.
    pub message: String,
}

impl Failure {
    /// Exit code 2: the user's input is wrong.
    pub fn input(message: impl std::fmt::Display) -> Self {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }

    /// Exit code 3: Squall failed.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Failure {
            code: 3,
            message: message.to_string(),
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SQUALL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = runtime.block_on(async move {
        let settings = settings::Settings::resolve(&cli.global)?;
        match cli.command {
            Command::Run(args) => cmd::run::run(&settings, args).await,
            Command::Execution(c) => cmd::execution::run(&settings, c).await,
            Command::Action(c) => cmd::action::run(&settings, c).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
