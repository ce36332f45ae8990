//! Operator settings: `squall.toml`.
//!
//! ```toml
//! data_dir = ".squall"    # redb store and component cache (relative to this file)
//! packs_dirs = ["packs"]  # directories of packs to load (relative to this file)
//! configs_dir = "configs" # packs' configs, <pack>.yaml (default: `configs` beside each packs dir)
//!
//! [limits.default]        # what an action gets when its YAML says nothing (Limits::DEFAULT)
//! timeout = "60s"
//! [limits.max]            # ceilings no action exceeds (Limits::CEILING)
//! memory = "1GiB"
//!
//! [host]
//! max_instances = 64      # pooled instance slots per process (>= [server] concurrency + 8 sensor slots)
//!
//! [server]                # `squall serve`
//! bind = "127.0.0.1:9101" # API + stream; anything but loopback requires API keys
//! concurrency = 16        # executions running at once (the scheduler's pool)
//! max_body = "1MiB"       # largest request body (webhooks, API); larger gets 413
//! shutdown_timeout = "30s"
//!
//! [webhooks.github]       # per webhook url (POST /api/v1/webhooks/github)
//! hmac_secret = "s3cret"  # require an HMAC-SHA256 signature of the body
//! signature_header = "X-Hub-Signature-256"
//!
//! [packs.core]            # grants for one pack; packs never grant themselves anything
//! http_allow = ["127.0.0.1:*", "api.example.com"]
//! secret_keys = ["github_webhook_secret"]   # system-scope secrets its components may read
//! commands = ["uname", "systemctl restart *"] # programs its command runners may run (crate::command)
//! scripts = ["*.sh"]      # its own scripts (local-shell-script entry points) that may run
//! env = ["LANG"]          # environment variables a command may get (from the server or `env`)
//! ssh_hosts = ["web*.example.com", "10.0.0.0/8"]  # hosts its remote runners may reach
//! triggers = ["ops.*"]    # trigger types its actions may dispatch (core.inject_trigger)
//! smtp_allow = ["mail.example.com:587"]  # SMTP relays its actions may send through
//!
//! [smtp]                  # the relay mail goes through (crate::config::SmtpSettings)
//! server = "mail.example.com:587"
//! tls = "starttls"        # or "tls", "none"
//!
//! [ssh]                   # the remote runners' SSH client (crate::config::SshSettings)
//! known_hosts = "ssh/known_hosts"   # host keys checked (default <data_dir>/ssh/known_hosts)
//! key_file = "ssh/id_ed25519"       # the operator's key, when an action gives none
//!
//! [process]               # every command a runner starts (crate::config::ProcessSettings)
//! max_processes = 256     # RLIMIT_NPROC of the command's user
//! max_memory = "2GiB"     # RLIMIT_AS of each process
//!
//! [datastore]
//! key_file = "keys/datastore.key"   # AES-256 key of secret values (default <data_dir>/keys/datastore.key)
//! ```
//!
//! Every table is optional; unknown keys are errors. Precedence (highest last): built-in
//! defaults, this file, `SQUALL_*` environment variables and command-line flags (the CLI applies
//! the last two).

