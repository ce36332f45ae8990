//! Resolving the global options and opening what commands need.

use crate::{Failure, GlobalArgs};
use squall_core::{Config, PackSet};
use squall_host::{Host, HostConfig};
use squall_server::{Mode, Registry, Services};
use squall_store::RedbStore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default config file, used when present.
const DEFAULT_CONFIG: &str = "squall.toml";

/// Where things are, after flags, environment, `squall.toml` and defaults.
pub struct Settings {
    pub data_dir: PathBuf,
    pub packs_dirs: Vec<PathBuf>,
    pub config: Config,
    pub api_url: String,
    pub api_key: Option<String>,
}

impl Settings {
    pub fn resolve(args: &GlobalArgs) -> Result<Settings, Failure> {
        let mut config = match &args.config {
            Some(path) => Config::load(path).map_err(Failure::input)?,
            None if Path::new(DEFAULT_CONFIG).is_file() => {
                Config::load(Path::new(DEFAULT_CONFIG)).map_err(Failure::input)?
            }
            None => Config::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| config.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(".squall"));
        // The datastore's key file defaults to the data directory the flags resolved.
        if config.datastore.key_file.is_none() {
            config.datastore.key_file = Some(data_dir.join("keys").join("datastore.key"));
        }
        if config.ssh.known_hosts.is_none() {
            config.ssh.known_hosts = Some(data_dir.join("ssh").join("known_hosts"));
        }
        let packs_dirs = args
            .packs
            .as_ref()
            .map(|p| std::env::split_paths(p).collect())
            .or_else(|| config.packs_dirs.clone())
            .unwrap_or_else(|| vec![PathBuf::from("packs")]);
        let api_url = args
            .api_url
            .clone()
            .or_else(|| config.api_url.clone())
            .unwrap_or_else(|| format!("http://{}", config.server.bind));
        Ok(Settings {
            data_dir,
            packs_dirs,
            api_url,
            api_key: args.api_key.clone(),
            config,
        })
    }

    pub fn open_store(&self) -> Result<RedbStore, Failure> {
        RedbStore::open_with_cache(&self.data_dir, self.config.server.store_cache)
            .map_err(Failure::internal)
    }

    pub fn load_packs(&self) -> PackSet {
        PackSet::load_all_with_configs(&self.packs_dirs, self.config.configs_dir.as_deref())
    }

    /// The host, with the configured `[server] bind` (and `listening`, the address a server
    /// bound) reserved: no component reaches Squall's own API, even run in-process.
    pub fn host(&self, listening: Option<SocketAddr>) -> Result<Host, Failure> {
        let host = Host::new(&HostConfig {
            settings: self.config.host.clone(),
            ceiling: self.config.limits.max,
            cache_dir: self.data_dir.join("cache").join("components"),
            cache_key_file: self.data_dir.join("keys").join("cache.key"),
        })
        .map_err(Failure::internal)?;
        if let Ok(bind) = self.config.server.bind.parse() {
            host.reserve(bind);
        }
        if let Some(addr) = listening {
            host.reserve(addr);
        }
        Ok(host)
    }

    /// Packs, config and host. Pack problems go to the log when serving, else to stderr as
    /// `warning: <file>: <field>: <reason>` lines.
    pub fn registry(&self, mode: Mode, listening: Option<SocketAddr>) -> Result<Registry, Failure> {
        let packs = self.load_packs();
        for e in &packs.errors {
            match mode {
                Mode::Server => tracing::warn!("{e}"),
                Mode::Embedded => eprintln!("warning: {e}"),
            }
        }
        let dirs = self.packs_dirs.clone();
        let configs = self.config.configs_dir.clone();
        Ok(
            Registry::new(packs, self.config.clone(), self.host(listening)?)
                .with_process_root(self.data_dir.join("processes"))
                .with_loader(std::sync::Arc::new(move || {
                    PackSet::load_all_with_configs(&dirs, configs.as_deref())
                })),
        )
    }

    /// The services over the local data directory; `listening` is the address a server bound
    /// (reserved from outbound HTTP before any sensor or action runs).
    pub async fn services(
        &self,
        mode: Mode,
        listening: Option<SocketAddr>,
    ) -> Result<Services, Failure> {
        let registry = Arc::new(self.registry(mode, listening)?);
        let store = Arc::new(self.open_store()?);
        Services::start(registry, store, mode)
            .await
            .map_err(Failure::internal)
    }
}
