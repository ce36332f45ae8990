//! The host-owned cache of precompiled components.
//!
//! Compiling a component is the expensive part of a cold start (milliseconds for a small Rust
//! component, seconds for a language runtime), so each component is compiled once and the
//! artifact kept at `<cache-dir>/<sha256 of the component>-<engine key>.cwasm`. The engine key
//! is a digest of wasmtime's `precompile_compatibility_hash`, so an artifact built by another
//! wasmtime version or other engine settings (fuel, epochs, ...) is never loaded — it is
//! simply not found, and the component is compiled again.
//!
//! Only artifacts this host wrote are ever loaded: pack content is always the `.wasm`
//! component, never a `.cwasm`.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Feeds `std::hash::Hash` output into SHA-256, to turn wasmtime's compatibility hash into a
/// stable file-name key.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("digest is 32 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> std::io::Result<ComponentCache> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ComponentCache {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    fn artifact(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}-{}.cwasm", self.engine_key))
    }

    /// The component for `bytes` (whose digest is `sha`), from the cache or compiled now.
    ///
    /// Returns the component and whether it was compiled (not found in the cache).
    ///
    /// # Errors
    /// The compiler's message when `bytes` is not a valid component, or an I/O message when
    /// the artifact cannot be written.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha: &str,
    ) -> Result<(Component, bool), String> {
        let path = self.artifact(sha);
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, false)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cached component unusable; recompiling")
                }
            }
        }
        let artifact = engine
            .precompile_component(bytes)
            .map_err(|e| format!("{e:#}"))?;
        // Write to a unique temporary name, then rename: readers in other processes see either
        // no file or a whole one.
        let tmp = self.dir.join(format!(
            ".{sha}-{}.{}.tmp",
            self.engine_key,
            std::process::id()
        ));
        std::fs::write(&tmp, &artifact)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write compiled component to {}: {e}", path.display()))?;
        deserialize(engine, &path)
            .map(|c| (c, true))
            .map_err(|e| format!("{e:#}"))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `path` is in the host-owned cache directory and was written by
    // `Engine::precompile_component` of an engine with the same compatibility key (it is part
    // of the file name); pack-supplied files are never passed here. wasmtime additionally checks
    // the artifact's header and engine compatibility before using it.
    unsafe { Component::deserialize_file(engine, path) }
}