use crate::capability::HostPattern;
use crate::limits::{LimitPolicy, Limits};
use crate::reference::validate_pack_name;
use crate::units;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parsed `squall.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data directory (redb store, component cache). Relative paths are relative to the
    /// config file's directory. Default `./.squall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Directories of packs to load, in order (StackStorm's `packs_base_paths`). Relative
    /// paths are relative to the config file's directory. Default `["./packs"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packs_dirs: Option<Vec<PathBuf>>,
    /// Directory of packs' configs, `<pack>.yaml` each (StackStorm's `/opt/stackstorm/configs`;
    /// see [`crate::pack_config`]). Relative paths are relative to the config file's directory.
    /// Default: the directory `configs` beside each packs directory (`<packs_dir>/../configs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configs_dir: Option<PathBuf>,
    /// Default and maximum per-execution limits.
    #[serde(default)]
    pub limits: LimitPolicy,
    /// Settings of the WebAssembly host.
    #[serde(default)]
    pub host: HostSettings,
    /// Capability grants, per pack name.
    #[serde(default)]
    pub packs: BTreeMap<String, PackGrants>,
    /// `squall serve` settings.
    #[serde(default)]
    pub server: ServerSettings,
    /// Per-webhook settings, by webhook url.
    #[serde(default)]
    pub webhooks: BTreeMap<String, WebhookSettings>,
    /// Where CLI commands find a running server (`SQUALL_API_URL`, `--api-url`). Default
    /// `http://<server.bind>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// The datastore (key file of encrypted secrets).
    #[serde(default)]
    pub datastore: DatastoreSettings,
    /// Quotas of sensors.
    #[serde(default)]
    pub sensors: SensorSettings,
    /// The budget of every Jinja render.
    #[serde(default)]
    pub templates: TemplateSettings,
    /// The budgets of the workflow conductor.
    #[serde(default)]
    pub workflows: WorkflowSettings,
    /// The limits of every command the command runners start.
    #[serde(default)]
    pub process: ProcessSettings,
    /// The remote runners' SSH client.
    #[serde(default)]
    pub ssh: SshSettings,
    /// The SMTP relay mail goes through (`core.sendmail`, the `mail` import).
    #[serde(default)]
    pub smtp: SmtpSettings,
}

/// How mail reaches the `[smtp]` relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with `STARTTLS`, which must succeed (the default; port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: only for a relay on this machine or a trusted network.
    None,
}

/// `[smtp]`: the operator's SMTP relay. A pack sends mail through it only when granted the relay
/// (`[packs.<pack>] smtp_allow`), as outbound HTTP is granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// The relay, `host:port` (e.g. `"mail.example.com:587"`; checked when the file loads).
    /// Default: none (mail is refused, naming this setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `"starttls"` (default), `"tls"` or `"none"`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// The user to log in as (`AUTH PLAIN`/`LOGIN`); default: no login. Refused with
    /// `tls = "none"` (the password would travel in clear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file holding the password (its first line), read when mail is sent. Relative to this
    /// file. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Bound on one message's delivery to the relay, in seconds (`"30s"` in config). Default
    /// 30 s.
    #[serde(default = "default_smtp_timeout", with = "units::duration")]
    pub timeout: std::time::Duration,
}

fn default_smtp_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            server: None,
            tls: SmtpTls::default(),
            username: None,
            password_file: None,
            timeout: default_smtp_timeout(),
        }
    }
}

/// `[ssh]`: the SSH client of the remote runners (`remote-shell-cmd`, `remote-shell-script`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// Known-hosts file (OpenSSH format) every host key is checked against; a host not in it,
    /// or whose key differs, is refused. Relative to this file. Default
    /// `<data_dir>/ssh/known_hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// The remote user when an action gives no `username` (StackStorm's `system_user.user`).
    /// Default: the user Squall runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The operator's private key file, used when an action gives no `password` or
    /// `private_key` (StackStorm's `system_user.ssh_key_file`). Relative to this file. Default:
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Bound on connecting and logging in to one host, in seconds (`"10s"` in config). Default
    /// 10 s.
    #[serde(default = "default_ssh_connect_timeout", with = "units::duration")]
    pub connect_timeout: std::time::Duration,
    /// The most hosts one execution talks to at once, when its `parallel` parameter is true
    /// (StackStorm's `ssh_runner.max_parallel_actions`).
    /// Default 50.
    #[serde(default = "default_ssh_max_parallel")]
    pub max_parallel: usize,
}

fn default_ssh_connect_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(10)
}
fn default_ssh_max_parallel() -> usize {
    50
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            known_hosts: None,
            user: None,
            key_file: None,
            connect_timeout: default_ssh_connect_timeout(),
            max_parallel: default_ssh_max_parallel(),
        }
    }
}

/// `[process]`: operating-system limits of every command a command runner starts
/// (`local-shell-cmd`, `local-shell-script`), applied with `setrlimit` before the program runs
/// and inherited by everything it starts. The wall-clock bound is the execution's `timeout`;
/// CPU time is bounded to the same number of seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSettings {
    /// Processes (and threads) the command's user may have at once (`RLIMIT_NPROC`). Linux
    /// counts every process of that user, and does not apply it to root: grant `run_as` a
    /// dedicated user to make it a per-command bound. Default 256.
    #[serde(default = "default_max_processes")]
    pub max_processes: u64,
    /// Address space of each process, in bytes (`RLIMIT_AS`; `"2GiB"` in config). Default
    /// 2 GiB.
    #[serde(default = "default_process_memory", with = "units::size")]
    pub max_memory: u64,
    /// Open files of each process (`RLIMIT_NOFILE`). Default 1024.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: u64,
    /// How long a command gets between SIGTERM and SIGKILL at its deadline or on cancel, in
    /// seconds (`"2s"` in config). Default 2 s.
    #[serde(default = "default_kill_grace", with = "units::duration")]
    pub kill_grace: std::time::Duration,
}

