//! The registry: what can run and what listens, with which limits and grants.

use serde_json::{Map, Value};
use squall_core::RunnerType;
use squall_core::capability::HttpPolicy;
use squall_core::pack_config::PackConfigError;
use squall_core::rule::Rule;
use squall_core::template::Context;
use squall_core::trigger::WEBHOOK;
use squall_core::{Action, Config, ExecutionId, Limits, PackSet, Ref, TriggerType};
use squall_host::{Host, LoadError, PreparedComponent};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Loaded packs + operator config + host, and the rules' enabled state. Shared behind an
/// `Arc`.
///
/// The packs are a [`Content`] snapshot swapped whole by [`Registry::publish`] (`squall pack
/// register`, `POST /api/v1/packs/register`, SIGHUP): whoever took a snapshot ([`Registry::packs`],
/// [`Registry::resolve`]) keeps seeing one consistent version of every pack, so an execution
/// never runs half of an old pack and half of a new one.
pub struct Registry {
    content: RwLock<Arc<Content>>,
    config: Config,
    host: Host,
    /// Enable/disable set through the API, overriding the YAML's `enabled`.
    rule_overrides: RwLock<HashMap<Ref, bool>>,
    /// Where the ledgers of running commands live (see [`squall_host::process::ProcessLedger`]).
    process_root: Option<PathBuf>,
    /// Every component file met so far and how far its compilation got.
    components: Mutex<BTreeMap<PathBuf, ComponentState>>,
    /// Set once a background compiler runs ([`Registry::compile_in_background`]): lookups
    /// then report a component's state rather than compile it themselves.
    background: std::sync::atomic::AtomicBool,
    /// Set at shutdown: [`Registry::compile_all`] stops before its next component.
    stopping: std::sync::atomic::AtomicBool,
    /// Reads the packs from disk again (the operator's packs directories and configs), for a
    /// reload; `None`: this registry cannot reload.
    loader: Option<Loader>,
    /// The packs version each execution requested in this process and not yet started was
    /// requested on ([`Registry::pin`]): it runs on that version even if a reload came
    /// between (its parameters were resolved against it).
    pins: Mutex<HashMap<ExecutionId, Arc<Content>>>,
}

/// Reads the packs from disk, as at start (see [`Registry::with_loader`]).
pub type Loader = Arc<dyn Fn() -> PackSet + Send + Sync>;

/// Why a reload ([`crate::Services::reload`]) was refused; the packs loaded before keep
/// serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// This process was started without a way to read the packs again.
    #[error("this process cannot reload packs (no packs directories)")]
    NoLoader,
    /// A pack named in the request is not in the packs directories, as st2's `Pack "x" not
    /// found on disk`.
    #[error("Pack \"{0}\" not found on disk")]
    NotFound(String),
    /// The new version has problems the loaded one did not: every one, naming file and field.
    #[error("the new version of the packs was not loaded, the previous one keeps serving: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The store failed while the new version's sensors were set up; nothing changed.
    #[error(
        "the new version of the packs was not loaded, the previous one keeps serving: store: {0}"
    )]
    Store(String),
}

/// One version of the loaded packs, with their HTTP policies and the components prepared for
/// them. Dereferences to its [`PackSet`].
pub struct Content {
    packs: PackSet,
    policies: HashMap<String, Arc<HttpPolicy>>,
    prepared: Mutex<HashMap<Ref, Arc<PreparedComponent>>>,
    /// 1 for the packs loaded at start, +1 per [`Registry::publish`].
    generation: u64,
    /// When this version was published.
    loaded_at: jiff::Timestamp,
    /// Each component file's size and modification time when this version was loaded: a
    /// component not compiled yet whose file changed since is refused rather than run under
    /// this version's metadata ([`Registry::prepare_in`]).
    stamps: HashMap<PathBuf, Stamp>,
    /// Each component file resolved (links followed) when this version was loaded: an
    /// installed pack's `<packs_dir>/<pack>` link moves to the next version, this version's
    /// files stay where they are.
    real_files: HashMap<PathBuf, PathBuf>,
    /// Each pack's directory resolved the same way, by pack ref.
    real_dirs: HashMap<String, PathBuf>,
    /// See [`Content::component_files`].
    files: Vec<(PathBuf, ComponentKind)>,
}

