//! ActionChains: StackStorm's `action-chain` runner, rebuilt as a pure state machine (no I/O)
//! the server runs durably, as it runs Orquesta workflows (see [`crate::workflow`]).
//!
//! The file format and every behaviour follow StackStorm's
//! `st2common/models/system/actionchain.py` (the schema) and
//! `contrib/runners/action_chain_runner/action_chain_runner.py` (the runner):
//!
//! - The YAML has `chain` (nodes: `name`, `ref`, `parameters` or its old name `params`,
//!   `on-success`, `on-failure`, `publish`, `notify`), `vars` and `default`. No `default`: the
//!   first node no `on-success`/`on-failure` names, else the first node.
//! - `vars` are rendered once, with the action's parameters and `st2kv` (here also
//!   `action_context` and `config_context`). A node's parameters are rendered with the action's
//!   parameters, every earlier node's result under its name, the vars (published ones
//!   included), `__results`, `st2kv`, `action_context` and `config_context`; then cast to the
//!   called action's parameter types. A node whose action is not loaded (or disabled) fails the
//!   chain, as StackStorm's `InvalidActionReferencedException` does; one whose parameters the
//!   action refuses is a failed node (its `on-failure` follows).
//! - One node runs at a time. When it completes, its `publish` is rendered (with its own
//!   result under its name, also when it failed) into the vars; then `on-success` follows a
//!   success, `on-failure` any other end (failed, timeout, abandoned), and a canceled node
//!   cancels the chain. The chain ends with the status of its last node: a failure handled by
//!   an `on-failure` node that succeeds makes the chain succeed, as in StackStorm.
//! - A node waiting for a response (an inquiry) or paused pauses the chain; it goes on when
//!   the node completes.
//! - Bounded as workflows are (`[workflows]`): at most `max_tasks` node runs in all and
//!   `max_transitions_per_event` started by one event, and the state within
//!   `max_state_bytes`; passing one fails the chain naming the setting (a chain looping through
//!   `on-failure` ends there).
//!
//! Differences from StackStorm, on purpose: canceling a chain cancels its running node too
//! (st2 lets a plain node finish); a Jinja `ref` is rendered (st2 looks the raw text up);
//! `publish` is rendered when a node completes, also after it waited for a response (st2
//! renders it when the node first returns `pending`, so an inquiry's answer never reaches it);
//! a pack config that no longer renders fails the chain when a template needs it.
//! - The result is `{"tasks": [...], "published": {...}}` (`published` only with the runner
//!   parameter `display_published`, default true), each task as StackStorm lists it: `id`,
//!   `name`, `execution_id`, `liveaction_id` (Squall's executions are their own live actions:
//!   the same id), `workflow` (null), `created_at`, `updated_at`, `state`, `result`. A failure
//!   outside any node adds `error` (StackStorm's message; Squall has no Python `traceback`).

use crate::config::WorkflowSettings;
use crate::execution::ExecutionStatus;
use crate::template::{self, Context};
use crate::workflow::{ConductorError, Dispatch};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What `__results` and the earlier nodes' names are under in templates, as StackStorm's
/// `RESULTS_KEY`.
const RESULTS_KEY: &str = "__results";

/// A problem with an ActionChain file: the field (e.g. `chain[1].on-success`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ChainError {
    /// Where: `chain[<index>].<field>`, `default`, `vars`, or empty for the whole file.
    pub field: String,
    /// What, in StackStorm's words where it has them.
    pub message: String,
}

impl ChainError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> ChainError {
        ChainError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One node of a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its name (unique in the chain).
    pub name: String,
    /// The ref of the action it runs.
    pub action: String,
    /// Its parameters (`parameters`, or the old `params`): templates.
    pub parameters: Map<String, Value>,
    /// The node to run when its execution succeeds.
    pub on_success: Option<String>,
    /// The node to run when its execution ends any other way than succeeded or canceled.
    pub on_failure: Option<String>,
    /// Variables to publish when its execution completes: templates.
    pub publish: Map<String, Value>,
}

/// A parsed and validated ActionChain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSpec {
    /// The nodes, in file order.
    pub chain: Vec<Node>,
    /// The node the chain starts with.
    pub default: String,
    /// The chain's variables: templates rendered when it starts.
    pub vars: Map<String, Value>,
    /// Whether a template mentions `config_context` (the server renders the pack config only
    /// then).
    pub mentions_config: bool,
}

fn is_jinja(text: &str) -> bool {
    template::is_template(text)
}

fn additional(field: &str, map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ChainError> {
    let extra: Vec<String> = map
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    match extra.len() {
        0 => Ok(()),
        1 => Err(ChainError::new(
            field,
            format!(
                "Additional properties are not allowed ({} was unexpected)",
                extra[0]
            ),
        )),
        _ => Err(ChainError::new(
            field,
            format!(
                "Additional properties are not allowed ({} were unexpected)",
                extra.join(", ")
            ),
        )),
    }
}

/// An object of names (`vars`, `publish`): StackStorm's schema lists `^\w+$` names as
/// `patternProperties` without forbidding others, so any name loads.
fn words(field: &str, value: Option<&Value>) -> Result<Map<String, Value>, ChainError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(ChainError::new(
            field,
            format!("{other} is not of type 'object'"),
        )),
    }
}

fn optional_text(field: &str, value: Option<&Value>) -> Result<Option<String>, ChainError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ChainError::new(
            field,
            format!("{other} is not of type 'string'"),
        )),
    }
}