fn default_max_processes() -> u64 {
    256
}
fn default_process_memory() -> u64 {
    2 * 1024 * 1024 * 1024
}
fn default_max_open_files() -> u64 {
    1024
}
fn default_kill_grace() -> std::time::Duration {
    std::time::Duration::from_secs(2)
}

impl Default for ProcessSettings {
    fn default() -> Self {
        ProcessSettings {
            max_processes: default_max_processes(),
            max_memory: default_process_memory(),
            max_open_files: default_max_open_files(),
            kill_grace: default_kill_grace(),
        }
    }
}

/// `[workflows]`: the budgets of one workflow execution's conductor. Passing one fails the
/// workflow with an error (in its result's `errors`) naming the setting; running tasks finish,
/// nothing new starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSettings {
    /// Tasks one workflow execution may start over its life (each retry, each pass through a
    /// cycle counts; with-items runs do not). Default 50,000.
    #[serde(default = "default_wf_tasks")]
    pub max_tasks: usize,
    /// Items of one with-items task. Default 10,000.
    #[serde(default = "default_wf_items")]
    pub max_items: usize,
    /// Tasks started while applying one batch of events (a chain of action-less tasks runs in
    /// one). Default 1,000.
    #[serde(default = "default_wf_transitions")]
    pub max_transitions_per_event: usize,
    /// Size of the workflow's state as stored (contexts, task results, errors), in bytes of
    /// JSON (`"16MiB"`). Default 16 MiB.
    #[serde(default = "default_wf_state", with = "units::size")]
    pub max_state_bytes: u64,
}

fn default_wf_tasks() -> usize {
    50_000
}

fn default_wf_items() -> usize {
    10_000
}

fn default_wf_transitions() -> usize {
    1_000
}

fn default_wf_state() -> u64 {
    16 * 1024 * 1024
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        WorkflowSettings {
            max_tasks: default_wf_tasks(),
            max_items: default_wf_items(),
            max_transitions_per_event: default_wf_transitions(),
            max_state_bytes: default_wf_state(),
        }
    }
}

/// `[templates]`: what one Jinja render (a rule's parameters, an action's defaults, a
/// workflow expression, a pack config value) may cost. Past either, the render fails with an
/// error naming the setting: the rule enforcement, execution or workflow fails with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    /// minijinja fuel per render: about one unit per instruction, and one per 64 bytes of
    /// output or allocated data. Default 1,000,000 (a million instructions or ~60 MB).
    #[serde(default = "default_template_fuel")]
    pub fuel: u64,
    /// Longest rendered string, in bytes (`"1MiB"`). Default 1 MiB.
    #[serde(default = "default_template_output", with = "units::size")]
    pub max_output: u64,
    /// Evaluation steps one YAQL expression (`<% ... %>` in a workflow) may take: nodes
    /// evaluated plus elements built (`range(n)` costs `n`). Default 2,000,000; past it the
    /// expression fails with "expression is too expensive".
    #[serde(default = "default_yaql_steps")]
    pub yaql_steps: u64,
    /// Longest string one YAQL operation may build, in bytes (`"64MiB"`). Default 64 MiB.
    #[serde(default = "default_yaql_max_string", with = "units::size")]
    pub yaql_max_string: u64,
}

fn default_yaql_steps() -> u64 {
    crate::workflow::yaql::DEFAULT_STEPS
}

fn default_yaql_max_string() -> u64 {
    crate::workflow::yaql::DEFAULT_MAX_STRING
}

fn default_template_fuel() -> u64 {
    1_000_000
}

fn default_template_output() -> u64 {
    1024 * 1024
}

