//! [`Datastore`]: the key-value store service, StackStorm's datastore (`st2kv`): system and
//! user scopes, keys that expire (`ttl`), secret values encrypted at rest, and the
//! `core.st2.key_value_pair.*` triggers.
//!
//! Secrets are encrypted with AES-256-GCM (RustCrypto `aes-gcm`), a random 96-bit nonce per
//! value; the stored value is the upper-case hex of `nonce || ciphertext || tag` (StackStorm
//! stores hex too). The 256-bit key lives in its own file ([`Datastore::key_file`], `[datastore]
//! key_file`, default `<data_dir>/keys/datastore.key`): 64 hex digits, created with mode 0600 at
//! the first start. The plaintext is never stored, logged, or returned unless a reader asks to
//! decrypt. As in StackStorm, a secret read without decryption (the API's default, `st2kv` in
//! templates, trigger payloads) is its ciphertext with `"encrypted": true`.
//!
//! A key file that is missing while secrets are stored is not recreated (a new key could not
//! decrypt them): secret operations then fail naming the file until it is restored.

use crate::{Registry, Services};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::Ref;
use squall_core::datastore::{KeyError, KeyRef, KeyScope, KeyValuePair, validate_user};
use squall_core::template::{KeyLookup, KeySource};
use squall_core::trigger::{
    KEY_CREATE_TRIGGER, KEY_DELETE_TRIGGER, KEY_UPDATE_TRIGGER, KEY_VALUE_CHANGE_TRIGGER,
};
use squall_store::{Batch, Store, StoreError};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bytes of the AES-GCM nonce stored before each ciphertext.
const NONCE_LEN: usize = 12;
/// Bytes of the AES-GCM authentication tag after each ciphertext.
const TAG_LEN: usize = 16;
/// How often the sweeper looks for expired keys.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Why a datastore operation failed. Messages name the key or the key file, never a value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DatastoreError {
    /// A bad key name, user, scope or ttl (the API's 400).
    #[error(transparent)]
    Invalid(#[from] KeyError),
    /// No such key, or it has expired (the API's 404).
    #[error("{}", not_found(.0))]
    NotFound(KeyRef),
    /// A value given as already encrypted (`encrypted: true`) does not decrypt with this
    /// datastore's key (the API's 400).
    #[error(
        "the value of {0} is marked encrypted but does not decrypt with the datastore key; \
         encrypt it with the same key file, or send it with secret: true instead"
    )]
    BadCiphertext(KeyRef),
    /// No key file is configured, so secrets can be neither stored nor read.
    #[error("no datastore key file is configured ([datastore] key_file): secrets are unavailable")]
    NoKeyFile,
    /// The key file is missing while secrets are stored: it must be restored, not recreated.
    #[error(
        "datastore key file {path} is missing, but {secrets} secret keys are stored: restore the \
         file (a new key could not decrypt them)"
    )]
    KeyFileMissing {
        /// The key file.
        path: PathBuf,
        /// How many secret keys were found.
        secrets: usize,
    },
    /// The key file cannot be read, created or parsed.
    #[error("datastore key file {path}: {message}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong (an I/O error, bad contents).
        message: String,
    },
    /// A stored ciphertext does not decrypt: the key file is not the one it was encrypted with,
    /// or the value is not a ciphertext.
    #[error(
        "cannot decrypt {what}: it was not encrypted with the key in datastore key file {path} \
         (was the file replaced?) or is not a datastore ciphertext"
    )]
    Decrypt {
        /// The key, or "the value" when decrypting a bare ciphertext.
        what: String,
        /// The key file.
        path: PathBuf,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn not_found(key: &KeyRef) -> String {
    match (&key.scope, &key.user) {
        (KeyScope::User, Some(user)) => format!(
            "key {:?} of user {user:?} not found in {}",
            key.name, key.scope
        ),
        _ => format!("key {:?} not found in {}", key.name, key.scope),
    }
}

/// AES-256-GCM over one key.
struct Cipher {
    aead: Aes256Gcm,
    path: PathBuf,
}

impl Cipher {
    fn encrypt(&self, plaintext: &str) -> Result<String, DatastoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| DatastoreError::KeyFile {
            path: self.path.clone(),
            message: format!("no randomness for a nonce: {e}"),
        })?;
        let sealed = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("AES-GCM encrypts any length a request can carry");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(hex::encode_upper(out))
    }

    fn decrypt(&self, ciphertext: &str, what: &str) -> Result<String, DatastoreError> {
        let failed = || DatastoreError::Decrypt {
            what: what.to_string(),
            path: self.path.clone(),
        };
        let bytes = hex::decode(ciphertext.trim()).map_err(|_| failed())?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(failed());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .aead
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| failed())?;
        String::from_utf8(plain).map_err(|_| failed())
    }
}

