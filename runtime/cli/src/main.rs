//! `squall`: the command-line interface of Squall, after StackStorm's `st2`.
//!
//! ```text
//! squall serve                              # the server: API, stream, rules, timers, scheduler
//! squall run core.echo message=hello        # run an action (or workflow) and wait for its result
//! squall execution list|get|tail|cancel ; squall action list|get
//! squall execution list --parent <id>       # the task executions of a workflow
//! squall execution pause|resume <id>        # workflows
//! squall execution re-run <id> [--tasks a,b] [k=v ...]
//! squall inquiry list|get|respond           # answer core.ask: respond <id> '{"continue": true}'
//! squall workflow inspect <file>...         # check workflows locally, against the packs
//! squall rule list|get|enable|disable ; squall rule-enforcement list
//! squall policy list|get                   # concurrency and retry policies of actions
//! squall trigger list ; squall trigger-instance list|get ; squall webhook list
//! squall key set|get|list|delete ; squall apikey create|list
//! squall pack config <pack> [--show-secrets]  # a pack's config (configs/<pack>.yaml)
//! ```
//!
//! Commands talk to the server's REST API at `--api-url` (default `http://127.0.0.1:9101`);
//! when nothing answers there they run the same API in-process over the local data directory.
//! `serve`, `apikey` and `workflow inspect` work on local files only.
//! Data goes to stdout (tables, or JSON with `--json`); progress and errors go to stderr.

mod client;
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
  1  the execution ran but did not succeed (failed, timeout, ...), or waits (paused, pending)
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
    /// Directories of packs to load, separated by ':' [default: ./packs]
    #[arg(long, env = "SQUALL_PACKS", global = true, value_name = "DIR[:DIR...]")]
    packs: Option<std::ffi::OsString>,
    /// Operator settings file [default: ./squall.toml when it exists]
    #[arg(long, env = "SQUALL_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// URL of a running server's API [default: http://<[server] bind>]; without a server there,
    /// commands run in-process
    #[arg(long, env = "SQUALL_API_URL", global = true, value_name = "URL")]
    api_url: Option<String>,
    /// API key for a server that requires one (sent as St2-Api-Key)
    #[arg(
        long,
        env = "SQUALL_API_KEY",
        global = true,
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
    /// More log output on stderr (-v info, -vv debug); or set SQUALL_LOG (e.g. squall_host=debug)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: REST API and event stream, rules engine, timers, scheduler
    Serve(cmd::serve::ServeArgs),
    /// Run an action and wait for its result, like `st2 run` (a workflow paused or an inquiry
    /// pending stops the wait too)
    Run(cmd::run::RunArgs),
    /// Recorded executions
    #[command(subcommand)]
    Execution(cmd::execution::ExecutionCommand),
    /// Inquiries: questions `core.ask` waits on, and answering them
    #[command(subcommand)]
    Inquiry(cmd::inquiry::InquiryCommand),
    /// Orquesta workflows: inspect files before they run
    #[command(subcommand)]
    Workflow(cmd::workflow::WorkflowCommand),
    /// Actions of the loaded packs
    #[command(subcommand)]
    Action(cmd::action::ActionCommand),
    /// Rules of the loaded packs
    #[command(subcommand)]
    Rule(cmd::rule::RuleCommand),
    /// What rules launched (or why not)
    #[command(subcommand, name = "rule-enforcement")]
    RuleEnforcement(cmd::rule::EnforcementCommand),
    /// Policies of the loaded packs (concurrency, retry)
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// Sensors of the loaded packs: status, enable, disable
    #[command(subcommand)]
    Sensor(cmd::sensor::SensorCommand),
    /// Trigger types
    #[command(subcommand)]
    Trigger(cmd::trigger::TriggerCommand),
    /// Recorded trigger instances
    #[command(subcommand, name = "trigger-instance")]
    TriggerInstance(cmd::trigger::TriggerInstanceCommand),
    /// Webhooks rules listen to
    #[command(subcommand)]
    Webhook(cmd::trigger::WebhookCommand),
    /// Packs: validate one, build its Python actions; their configs (config.schema.yaml +
    /// configs/<pack>.yaml)
    #[command(subcommand)]
    Pack(cmd::pack::PackCommand),
    /// The datastore (st2kv.system)
    #[command(subcommand)]
    Key(cmd::key::KeyCommand),
    /// API keys (written to the local data directory)
    #[command(subcommand)]
    Apikey(cmd::apikey::ApiKeyCommand),
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
    // wasmtime-wasi-http warns on every failed outbound connect without naming the component;
    // the component sees the error itself (a monitor sensor polling a down host expects it).
    let default = match verbose {
        0 => "warn,wasmtime_wasi_http=error",
        1 => "info,wasmtime_wasi_http=error",
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
    // reqwest is built without a TLS crypto default; use ring, as the host's HTTP does.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
        let command = match cli.command {
            Command::Serve(args) => return cmd::serve::run(&settings, args).await,
            Command::Apikey(c) => return cmd::apikey::run(&settings, c).await,
            Command::Workflow(c) => return cmd::workflow::run(&settings, c),
            Command::Pack(cmd::pack::PackCommand::Build { path, tools }) => {
                return cmd::pack::build(&settings, &path, &tools, true);
            }
            Command::Pack(cmd::pack::PackCommand::Validate { path }) => {
                return cmd::pack::validate(&settings, &path);
            }
            Command::Pack(cmd::pack::PackCommand::Install {
                source,
                packs_dir,
                tools,
            }) => {
                return cmd::pack_install::install(
                    &settings,
                    &source,
                    packs_dir.as_deref(),
                    &tools,
                )
                .await;
            }
            Command::Pack(cmd::pack::PackCommand::New { name, lang, dir }) => {
                let dir = dir
                    .or_else(|| settings.packs_dirs.first().cloned())
                    .unwrap_or_else(|| std::path::PathBuf::from("packs"));
                return cmd::pack_new::new(&name, &lang, &dir);
            }
            Command::Pack(cmd::pack::PackCommand::Rollback { pack, packs_dir }) => {
                return cmd::pack_install::rollback(&settings, &pack, packs_dir.as_deref()).await;
            }
            Command::Pack(cmd::pack::PackCommand::Uninstall { pack, packs_dir }) => {
                return cmd::pack_install::uninstall(&settings, &pack, packs_dir.as_deref()).await;
            }
            other => other,
        };
        let client = client::Client::connect(&settings).await?;
        let outcome = match command {
            Command::Run(args) => cmd::run::run(&client, args).await,
            Command::Execution(c) => cmd::execution::run(&client, c).await,
            Command::Inquiry(c) => cmd::inquiry::run(&client, c).await,
            Command::Action(c) => cmd::action::run(&client, c).await,
            Command::Rule(c) => cmd::rule::run(&client, c).await,
            Command::RuleEnforcement(c) => cmd::rule::run_enforcements(&client, c).await,
            Command::Policy(c) => cmd::policy::run(&client, c).await,
            Command::Sensor(c) => cmd::sensor::run(&client, c).await,
            Command::Trigger(c) => cmd::trigger::run(&client, c).await,
            Command::TriggerInstance(c) => cmd::trigger::run_instances(&client, c).await,
            Command::Webhook(c) => cmd::trigger::run_webhooks(&client, c).await,
            Command::Key(c) => cmd::key::run(&client, c).await,
            Command::Pack(c) => cmd::pack::run(&client, c).await,
            Command::Serve(_) | Command::Apikey(_) | Command::Workflow(_) => {
                unreachable!("handled above")
            }
        };
        client.close().await;
        outcome
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