impl Default for TemplateSettings {
    fn default() -> Self {
        TemplateSettings {
            fuel: default_template_fuel(),
            max_output: default_template_output(),
            yaql_steps: default_yaql_steps(),
            yaql_max_string: default_yaql_max_string(),
        }
    }
}

/// `[sensors]`: what one sensor call, and one pack's sensors per minute, may bring in. A call
/// over a quota fails as a whole (nothing it emitted or wrote is kept), its error names the
/// setting, and the sensor is backed off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSettings {
    /// Shortest `poll_interval` a sensor gets, whatever its YAML says (`"1s"`). Default 1 s;
    /// a shorter interval is raised to this (and the load logs it).
    #[serde(default = "default_min_poll_interval", with = "units::duration")]
    pub min_poll_interval: std::time::Duration,
    /// Largest payload of one emitted trigger instance, in bytes of JSON (`"256KiB"`).
    /// Default 256 KiB; a larger emit is refused and fails the call.
    #[serde(default = "default_max_payload", with = "units::size")]
    pub max_payload: u64,
    /// Datastore bytes (key names plus values) one call may write. Default 64 KiB.
    #[serde(default = "default_state_per_call", with = "units::size")]
    pub max_state_bytes_per_call: u64,
    /// Trigger instances the sensors of one pack may emit per minute (a bucket refilled
    /// evenly over the minute). Default 600.
    #[serde(default = "default_emits_per_minute")]
    pub max_emits_per_minute: u32,
    /// Datastore bytes (key names plus values) the sensors of one pack may write per minute.
    /// Default 1 MiB.
    #[serde(default = "default_state_per_minute", with = "units::size")]
    pub max_state_bytes_per_minute: u64,
}

fn default_min_poll_interval() -> std::time::Duration {
    std::time::Duration::from_secs(1)
}

fn default_max_payload() -> u64 {
    256 * 1024
}

fn default_state_per_call() -> u64 {
    64 * 1024
}

fn default_emits_per_minute() -> u32 {
    600
}

fn default_state_per_minute() -> u64 {
    1024 * 1024
}

impl Default for SensorSettings {
    fn default() -> Self {
        SensorSettings {
            min_poll_interval: default_min_poll_interval(),
            max_payload: default_max_payload(),
            max_state_bytes_per_call: default_state_per_call(),
            max_emits_per_minute: default_emits_per_minute(),
            max_state_bytes_per_minute: default_state_per_minute(),
        }
    }
}

/// `[datastore]`: the key-value store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatastoreSettings {
    /// The file holding the 256-bit AES-GCM key that encrypts `secret` values: 64 hex digits
    /// (StackStorm's `[keyvalue] encryption_key_path`). Created with mode 0600 at the first start
    /// when missing and no secret is stored yet; never inside the store file. Relative paths are
    /// relative to the config file's directory. Default `<data_dir>/keys/datastore.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// `[server]`: the long-running server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the API and stream listen on. Default `127.0.0.1:9101` (StackStorm's API port).
    /// Any address other than loopback requires an API key on every request.
    #[serde(default = "default_bind")]
    pub bind: String,
    /// Executions running at once. Default 16.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Largest request body, in bytes (`"1MiB"`). Default 1 MiB; larger bodies get 413.
    #[serde(default = "default_max_body", with = "units::size")]
    pub max_body: u64,
    /// On SIGTERM/Ctrl-C, how long running executions may take to finish before the server
    /// exits anyway (they are recorded `abandoned` on the next start). Default 30 s.
    #[serde(default = "default_shutdown", with = "units::duration")]
    pub shutdown_timeout: std::time::Duration,
    /// Work accepted but not started that the server holds, about at most (concurrent requests
    /// may overshoot by a few): trigger instances waiting
    /// for the rules engine plus executions waiting for a slot. Default 10000. Past it,
    /// webhooks and new executions get `429 Too Many Requests` with `Retry-After` and sensor
    /// calls fail (backed off) until the backlog drains; nothing already accepted is dropped.
    #[serde(default = "default_max_backlog")]
    pub max_backlog: usize,
    /// Deepest nesting of arrays and objects accepted in JSON from outside (API and webhook
    /// bodies, component results, sensor emits) and made by templates, in levels (`[]` is 1).
    /// Default 64; at most [`crate::json::MAX_CONFIGURABLE_DEPTH`] (100), so that every record
    /// holding such a value stays readable. Deeper input gets 400 naming the limit.
    #[serde(default = "default_max_json_depth")]
    pub max_json_depth: usize,
    /// Memory the store may use to cache its pages, in bytes (`"256MiB"`). Default 256 MiB
    /// (redb's own default is 1 GiB; much less than 256 MiB stalls commits). Once filled it
    /// stays in use: it is what the store's resident memory comes to after heavy traffic,
    /// whatever passed through.
    #[serde(default = "default_store_cache", with = "units::size")]
    pub store_cache: u64,
}