/// Reads the key file at `path`, creating it (mode 0600, in a directory of mode 0700) when it
/// is missing and `may_create`.
fn load_key_file(path: &Path, may_create: bool, secrets: usize) -> Result<Cipher, DatastoreError> {
    let problem = |message: String| DatastoreError::KeyFile {
        path: path.to_path_buf(),
        message,
    };
    if !path.exists() {
        if !may_create {
            return Err(DatastoreError::KeyFileMissing {
                path: path.to_path_buf(),
                secrets,
            });
        }
        create_key_file(path).map_err(|e| problem(format!("cannot create: {e}")))?;
        tracing::info!(key_file = %path.display(), "created the datastore key file");
    }
    let text = std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read: {e}")))?;
    let mut key = hex::decode(text.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| problem("must hold 64 hex digits (a 256-bit key)".into()))?;
    let aead = Aes256Gcm::new_from_slice(&key).expect("the key has 32 bytes");
    key.fill(0);
    warn_if_readable_by_others(path);
    Ok(Cipher {
        aead,
        path: path.to_path_buf(),
    })
}

/// Writes a new random key next to `path`, then links it into place: two processes starting at
/// once end up with the same file, and a reader never sees it half written.
fn create_key_file(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // Only a directory made here is narrowed to 0700; an operator's existing one (say `/etc`
    // for `key_file = "/etc/squall.key"`) keeps its mode. The file itself is 0600 either way.
    let created = !dir.exists();
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    if created {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut text = [b'\n'; 65];
    hex::encode_to_slice(key, &mut text[..64]).expect("64 hex digits fit");
    key.fill(0);
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    });
    text.fill(0);
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                key_file = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the datastore key file is accessible to other users; chmod 600 it"
            );
        }
    }
}

/// A set request ([`Datastore::set`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetKey {
    /// Which key.
    pub key: KeyRef,
    /// The value: plaintext, or a ciphertext of this datastore when `encrypted`.
    pub value: String,
    /// Store it encrypted.
    pub secret: bool,
    /// `value` is already a ciphertext (StackStorm's `encrypted: true`, as `st2 key load`
    /// sends what `st2 key list -j` printed); implies `secret`.
    pub encrypted: bool,
    /// Expire after this many seconds (1 to [`squall_core::datastore::MAX_TTL`]); `None`: never.
    pub ttl: Option<i64>,
}

/// Which keys [`Datastore::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// One scope, or both (`None`, StackStorm's `scope=all`).
    pub scope: Option<KeyScope>,
    /// The user whose user-scope keys are listed; `None`: every user's.
    pub user: Option<String>,
    /// Only names starting with this.
    pub prefix: String,
}

/// The datastore service. Cheap to clone.
#[derive(Clone)]
pub struct Datastore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    cipher: Result<Cipher, DatastoreError>,
    /// The way back to [`Services::dispatch`], set once the services exist; weak so the
    /// services (which own this) can drop.
    services: OnceLock<crate::services::WeakServices>,
    /// Serializes read-then-write of [`Datastore::set`] / [`Datastore::delete`], so the
    /// triggers see each change's true previous value.
    writes: tokio::sync::Mutex<()>,
}