impl ChainSpec {
    /// Parses and validates an ActionChain file, as StackStorm's `ChainHolder` does before a
    /// chain runs (here when its pack loads).
    ///
    /// # Errors
    /// The first problem: YAML syntax, the schema (`'chain' is a required property`,
    /// `Additional properties are not allowed ('x' was unexpected)`, a node's `name`/`ref`
    /// missing, both `params` and `parameters`), a duplicate node name, an `on-success`,
    /// `on-failure` or `default` naming no node (a Jinja name is checked when it is reached),
    /// or no node at all (`Failed to find default node in <name>.`). As StackStorm's schema
    /// (`items: [Node.schema]`) only the first node's keys are checked; later nodes' unknown
    /// keys are ignored, and of nodes sharing a name the first is the one run.
    pub fn parse(text: &str, name: &str) -> Result<ChainSpec, ChainError> {
        let doc: Value = serde_saphyr::from_str(text)
            .map_err(|e| ChainError::new("", format!("invalid YAML: {e}")))?;
        let Value::Object(top) = doc else {
            return Err(ChainError::new("", "an ActionChain is a mapping"));
        };
        additional("", &top, &["chain", "default", "vars"])?;
        let Some(chain) = top.get("chain") else {
            return Err(ChainError::new("chain", "'chain' is a required property"));
        };
        let Value::Array(items) = chain else {
            return Err(ChainError::new(
                "chain",
                format!("{chain} is not of type 'array'"),
            ));
        };
        let mut nodes: Vec<Node> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("chain[{i}]");
            let Value::Object(m) = item else {
                return Err(ChainError::new(
                    at,
                    format!("{item} is not of type 'object'"),
                ));
            };
            if i == 0 {
                additional(
                    &at,
                    m,
                    &[
                        "name",
                        "ref",
                        "params",
                        "parameters",
                        "on-success",
                        "on-failure",
                        "publish",
                        "notify",
                    ],
                )?;
            }
            let text_field = |field: &str| -> Result<String, ChainError> {
                match m.get(field) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    None => Err(ChainError::new(
                        format!("{at}.{field}"),
                        format!("'{field}' is a required property"),
                    )),
                    Some(other) => Err(ChainError::new(
                        format!("{at}.{field}"),
                        format!("{other} is not of type 'string'"),
                    )),
                }
            };
            let name = text_field("name")?;
            let action = text_field("ref")?;
            let object = |field: &str| -> Result<Map<String, Value>, ChainError> {
                match m.get(field) {
                    None | Some(Value::Null) => Ok(Map::new()),
                    Some(Value::Object(o)) => Ok(o.clone()),
                    Some(other) => Err(ChainError::new(
                        format!("{at}.{field}"),
                        format!("{other} is not of type 'object'"),
                    )),
                }
            };
            let params = object("params")?;
            let parameters = object("parameters")?;
            if !params.is_empty() && !parameters.is_empty() {
                return Err(ChainError::new(
                    at,
                    "Either \"params\" or \"parameters\" attribute needs to be provided, but not both",
                ));
            }
            nodes.push(Node {
                parameters: if parameters.is_empty() {
                    params
                } else {
                    parameters
                },
                on_success: optional_text(&format!("{at}.on-success"), m.get("on-success"))?,
                on_failure: optional_text(&format!("{at}.on-failure"), m.get("on-failure"))?,
                publish: words(&format!("{at}.publish"), m.get("publish"))?,
                name,
                action,
            });
        }
        let vars = words("vars", top.get("vars"))?;
        let known = |n: &str| is_jinja(n) || nodes.iter().any(|x| x.name == n);
        for (i, node) in nodes.iter().enumerate() {
            for (field, next) in [
                ("on-success", &node.on_success),
                ("on-failure", &node.on_failure),
            ] {
                if let Some(next) = next
                    && !known(next)
                {
                    return Err(ChainError::new(
                        format!("chain[{i}].{field}"),
                        format!(
                            "Unable to find node with name \"{next}\" referenced in \"{field}\" in task \"{}\".",
                            node.name
                        ),
                    ));
                }
            }
        }
        let default = match optional_text("default", top.get("default"))? {
            Some(d) => {
                if !known(&d) {
                    return Err(ChainError::new(
                        "default",
                        format!("Unable to find node with name \"{d}\" referenced in \"default\"."),
                    ));
                }
                d
            }
            None => {
                let referenced = |n: &str| {
                    nodes.iter().any(|x| {
                        x.on_success.as_deref() == Some(n) || x.on_failure.as_deref() == Some(n)
                    })
                };
                match nodes
                    .iter()
                    .find(|n| !referenced(&n.name))
                    .or(nodes.first())
                {
                    Some(n) => n.name.clone(),
                    None => {
                        return Err(ChainError::new(
                            "chain",
                            format!("Failed to find default node in {name}."),
                        ));
                    }
                }
            }
        };
        for (i, node) in nodes.iter().enumerate() {
            for (field, text) in [
                ("ref", Some(&node.action)),
                ("on-success", node.on_success.as_ref()),
                ("on-failure", node.on_failure.as_ref()),
            ] {
                if let Some(text) = text.filter(|t| is_jinja(t)) {
                    template::check(text)
                        .map_err(|e| ChainError::new(format!("chain[{i}].{field}"), e))?;
                }
            }
            for (field, value) in [("parameters", &node.parameters), ("publish", &node.publish)] {
                template::check_value(&Value::Object(value.clone()))
                    .map_err(|e| ChainError::new(format!("chain[{i}].{field}"), e))?;
            }
        }
        template::check_value(&Value::Object(vars.clone()))
            .map_err(|e| ChainError::new("vars", e))?;
        Ok(ChainSpec {
            chain: nodes,
            default,
            vars,
            mentions_config: text.contains(crate::pack_config::CONFIG_CONTEXT),
        })
    }

    fn node(&self, name: &str) -> Option<&Node> {
        self.chain.iter().find(|n| n.name == name)
    }

    /// The refs of the actions the nodes run (Jinja refs excluded), with each node's index.
    pub fn actions(&self) -> impl Iterator<Item = (usize, &str)> {
        self.chain
            .iter()
            .enumerate()
            .filter(|(_, n)| !is_jinja(&n.action))
            .map(|(i, n)| (i, n.action.as_str()))
    }
}

