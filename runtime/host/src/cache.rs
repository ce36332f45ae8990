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
//! component, never a `.cwasm`. Each artifact file is `HMAC-SHA256 tag (32 bytes) ‖ artifact`,
//! the tag keyed by the cache key (32 random bytes, hex, in the key file, `0600`; created on
//! first use) over `component sha256 ‖ engine key ‖ artifact`. A file is verified, in memory,
//! before its native code is loaded: a swapped, truncated or foreign file — another
//! component's artifact renamed, say — fails the check, is logged and recompiled.

use hmac::{Hmac, Mac};
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

/// Length of the tag in front of each artifact.
const TAG_LEN: usize = 32;

pub(crate) struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
    mac_key: [u8; 32],
}

impl ComponentCache {
    /// Opens (creating, `0700`) the cache at `dir`, keyed by the key in `key_file` (created,
    /// `0600`, when missing).
    pub(crate) fn new(
        dir: &Path,
        key_file: &Path,
        engine: &Engine,
    ) -> std::io::Result<ComponentCache> {
        create_private_dir(dir)?;
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ComponentCache {
            dir: dir.to_path_buf(),
            engine_key,
            mac_key: load_or_create_key(key_file)?,
        })
    }

    fn artifact(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}-{}.scwasm", self.engine_key))
    }

    fn tag(&self, sha: &str, artifact: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.mac_key).expect("HMAC takes any key length");
        mac.update(sha.as_bytes());
        mac.update(self.engine_key.as_bytes());
        mac.update(artifact);
        mac
    }

    /// The verified artifact of `sha` from `path`.
    fn read_verified(&self, path: &Path, sha: &str) -> Result<Vec<u8>, String> {
        let mut bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        if bytes.len() < TAG_LEN {
            return Err("shorter than its tag".into());
        }
        let artifact = bytes.split_off(TAG_LEN);
        self.tag(sha, &artifact)
            .verify_slice(&bytes)
            .map_err(|_| "its tag does not match (not written by this host for this component)")?;
        Ok(artifact)
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
            match self
                .read_verified(&path, sha)
                .and_then(|a| deserialize(engine, &a).map_err(|e| format!("{e:#}")))
            {
                Ok(component) => return Ok((component, false)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cached component refused; recompiling")
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
        let tag = self.tag(sha, &artifact).finalize().into_bytes();
        let mut file = Vec::with_capacity(TAG_LEN + artifact.len());
        file.extend_from_slice(&tag);
        file.extend_from_slice(&artifact);
        write_private(&tmp, &file)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write compiled component to {}: {e}", path.display()))?;
        // The artifact just compiled in memory, not the file: nothing can have swapped it.
        deserialize(engine, &artifact)
            .map(|c| (c, true))
            .map_err(|e| format!("{e:#}"))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` was produced by `Engine::precompile_component` of an engine with the
    // same compatibility key: either just now in memory, or read from the cache and verified
    // against the HMAC tag this host wrote with it (keyed by a secret only the host reads, over
    // the component's digest and the engine key). Pack-supplied files are never passed here.
    // wasmtime additionally checks the artifact's header and engine compatibility.
    unsafe { Component::deserialize(engine, artifact) }
}

/// Creates `dir` (and parents) and narrows it to `0700` (Unix).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `bytes` to a new file `path` readable by the owner only (`0600` on Unix).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The cache key from `path` (64 hex digits), created with 32 random bytes when missing.
/// Two processes creating it at once: each writes a temporary file and hard-links it into
/// place; the loser reads the winner's.
fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    let parse = |text: &str| -> std::io::Result<[u8; 32]> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} must hold 64 hex digits", path.display()),
            )
        })?;
        Ok(key)
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return parse(&text),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.exists() {
        create_private_dir(dir)?;
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = dir.join(format!(".cache.key.{}.tmp", std::process::id()));
    write_private(&tmp, format!("{}\n", hex::encode(key)).as_bytes())?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            parse(&std::fs::read_to_string(path)?)
        }
        Err(e) => Err(e),
    }
}