impl Datastore {
    /// Opens the datastore over `store`, with the key file of `registry`'s config
    /// (`[datastore] key_file`): read, or created when missing and no secret is stored. A key
    /// file problem does not fail this: it is logged once, and every secret operation then
    /// returns it (plain keys keep working).
    ///
    /// # Errors
    /// Store failures while looking for stored secrets.
    pub async fn open(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
    ) -> Result<Datastore, StoreError> {
        let mut secrets = Vec::new();
        for scope in [KeyScope::System, KeyScope::User] {
            secrets.extend(
                store
                    .keys(scope, None, "")
                    .await?
                    .into_iter()
                    .filter(|k| k.encrypted),
            );
        }
        let cipher = match registry.config().datastore.key_file.as_deref() {
            None => Err(DatastoreError::NoKeyFile),
            Some(path) => {
                let path = path.to_path_buf();
                let count = secrets.len();
                tokio::task::spawn_blocking(move || load_key_file(&path, count == 0, count))
                    .await
                    .map_err(|_| StoreError::Closed)?
            }
        };
        match (&cipher, secrets.first()) {
            (Err(e), Some(_)) => tracing::error!(error = %e, "stored secrets cannot be decrypted"),
            (Err(DatastoreError::NoKeyFile), None) => {}
            (Err(e), None) => tracing::warn!(error = %e, "secrets are unavailable"),
            (Ok(c), Some(first)) => {
                if let Err(e) = c.decrypt(&first.value, &first.key_ref().to_string()) {
                    tracing::error!(error = %e, "the datastore key file does not match the stored secrets");
                }
            }
            (Ok(_), None) => {}
        }
        Ok(Datastore {
            inner: Arc::new(Inner {
                store,
                registry,
                cipher,
                services: OnceLock::new(),
                writes: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Connects the datastore to the services it fires triggers through.
    pub(crate) fn attach(&self, services: &Services) {
        let _ = self.inner.services.set(services.downgrade());
    }

    /// The services it was attached to (its key triggers fire through them; actions'
    /// trigger instances too, see [`crate::injected`]).
    pub(crate) fn services(&self) -> Option<crate::services::WeakServices> {
        self.inner.services.get().cloned()
    }

    /// The key file of the cipher, when one is configured.
    pub fn key_file(&self) -> Option<&Path> {
        self.inner.registry.config().datastore.key_file.as_deref()
    }

    fn cipher(&self) -> Result<&Cipher, DatastoreError> {
        self.inner.cipher.as_ref().map_err(Clone::clone)
    }

    /// Decrypts the ciphertext of a secret value (`decrypt_kv`).
    ///
    /// # Errors
    /// [`DatastoreError::Decrypt`] when it is not a ciphertext of this datastore's key; the key
    /// file errors when secrets are unavailable.
    pub fn decrypt(&self, ciphertext: &str) -> Result<String, DatastoreError> {
        self.cipher()?.decrypt(ciphertext, "the value")
    }

    /// `kv` with its value decrypted when it is encrypted (`encrypted: false` after).
    fn reveal(&self, mut kv: KeyValuePair) -> Result<KeyValuePair, DatastoreError> {
        if kv.encrypted {
            kv.value = self
                .cipher()?
                .decrypt(&kv.value, &kv.key_ref().to_string())?;
            kv.encrypted = false;
        }
        Ok(kv)
    }

    /// One key as stored (a secret's value is its ciphertext), or decrypted when `decrypt`;
    /// `None` when it does not exist or has expired.
    ///
    /// # Errors
    /// Store failures; decryption failures (naming the key and the key file).
    pub async fn get(
        &self,
        key: &KeyRef,
        decrypt: bool,
    ) -> Result<Option<KeyValuePair>, DatastoreError> {
        key.validate()?;
        let found = self.inner.store.key(key).await?;
        match found {
            Some(kv) if decrypt => self.reveal(kv).map(Some),
            other => Ok(other),
        }
    }

    /// [`Datastore::get`] without the async runtime, for template lookups and components'
    /// host calls on worker threads. Blocks on a store read.
    ///
    /// # Errors
    /// As [`Datastore::get`].
    pub fn get_blocking(
        &self,
        key: &KeyRef,
        decrypt: bool,
    ) -> Result<Option<KeyValuePair>, DatastoreError> {
        key.validate()?;
        let found = self.inner.store.key_blocking(key)?;
        match found {
            Some(kv) if decrypt => self.reveal(kv).map(Some),
            other => Ok(other),
        }
    }

    /// The unexpired keys matching `filter`: system keys first, then user keys, each by name.
    ///
    /// # Errors
    /// Bad user or prefix; store failures; decryption failures when `decrypt`.
    pub async fn list(
        &self,
        filter: &KeyFilter,
        decrypt: bool,
    ) -> Result<Vec<KeyValuePair>, DatastoreError> {
        if let Some(user) = &filter.user {
            validate_user(user)?;
        }
        let mut out = Vec::new();
        for scope in [KeyScope::System, KeyScope::User] {
            if filter.scope.is_none_or(|s| s == scope) {
                out.extend(
                    self.inner
                        .store
                        .keys(scope, filter.user.as_deref(), &filter.prefix)
                        .await?,
                );
            }
        }
        if decrypt {
            out = out
                .into_iter()
                .map(|kv| self.reveal(kv))
                .collect::<Result<_, _>>()?;
        }
        Ok(out)
    }

    /// Creates or replaces a key, encrypting a secret value, and fires
    /// `core.st2.key_value_pair.create` (or `.update`, plus `.value_change` when the value
    /// changed) for the rules listening. Returns the record as stored (a secret's value is its
    /// ciphertext).
    ///
    /// # Errors
    /// [`DatastoreError::Invalid`] (name, user, ttl), [`DatastoreError::BadCiphertext`], key
    /// file errors for a secret when secrets are unavailable, store failures.
    pub async fn set(&self, request: SetKey) -> Result<KeyValuePair, DatastoreError> {
        let SetKey {
            key,
            value,
            secret,
            encrypted,
            ttl,
        } = request;
        key.validate()?;
        let mut kv = KeyValuePair {
            name: key.name.clone(),
            value,
            scope: key.scope,
            user: key.user.clone(),
            secret: secret || encrypted,
            encrypted: false,
            expire_timestamp: None,
        };
        if let Some(ttl) = ttl {
            kv.expire_after(Timestamp::now(), ttl)?;
        }
        if encrypted {
            let cipher = self.cipher()?;
            cipher
                .decrypt(&kv.value, "")
                .map_err(|_| DatastoreError::BadCiphertext(key.clone()))?;
            kv.encrypted = true;
        } else if kv.secret {
            kv.value = self.cipher()?.encrypt(&kv.value)?;
            kv.encrypted = true;
        }
        let before = {
            let _write = self.inner.writes.lock().await;
            let before = self.inner.store.key(&key).await?;
            let mut batch = Batch::new();
            batch.put_key(&kv);
            self.inner.store.commit(batch).await?;
            before
        };
        tracing::info!(key = %key, secret = kv.secret, ttl, "datastore key set");
        self.announce(before.as_ref(), Some(&kv)).await;
        Ok(kv)
    }

    /// Deletes a key and fires `core.st2.key_value_pair.delete` for the rules listening.
    /// Returns the deleted record (a secret's value is its ciphertext).
    ///
    /// # Errors
    /// [`DatastoreError::NotFound`] (expired included), bad name or user, store failures.
    pub async fn delete(&self, key: &KeyRef) -> Result<KeyValuePair, DatastoreError> {
        key.validate()?;
        let before = {
            let _write = self.inner.writes.lock().await;
            let before = self
                .inner
                .store
                .key(key)
                .await?
                .ok_or_else(|| DatastoreError::NotFound(key.clone()))?;
            let mut batch = Batch::new();
            batch.delete_key(key);
            self.inner.store.commit(batch).await?;
            before
        };
        tracing::info!(key = %key, "datastore key deleted");
        self.announce(Some(&before), None).await;
        Ok(before)
    }

    /// Fires the `core.st2.key_value_pair.*` triggers for one committed change of a key, as
    /// stored (secret values stay ciphertext in the payloads): `before: None` → `create`;
    /// both → `update`, plus `value_change` when the (decrypted) value differs; `after: None`
    /// → `delete`. Each fires only when an enabled rule listens to it, so frequent writes (a
    /// sensor's state) do not fill the store with trigger instances. For writers that commit
    /// their own [`Batch::put_key`] / [`Batch::delete_key`] (a sensor's poll); [`Datastore::set`]
    /// and [`Datastore::delete`] call it themselves. Failures are logged, not returned: the
    /// change itself is already durable.
    pub async fn announce(&self, before: Option<&KeyValuePair>, after: Option<&KeyValuePair>) {
        let Some(services) = self.inner.services.get().and_then(|s| s.upgrade()) else {
            return;
        };
        let mut fire: Vec<(&str, Value)> = Vec::new();
        match (before, after) {
            (None, Some(new)) => fire.push((KEY_CREATE_TRIGGER, json!({"object": new}))),
            (Some(old), Some(new)) => {
                fire.push((KEY_UPDATE_TRIGGER, json!({"object": new})));
                if self.changed(old, new) {
                    fire.push((
                        KEY_VALUE_CHANGE_TRIGGER,
                        json!({"old_object": old, "new_object": new}),
                    ));
                }
            }
            (Some(old), None) => fire.push((KEY_DELETE_TRIGGER, json!({"object": old}))),
            (None, None) => {}
        }
        for (trigger, payload) in fire {
            let trigger: Ref = trigger.parse().expect("built-in ref");
            let parameters = Map::new();
            if !self.inner.registry.has_rules_for(&trigger, &parameters) {
                continue;
            }
            if let Err(e) = services.dispatch(&trigger, &parameters, payload).await {
                tracing::error!(trigger.ref = %trigger, error = %e, "cannot fire a datastore trigger");
            }
        }
    }

    /// Whether a set changed the value: secrets compare by plaintext (each encryption has a new
    /// nonce), when the cipher is there.
    fn changed(&self, old: &KeyValuePair, new: &KeyValuePair) -> bool {
        if old.encrypted && new.encrypted {
            let what = new.key_ref().to_string();
            if let Ok(c) = self.cipher()
                && let (Ok(a), Ok(b)) = (c.decrypt(&old.value, &what), c.decrypt(&new.value, &what))
            {
                return a != b;
            }
        }
        old.value != new.value || old.encrypted != new.encrypted
    }

    /// The datastore as templates rendered for `user` see it: `st2kv.system.<name>`,
    /// `st2kv.user.<name>` (`user`'s keys) and `decrypt_kv`.
    pub fn lookup(&self, user: &str) -> KeyLookup {
        Arc::new(TemplateKeys {
            datastore: self.clone(),
            user: user.to_string(),
            pack: None,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// [`Datastore::lookup`] for templates a pack wrote (its rules, action parameter defaults,
    /// workflows): `decrypt_kv` / `st2kv(..., decrypt=true)` then decrypts a system-scope
    /// secret only when `[packs.<pack>] secret_keys` grants it to `pack` (the user's own keys
    /// always), so a pack cannot reach secrets through templates that its components could not
    /// read either. Operator-written content (`configs/<pack>.yaml`) uses [`Datastore::lookup`].
    pub fn lookup_for_pack(&self, user: &str, pack: &str) -> KeyLookup {
        Arc::new(TemplateKeys {
            datastore: self.clone(),
            user: user.to_string(),
            pack: Some(pack.to_string()),
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Deletes expired keys from the store: what is due at `now`, in one commit. Returns
    /// whether anything was due. (Reads hide expired keys before this runs.)
    ///
    /// # Errors
    /// Store failures.
    pub async fn sweep(&self, now: Timestamp) -> Result<bool, StoreError> {
        if self.inner.store.expired_keys(now, 1).await?.is_empty() {
            return Ok(false);
        }
        let mut batch = Batch::new();
        batch.delete_expired_keys(now);
        self.inner.store.commit(batch).await?;
        tracing::debug!("expired datastore keys swept");
        Ok(true)
    }

    /// Runs [`Datastore::sweep`] every second on `tasks` until `stop`.
    pub(crate) fn start_sweeper(&self, tasks: &TaskTracker, stop: CancellationToken) {
        let datastore = self.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                if let Err(e) = datastore.sweep(Timestamp::now()).await {
                    tracing::error!(error = %e, "cannot sweep expired datastore keys");
                }
            }
        });
    }
}

/// [`KeySource`] over the datastore for one user (and, for pack-written templates, one pack).
struct TemplateKeys {
    datastore: Datastore,
    user: String,
    /// The pack whose grants limit decryption; `None`: no limit.
    pack: Option<String>,
    /// Ciphertexts read through this source, with whether decrypting each is allowed and the
    /// key it came from.
    seen: Mutex<HashMap<String, (bool, String)>>,
}

impl TemplateKeys {
    fn read(&self, key: &KeyRef) -> Option<String> {
        if let Some(pack) = &self.pack
            && key.scope == KeyScope::System
            && let Err(e) = squall_core::datastore::check_pack_local_read(pack, &key.name)
        {
            // As a missing key to the template; the refusal is logged for the audit trail.
            tracing::info!(pack.ref = %pack, key = %key, "capability denied: {e}");
            return None;
        }
        match self.datastore.get_blocking(key, false) {
            Ok(Some(kv)) => {
                if kv.secret
                    && let Some(pack) = &self.pack
                {
                    let allowed = key.scope == KeyScope::User
                        || self
                            .datastore
                            .inner
                            .registry
                            .config()
                            .grants(pack)
                            .may_read_secret(&key.name);
                    self.seen
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(kv.value.clone(), (allowed, key.to_string()));
                }
                Some(kv.value)
            }
            Ok(None) => None,
            Err(DatastoreError::Invalid(_)) => None,
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "datastore lookup failed");
                None
            }
        }
    }
}

impl KeySource for TemplateKeys {
    fn system(&self, name: &str) -> Option<String> {
        self.read(&KeyRef::system(name))
    }

    fn user(&self, name: &str) -> Option<String> {
        self.read(&KeyRef::user(&self.user, name))
    }

    fn decrypt(&self, ciphertext: &str) -> Result<String, String> {
        if let Some(pack) = &self.pack {
            let seen = self
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(ciphertext)
                .cloned();
            match seen {
                Some((true, _)) => {}
                Some((false, key)) => {
                    return Err(format!(
                        "decrypt_kv: secret key {key} is not granted to pack {pack:?} \
                         ([packs.{pack}] secret_keys in squall.toml)"
                    ));
                }
                None => {
                    return Err(
                        "decrypt_kv: only a secret read through st2kv can be decrypted".into(),
                    );
                }
            }
        }
        self.datastore
            .decrypt(ciphertext)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(dir: &Path) -> Cipher {
        load_key_file(&dir.join("keys/datastore.key"), true, 0).unwrap()
    }

    #[test]
    fn secrets_round_trip_with_a_fresh_nonce_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let c = cipher(dir.path());
        for plain in ["hunter2", "", "ünïcødé ✓", &"x".repeat(10_000)] {
            let a = c.encrypt(plain).unwrap();
            let b = c.encrypt(plain).unwrap();
            assert_ne!(a, b, "nonces repeat");
            assert!(!a.contains(plain) || plain.is_empty());
            assert_eq!(a.len(), 2 * (NONCE_LEN + plain.len() + TAG_LEN));
            assert_eq!(c.decrypt(&a, "k").unwrap(), plain);
            assert_eq!(c.decrypt(&a.to_lowercase(), "k").unwrap(), plain);
        }
    }

    #[test]
    fn the_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/datastore.key");
        let first = cipher(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        let again = cipher(dir.path());
        let sealed = first.encrypt("v").unwrap();
        assert_eq!(again.decrypt(&sealed, "k").unwrap(), "v");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn a_wrong_or_tampered_key_fails_naming_the_file() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let sealed = cipher(one.path()).encrypt("hunter2").unwrap();
        let other = cipher(two.path());
        let err = other.decrypt(&sealed, "st2kv.system.tok").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("st2kv.system.tok"), "{text}");
        assert!(text.contains(&two.path().join("keys/datastore.key").display().to_string()));
        assert!(!text.contains("hunter2"));
        let mine = cipher(one.path());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        for bad in [
            String::from_utf8(tampered).unwrap(),
            "not hex".into(),
            "ABCD".into(),
            String::new(),
        ] {
            assert!(mine.decrypt(&bad, "k").is_err(), "{bad}");
        }
    }

    #[test]
    fn key_file_problems_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("datastore.key");
        let err = load_key_file(&path, false, 3).err().unwrap().to_string();
        assert!(
            err.contains("is missing, but 3 secret keys are stored"),
            "{err}"
        );
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            !path.exists(),
            "a missing key file must not be recreated over secrets"
        );
        for bad in ["", "zz", &"ab".repeat(16), &"ab".repeat(33)] {
            std::fs::write(&path, bad).unwrap();
            let err = load_key_file(&path, true, 0).err().unwrap().to_string();
            assert!(err.contains("must hold 64 hex digits"), "{bad}: {err}");
            assert!(err.starts_with(&format!("datastore key file {}", path.display())));
        }
    }
}