/// One node run, as StackStorm lists it in the chain's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainTask {
    /// The node's name (StackStorm repeats it as `id`).
    pub name: String,
    /// The node's execution, once requested.
    pub execution_id: Option<String>,
    /// When the node started (`YYYY-MM-DDTHH:MM:SS.ffffffZ`).
    pub created_at: String,
    /// When its execution last changed.
    pub updated_at: String,
    /// Its execution's status.
    pub state: ExecutionStatus,
    /// Its execution's result.
    pub result: Value,
}

impl ChainTask {
    fn to_json(&self) -> Value {
        json!({
            "id": self.name,
            "name": self.name,
            "execution_id": self.execution_id,
            "liveaction_id": self.execution_id,
            "workflow": null,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "state": self.state,
            "result": self.result,
        })
    }
}

/// Everything an ActionChain execution needs to go on: persisted after every change (beside
/// the execution, where an Orquesta workflow keeps its state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainState {
    /// `running`, `pausing`, `paused`, `canceling`, then its final status.
    pub status: ExecutionStatus,
    /// The status of the last node that completed (StackStorm's `chain_status`).
    pub outcome: ExecutionStatus,
    /// The chain's variables, published ones included.
    pub vars: Map<String, Value>,
    /// The node runs, in order.
    pub tasks: Vec<ChainTask>,
    /// What was published, when `display_published`.
    pub published: Option<Map<String, Value>>,
    /// A failure outside any node.
    pub error: Option<String>,
    /// The node to run once a pause asked for while a node ran is lifted.
    pub next: Option<String>,
    /// Paused by a request (not only because a node waits for a response).
    #[serde(default)]
    pub paused_by_request: bool,
}

impl ChainState {
    /// Each node's last result by node name, from its completed runs (StackStorm's
    /// `context_result`).
    pub fn results(&self) -> Map<String, Value> {
        self.tasks
            .iter()
            .filter(|t| t.state.is_completed())
            .map(|t| (t.name.clone(), t.result.clone()))
            .collect()
    }
}

/// Drives one ActionChain execution's [`ChainState`].
pub struct ChainConductor<'a> {
    spec: &'a ChainSpec,
    state: ChainState,
    /// `st2kv`, `action_context` and `config_context`.
    base: Context,
    parameters: Map<String, Value>,
    dispatches: Vec<Dispatch>,
    budget: WorkflowSettings,
    /// Node runs started by this conductor (one batch of events).
    started: usize,
    /// The task bound by this conductor, if any (a node requested in this batch).
    bound_now: Option<usize>,
    /// Why `config_context` is not available, when it is not (see
    /// [`ChainConductor::config_unavailable`]).
    config_error: Option<String>,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

