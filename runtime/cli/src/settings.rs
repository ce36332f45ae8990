//! Resolving the global options and opening what commands need.

use crate::{Failure, GlobalArgs};
use squall_core::{Config, PackSet};
use squall_host::{Host, HostConfig};
use squall_server::{Registry, Runner};
use squall_store::RedbStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default config file, used when present.
const DEFAULT_CONFIG: &str = "squall.toml";

/// Where things are, after flags, environment, `squall.toml` and defaults.
pub struct Settings {
    pub data_dir: PathBuf,
    pub packs_dir: PathBuf,
    pub config: Config,
}

impl Settings {
    pub fn resolve(args: &GlobalArgs) -> Result<Settings, Failure> {
        let config = match &args.config {
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
        let packs_dir = args
            .packs
            .clone()
            .or_else(|| config.packs_dir.clone())
            .unwrap_or_else(|| PathBuf::from("packs"));
        Ok(Settings {
            data_dir,
            packs_dir,
            config,
        })
    }

    pub fn open_store(&self) -> Result<RedbStore, Failure> {
        RedbStore::open(&self.data_dir).map_err(Failure::internal)
    }

    pub fn load_packs(&self) -> PackSet {
        PackSet::load(&self.packs_dir)
    }

    pub fn host(&self) -> Result<Host, Failure> {
        Host::new(&HostConfig {
            settings: self.config.host.clone(),
            ceiling: self.config.limits.max,
            cache_dir: self.data_dir.join("cache").join("components"),
        })
        .map_err(Failure::internal)
    }

    /// Packs, host, store and runner, for commands that run actions.
    pub fn runner(&self) -> Result<Runner, Failure> {
        let registry = Registry::new(self.load_packs(), self.config.clone(), self.host()?);
        let store = self.open_store()?;
        Ok(Runner::new(Arc::new(registry), Arc::new(store)))
    }
}

/// Prints every pack loading problem as a warning on stderr.
pub fn warn_pack_errors(packs: &PackSet) {
    for e in &packs.errors {
        eprintln!("warning: {e}");
    }
}
