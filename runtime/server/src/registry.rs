//! The registry: what can run, with which limits and grants.

use squall_core::capability::HttpPolicy;
use squall_core::{Action, Config, Limits, PackSet, Ref};
use squall_host::{Host, LoadError, PreparedComponent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Loaded packs + operator config + host. Cheap to share behind an `Arc`.
pub struct Registry {
    packs: PackSet,
    config: Config,
    host: Host,
    prepared: Mutex<HashMap<Ref, Arc<PreparedComponent>>>,
    policies: HashMap<String, Arc<HttpPolicy>>,
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
        }
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

    /// The action's component, compiled (or loaded from the cache) and linked, once per
    /// registry. Blocking: call from `spawn_blocking` in async code.
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
}