fn default_store_cache() -> u64 {
    256 << 20
}

fn default_max_backlog() -> usize {
    10_000
}

fn default_max_json_depth() -> usize {
    crate::json::MAX_DEPTH
}

fn default_bind() -> String {
    "127.0.0.1:9101".into()
}

fn default_concurrency() -> usize {
    16
}

fn default_max_body() -> u64 {
    1024 * 1024
}

fn default_shutdown() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: default_bind(),
            concurrency: default_concurrency(),
            max_body: default_max_body(),
            shutdown_timeout: default_shutdown(),
            max_backlog: default_max_backlog(),
            max_json_depth: default_max_json_depth(),
            store_cache: default_store_cache(),
        }
    }
}

/// `[webhooks.<url>]`: how one webhook is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Shared secret: requests must carry `sha256=<hex HMAC-SHA256 of the body>` (GitHub's
    /// scheme) in `signature_header`, else 401.
    pub hmac_secret: String,
    /// The header with the signature. Default `X-Hub-Signature-256` (GitHub).
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
}

fn default_signature_header() -> String {
    "X-Hub-Signature-256".into()
}

/// `[host]`: how the WebAssembly engine is set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    /// Instance slots preallocated by the pooling allocator, per process: at most this many
    /// components are instantiated at once. Default 64; must be at least `[server] concurrency`.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// Preallocate instance slots with wasmtime's pooling allocator (fast instantiation).
    /// Default `true`; `false` allocates per instance (slower, no fixed slot sizes).
    #[serde(default = "default_true")]
    pub pooling: bool,
    /// WebAssembly stack per execution, in bytes (`"512KiB"`). Default 512 KiB; deeper
    /// recursion traps with "stack overflow".
    #[serde(default = "default_stack", with = "units::size")]
    pub max_wasm_stack: u64,
    /// Outbound HTTP connections one execution or sensor call may hold open at once. Default
    /// 16; one more is refused (`connection-limit-reached` to the guest, a denial naming this
    /// setting in the record).
    #[serde(default = "default_max_outbound_per_call")]
    pub max_outbound_per_call: u32,
    /// Outbound HTTP connections all components of the process may hold open at once, so
    /// guests can never take the file descriptors the API needs. Default 256; one more is
    /// refused as above.
    #[serde(default = "default_max_outbound")]
    pub max_outbound: u32,
}

fn default_max_instances() -> u32 {
    64
}

fn default_max_outbound_per_call() -> u32 {
    16
}

fn default_max_outbound() -> u32 {
    256
}

fn default_true() -> bool {
    true
}

fn default_stack() -> u64 {
    512 * 1024
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            max_instances: default_max_instances(),
            pooling: true,
            max_wasm_stack: default_stack(),
            max_outbound_per_call: default_max_outbound_per_call(),
            max_outbound: default_max_outbound(),
        }
    }
}