/// A file's size and modification time.
type Stamp = Option<(u64, std::time::SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

impl std::ops::Deref for Content {
    type Target = PackSet;
    fn deref(&self) -> &PackSet {
        &self.packs
    }
}

impl Content {
    fn new(packs: PackSet, config: &Config, generation: u64) -> Content {
        let policies = packs
            .packs
            .values()
            .map(|p| {
                let policy = HttpPolicy {
                    pack: p.meta.reference.clone(),
                    requested: p.meta.capabilities.http.clone(),
                    granted: config.grants(&p.meta.reference).http_allow,
                };
                (p.meta.reference.clone(), Arc::new(policy))
            })
            .collect();
        let mut content = Content {
            packs,
            policies,
            prepared: Mutex::new(HashMap::new()),
            generation,
            loaded_at: jiff::Timestamp::now(),
            stamps: HashMap::new(),
            real_files: HashMap::new(),
            real_dirs: HashMap::new(),
            files: Vec::new(),
        };
        content.files = component_files(&content.packs);
        let resolved = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        for (path, _) in &content.files {
            let real = resolved(path);
            content.stamps.insert(path.clone(), stamp(&real));
            content.real_files.insert(path.clone(), real);
        }
        content.real_dirs = content
            .packs
            .packs
            .values()
            .map(|p| (p.meta.reference.clone(), resolved(&p.path)))
            .collect();
        content
    }

    /// The packs of this version.
    pub fn packs(&self) -> &PackSet {
        &self.packs
    }

    /// 1 for the packs loaded at start, +1 per reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When this version was published.
    pub fn loaded_at(&self) -> jiff::Timestamp {
        self.loaded_at
    }

    /// The directory `pack` was loaded from, links followed (an installed pack's version in
    /// the store), as this version saw it.
    pub fn real_dir(&self, pack: &str) -> Option<&Path> {
        self.real_dirs.get(pack).map(PathBuf::as_path)
    }

    /// Every component file this version's actions and sensors run, each once, with whether
    /// it is a sensor component (prepared as `squall:plugin/sensor`) — in pack order.
    pub fn component_files(&self) -> &[(PathBuf, ComponentKind)] {
        &self.files
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Ref, Arc<PreparedComponent>>> {
        self.prepared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// See [`Content::component_files`]; computed once per version.
fn component_files(packs: &PackSet) -> Vec<(PathBuf, ComponentKind)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    for action in packs.actions() {
        if matches!(
            action.runner_type,
            RunnerType::Wasm | RunnerType::PythonScript
        ) && seen.insert(action.entry_path.clone())
        {
            files.push((action.entry_path.clone(), ComponentKind::Action));
        }
    }
    for sensor in packs.sensors() {
        if seen.insert(sensor.entry_path.clone()) {
            files.push((sensor.entry_path.clone(), ComponentKind::Sensor));
        }
    }
    files
}

/// What a component file is prepared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// An action's (`squall:plugin/action`, `extended-action` or `python-pack`).
    Action,
    /// A sensor's (`squall:plugin/sensor`).
    Sensor,
}

/// How far a component file's compilation got, as `squall pack get` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ComponentState {
    /// Not started (waiting for the background compiler).
    Waiting,
    /// Being compiled (or read from the cache) since `since`.
    Compiling {
        /// When it started.
        since: jiff::Timestamp,
    },
    /// Ready to run.
    Ready {
        /// Hex SHA-256 of the component's bytes.
        sha256: String,
        /// Milliseconds compiling or reading from the cache took.
        ms: u64,
    },
    /// It does not load: the error names the file.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// An action with everything needed to run it.
#[derive(Clone)]
pub struct ResolvedAction {
    /// The action's metadata.
    pub action: Action,
    /// Its limits: operator defaults, then the action's `limits:`, capped by the operator.
    pub limits: Limits,
    /// Limit fields the operator's ceiling lowered.
    pub capped: Vec<&'static str>,
    /// Its pack's outbound HTTP policy.
    pub http: Arc<HttpPolicy>,
    /// The packs version it was resolved from: its component comes from the same version
    /// ([`Registry::prepare_in`]).
    pub content: Arc<Content>,
}

impl std::fmt::Debug for ResolvedAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedAction")
            .field("action", &self.action.reference)
            .field("limits", &self.limits)
            .field("generation", &self.content.generation)
            .finish_non_exhaustive()
    }
}

