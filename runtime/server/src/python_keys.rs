//! The datastore as a pack's Python component reaches it (`st2-datastore` import,
//! `wit/squall.wit`): StackStorm's `action_service.get_value/set_value/delete_value/list_values`
//! over system-scope keys named in full.
//!
//! A pack owns its local keys ([`squall_core::datastore::owns_key`]: `<pack>:<name>`, and
//! StackStorm's `<pack>.<Class>:<name>`): it reads, writes and deletes them. Any other key it
//! may only read, exactly as a sensor's `get-system` reads it: never another pack's local key.
//! A secret comes as its ciphertext without `decrypt` (as StackStorm returns it) and decrypted
//! only when the operator granted it (`[packs.<pack>] secret_keys`), its own included. A write
//! or delete of a key it does not own, or a refused read, is a [`GateError::Denied`] the host
//! records among the execution's denials.
//! Writes go through [`crate::Datastore::set`], so they are durable when the call returns and
//! fire the `core.st2.key_value_pair.*` triggers, as StackStorm's API does for a Python
//! action; one execution writes at most [`MAX_WRITES`] times.

use squall_core::config::PackGrants;
use squall_core::datastore::{
    KeyRef, MAX_LISTED, MAX_TTL, check_pack_local_read, own_prefixes, owns_key,
};
use squall_host::{GateError, KeyGate, MAX_KEY_WRITES, MAX_VALUE_BYTES};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes and deletes one execution may make; past it each is refused.
pub(crate) const MAX_WRITES: usize = MAX_KEY_WRITES;

/// The `st2-datastore` import of one execution of `pack`.
pub(crate) struct ActionKeys {
    pack: String,
    grants: PackGrants,
    datastore: Option<crate::Datastore>,
    writes: AtomicUsize,
}

impl ActionKeys {
    /// The gate of an execution of `pack` under its `grants` (`secret_keys`); `datastore`
    /// `None` (a bare runner) refuses every call.
    pub(crate) fn new(
        pack: &str,
        grants: PackGrants,
        datastore: Option<crate::Datastore>,
    ) -> ActionKeys {
        ActionKeys {
            pack: pack.to_string(),
            grants,
            datastore,
            writes: AtomicUsize::new(0),
        }
    }

    fn owns(&self, name: &str) -> bool {
        owns_key(&self.pack, name)
    }

    /// Counts one write or delete against [`MAX_WRITES`].
    fn count_write(&self, name: &str) -> Result<(), GateError> {
        if self.writes.fetch_add(1, Ordering::Relaxed) >= MAX_WRITES {
            return Err(GateError::Failed(format!(
                "an execution may write at most {MAX_WRITES} keys; {name:?} was not written"
            )));
        }
        Ok(())
    }

    fn datastore(&self) -> Result<&crate::Datastore, GateError> {
        self.datastore
            .as_ref()
            .ok_or_else(|| GateError::Failed("the datastore is not available here".into()))
    }

    fn write_refusal(&self, verb: &str, name: &str) -> GateError {
        GateError::Denied(squall_core::datastore::write_refusal(
            &self.pack, verb, name,
        ))
    }
}

fn failed(e: impl std::fmt::Display) -> GateError {
    GateError::Failed(format!("datastore: {e}"))
}

#[async_trait::async_trait]
impl KeyGate for ActionKeys {
    async fn list(&self, prefix: String) -> Result<Vec<(String, String, bool)>, GateError> {
        let datastore = self.datastore()?;
        // Only the pack's own keys: whatever the prefix, nothing outside them is listed.
        let mut out = Vec::new();
        for narrowed in own_prefixes(&self.pack, &prefix) {
            let filter = crate::datastore::KeyFilter {
                scope: Some(squall_core::datastore::KeyScope::System),
                user: None,
                prefix: narrowed,
            };
            let keys = datastore.list(&filter, false).await.map_err(failed)?;
            out.extend(
                keys.into_iter()
                    .filter(|kv| self.owns(&kv.name))
                    .map(|kv| (kv.name, kv.value, kv.secret)),
            );
        }
        out.sort();
        out.truncate(MAX_LISTED);
        Ok(out)
    }

    async fn get(&self, name: String, decrypt: bool) -> Result<Option<String>, GateError> {
        let datastore = self.datastore()?;
        let key = KeyRef::system(&name);
        key.validate()
            .map_err(|e| GateError::Failed(e.to_string()))?;
        if !self.owns(&name) {
            check_pack_local_read(&self.pack, &name).map_err(GateError::Denied)?;
        }
        let Some(kv) = datastore.get(&key, false).await.map_err(failed)? else {
            return Ok(None);
        };
        if !kv.secret || !decrypt {
            return Ok(Some(kv.value));
        }
        if !self.grants.may_read_secret(&name) {
            return Err(GateError::Denied(format!(
                "secret key {name:?} is not granted to pack {:?} ([packs.{}] secret_keys in squall.toml)",
                self.pack, self.pack
            )));
        }
        datastore
            .decrypt(&kv.value)
            .map(Some)
            .map_err(|e| GateError::Failed(format!("secret key {name:?}: {e}")))
    }

    async fn set(
        &self,
        name: String,
        value: String,
        ttl_seconds: Option<u32>,
        encrypt: bool,
    ) -> Result<(), GateError> {
        let datastore = self.datastore()?;
        if !self.owns(&name) {
            return Err(self.write_refusal("write", &name));
        }
        self.count_write(&name)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(GateError::Failed(format!(
                "value of key {name:?} is {} bytes, over the limit of {MAX_VALUE_BYTES} bytes",
                value.len()
            )));
        }
        if let Some(ttl) = ttl_seconds
            && (ttl == 0 || u64::from(ttl) > MAX_TTL)
        {
            return Err(GateError::Failed(format!(
                "ttl of key {name:?} must be 1 to {MAX_TTL} seconds, not {ttl}"
            )));
        }
        datastore
            .set(crate::datastore::SetKey {
                key: KeyRef::system(&name),
                value,
                secret: encrypt,
                encrypted: false,
                ttl: ttl_seconds.map(i64::from),
            })
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn delete(&self, name: String) -> Result<bool, GateError> {
        let datastore = self.datastore()?;
        if !self.owns(&name) {
            return Err(self.write_refusal("delete", &name));
        }
        self.count_write(&name)?;
        match datastore.delete(&KeyRef::system(&name)).await {
            Ok(_) => Ok(true),
            Err(crate::datastore::DatastoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }
}