/// `[packs.<pack>]`: what the operator grants one pack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackGrants {
    /// Destinations its components may reach over HTTP (see [`crate::capability`]).
    #[serde(default)]
    pub http_allow: Vec<HostPattern>,
    /// System-scope `secret` datastore keys its components may read decrypted (by name, e.g.
    /// `["github_webhook_secret"]`); a component reading any other secret key is refused.
    /// Default: none.
    #[serde(default)]
    pub secret_keys: Vec<String>,
    /// Programs its command runners may run, as [`crate::command::CommandPattern`]s (e.g.
    /// `["uname", "systemctl restart *"]`). Default: none.
    #[serde(default)]
    pub commands: Vec<crate::command::CommandPattern>,
    /// Whether command lines may use shell syntax: they then run under `/bin/bash -c`, as
    /// StackStorm runs them, and `commands` does not apply. Default false.
    #[serde(default)]
    pub shell: bool,
    /// Its own scripts that may run (`local-shell-script` entry points, relative to the pack's
    /// `actions/`, `*` and `?` as wildcards, e.g. `["*.sh"]`). A script can do anything its
    /// user can. Default: none.
    #[serde(default)]
    pub scripts: Vec<String>,
    /// Environment variables a command may get (names, `*` as wildcard): passed from the
    /// server's environment when set there (local commands only), or set by the action's `env`
    /// parameter; any other name in `env` is refused. A wildcard never grants a name that
    /// changes what code runs or is Squall's own (`LD_PRELOAD`, `BASH_ENV`, `PATH`,
    /// `PYTHON*`, `SQUALL_*`, …: [`crate::command::protected_env`]); such a name must be written
    /// out. `PATH` is [`crate::command::SEARCH_PATH`] unless granted. Default: none.
    #[serde(default)]
    pub env: Vec<String>,
    /// Directories (absolute) an action's `cwd` parameter may name. Without one, each command
    /// runs in a fresh empty directory, removed afterwards. Default: none.
    #[serde(default)]
    pub cwd: Vec<PathBuf>,
    /// Whether commands may run under `sudo` (StackStorm's `sudo: true`, `core.local_sudo`):
    /// `sudo -n -E --` before the program, which must still match `commands`. Default false.
    #[serde(default)]
    pub sudo: bool,
    /// The operating-system user commands run as (by name); the server must be able to switch
    /// to it (root). Default: the server's own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    /// Hosts its remote runners may reach over SSH (`host[:port]` patterns as
    /// [`HostPattern`]; without a port, 22), bastion hosts included. Default: none.
    #[serde(default)]
    pub ssh_hosts: Vec<HostPattern>,
    /// Remote users its remote runners may log in as besides the default login user
    /// (`[ssh] user`, else the server's own user): names, `*` as wildcard. A `username`
    /// parameter naming any other user is refused, whatever key or password is given.
    /// Default: none.
    #[serde(default)]
    pub ssh_users: Vec<String>,
    /// Trigger types its actions may dispatch instances of (the `triggers` import, StackStorm's
    /// `core.inject_trigger`): refs, `*` as wildcard (e.g. `["ops.*", "core.st2.webhook"]`).
    /// Rules on those triggers then run what they run. Default: none.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// SMTP relays its actions may send mail through (`host:port` patterns as
    /// [`HostPattern`], e.g. `["mail.example.com:587"]`; give the port: a pattern without one
    /// means 80 and 443, as in `http_allow`); the `[smtp] server` must match one. Default: none.
    #[serde(default)]
    pub smtp_allow: Vec<HostPattern>,
}

impl PackGrants {
    /// Whether the pack's components may read the system-scope secret key `name` decrypted.
    pub fn may_read_secret(&self, name: &str) -> bool {
        self.secret_keys.iter().any(|k| k == name)
    }
}

/// Why `squall.toml` was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys / bad values.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
}