/// Counts of what a [`Registry::publish`] registered, with StackStorm's field names (`POST
/// /api/v1/packs/register` answers them, as st2's `PackRegisterController`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Registered {
    /// Packs.
    pub packs: usize,
    /// Actions (workflows included).
    pub actions: usize,
    /// Trigger types the packs declare.
    pub triggers: usize,
    /// Sensors.
    pub sensors: usize,
    /// Rules.
    pub rules: usize,
    /// Policies.
    pub policies: usize,
    /// Pack configs.
    pub configs: usize,
}

impl Registered {
    /// What `packs` has, counting only the packs named in `only` unless it is empty.
    pub fn of(packs: &PackSet, only: &[String]) -> Registered {
        let mut r = Registered::default();
        for p in packs
            .packs
            .values()
            .filter(|p| only.is_empty() || only.contains(&p.meta.reference))
        {
            r.packs += 1;
            r.actions += p.actions.len();
            r.triggers += p.trigger_types.len();
            r.sensors += p.sensors.len();
            r.rules += p.rules.len();
            r.policies += p.policies.len();
            r.configs += usize::from(p.config.is_some());
        }
        r
    }
}

impl Registry {
    /// A registry over `packs`, `config` and `host`. Every pack's HTTP policy is computed here;
    /// components are prepared on first use ([`Registry::prepare`]) or by
    /// [`Registry::compile_all`].
    pub fn new(packs: PackSet, config: Config, host: Host) -> Registry {
        squall_core::template::configure(&config.templates);
        squall_core::json::configure(config.server.max_json_depth);
        let content = Content::new(packs, &config, 1);
        let components = content
            .component_files()
            .iter()
            .map(|(path, _)| (path.clone(), ComponentState::Waiting))
            .collect();
        Registry {
            content: RwLock::new(Arc::new(content)),
            config,
            host,
            rule_overrides: RwLock::new(HashMap::new()),
            process_root: None,
            components: Mutex::new(components),
            background: std::sync::atomic::AtomicBool::new(false),
            stopping: std::sync::atomic::AtomicBool::new(false),
            loader: None,
            pins: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps the ledgers of running commands under `root` (normally `<data_dir>/processes`), so
    /// a server starting after a crash kills what the dead one left running. Without it, nothing
    /// is recorded.
    pub fn with_process_root(mut self, root: PathBuf) -> Registry {
        self.process_root = Some(root);
        self
    }

    /// Lets [`crate::Services::reload`] read the packs again with `loader` (normally the same
    /// call that loaded them at start).
    pub fn with_loader(mut self, loader: Loader) -> Registry {
        self.loader = Some(loader);
        self
    }

    /// The next version of the packs, read from disk: every pack read again, so the version
    /// is consistent (rules, workflows and policies checked against the actions and trigger
    /// types it has); `only` names packs that must be in it (as st2's `register_from_pack`
    /// per named pack, which fails for a pack not on disk). Blocking (file I/O).
    ///
    /// # Errors
    /// [`ReloadError::NoLoader`]; [`ReloadError::Invalid`] listing each problem of the new
    /// version that the loaded one does not have (a problem the packs already had at start does
    /// not block a reload); [`ReloadError::NotFound`] for a named pack not in it.
    pub fn read_next(&self, only: &[String]) -> Result<PackSet, ReloadError> {
        let loader = self.loader.as_ref().ok_or(ReloadError::NoLoader)?;
        let next = loader();
        let current = self.packs();
        let known: std::collections::HashSet<String> =
            current.errors.iter().map(ToString::to_string).collect();
        let new: Vec<String> = next
            .errors
            .iter()
            .map(ToString::to_string)
            .filter(|e| !known.contains(e))
            .collect();
        if !new.is_empty() {
            return Err(ReloadError::Invalid(new));
        }
        if let Some(missing) = only.iter().find(|n| !next.packs.contains_key(*n)) {
            return Err(ReloadError::NotFound(missing.clone()));
        }
        Ok(next)
    }

    /// See [`Registry::with_process_root`].
    pub fn process_root(&self) -> Option<&Path> {
        self.process_root.as_deref()
    }

    /// The loaded packs now (and the problems met loading them): a snapshot that stays
    /// consistent however long it is held, while a reload publishes the next one.
    pub fn packs(&self) -> Arc<Content> {
        self.content
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The operator's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The outbound HTTP policy of `pack` (nothing granted for an unknown pack).
    pub fn http_policy(&self, pack: &str) -> Arc<HttpPolicy> {
        self.packs().policies.get(pack).cloned().unwrap_or_default()
    }

    /// The action `reference` with its limits and policy, if loaded.
    pub fn resolve(&self, reference: &Ref) -> Option<ResolvedAction> {
        self.resolve_in(self.packs(), reference)
    }

    fn resolve_in(&self, content: Arc<Content>, reference: &Ref) -> Option<ResolvedAction> {
        let action = content.action(reference)?.clone();
        let (limits, capped) = self.config.limits.resolve(&action.limits);
        let http = content
            .policies
            .get(reference.pack())
            .cloned()
            .unwrap_or_default();
        Some(ResolvedAction {
            action,
            limits,
            capped,
            http,
            content,
        })
    }

    /// Records that `execution` was requested on `content`: [`Registry::resolve_pinned`] then
    /// resolves its action from that version, whatever was published since.
    pub fn pin(&self, execution: ExecutionId, content: Arc<Content>) {
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(execution, content);
    }

    /// Forgets the pin of `execution` (it finished without starting).
    pub fn unpin(&self, execution: ExecutionId) {
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&execution);
    }

    /// The action of `execution` as the packs version it was requested on has it (and
    /// forgets the pin), else as the packs loaded now have it (an execution requested
    /// before this process started).
    pub fn resolve_pinned(
        &self,
        execution: ExecutionId,
        reference: &Ref,
    ) -> Option<ResolvedAction> {
        let pinned = self
            .pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&execution);
        match pinned {
            Some(content) => self.resolve_in(content, reference),
            None => self.resolve(reference),
        }
    }

    /// The action's component in the packs loaded now; see [`Registry::prepare_in`].
    ///
    /// # Errors
    /// [`LoadError`] naming the component file.
    pub fn prepare(&self, action: &Action) -> Result<Arc<PreparedComponent>, LoadError> {
        self.prepare_in(&self.packs(), action)
    }

    /// The action's component as `content` (one packs version) has it, compiled (or loaded
    /// from the cache) and linked; the host compiles each component once even when first uses
    /// race, so a caller arriving while the background compiler works on it waits for that
    /// compilation. Blocking: call from `spawn_blocking` in async code.
    ///
    /// # Errors
    /// [`LoadError`] naming the component file.
    pub fn prepare_in(
        &self,
        content: &Content,
        action: &Action,
    ) -> Result<Arc<PreparedComponent>, LoadError> {
        if let Some(p) = content.lock().get(&action.reference) {
            return Ok(p.clone());
        }
        let path = &action.entry_path;
        let real = content.real_files.get(path).unwrap_or(path);
        if let Some(loaded) = content.stamps.get(path)
            && *loaded != stamp(real)
        {
            return Err(LoadError::Read {
                path: path.clone(),
                message: "the file changed after its pack was loaded and had not been \
                          compiled yet; `squall pack register` loads the new version"
                    .into(),
            });
        }
        let prepared = self.tracked(&action.entry_path, || {
            self.host
                .prepare(real)
                .map(|p| {
                    let sha = p.sha256().to_string();
                    (p, sha)
                })
                .map_err(|e| e.naming(path))
        })?;
        content
            .lock()
            .insert(action.reference.clone(), prepared.clone());
        Ok(prepared)
    }

    /// Runs `prepare` for the component at `path`, recording its progress for
    /// [`Registry::component_state`] and the log (once per file: a component already ready
    /// comes from the host's memory).
    fn tracked<T>(
        &self,
        path: &Path,
        prepare: impl FnOnce() -> Result<(T, String), LoadError>,
    ) -> Result<T, LoadError> {
        if let Some(ComponentState::Ready { sha256, ms }) = self.component_state(path) {
            // Ready already: from the host's memory, unless the file changed (a reload).
            let (t, sha) = prepare()?;
            if sha != sha256 {
                self.set_state(path, ComponentState::Ready { sha256: sha, ms });
            }
            return Ok(t);
        }
        let started = std::time::Instant::now();
        self.set_state(
            path,
            ComponentState::Compiling {
                since: jiff::Timestamp::now(),
            },
        );
        let outcome = prepare();
        let state = match &outcome {
            Ok((_, sha256)) => {
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(path = %path.display(), sha256 = %sha256, ms, "component ready");
                ComponentState::Ready {
                    sha256: sha256.clone(),
                    ms,
                }
            }
            Err(e) => ComponentState::Failed {
                error: e.to_string(),
            },
        };
        self.set_state(path, state);
        outcome.map(|(t, _)| t)
    }

    fn set_state(&self, path: &Path, state: ComponentState) -> Option<ComponentState> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), state)
    }

    /// How far the compilation of the component at `path` got (`None`: never met).
    pub fn component_state(&self, path: &Path) -> Option<ComponentState> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned()
    }

    /// Prepares every component of `content` (actions' and sensors'), one after another,
    /// logging each as it becomes ready: `squall serve` runs this in the background so the API
    /// answers meanwhile, and a reload runs it before publishing. Blocking.
    ///
    /// Returns the errors, each naming its file.
    pub fn compile_all(&self, content: &Content) -> Vec<String> {
        let mut errors = Vec::new();
        let files = content.component_files();
        let total = files.len();
        for (done, (path, kind)) in files.iter().enumerate() {
            if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                errors.push("the server is shutting down: components were left uncompiled".into());
                break;
            }
            let real = content.real_files.get(path).unwrap_or(path);
            let outcome = match kind {
                // Every action sharing the file (a Python pack's) gets it now, not at first
                // use.
                ComponentKind::Action => content
                    .actions()
                    .filter(|a| a.entry_path == *path)
                    .map(|a| self.prepare_in(content, a).map(drop))
                    .find(Result::is_err)
                    .or(Some(Ok(()))),
                ComponentKind::Sensor => Some(
                    self.tracked(path, || {
                        self.host
                            .prepare_sensor(real)
                            .map(|p| {
                                let sha = p.sha256().to_string();
                                (p, sha)
                            })
                            .map_err(|e| e.naming(path))
                    })
                    .map(drop),
                ),
            };
            if let Some(Err(e)) = outcome {
                tracing::warn!("{e}");
                errors.push(e.to_string());
            }
            tracing::debug!(done = done + 1, total, "components compiled");
        }
        errors
    }

    /// Compiles every component of the packs loaded now on a blocking thread (see
    /// [`Registry::compile_all`]), so `squall serve` answers the API meanwhile: an execution
    /// needing a component still compiling waits for that compilation, `squall pack get` shows
    /// each component's state, and the log has a line per component ready. Resolves when all
    /// are done, with the number that failed. Call from within a Tokio runtime.
    pub fn compile_in_background(self: &Arc<Self>) -> tokio::task::JoinHandle<usize> {
        self.background
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let registry = self.clone();
        tokio::task::spawn_blocking(move || {
            let content = registry.packs();
            let started = std::time::Instant::now();
            let errors = registry.compile_all(&content);
            tracing::info!(
                components = content.component_files().len(),
                failed = errors.len(),
                ms = started.elapsed().as_millis() as u64,
                "components compiled"
            );
            errors.len()
        })
    }

    /// Stops [`Registry::compile_all`] before its next component (at shutdown: the component
    /// being compiled still finishes).
    pub fn stop_compiling(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a background compiler runs ([`Registry::compile_in_background`]).
    pub fn compiles_in_background(&self) -> bool {
        self.background.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Publishes `next` as the next version: from now on every snapshot, resolution, rule
    /// match and webhook sees it, while executions already resolved finish on the version
    /// they started with. The caller checked and compiled it first ([`Registry::compile_all`]
    /// on [`Registry::candidate`]).
    pub fn publish(&self, next: Content) {
        let mut content = self.content.write().unwrap_or_else(|e| e.into_inner());
        *content = Arc::new(next);
    }

    /// `packs` as the version that would follow the current one (not yet published): compile
    /// it with [`Registry::compile_all`] and publish it with [`Registry::publish`].
    pub fn candidate(&self, packs: PackSet) -> Content {
        let generation = self.packs().generation + 1;
        let content = Content::new(packs, &self.config, generation);
        let mut states = self.components.lock().unwrap_or_else(|e| e.into_inner());
        for (path, _) in content.component_files() {
            states
                .entry(path.clone())
                .or_insert(ComponentState::Waiting);
        }
        content
    }

    /// The config of `pack` with its templates rendered against `ctx` (StackStorm's dynamic
    /// config values; give `ctx` the datastore with [`Context::with_keys`], as the runner does,
    /// so `{{ st2kv.system.token | decrypt_kv }}` works): what an action sees as
    /// `config_context` and a sensor as its config. A pack without config gets `{}`.
    ///
    /// # Errors
    /// [`PackConfigError`]: unknown pack, a config that had problems at load (a sensor of that
    /// pack must not start), a template that does not render or renders to a value the schema
    /// rejects. Messages name the config file and field, never a secret value.
    pub fn pack_config(
        &self,
        pack: &str,
        ctx: &Context,
    ) -> Result<Map<String, Value>, PackConfigError> {
        let content = self.packs();
        let p = content
            .pack(pack)
            .ok_or_else(|| PackConfigError::UnknownPack(pack.to_string()))?;
        match &p.config {
            None => Ok(Map::new()),
            Some(config) => config.render(ctx),
        }
    }

    /// The trigger type with this ref (in the packs loaded now).
    pub fn trigger_type(&self, reference: &Ref) -> Option<TriggerType> {
        self.packs().trigger_type(reference).cloned()
    }

    /// Applies enable/disable overrides (from the store) on top of the rules' YAML.
    pub fn set_rule_overrides(&self, overrides: impl IntoIterator<Item = (Ref, bool)>) {
        let mut o = self
            .rule_overrides
            .write()
            .unwrap_or_else(|e| e.into_inner());
        o.extend(overrides);
    }

    /// Whether a rule is enabled now (override, else its YAML).
    pub fn rule_enabled(&self, rule: &Rule) -> bool {
        self.rule_overrides
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&rule.reference)
            .copied()
            .unwrap_or(rule.enabled)
    }

    /// Enabled rules of `content` listening to `trigger` with `parameters`.
    pub fn rules_in<'a>(
        &'a self,
        content: &'a Content,
        trigger: &'a Ref,
        parameters: &'a Map<String, Value>,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        content
            .rules()
            .filter(move |r| r.listens_to(trigger, parameters) && self.rule_enabled(r))
    }

    /// Whether an enabled rule of the packs loaded now listens to `trigger` with `parameters`.
    pub fn has_rules_for(&self, trigger: &Ref, parameters: &Map<String, Value>) -> bool {
        self.rules_in(&self.packs(), trigger, parameters)
            .next()
            .is_some()
    }

    /// The webhook urls that enabled rules listen to, sorted.
    pub fn webhook_urls(&self) -> Vec<String> {
        let webhook: Ref = WEBHOOK.parse().expect("built-in ref");
        let mut urls: Vec<String> = self
            .packs()
            .rules()
            .filter(|r| r.trigger.kind == webhook && self.rule_enabled(r))
            .filter_map(|r| {
                r.trigger
                    .parameters
                    .get("url")?
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        urls.sort();
        urls.dedup();
        urls
    }
}