impl<'a> ChainConductor<'a> {
    /// Starts a chain with the action's `parameters`: renders its vars and asks for its
    /// default node. `base` holds what templates see besides the chain's own values (the
    /// datastore, `action_context`, `config_context`); `display_published` is the runner
    /// parameter; `config_error` says why `config_context` could not be rendered, if it could
    /// not (see [`ChainConductor::config_unavailable`]); `budget` bounds it (see the module
    /// docs).
    pub fn start(
        spec: &'a ChainSpec,
        parameters: &Map<String, Value>,
        base: Context,
        config_error: Option<String>,
        display_published: bool,
        budget: &WorkflowSettings,
    ) -> ChainConductor<'a> {
        let state = ChainState {
            status: ExecutionStatus::Running,
            outcome: ExecutionStatus::Succeeded,
            vars: Map::new(),
            tasks: Vec::new(),
            published: display_published.then(Map::new),
            error: None,
            next: None,
            paused_by_request: false,
        };
        let mut c = ChainConductor::resume_from(spec, state, parameters, base, budget);
        c.config_error = config_error;
        if spec.mentions_config
            && let Some(e) = c.config_error.clone()
        {
            c.fail(format!("Failed initializing ``vars`` in chain. {e}"));
            return c;
        }
        let mut ctx = c.base.clone();
        for (k, v) in parameters {
            ctx = ctx.with(k, v.clone());
        }
        for (k, v) in &spec.vars {
            match template::render_value(v, &ctx) {
                Ok(v) => {
                    c.state.vars.insert(k.clone(), v);
                }
                Err(e) => {
                    c.fail(format!("Failed initializing ``vars`` in chain. {k}: {e}"));
                    return c;
                }
            }
        }
        let first = spec.default.clone();
        c.run_node(&first, None);
        c
    }

    /// Continues a chain from its stored state.
    pub fn resume_from(
        spec: &'a ChainSpec,
        state: ChainState,
        parameters: &Map<String, Value>,
        base: Context,
        budget: &WorkflowSettings,
    ) -> ChainConductor<'a> {
        ChainConductor {
            spec,
            state,
            base,
            parameters: parameters.clone(),
            dispatches: Vec::new(),
            budget: budget.clone(),
            started: 0,
            bound_now: None,
            config_error: None,
        }
    }

    /// Says `config_context` could not be rendered (`why`): a template that needs it (the
    /// spec mentions it) fails the chain when it is rendered; pause, resume, cancel and
    /// bookkeeping go on without it.
    pub fn config_unavailable(&mut self, why: String) {
        self.config_error = Some(why);
    }

    /// Fails the chain with a top-level error.
    fn fail(&mut self, message: String) {
        self.state.error = Some(message);
        self.state.outcome = ExecutionStatus::Failed;
        self.state.status = ExecutionStatus::Failed;
        self.state.next = None;
    }

    /// The template context of a node's parameters and publish, as StackStorm's
    /// `_resolve_params`/`_render_publish_vars`: parameters, then earlier results by node name,
    /// then vars, then `__results`.
    fn context(&self) -> Context {
        let mut ctx = self.base.clone();
        for (k, v) in &self.parameters {
            ctx = ctx.with(k, v.clone());
        }
        let results = self.state.results();
        for (k, v) in &results {
            ctx = ctx.with(k, v.clone());
        }
        for (k, v) in &self.state.vars {
            ctx = ctx.with(k, v.clone());
        }
        ctx.with(RESULTS_KEY, Value::Object(results))
    }

    /// Asks for node `name` (reached from `from`), or fails the chain when it cannot.
    fn run_node(&mut self, name: &str, from: Option<&str>) {
        if self.state.tasks.len() >= self.budget.max_tasks {
            self.fail(format!(
                "the chain ran {} nodes, the most a chain may ([workflows] max_tasks)",
                self.state.tasks.len()
            ));
            return;
        }
        if self.started >= self.budget.max_transitions_per_event {
            self.fail(format!(
                "the chain started {} nodes at once, the most one event may start \
                 ([workflows] max_transitions_per_event)",
                self.started
            ));
            return;
        }
        if self.spec.mentions_config
            && let Some(e) = self.config_error.clone()
        {
            self.fail(format!("Failed to run task \"{name}\". {e}"));
            return;
        }
        let Some(node) = self.spec.node(name) else {
            let message = match from {
                Some(from) => format!(
                    "Failed to get next node \"{from}\". Unable to find node with name \"{name}\"."
                ),
                None => format!("Failed to get starting node \"{name}\"."),
            };
            self.fail(message);
            return;
        };
        let ctx = self.context();
        let mut input = Map::new();
        for (k, v) in &node.parameters {
            match template::render_value(v, &ctx) {
                Ok(v) => {
                    input.insert(k.clone(), v);
                }
                Err(e) => {
                    let shown = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    self.fail(format!(
                        "Failed to run task \"{}\". Parameter rendering failed. Failed rendering \
                         value for action parameter \"{k}\" in task \"{}\" (template string={shown}): {e}",
                        node.name, node.name
                    ));
                    return;
                }
            }
        }
        let action = if is_jinja(&node.action) {
            match template::render(&node.action, &ctx) {
                Ok(a) => a,
                Err(e) => {
                    self.fail(format!(
                        "Failed to run task \"{}\". Action reference {:?} does not render: {e}",
                        node.name, node.action
                    ));
                    return;
                }
            }
        } else {
            node.action.clone()
        };
        let at = now();
        self.state.tasks.push(ChainTask {
            name: node.name.clone(),
            execution_id: None,
            created_at: at.clone(),
            updated_at: at,
            state: ExecutionStatus::Requested,
            result: Value::Null,
        });
        self.state.status = ExecutionStatus::Running;
        self.started += 1;
        self.dispatches.push(Dispatch {
            task: self.state.tasks.len() - 1,
            run: 0,
            task_name: node.name.clone(),
            route: 0,
            action,
            input,
            item: None,
            delay_ms: None,
        });
    }

    /// The node executions to request now (at most one).
    pub fn take_dispatches(&mut self) -> Vec<Dispatch> {
        std::mem::take(&mut self.dispatches)
    }

    /// Records the execution requested for a dispatch.
    pub fn bind(&mut self, task: usize, execution: String) {
        if let Some(t) = self.state.tasks.get_mut(task) {
            t.execution_id = Some(execution);
            self.bound_now = Some(task);
        }
    }

    /// The node of a dispatch could not be requested because its action is not loaded (or
    /// disabled): the chain fails with StackStorm's message and the node is not listed, as
    /// st2's `InvalidActionReferencedException`.
    pub fn unknown_action(&mut self, task: usize, message: &str) {
        let Some(t) = self.state.tasks.get(task) else {
            return;
        };
        let name = t.name.clone();
        let action = self
            .spec
            .node(&name)
            .map_or_else(String::new, |n| n.action.clone());
        self.state.tasks.truncate(task);
        self.fail(format!(
            "Failed to run task \"{name}\". Action with reference \"{action}\" doesn't exist. {message}"
        ));
    }

    /// The task a node execution belongs to.
    pub fn find(&self, execution: &str) -> Option<usize> {
        self.state
            .tasks
            .iter()
            .rposition(|t| t.execution_id.as_deref() == Some(execution))
    }

    /// The node execution that has not completed, if any.
    pub fn active_executions(&self) -> Vec<String> {
        self.state
            .tasks
            .last()
            .filter(|t| !t.state.is_completed())
            .and_then(|t| t.execution_id.clone())
            .into_iter()
            .collect()
    }

    fn node_active(&self) -> bool {
        self.state
            .tasks
            .last()
            .is_some_and(|t| !t.state.is_completed())
    }

    /// What a node execution reported: its new status and result. A waiting node pauses the
    /// chain; a completed one publishes, then the chain goes on as StackStorm's runner does.
    pub fn update(&mut self, task: usize, status: ExecutionStatus, result: Value) {
        if self.state.status.is_completed() {
            return;
        }
        let Some(t) = self.state.tasks.get_mut(task) else {
            return;
        };
        if t.state.is_completed() {
            return;
        }
        t.state = status;
        t.updated_at = now();
        if matches!(status, ExecutionStatus::Pending | ExecutionStatus::Paused) {
            t.result = result;
            if matches!(
                self.state.status,
                ExecutionStatus::Running | ExecutionStatus::Pausing
            ) {
                self.state.status = ExecutionStatus::Paused;
            }
            return;
        }
        if !status.is_completed() {
            if self.state.status == ExecutionStatus::Paused && !self.state.paused_by_request {
                // The waiting node goes on (it was resumed).
                self.state.status = ExecutionStatus::Running;
            }
            return;
        }
        if self.state.status == ExecutionStatus::Paused && !self.state.paused_by_request {
            // The waiting node completed (its inquiry was answered): the chain goes on.
            self.state.status = ExecutionStatus::Running;
        }
        t.result = result;
        let name = t.name.clone();
        let Some(node) = self.spec.node(&name) else {
            // Its pack was reloaded without this node.
            self.fail(format!(
                "Failed to get next node \"{name}\". Unable to find node with name \"{name}\" \
                 (the chain changed while it ran)."
            ));
            return;
        };
        if !node.publish.is_empty() {
            if self.spec.mentions_config
                && let Some(e) = self.config_error.clone()
            {
                self.fail(format!(
                    "Failed rendering value for publish parameters in task \"{name}\": {e}"
                ));
                return;
            }
            let ctx = self.context();
            for (k, v) in &node.publish {
                match template::render_value(v, &ctx) {
                    Ok(v) => {
                        self.state.vars.insert(k.clone(), v.clone());
                        if let Some(p) = &mut self.state.published {
                            p.insert(k.clone(), v);
                        }
                    }
                    Err(e) => {
                        let shown = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        self.fail(format!(
                            "Failed rendering value for publish parameter \"{k}\" in task \
                             \"{name}\" (template string={shown}): {e}"
                        ));
                        return;
                    }
                }
            }
        }
        let next = match status {
            ExecutionStatus::Succeeded => {
                self.state.outcome = ExecutionStatus::Succeeded;
                node.on_success.clone()
            }
            ExecutionStatus::Canceled => {
                self.state.outcome = ExecutionStatus::Canceled;
                self.state.status = ExecutionStatus::Canceled;
                return;
            }
            ExecutionStatus::Timeout => {
                self.state.outcome = ExecutionStatus::Timeout;
                node.on_failure.clone()
            }
            _ => {
                self.state.outcome = ExecutionStatus::Failed;
                node.on_failure.clone()
            }
        };
        match self.state.status {
            ExecutionStatus::Canceling => self.state.status = ExecutionStatus::Canceled,
            ExecutionStatus::Pausing | ExecutionStatus::Paused if next.is_some() => {
                self.state.next = next;
                self.state.status = ExecutionStatus::Paused;
            }
            _ => match next {
                Some(next) => self.run_node(&next, Some(&name)),
                None => self.state.status = self.state.outcome,
            },
        }
    }

    /// Pauses the chain: at once when no node runs, else `pausing` until the running node
    /// completes (no next node starts).
    ///
    /// # Errors
    /// [`ConductorError`] unless it is running or already pausing/paused.
    pub fn pause(&mut self) -> Result<(), ConductorError> {
        match self.state.status {
            ExecutionStatus::Running => {
                self.state.paused_by_request = true;
                self.state.status = if self.node_active() {
                    ExecutionStatus::Pausing
                } else {
                    ExecutionStatus::Paused
                };
                Ok(())
            }
            ExecutionStatus::Pausing | ExecutionStatus::Paused => {
                self.state.paused_by_request = true;
                Ok(())
            }
            other => Err(ConductorError(format!(
                "the action chain is {other}; only a running action chain can be paused"
            ))),
        }
    }

    /// Resumes a paused chain: the node after the last one runs (or the waiting node goes on).
    ///
    /// # Errors
    /// [`ConductorError`] unless paused or pausing.
    pub fn resume(&mut self) -> Result<(), ConductorError> {
        match self.state.status {
            ExecutionStatus::Pausing | ExecutionStatus::Paused => {
                self.state.status = ExecutionStatus::Running;
                self.state.paused_by_request = false;
                if self.state.tasks.last().is_some_and(|t| {
                    matches!(t.state, ExecutionStatus::Pending | ExecutionStatus::Paused)
                }) {
                    // Still waiting for its node (an inquiry): paused until it completes.
                    self.state.status = ExecutionStatus::Paused;
                }
                if let Some(next) = self.state.next.take() {
                    let from = self.state.tasks.last().map(|t| t.name.clone());
                    self.run_node(&next, from.as_deref());
                }
                Ok(())
            }
            other => Err(ConductorError(format!(
                "the action chain is {other}; only a paused action chain can be resumed"
            ))),
        }
    }

    /// Cancels the chain: at once when no node runs, else `canceling` until the running node
    /// (canceled by the caller: see [`ChainConductor::active_executions`]) has ended.
    ///
    /// # Errors
    /// [`ConductorError`] when it has completed.
    pub fn cancel(&mut self) -> Result<(), ConductorError> {
        if self.state.status.is_completed() {
            return Err(ConductorError(format!(
                "the action chain is {}; it cannot be canceled",
                self.state.status
            )));
        }
        self.state.next = None;
        self.state.status = if self.node_active() {
            ExecutionStatus::Canceling
        } else {
            ExecutionStatus::Canceled
        };
        Ok(())
    }

    /// Fails the chain when its state, as stored, is over `max_state_bytes` (the caller measured
    /// `bytes`); returns whether it did. A chain looping through `on-failure` grows until this.
    /// A node requested in this batch is dropped from the state: the caller must not store
    /// or queue its execution (see [`ChainConductor::dropped`]).
    pub fn check_state_size(&mut self, bytes: usize) -> bool {
        if bytes as u64 <= self.budget.max_state_bytes || self.state.status.is_completed() {
            return false;
        }
        self.dispatches.clear();
        if let Some(t) = self.bound_now.take() {
            self.state.tasks.truncate(t);
        } else if self
            .state
            .tasks
            .last()
            .is_some_and(|t| t.execution_id.is_none())
        {
            self.state.tasks.pop();
        }
        self.fail(format!(
            "action chain state is {bytes} bytes, over the limit of {} bytes \
             ([workflows] max_state_bytes)",
            self.budget.max_state_bytes
        ));
        true
    }

    /// Whether the execution `id` is no longer the chain's (requested in this batch, then the
    /// chain went over a budget): the caller does not store or queue it.
    pub fn dropped(&self, id: &str) -> bool {
        self.find(id).is_none()
    }

    /// The state to persist.
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// The state, consumed.
    pub fn into_state(self) -> ChainState {
        self.state
    }

    /// The chain's status.
    pub fn status(&self) -> ExecutionStatus {
        self.state.status
    }

    /// The chain's result: `{"tasks": [...], "published": {...}}`, plus `error`.
    pub fn result(&self) -> Value {
        let mut result = Map::new();
        result.insert(
            "tasks".into(),
            Value::Array(self.state.tasks.iter().map(ChainTask::to_json).collect()),
        );
        if let Some(p) = &self.state.published {
            result.insert("published".into(), Value::Object(p.clone()));
        }
        if let Some(e) = &self.state.error {
            result.insert("error".into(), Value::String(e.clone()));
        }
        Value::Object(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ChainSpec {
        ChainSpec::parse(text, "test.chain").unwrap()
    }

    fn err(text: &str) -> ChainError {
        ChainSpec::parse(text, "test.chain").unwrap_err()
    }

    const CHAIN: &str = r#"
vars:
  greeting: "hello {{ who }}"
chain:
  - name: first
    ref: core.local
    parameters:
      cmd: "echo {{ greeting }}"
    publish:
      said: "{{ first.stdout }}"
    on-success: second
    on-failure: handler
  - name: second
    ref: core.echo
    params:
      message: "{{ said }} / {{ __results.first.stdout }} / {{ first.return_code }}"
  - name: handler
    ref: core.noop
"#;

    fn budget() -> WorkflowSettings {
        WorkflowSettings::default()
    }

    fn params() -> Map<String, Value> {
        json!({"who": "world"}).as_object().unwrap().clone()
    }

    #[test]
    fn the_default_node_is_the_first_no_transition_names() {
        // st2 ChainHolder._get_default: nodes referenced by on-success/on-failure are skipped.
        let s = spec("chain:\n  - {name: b, ref: x.y}\n  - {name: a, ref: x.y, on-success: b}\n");
        assert_eq!(s.default, "a");
        let s = spec(
            "chain:\n  - {name: a, ref: x.y, on-success: b}\n  - {name: b, ref: x.y, on-success: a}\n",
        );
        assert_eq!(s.default, "a", "all referenced: the first node");
        assert_eq!(spec(CHAIN).default, "first");
    }

    #[test]
    fn problems_are_reported_in_stackstorms_words() {
        assert_eq!(err("vars: {}\n").message, "'chain' is a required property");
        assert_eq!(
            err("chain: []\nextra: 1\n").message,
            "Additional properties are not allowed ('extra' was unexpected)"
        );
        let e = err("chain:\n  - {name: a, ref: x.y, on-success: nope}\n");
        assert_eq!(e.field, "chain[0].on-success");
        assert_eq!(
            e.message,
            "Unable to find node with name \"nope\" referenced in \"on-success\" in task \"a\"."
        );
        let e = err("default: zz\nchain:\n  - {name: a, ref: x.y}\n");
        assert_eq!(
            e.message,
            "Unable to find node with name \"zz\" referenced in \"default\"."
        );
        let e = err("chain:\n  - {name: a, ref: x.y, params: {a: 1}, parameters: {b: 2}}\n");
        assert!(
            e.message.starts_with("Either \"params\" or \"parameters\""),
            "{e}"
        );
        assert_eq!(
            err("chain: []\n").message,
            "Failed to find default node in test.chain."
        );
        assert_eq!(err("chain:\n  - {ref: x.y}\n").field, "chain[0].name");
        assert!(
            ChainSpec::parse(
                "chain:\n  - {name: a, ref: x.y, on-success: \"{{ n }}\"}\n",
                "c"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_chain_runs_node_by_node_with_publish_results_and_vars() {
        let s = spec(CHAIN);
        let mut c = ChainConductor::start(&s, &params(), Context::empty(), None, true, &budget());
        let d = c.take_dispatches();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].action, "core.local");
        assert_eq!(d[0].input["cmd"], "echo hello world");
        c.bind(d[0].task, "e1".into());
        assert_eq!(c.find("e1"), Some(0));
        c.update(
            0,
            ExecutionStatus::Succeeded,
            json!({"stdout": "hello world", "return_code": 0}),
        );
        let d = c.take_dispatches();
        assert_eq!(d[0].task_name, "second");
        assert_eq!(d[0].input["message"], "hello world / hello world / 0");
        c.bind(d[0].task, "e2".into());
        c.update(1, ExecutionStatus::Succeeded, json!({"stdout": "x"}));
        assert_eq!(c.status(), ExecutionStatus::Succeeded);
        let r = c.result();
        assert_eq!(r["published"], json!({"said": "hello world"}));
        assert_eq!(r["tasks"][0]["name"], "first");
        assert_eq!(r["tasks"][0]["id"], "first");
        assert_eq!(r["tasks"][0]["execution_id"], "e1");
        assert_eq!(r["tasks"][0]["state"], "succeeded");
        assert_eq!(r["tasks"][1]["result"], json!({"stdout": "x"}));
        assert!(r.get("error").is_none());
    }

    #[test]
    fn a_handled_failure_ends_as_its_handler_does() {
        // st2: chain_status is the status of the last node that ran.
        let s = spec(CHAIN);
        let mut c = ChainConductor::start(&s, &params(), Context::empty(), None, false, &budget());
        c.take_dispatches();
        c.bind(0, "e1".into());
        c.update(
            0,
            ExecutionStatus::Failed,
            json!({"stdout": "", "return_code": 1}),
        );
        let d = c.take_dispatches();
        assert_eq!(d[0].task_name, "handler");
        c.bind(1, "e2".into());
        c.update(1, ExecutionStatus::Succeeded, json!({}));
        assert_eq!(c.status(), ExecutionStatus::Succeeded);
        assert!(
            c.result().get("published").is_none(),
            "display_published: false"
        );
        // Without a handler a failure fails the chain; a timeout ends it `timeout`.
        let s = spec("chain:\n  - {name: a, ref: x.y}\n");
        let mut c = ChainConductor::start(&s, &Map::new(), Context::empty(), None, true, &budget());
        c.bind(0, "e".into());
        c.update(0, ExecutionStatus::Timeout, json!({}));
        assert_eq!(c.status(), ExecutionStatus::Timeout);
    }

    #[test]
    fn rendering_failures_fail_the_chain_with_stackstorms_message() {
        let s = spec(
            "chain:\n  - {name: a, ref: x.y, parameters: {p: \"{{ 'x' | from_json_string }}\"}}\n",
        );
        let c = ChainConductor::start(&s, &Map::new(), Context::empty(), None, true, &budget());
        assert_eq!(c.status(), ExecutionStatus::Failed);
        let e = c.result()["error"].as_str().unwrap().to_string();
        assert!(
            e.starts_with("Failed to run task \"a\". Parameter rendering failed. Failed rendering value for action parameter \"p\" in task \"a\""),
            "{e}"
        );
        assert_eq!(c.result()["tasks"], json!([]));
    }

    #[test]
    fn pause_cancel_and_a_waiting_node() {
        let s = spec(CHAIN);
        let mut c = ChainConductor::start(&s, &params(), Context::empty(), None, true, &budget());
        c.take_dispatches();
        c.bind(0, "e1".into());
        c.pause().unwrap();
        assert_eq!(c.status(), ExecutionStatus::Pausing);
        c.update(0, ExecutionStatus::Succeeded, json!({"stdout": "s"}));
        assert_eq!(c.status(), ExecutionStatus::Paused);
        assert!(
            c.take_dispatches().is_empty(),
            "no node starts while paused"
        );
        c.resume().unwrap();
        assert_eq!(c.take_dispatches()[0].task_name, "second");
        c.bind(1, "e2".into());
        c.update(1, ExecutionStatus::Pending, json!({"schema": {}}));
        assert_eq!(
            c.status(),
            ExecutionStatus::Paused,
            "a pending node pauses the chain"
        );
        c.update(1, ExecutionStatus::Succeeded, json!({"response": {}}));
        assert_eq!(c.status(), ExecutionStatus::Succeeded);

        let mut c = ChainConductor::start(&s, &params(), Context::empty(), None, true, &budget());
        c.take_dispatches();
        c.bind(0, "e1".into());
        c.cancel().unwrap();
        assert_eq!(c.status(), ExecutionStatus::Canceling);
        assert_eq!(c.active_executions(), vec!["e1".to_string()]);
        c.update(0, ExecutionStatus::Canceled, json!({}));
        assert_eq!(c.status(), ExecutionStatus::Canceled);
        assert!(c.cancel().is_err());
    }

    #[test]
    fn a_loop_through_on_failure_ends_at_the_state_limit() {
        let s = spec("chain:\n  - {name: a, ref: x.y, on-failure: a}\n");
        let mut c = ChainConductor::start(
            &s,
            &Map::new(),
            Context::empty(),
            None,
            true,
            &WorkflowSettings {
                max_state_bytes: 2_000,
                ..budget()
            },
        );
        for i in 0.. {
            let d = c.take_dispatches();
            let bytes = serde_json::to_vec(c.state()).unwrap().len();
            if c.check_state_size(bytes) {
                break;
            }
            assert!(i < 100, "the limit stops the loop");
            c.bind(d[0].task, format!("e{i}"));
            c.update(d[0].task, ExecutionStatus::Failed, json!({"stderr": "no"}));
        }
        assert_eq!(c.status(), ExecutionStatus::Failed);
        assert!(
            c.result()["error"]
                .as_str()
                .unwrap()
                .contains("max_state_bytes")
        );
    }

    #[test]
    fn stackstorms_lenient_schema_loads() {
        // st2: patternProperties without additionalProperties false; items: [Node.schema]
        // checks only the first node; of nodes sharing a name the first runs.
        let s = spec(
            "vars: {dash-name: 1}\nchain:\n  - {name: a, ref: x.y, publish: {out-put: 1}, on-success: b}\n  \
             - {name: b, ref: x.y, extra: ignored}\n  - {name: b, ref: x.z}\n",
        );
        assert_eq!(s.node("b").unwrap().action, "x.y");
        assert!(
            err("chain:\n  - {name: a, ref: x.y, extra: 1}\n")
                .message
                .contains("'extra' was unexpected")
        );
        let e = err("chain:\n  - {name: a, ref: \"{{ x\"}\n");
        assert_eq!(e.field, "chain[0].ref");
    }

    #[test]
    fn a_synchronous_loop_ends_at_the_budget() {
        // Every request fails at once (the action refuses its parameters) and on-failure
        // loops: one event may start at most max_transitions_per_event nodes.
        let s = spec("chain:\n  - {name: a, ref: x.y, on-failure: a}\n");
        let budget = WorkflowSettings {
            max_transitions_per_event: 5,
            ..budget()
        };
        let mut c = ChainConductor::start(&s, &Map::new(), Context::empty(), None, true, &budget);
        for _ in 0..100 {
            let d = c.take_dispatches();
            let Some(d) = d.first() else { break };
            c.update(
                d.task,
                ExecutionStatus::Failed,
                json!({"error": "bad parameters"}),
            );
        }
        assert_eq!(c.status(), ExecutionStatus::Failed);
        assert!(
            c.result()["error"]
                .as_str()
                .unwrap()
                .contains("[workflows] max_transitions_per_event"),
            "{}",
            c.result()
        );
        assert_eq!(c.state().tasks.len(), 5);
    }

    #[test]
    fn an_unknown_action_fails_the_chain_as_st2() {
        let s = spec(CHAIN);
        let mut c = ChainConductor::start(&s, &params(), Context::empty(), None, true, &budget());
        let d = c.take_dispatches();
        c.unknown_action(
            d[0].task,
            "Task :: first - Action with ref core.local not registered.",
        );
        assert_eq!(c.status(), ExecutionStatus::Failed);
        assert_eq!(c.result()["tasks"], json!([]));
        assert_eq!(
            c.result()["error"],
            "Failed to run task \"first\". Action with reference \"core.local\" doesn't exist. \
             Task :: first - Action with ref core.local not registered."
        );
    }

    #[test]
    fn a_node_gone_after_a_reload_fails_the_chain_without_panicking() {
        let s = spec(CHAIN);
        let mut c = ChainConductor::start(&s, &params(), Context::empty(), None, true, &budget());
        c.take_dispatches();
        c.bind(0, "e1".into());
        let state = c.into_state();
        let changed = spec("chain:\n  - {name: other, ref: x.y}\n");
        let mut c =
            ChainConductor::resume_from(&changed, state, &params(), Context::empty(), &budget());
        c.update(0, ExecutionStatus::Succeeded, json!({}));
        assert_eq!(c.status(), ExecutionStatus::Failed);
        assert!(
            c.result()["error"]
                .as_str()
                .unwrap()
                .contains("the chain changed")
        );
    }

    #[test]
    fn an_unavailable_config_fails_only_what_needs_it() {
        let s = spec(
            "chain:\n  - {name: a, ref: x.y, parameters: {u: \"{{ config_context.url }}\"}}\n",
        );
        let c = ChainConductor::start(
            &s,
            &Map::new(),
            Context::empty(),
            Some("config_context: bad".into()),
            true,
            &budget(),
        );
        assert_eq!(c.status(), ExecutionStatus::Failed);
        assert!(
            c.result()["error"]
                .as_str()
                .unwrap()
                .contains("config_context: bad")
        );
        // Bookkeeping goes on without it: a chain that does not mention it is unaffected.
        let s = spec(CHAIN);
        let mut c = ChainConductor::start(&s, &params(), Context::empty(), None, true, &budget());
        c.take_dispatches();
        c.bind(0, "e1".into());
        let mut c =
            ChainConductor::resume_from(&s, c.into_state(), &params(), Context::empty(), &budget());
        c.config_unavailable("config_context: bad".into());
        c.cancel().unwrap();
        assert_eq!(c.status(), ExecutionStatus::Canceling);
    }

    #[test]
    fn over_the_state_limit_the_node_of_this_batch_is_dropped() {
        let s = spec("chain:\n  - {name: a, ref: x.y, on-success: b}\n  - {name: b, ref: x.y}\n");
        let mut c = ChainConductor::start(&s, &Map::new(), Context::empty(), None, true, &budget());
        c.take_dispatches();
        c.bind(0, "e1".into());
        let state = c.into_state();
        let mut c = ChainConductor::resume_from(
            &s,
            state,
            &Map::new(),
            Context::empty(),
            &WorkflowSettings {
                max_state_bytes: 10,
                ..budget()
            },
        );
        c.update(0, ExecutionStatus::Succeeded, json!({}));
        let d = c.take_dispatches();
        c.bind(d[0].task, "e2".into());
        assert!(c.check_state_size(1_000));
        assert!(
            c.dropped("e2"),
            "the node requested in this batch is not the chain's"
        );
        assert!(!c.dropped("e1"));
        assert_eq!(c.status(), ExecutionStatus::Failed);
    }
}
