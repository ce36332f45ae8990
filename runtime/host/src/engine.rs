//! The [`Host`]: one wasmtime engine, its linker, the component cache and the epoch ticker.

use crate::bindings::ActionPre;
use crate::bindings::sensor::SensorPre;
use crate::cache::{ComponentCache, sha256_hex};
use crate::reserved::ReservedEndpoints;
use crate::state::RunState;
use squall_core::Limits;
use squall_core::config::HostSettings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The records-only interface of `squall:plugin@0.1.0` (`action-types` since 0.1.1), kept for
/// the components built against 0.1.0 (see `plugin-sdk/wit/squall.wit`).
const LEGACY_TYPES: &str = "squall:plugin/types@0.1.1";

/// How often the epoch advances; the wall-clock timeout is checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What the host needs to start.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `[host]` from `squall.toml`.
    pub settings: HostSettings,
    /// The operator's ceilings: pool slots are sized for `memory`.
    pub ceiling: Limits,
    /// Where compiled components are kept (`<data-dir>/cache/components`, made `0700`).
    pub cache_dir: PathBuf,
    /// The key that authenticates the cache's artifacts (`<data-dir>/keys/cache.key`: 64 hex
    /// digits, `0600`, created when missing); see `cache.rs`.
    pub cache_key_file: PathBuf,
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// wasmtime refused the engine configuration (e.g. a pool too large for this machine).
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// The cache directory could not be created.
    #[error("cannot create component cache {path}: {source}")]
    Cache {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a component could not be prepared to run. Each names the component file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read component: {message}")]
    Read {
        /// The component file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// It is not a valid WebAssembly component (or the compiler rejected it).
    #[error("{path}: not a valid WebAssembly component: {message}")]
    Invalid {
        /// The component file.
        path: PathBuf,
        /// The compiler's message.
        message: String,
    },
    /// It imports something the host does not provide.
    #[error("{path}: component imports something Squall does not provide: {message}")]
    Imports {
        /// The component file.
        path: PathBuf,
        /// The linker's message.
        message: String,
    },
    /// It does not export `on-poll` and `on-webhook` of the `squall:plugin/sensor` world.
    #[error("{path}: not a squall:plugin/sensor component: {message}")]
    NotASensor {
        /// The component file.
        path: PathBuf,
        /// What is missing or mistyped.
        message: String,
    },
    /// It does not export `run` of the `squall:plugin/action` world.
    #[error("{path}: not a squall:plugin/action component: {message}")]
    NotAnAction {
        /// The component file.
        path: PathBuf,
        /// What is missing or mistyped.
        message: String,
    },
}

impl LoadError {
    /// The same error naming `path` (the file as its pack names it, where the host read it
    /// through a resolved path).
    pub fn naming(self, shown: &Path) -> LoadError {
        let shown = shown.to_path_buf();
        match self {
            LoadError::Read { message, .. } => LoadError::Read {
                path: shown,
                message,
            },
            LoadError::Invalid { message, .. } => LoadError::Invalid {
                path: shown,
                message,
            },
            LoadError::Imports { message, .. } => LoadError::Imports {
                path: shown,
                message,
            },
            LoadError::NotASensor { message, .. } => LoadError::NotASensor {
                path: shown,
                message,
            },
            LoadError::NotAnAction { message, .. } => LoadError::NotAnAction {
                path: shown,
                message,
            },
        }
    }
}

/// A component compiled, linked and ready to instantiate: cheap to run many times.
pub struct PreparedComponent {
    pub(crate) pre: ActionPre<RunState>,
    sha256: String,
    path: PathBuf,
    /// Whether it imports `squall:plugin/process`.
    uses_process: bool,
    /// Whether it imports `squall:plugin/triggers`.
    uses_triggers: bool,
    /// Whether it imports `squall:plugin/mail`.
    uses_mail: bool,
    /// Whether it imports `squall:plugin/st2-datastore`.
    uses_keys: bool,
}

impl PreparedComponent {
    /// Hex SHA-256 of the component file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it imports the `process` interface (an `extended-action` component that runs
    /// commands): only then does a run need a [`crate::process::ProcessGate`].
    pub fn uses_process(&self) -> bool {
        self.uses_process
    }

    /// Whether it imports the `triggers` interface: only then does a run need a
    /// [`crate::TriggerGate`].
    pub fn uses_triggers(&self) -> bool {
        self.uses_triggers
    }

    /// Whether it imports the `mail` interface: only then does a run need a
    /// [`crate::MailGate`].
    pub fn uses_mail(&self) -> bool {
        self.uses_mail
    }

    /// Whether it imports the `st2-datastore` interface (a pack's Python component): only
    /// then does a run need a [`crate::KeyGate`].
    pub fn uses_keys(&self) -> bool {
        self.uses_keys
    }
}

/// A sensor component compiled, linked and ready to instantiate.
pub struct PreparedSensor {
    pub(crate) pre: SensorPre<RunState>,
    sha256: String,
    path: PathBuf,
}

impl PreparedSensor {
    /// Hex SHA-256 of the component file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for PreparedSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedSensor")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl std::fmt::Debug for PreparedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedComponent")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// The WebAssembly host. Cheap to clone; every clone shares the engine, the linker, the cache
/// and the prepared components.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    linker: Linker<RunState>,
    cache: ComponentCache,
    prepared: Mutex<HashMap<String, Arc<PreparedComponent>>>,
    prepared_sensors: Mutex<HashMap<String, Arc<PreparedSensor>>>,
    /// One lock per component digest being prepared, so concurrent first uses compile once.
    preparing: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub(crate) settings: HostSettings,
    /// Squall's own listeners, which outbound HTTP never reaches.
    pub(crate) reserved: ReservedEndpoints,
    /// Outbound connections the process may still open (`[host] max_outbound` permits).
    pub(crate) outbound: Arc<tokio::sync::Semaphore>,
}

impl Host {
    /// Creates the engine (component model, fuel, epoch interruption, the pooling allocator
    /// sized from `settings.max_instances` and `ceiling.memory`), links WASI and
    /// `wasi:http/outgoing-handler` and the `squall:plugin` imports, and starts the epoch
    /// ticker thread (stops when the last clone of the host is dropped).
    ///
    /// # Errors
    /// [`HostError`] when wasmtime rejects the configuration or the cache directory cannot be
    /// created.
    pub fn new(config: &HostConfig) -> Result<Host, HostError> {
        let settings = config.settings.clone();
        let stack = usize::try_from(settings.max_wasm_stack).unwrap_or(usize::MAX);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(stack)
            // Host calls run on the same fiber stack as the guest; leave room beyond the guest's.
            .async_stack_size(stack + 1024 * 1024);
        if settings.pooling {
            let n = settings.max_instances;
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(n)
                .total_core_instances(n.saturating_mul(16))
                .total_memories(n.saturating_mul(2))
                .total_tables(n.saturating_mul(8))
                .total_stacks(n)
                .max_memory_size(usize::try_from(config.ceiling.memory).unwrap_or(usize::MAX));
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(|e| HostError::Engine(format!("{e:#}")))?;

        let mut linker: Linker<RunState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| {
                crate::bindings::squall::plugin::log::add_to_linker::<_, HasSelf<RunState>>(
                    &mut linker,
                    |s| s,
                )
            })
            .and_then(|()| {
                crate::bindings::squall::plugin::action_types::add_to_linker::<_, HasSelf<RunState>>(
                    &mut linker,
                    |s| s,
                )
            })
            // `squall:plugin/types` holds only records (no world of 0.1.1 uses it): the empty
            // instance serves the components built against 0.1.0 that import it. Their
            // `@0.1.0` imports resolve to these `@0.1.1` definitions (semver, same minor).
            .and_then(|()| linker.instance(LEGACY_TYPES).map(drop))
            .and_then(|()| {
                crate::bindings::sensor::squall::plugin::datastore::add_to_linker::<
                    _,
                    HasSelf<RunState>,
                >(&mut linker, |s| s)
            })
            .and_then(|()| {
                crate::bindings::extended::squall::plugin::process::add_to_linker::<
                    _,
                    HasSelf<RunState>,
                >(&mut linker, |s| s)
            })
            .and_then(|()| {
                crate::bindings::extended::squall::plugin::triggers::add_to_linker::<
                    _,
                    HasSelf<RunState>,
                >(&mut linker, |s| s)
            })
            .and_then(|()| {
                crate::bindings::extended::squall::plugin::mail::add_to_linker::<
                    _,
                    HasSelf<RunState>,
                >(&mut linker, |s| s)
            })
            .and_then(|()| {
                crate::bindings::python::squall::plugin::st2_datastore::add_to_linker::<
                    _,
                    HasSelf<RunState>,
                >(&mut linker, |s| s)
            })
            .and_then(|()| {
                crate::bindings::sensor::squall::plugin::emit::add_to_linker::<_, HasSelf<RunState>>(
                    &mut linker,
                    |s| s,
                )
            })
            .and_then(|()| {
                crate::bindings::sensor::squall::plugin::sensor_types::add_to_linker::<
                    _,
                    HasSelf<RunState>,
                >(&mut linker, |s| s)
            })
            .map_err(|e| HostError::Engine(format!("{e:#}")))?;

        let cache = ComponentCache::new(&config.cache_dir, &config.cache_key_file, &engine)
            .map_err(|source| HostError::Cache {
                path: config.cache_dir.clone(),
                source,
            })?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("squall-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| HostError::Engine(format!("cannot start the epoch thread: {e}")))?;

        Ok(Host {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                prepared: Mutex::new(HashMap::new()),
                prepared_sensors: Mutex::new(HashMap::new()),
                preparing: Mutex::new(HashMap::new()),
                outbound: Arc::new(tokio::sync::Semaphore::new(settings.max_outbound as usize)),
                settings,
                reserved: ReservedEndpoints::default(),
            }),
        })
    }

    /// Registers one of Squall's own listening addresses: from now on no component's outbound
    /// HTTP reaches it, whatever its pack is granted (a listener on `0.0.0.0`/`::` is refused
    /// on every address of this machine, loopback included). `squall serve` reserves the
    /// address it bound before any component runs; every host reserves the configured
    /// `[server] bind`.
    pub fn reserve(&self, addr: std::net::SocketAddr) {
        self.inner.reserved.add(addr);
    }

    /// Reads, compiles (or loads from the cache) and links the component at `path`. The same
    /// bytes are prepared once per host, whatever their path: concurrent first calls wait for
    /// one compilation.
    ///
    /// This blocks (file I/O, maybe compilation): from async code call it through
    /// `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    /// [`LoadError`] naming the file: unreadable, not a valid component, importing something
    /// the host does not provide, or not exporting `run`.
    pub fn prepare(&self, path: &Path) -> Result<Arc<PreparedComponent>, LoadError> {
        let engine = self.inner.engine.clone();
        self.prepare_as(path, &self.inner.prepared, |pre, sha256| {
            let imports = |interface: &str| {
                pre.component()
                    .component_type()
                    .imports(&engine)
                    .any(|(name, _)| name.split('@').next() == Some(interface))
            };
            let uses_process = imports("squall:plugin/process");
            let uses_triggers = imports("squall:plugin/triggers");
            let uses_mail = imports("squall:plugin/mail");
            let uses_keys = imports("squall:plugin/st2-datastore");
            let pre = ActionPre::new(pre).map_err(|e| LoadError::NotAnAction {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
            Ok(PreparedComponent {
                pre,
                sha256,
                path: path.to_path_buf(),
                uses_process,
                uses_triggers,
                uses_mail,
                uses_keys,
            })
        })
    }

    /// As [`Host::prepare`], for a component of the `squall:plugin/sensor` world.
    ///
    /// # Errors
    /// [`LoadError`] naming the file; [`LoadError::NotASensor`] when it does not export `on-poll`
    /// and `on-webhook`.
    pub fn prepare_sensor(&self, path: &Path) -> Result<Arc<PreparedSensor>, LoadError> {
        self.prepare_as(path, &self.inner.prepared_sensors, |pre, sha256| {
            let pre = SensorPre::new(pre).map_err(|e| LoadError::NotASensor {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
            Ok(PreparedSensor {
                pre,
                sha256,
                path: path.to_path_buf(),
            })
        })
    }

    /// Reads, compiles (or loads from the cache) and links the component at `path`, then lets
    /// `typed` check its exports; the result is kept in `prepared` by content hash.
    fn prepare_as<T>(
        &self,
        path: &Path,
        prepared: &Mutex<HashMap<String, Arc<T>>>,
        typed: impl FnOnce(InstancePre<RunState>, String) -> Result<T, LoadError>,
    ) -> Result<Arc<T>, LoadError> {
        let lock = || prepared.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = std::fs::read(path).map_err(|e| LoadError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        // Only the binary format: wasmtime would also parse WAT text, and its parse errors
        // quote the text — a pack naming some other file as its component must learn nothing
        // of that file's contents.
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::Invalid {
                path: path.to_path_buf(),
                message: "not a binary WebAssembly component (it does not start with \\0asm; \
                          text formats are not accepted)"
                    .into(),
            });
        }
        let sha = sha256_hex(&bytes);
        if let Some(p) = lock().get(&sha) {
            return Ok(p.clone());
        }
        let gate = self
            .inner
            .preparing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(sha.clone())
            .or_default()
            .clone();
        let _only_one = gate.lock().unwrap_or_else(|e| e.into_inner());
        // Someone else may have finished while we waited.
        if let Some(p) = lock().get(&sha) {
            return Ok(p.clone());
        }
        let started = std::time::Instant::now();
        let (component, compiled) = self
            .inner
            .cache
            .load(&self.inner.engine, &bytes, &sha)
            .map_err(|message| LoadError::Invalid {
                path: path.to_path_buf(),
                message,
            })?;
        let instance_pre =
            self.inner
                .linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::Imports {
                    path: path.to_path_buf(),
                    message: format!("{e:#}"),
                })?;
        let ready = Arc::new(typed(instance_pre, sha.clone())?);
        tracing::debug!(
            path = %path.display(),
            sha256 = %sha,
            compiled,
            ms = started.elapsed().as_millis() as u64,
            "component prepared"
        );
        lock().insert(sha, ready.clone());
        Ok(ready)
    }
}