impl Config {
    /// Parses `text`, the contents of the file at `path` (used in messages).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for bad TOML, unknown keys, bad values or pack names, and
    /// `[limits.default]` values above `[limits.max]`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let dirs = config
            .data_dir
            .iter_mut()
            .chain(config.packs_dirs.iter_mut().flatten())
            .chain(config.configs_dir.iter_mut())
            .chain(config.datastore.key_file.iter_mut())
            .chain(config.ssh.known_hosts.iter_mut())
            .chain(config.ssh.key_file.iter_mut())
            .chain(config.smtp.password_file.iter_mut());
        for dir in dirs {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        if let Some(server) = &config.smtp.server
            && server
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(invalid(format!(
                "[smtp] server: {server:?} must be host:port, e.g. \"mail.example.com:587\""
            )));
        }
        if config.smtp.username.is_some() && config.smtp.tls == SmtpTls::None {
            return Err(invalid(
                "[smtp] username with tls = \"none\" would send the password in clear: use \
                 \"starttls\" or \"tls\""
                    .to_string(),
            ));
        }
        for (pack, grants) in &config.packs {
            validate_pack_name(pack).map_err(|e| invalid(format!("[packs.{pack}]: {e}")))?;
            for key in &grants.secret_keys {
                crate::datastore::validate_key_name(key)
                    .map_err(|e| invalid(format!("[packs.{pack}] secret_keys: {e}")))?;
            }
            for dir in &grants.cwd {
                if !dir.is_absolute() {
                    return Err(invalid(format!(
                        "[packs.{pack}] cwd: {} must be an absolute directory",
                        dir.display()
                    )));
                }
            }
            for name in &grants.env {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*')
                {
                    return Err(invalid(format!(
                        "[packs.{pack}] env: {name:?} is not a variable name (letters, digits, _ and * only)"
                    )));
                }
            }
            if grants.run_as.as_deref() == Some("") {
                return Err(invalid(format!("[packs.{pack}] run_as must name a user")));
            }
        }
        let Limits {
            fuel,
            timeout,
            memory,
            max_output,
        } = config.limits.default;
        let max = config.limits.max;
        for (name, over) in [
            ("fuel", fuel > max.fuel),
            ("timeout", timeout > max.timeout),
            ("memory", memory > max.memory),
            ("max_output", max_output > max.max_output),
        ] {
            if over {
                return Err(invalid(format!(
                    "[limits.default] {name} is above [limits.max] {name}"
                )));
            }
        }
        if config.host.max_instances == 0 {
            return Err(invalid("[host] max_instances must be at least 1".into()));
        }
        if config.ssh.max_parallel == 0 {
            return Err(invalid("[ssh] max_parallel must be at least 1".into()));
        }
        if config.process.max_processes == 0 || config.process.max_open_files < 3 {
            return Err(invalid(
                "[process] max_processes must be at least 1 and max_open_files at least 3".into(),
            ));
        }
        if config.server.concurrency == 0 {
            return Err(invalid("[server] concurrency must be at least 1".into()));
        }
        if !(1..=crate::json::MAX_CONFIGURABLE_DEPTH).contains(&config.server.max_json_depth) {
            return Err(invalid(format!(
                "[server] max_json_depth {} is not between 1 and {} (the store reads back \
                 records nested at most 120 levels, and wraps values in its own)",
                config.server.max_json_depth,
                crate::json::MAX_CONFIGURABLE_DEPTH
            )));
        }
        if config.templates.yaql_steps == 0 {
            return Err(invalid("[templates] yaql_steps must be at least 1".into()));
        }
        if config.templates.yaql_max_string == 0 {
            return Err(invalid(
                "[templates] yaql_max_string must be at least 1 byte".into(),
            ));
        }
        let slots = config.server.concurrency + crate::sensor::SENSOR_SLOTS;
        if config.host.pooling && slots > config.host.max_instances as usize {
            return Err(invalid(format!(
                "[server] concurrency ({}) plus the {} sensor call slots is above [host] \
                 max_instances ({}), the instance slots executions and sensors run in; raise \
                 max_instances or lower concurrency",
                config.server.concurrency,
                crate::sensor::SENSOR_SLOTS,
                config.host.max_instances
            )));
        }
        if let Err(e) = config.server.bind.parse::<std::net::SocketAddr>() {
            return Err(invalid(format!(
                "[server] bind {:?} is not an address:port ({e})",
                config.server.bind
            )));
        }
        for (url, hook) in &config.webhooks {
            if hook.hmac_secret.is_empty() {
                return Err(invalid(format!(
                    "[webhooks.{url}] hmac_secret must not be empty"
                )));
            }
        }
        Ok(config)
    }

    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] when it cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// The grants for `pack` (none when the pack has no table).
    pub fn grants(&self, pack: &str) -> PackGrants {
        self.packs.get(pack).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("squall.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_smtp_relay_is_checked_when_the_file_loads() {
        let c =
            parse("[smtp]\nserver = \"mail.example.com:587\"\nusername = \"squall\"\n").unwrap();
        assert_eq!(c.smtp.tls, SmtpTls::Starttls);
        assert!(
            parse("[smtp]\nserver = \"mail.example.com\"\n")
                .unwrap_err()
                .contains("must be host:port")
        );
        assert!(
            parse("[smtp]\nserver = \"m:25\"\ntls = \"none\"\nusername = \"u\"\n")
                .unwrap_err()
                .contains("password in clear")
        );
        assert!(parse("[smtp]\ntls = \"ssl\"\n").is_err(), "unknown mode");
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn directories_are_relative_to_the_file() {
        let c = Config::parse(
            "data_dir = \"state\"\npacks_dirs = [\"/opt/packs\", \"more\"]\n\
             [datastore]\nkey_file = \"secret/ds.key\"\n",
            Path::new("/etc/squall/squall.toml"),
        )
        .unwrap();
        assert_eq!(
            c.datastore.key_file.as_deref(),
            Some(Path::new("/etc/squall/secret/ds.key"))
        );
        assert_eq!(c.data_dir.unwrap(), Path::new("/etc/squall/state"));
        let c2 = Config::parse(
            "configs_dir = \"cfg\"\n",
            Path::new("/etc/squall/squall.toml"),
        );
        assert_eq!(
            c2.unwrap().configs_dir.as_deref(),
            Some(Path::new("/etc/squall/cfg"))
        );
        assert_eq!(
            c.packs_dirs.unwrap(),
            [Path::new("/opt/packs"), Path::new("/etc/squall/more")]
        );
    }

    #[test]
    fn full_file_parses() {
        let c = parse(
            r#"
            [limits.default]
            timeout = "5s"
            memory = "16MiB"
            [host]
            max_instances = 8
            pooling = false
            [packs.core]
            http_allow = ["127.0.0.1:*", "api.example.com"]
            secret_keys = ["gh_token"]
            [datastore]
            key_file = "/etc/squall.key"
            "#,
        )
        .unwrap();
        assert_eq!(c.limits.default.timeout, Duration::from_secs(5));
        assert_eq!(c.limits.default.memory, 16 << 20);
        assert_eq!(c.limits.default.fuel, Limits::DEFAULT.fuel);
        assert_eq!(c.limits.max, Limits::CEILING);
        assert_eq!(c.host.max_instances, 8);
        assert!(!c.host.pooling);
        assert_eq!(c.grants("core").http_allow.len(), 2);
        assert!(c.grants("other").http_allow.is_empty());
        assert!(c.grants("core").may_read_secret("gh_token"));
        assert!(!c.grants("core").may_read_secret("other"));
        assert!(!c.grants("other").may_read_secret("gh_token"));
        assert_eq!(
            c.datastore.key_file.as_deref(),
            Some(Path::new("/etc/squall.key"))
        );
    }

    #[test]
    fn errors_name_file_and_key() {
        for (text, want) in [
            ("[limits.default]\ntimout = 5\n", "timout"),
            ("[packs.core]\nhttp_allow = [\"http://x\"]\n", "http://x"),
            ("[packs.Core]\n", "[packs.Core]"),
            (
                "[limits.default]\nfuel = 10\n[limits.max]\nfuel = 5\n",
                "fuel is above",
            ),
            ("[host]\nmax_instances = 0\n", "max_instances"),
            (
                "[server]\nmax_json_depth = 101\n",
                "[server] max_json_depth 101 is not between 1 and 100",
            ),
            ("[server]\nmax_json_depth = 0\n", "max_json_depth 0"),
            (
                "[templates]\nyaql_steps = 0\n",
                "yaql_steps must be at least 1",
            ),
            (
                "[host]\nmax_instances = 4\n[server]\nconcurrency = 8\n",
                "concurrency (8) plus the 8 sensor call slots is above",
            ),
            (
                "[host]\nmax_instances = 20\n[server]\nconcurrency = 16\n",
                "concurrency (16) plus the 8 sensor call slots is above [host] max_instances (20)",
            ),
            (
                "[server]\nbind = \"localhost\"\n",
                "[server] bind \"localhost\"",
            ),
            (
                "[webhooks.github]\nhmac_secret = \"\"\n",
                "[webhooks.github] hmac_secret",
            ),
            ("bogus = 1\n", "bogus"),
            (
                "[packs.core]\nsecret_keys = [\"bad key\"]\n",
                "[packs.core] secret_keys: key name \"bad key\"",
            ),
            ("[datastore]\nkeyfile = \"k\"\n", "keyfile"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with("squall.toml: "), "{err}");
            assert!(err.contains(want), "{want:?} not in {err}");
        }
    }
}
