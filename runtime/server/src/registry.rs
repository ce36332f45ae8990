//! The registry: what can run and what listens, with which limits and grants.

use serde_json::{Map, Value};
use squall_core::capability::HttpPolicy;
use squall_core::pack_config::PackConfigError;
use squall_core::rule::Rule;
use squall_core::template::Context;
use squall_core::trigger::WEBHOOK;
use squall_core::{Action, Config, Limits, PackSet, Ref, TriggerType};
use squall_host::{Host, LoadError, PreparedComponent};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Loaded packs + operator config + host, and the rules' enabled state. Shared behind an
/// `Arc`.
pub struct Registry {
    packs: PackSet,
    config: Config,
    host: Host,
    prepared: Mutex<HashMap<Ref, Arc<PreparedComponent>>>,
    policies: HashMap<String, Arc<HttpPolicy>>,
    /// Enable/disable set through the API, overriding the YAML's `enabled`.
    rule_overrides: RwLock<HashMap<Ref, bool>>,
    /// Where the ledgers of running commands live (see [`squall_host::process::ProcessLedger`]).
    process_root: Option<PathBuf>,
}

/// An action with everything needed to run it.
#[derive(Debug, Clone)]
pub struct ResolvedAction {
    /// The action's metadata.
    pub action: Action,
    /// Its limits: operator defaults, then the action's `limits:`, capped by the operator.
    pub limits: Limits,
    /// Limit fields the operator's ceiling lowered.
    pub capped: Vec<&'static str>,
    /// Its pack's outbound HTTP policy.
    pub http: Arc<HttpPolicy>,
}

impl Registry {
    /// A registry over `packs`, `config` and `host`. Every pack's HTTP policy is computed here;
    /// components are prepared on first use ([`Registry::prepare`]).
    pub fn new(packs: PackSet, config: Config, host: Host) -> Registry {
        squall_core::template::configure(&config.templates);
        squall_core::json::configure(config.server.max_json_depth);
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
        Registry {
            packs,
            config,
            host,
            prepared: Mutex::new(HashMap::new()),
            policies,
            rule_overrides: RwLock::new(HashMap::new()),
            process_root: None,
        }
    }

    /// Keeps the ledgers of running commands under `root` (normally `<data_dir>/processes`), so
    /// a server starting after a crash kills what the dead one left running. Without it, nothing
    /// is recorded.
    pub fn with_process_root(mut self, root: PathBuf) -> Registry {
        self.process_root = Some(root);
        self
    }

    /// See [`Registry::with_process_root`].
    pub fn process_root(&self) -> Option<&Path> {
        self.process_root.as_deref()
    }

    /// The loaded packs (and the problems met loading them).
    pub fn packs(&self) -> &PackSet {
        &self.packs
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
        self.policies.get(pack).cloned().unwrap_or_default()
    }

    /// The action `reference` with its limits and policy, if loaded.
    pub fn resolve(&self, reference: &Ref) -> Option<ResolvedAction> {
        let action = self.packs.action(reference)?.clone();
        let (limits, capped) = self.config.limits.resolve(&action.limits);
        let http = self
            .policies
            .get(reference.pack())
            .cloned()
            .unwrap_or_default();
        Some(ResolvedAction {
            action,
            limits,
            capped,
            http,
        })
    }

    /// The action's component, compiled (or loaded from the cache) and linked; the host compiles
    /// each component once even when first uses race. Blocking: call from `spawn_blocking` in
    /// async code.
    ///
    /// # Errors
    /// [`LoadError`] naming the component file.
    pub fn prepare(&self, action: &Action) -> Result<Arc<PreparedComponent>, LoadError> {
        if let Some(p) = self.lock().get(&action.reference) {
            return Ok(p.clone());
        }
        let prepared = self.host.prepare(&action.entry_path)?;
        self.lock()
            .insert(action.reference.clone(), prepared.clone());
        Ok(prepared)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Ref, Arc<PreparedComponent>>> {
        self.prepared.lock().unwrap_or_else(|e| e.into_inner())
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
        let p = self
            .packs
            .pack(pack)
            .ok_or_else(|| PackConfigError::UnknownPack(pack.to_string()))?;
        match &p.config {
            None => Ok(Map::new()),
            Some(config) => config.render(ctx),
        }
    }

    /// The trigger type with this ref.
    pub fn trigger_type(&self, reference: &Ref) -> Option<&TriggerType> {
        self.packs.trigger_type(reference)
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

    /// Enabled rules listening to `trigger` with `parameters`.
    pub fn rules_for<'a>(
        &'a self,
        trigger: &'a Ref,
        parameters: &'a Map<String, Value>,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        self.packs
            .rules()
            .filter(move |r| r.listens_to(trigger, parameters) && self.rule_enabled(r))
    }

    /// The webhook urls that enabled rules listen to, sorted.
    pub fn webhook_urls(&self) -> Vec<String> {
        let webhook: Ref = WEBHOOK.parse().expect("built-in ref");
        let mut urls: Vec<String> = self
            .packs
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
