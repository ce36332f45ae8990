//! [`RedbStore`]: the embedded store, one redb file, with a group-committing writer thread.
//!
//! Record keys are ids as big-endian `u128` (UUIDv7), so key order is creation order; index
//! keys are `(field, id)` so a reverse range scan lists one field value newest first.
//!
//! | table | key | value |
//! |---|---|---|
//! | `executions` | id | record (JSON) |
//! | `execution_status` | id | status name |
//! | `executions_by_action` / `executions_by_status` | (ref / status, id) | () |
//! | `executions_by_parent` | (workflow execution id, id) | () |
//! | `workflows` | workflow or action chain execution id | conductor state (JSON) |
//! | `trigger_instances` | id | record (JSON) |
//! | `trigger_instance_status` | id | status name |
//! | `trigger_instances_by_trigger` / `_by_status` | (ref / status, id) | () |
//! | `rule_enforcements` | id | record (JSON) |
//! | `rule_enforcements_by_rule` | (rule ref, id) | () |
//! | `keys` | system-scope key name | record (JSON) |
//! | `user_keys` | `<user>:<name>` (StackStorm's user key reference) | record (JSON) |
//! | `keys_by_expiry` | (expiry in Unix ms, 0 system / 1 user, reference) | () |
//! | `api_keys` | SHA-256 hex of the key | record (JSON) |
//! | `rule_state` | rule ref | 1 enabled / 0 disabled |
//! | `counts` | `executions`, `executions/status/<s>`, `executions/action/<ref>`, ... | record count |

use crate::batch::Write;
use crate::traits::*;
use crate::{Batch, StoreError};
use async_trait::async_trait;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use squall_core::apikey::ApiKey;
use squall_core::chain::ChainState;
use squall_core::datastore::{KeyRef, KeyScope, KeyValuePair};
use squall_core::enforcement::RuleEnforcement;
use squall_core::workflow::WorkflowState;
use squall_core::{Execution, ExecutionId, TriggerInstance, TriggerInstanceId};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Records = TableDefinition<'static, u128, &'static [u8]>;
type Statuses = TableDefinition<'static, u128, &'static str>;
type Index = TableDefinition<'static, (&'static str, u128), ()>;
type Named = TableDefinition<'static, &'static str, &'static [u8]>;

const EXECUTIONS: Records = TableDefinition::new("executions");
const EXECUTION_STATUS: Statuses = TableDefinition::new("execution_status");
const EXECUTIONS_BY_ACTION: Index = TableDefinition::new("executions_by_action");
const EXECUTIONS_BY_STATUS: Index = TableDefinition::new("executions_by_status");
const EXECUTIONS_BY_PARENT: Index = TableDefinition::new("executions_by_parent");
const WORKFLOWS: Records = TableDefinition::new("workflows");
const TRIGGER_INSTANCES: Records = TableDefinition::new("trigger_instances");
const TRIGGER_INSTANCE_STATUS: Statuses = TableDefinition::new("trigger_instance_status");
const TRIGGER_INSTANCES_BY_TRIGGER: Index = TableDefinition::new("trigger_instances_by_trigger");
const TRIGGER_INSTANCES_BY_STATUS: Index = TableDefinition::new("trigger_instances_by_status");
const ENFORCEMENTS: Records = TableDefinition::new("rule_enforcements");
const ENFORCEMENTS_BY_RULE: Index = TableDefinition::new("rule_enforcements_by_rule");
const KEYS: Named = TableDefinition::new("keys");
const USER_KEYS: Named = TableDefinition::new("user_keys");
type Expiry = TableDefinition<'static, (i64, u8, &'static str), ()>;
const KEYS_BY_EXPIRY: Expiry = TableDefinition::new("keys_by_expiry");
const API_KEYS: Named = TableDefinition::new("api_keys");
const RULE_STATE: TableDefinition<'static, &'static str, u8> = TableDefinition::new("rule_state");
const SENSOR_STATE: TableDefinition<'static, &'static str, u8> =
    TableDefinition::new("sensor_state");
/// Record counts per list filter with one field (`executions`, `executions/status/running`,
/// `executions/action/core.echo`, ...), kept in the same transactions as the records so
/// `X-Total-Count` needs no scan.
const COUNTS: TableDefinition<'static, &'static str, u64> = TableDefinition::new("counts");

/// Writes waiting when a commit starts are committed with it, up to this many batches.
const MAX_BATCHES: usize = 1024;

/// The file name of the store inside the data directory.
pub const FILE_NAME: &str = "squall.redb";

/// The embedded store: `<data-dir>/squall.redb`. Cheap to clone; the writer thread stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<DbHandle>,
    writes: mpsc::UnboundedSender<Op>,
    path: PathBuf,
    process: Arc<crate::process::ProcessLock>,
}

struct Op {
    batch: Batch,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

fn tx<T>(r: Result<T, impl Into<redb::Error>>) -> Result<T, StoreError> {
    r.map_err(StoreError::transaction)
}

/// Bytes of the store's pages redb keeps cached in memory by default: 256 MiB. (Much less
/// stalls commits: at 64 MiB, three of four runs of the webhook benchmark had a p99 latency
/// near 680 ms, against 23–30 ms.)
pub const DEFAULT_CACHE_SIZE: u64 = 256 << 20;

impl RedbStore {
    /// Opens (creating if needed) the store in `data_dir`, creating the directory too.
    ///
    /// # Errors
    /// [`StoreError::DataDir`] or [`StoreError::Open`] naming the path.
    pub fn open(data_dir: &Path) -> Result<RedbStore, StoreError> {
        RedbStore::open_on(data_dir, DEFAULT_CACHE_SIZE, None)
    }

    /// [`RedbStore::open`] with at most `cache` bytes of the store's pages cached in memory
    /// (`[server] store_cache`; redb's own default would be 1 GiB, kept for good once filled).
    ///
    /// # Errors
    /// As [`RedbStore::open`].
    pub fn open_with_cache(data_dir: &Path, cache: u64) -> Result<RedbStore, StoreError> {
        RedbStore::open_on(data_dir, cache, None)
    }

    /// [`RedbStore::open`] on a file whose writes fail with "no space left on device" while the
    /// returned switch is on: a full disk, made deterministic for tests.
    #[cfg(test)]
    pub(crate) fn open_with_full_disk_switch(
        data_dir: &Path,
    ) -> Result<(RedbStore, Arc<std::sync::atomic::AtomicBool>), StoreError> {
        let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
        Ok((
            RedbStore::open_on(data_dir, DEFAULT_CACHE_SIZE, Some(full.clone()))?,
            full,
        ))
    }

    fn open_on(
        data_dir: &Path,
        cache: u64,
        full: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<RedbStore, StoreError> {
        let dir_error = |e: std::io::Error| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source: Arc::new(e),
        };
        let path = data_dir.join(FILE_NAME);
        // Squall's: new, or holding nothing but what Squall puts there (the host may have made
        // `cache/` and `keys/` a moment ago).
        let ours = std::fs::read_dir(data_dir).map_or(true, |entries| {
            entries.filter_map(Result::ok).all(|e| {
                matches!(
                    e.file_name().to_str(),
                    Some(FILE_NAME | "cache" | "keys" | "processes")
                )
            })
        });
        std::fs::create_dir_all(data_dir).map_err(dir_error)?;
        // The data directory holds every execution, secret ciphertext and (by default) the
        // datastore key: owner only, whatever the umask made of it. A directory the operator
        // already had for something else (`SQUALL_DATA_DIR=.`) keeps its mode.
        if ours {
            restrict(data_dir, 0o700).map_err(dir_error)?;
        }
        let db = open_database(&path, cache, full.as_ref())?;
        restrict(&path, 0o600).map_err(dir_error)?;
        let txn = tx(db.begin_write())?;
        {
            for t in [EXECUTIONS, TRIGGER_INSTANCES, ENFORCEMENTS, WORKFLOWS] {
                tx(txn.open_table(t))?;
            }
            for t in [EXECUTION_STATUS, TRIGGER_INSTANCE_STATUS] {
                tx(txn.open_table(t))?;
            }
            for t in [
                EXECUTIONS_BY_ACTION,
                EXECUTIONS_BY_STATUS,
                EXECUTIONS_BY_PARENT,
                TRIGGER_INSTANCES_BY_TRIGGER,
                TRIGGER_INSTANCES_BY_STATUS,
                ENFORCEMENTS_BY_RULE,
            ] {
                tx(txn.open_table(t))?;
            }
            for t in [KEYS, USER_KEYS, API_KEYS] {
                tx(txn.open_table(t))?;
            }
            tx(txn.open_table(KEYS_BY_EXPIRY))?;
            tx(txn.open_table(RULE_STATE))?;
            tx(txn.open_table(SENSOR_STATE))?;
            tx(txn.open_table(COUNTS))?;
        }
        tx(txn.commit())?;
        let db = Arc::new(DbHandle {
            current: std::sync::RwLock::new(Arc::new(db)),
            broken: std::sync::atomic::AtomicBool::new(false),
            reopening: std::sync::Mutex::new(()),
            path: path.clone(),
            cache,
            full,
        });
        let (writes, queue) = mpsc::unbounded_channel();
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("squall-store-writer".into())
            .spawn(move || writer(writer_db, queue))
            .map_err(|e| StoreError::DataDir {
                path: data_dir.to_path_buf(),
                source: Arc::new(e),
            })?;
        let process =
            crate::process::ProcessLock::acquire(data_dir).map_err(|e| StoreError::DataDir {
                path: data_dir.join("processes"),
                source: Arc::new(e),
            })?;
        Ok(RedbStore {
            db,
            writes,
            path,
            process: Arc::new(process),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let (txn, used) = db.begin_read()?;
            f(&txn).map_err(|e| db.failed(&used, e))
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// Opens (creating) the store file at `path`, shared with other processes.
/// Opens the database file; with `full` (tests only), on a backend whose writes fail while it
/// is on.
fn open_database(
    path: &Path,
    cache: u64,
    full: Option<&Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Database, StoreError> {
    let open_error = |e: redb::DatabaseError| StoreError::Open {
        path: path.to_path_buf(),
        source: Arc::new(e),
    };
    let mut builder = Database::builder();
    builder.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
    builder.set_cache_size(usize::try_from(cache).unwrap_or(usize::MAX));
    #[cfg(test)]
    if let Some(full) = full {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| open_error(redb::StorageError::Io(e).into()))?;
        let inner = redb::backends::FileBackend::new(file).map_err(open_error)?;
        return builder
            .create_with_backend(full_disk::Backend {
                inner,
                full: full.clone(),
            })
            .map_err(open_error);
    }
    #[cfg(not(test))]
    let _ = full;
    builder.create(path).map_err(open_error)
}

/// A file backend whose writes fail with ENOSPC while a switch is on (tests only).
#[cfg(test)]
mod full_disk {
    use redb::StorageBackend;
    use redb::backends::FileBackend;
    use std::ops::Bound;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Debug)]
    pub(super) struct Backend {
        pub(super) inner: FileBackend,
        pub(super) full: Arc<AtomicBool>,
    }

    impl Backend {
        /// As a full disk does: writing over bytes the file has works; growing it fails.
        fn grow(&self, to: u64) -> Result<(), std::io::Error> {
            if self.full.load(Ordering::Acquire) && to > self.inner.len()? {
                Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device (simulated)",
                ))
            } else {
                Ok(())
            }
        }
    }

    impl StorageBackend for Backend {
        fn len(&self) -> Result<u64, std::io::Error> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
            self.grow(len)?;
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> Result<(), std::io::Error> {
            self.inner.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
            self.grow(offset + data.len() as u64)?;
            self.inner.write(offset, data)
        }
        fn close(&self) -> Result<(), std::io::Error> {
            self.inner.close()
        }
        fn try_lock_range(
            &self,
            start: Bound<u64>,
            end: Bound<u64>,
        ) -> Result<bool, redb::BackendError> {
            self.inner.try_lock_range(start, end)
        }
        fn try_lock_shared_range(
            &self,
            start: Bound<u64>,
            end: Bound<u64>,
        ) -> Result<bool, redb::BackendError> {
            self.inner.try_lock_shared_range(start, end)
        }
        fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
            self.inner.lock_range(start, end)
        }
        fn lock_shared_range(
            &self,
            start: Bound<u64>,
            end: Bound<u64>,
        ) -> Result<(), redb::BackendError> {
            self.inner.lock_shared_range(start, end)
        }
        fn unlock_range(
            &self,
            start: Bound<u64>,
            end: Bound<u64>,
        ) -> Result<(), redb::BackendError> {
            self.inner.unlock_range(start, end)
        }
        fn query_lock_range(
            &self,
            start: Bound<u64>,
            end: Bound<u64>,
        ) -> Result<bool, redb::BackendError> {
            self.inner.query_lock_range(start, end)
        }
    }
}

/// The open database, replaced when an I/O error broke it.
///
/// After a failed write (a full disk, say) redb refuses every later read and write of that
/// handle ("previous I/O error") until the database is closed and opened again. So a write
/// or read that meets an I/O failure marks the handle broken, and the next operation reopens
/// the file (redb's recovery restores the last committed state; nothing acknowledged is
/// lost) and swaps the new handle in. While the disk stays full, reads work on the reopened
/// handle and writes keep failing with [`StoreError::Full`]; once space returns, writes
/// succeed with no restart.
struct DbHandle {
    current: std::sync::RwLock<Arc<Database>>,
    broken: std::sync::atomic::AtomicBool,
    /// Held while reopening, so one thread does it.
    reopening: std::sync::Mutex<()>,
    path: PathBuf,
    /// Bytes of pages cached, for reopening.
    cache: u64,
    /// The simulated full disk's switch (tests only; always `None` otherwise).
    full: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl DbHandle {
    /// The database to use now, reopened first when it is broken.
    fn get(&self) -> Result<Arc<Database>, StoreError> {
        if self.broken.load(std::sync::atomic::Ordering::Acquire) {
            self.reopen()?;
        }
        Ok(self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let _one = self.reopening.lock().unwrap_or_else(|e| e.into_inner());
        if !self.broken.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let db = open_database(&self.path, self.cache, self.full.as_ref()).map_err(|e| {
            tracing::warn!(error = %e, "store still cannot be reopened");
            match &e {
                StoreError::Open { source, .. }
                    if matches!(
                        source.as_ref(),
                        redb::DatabaseError::Storage(redb::StorageError::Io(io))
                            if crate::error::is_disk_full(io)
                    ) =>
                {
                    StoreError::Full(e.to_string())
                }
                _ => StoreError::Unavailable(e.to_string()),
            }
        })?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(db);
        self.broken
            .store(false, std::sync::atomic::Ordering::Release);
        tracing::info!(path = %self.path.display(), "store reopened after an I/O error");
        Ok(())
    }

    /// A read transaction on the current database, and that database.
    fn begin_read(&self) -> Result<(ReadTransaction, Arc<Database>), StoreError> {
        let db = self.get()?;
        match db.begin_read() {
            Ok(txn) => Ok((txn, db)),
            Err(e) => Err(self.failed(&db, StoreError::transaction(e))),
        }
    }

    /// Classifies `e`, met using `used`: an I/O failure becomes [`StoreError::Full`] or
    /// [`StoreError::Unavailable`] and marks the handle broken — unless `used` was already
    /// replaced (a reader still on the old handle must not break the new one); anything else is
    /// returned as is.
    fn failed(&self, used: &Arc<Database>, e: StoreError) -> StoreError {
        match e.io_failure() {
            Some(classified) => {
                let current = self.current.read().unwrap_or_else(|e| e.into_inner());
                if Arc::ptr_eq(used, &current) {
                    self.broken
                        .store(true, std::sync::atomic::Ordering::Release);
                }
                classified
            }
            None => e,
        }
    }
}

/// Deepest nesting of arrays and objects in a record the store accepts: serde_json reads at
/// most 128 levels back, so a deeper record would be written and never read again.
const READABLE_DEPTH: usize = 120;

/// The writer thread: takes every waiting batch, applies them in one transaction, commits,
/// then answers each. A batch whose create/update is refused is answered with the refusal and
/// leaves no trace; the others in the same commit are unaffected.
fn writer(handle: Arc<DbHandle>, mut queue: mpsc::UnboundedReceiver<Op>) {
    while let Some(first) = queue.blocking_recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCHES {
            match queue.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let db = match handle.get() {
            Ok(db) => db,
            Err(e) => {
                for op in ops {
                    let _ = op.reply.send(Err(e.clone()));
                }
                continue;
            }
        };
        let outcome = tx(db.begin_write()).and_then(|txn| {
            let mut results = Vec::with_capacity(ops.len());
            for op in &ops {
                let refused = op
                    .batch
                    .writes
                    .iter()
                    .map(|w| check(&txn, w))
                    .find_map(|r| r.err());
                match refused {
                    Some(
                        e @ (StoreError::AlreadyExists(_)
                        | StoreError::NotFound(_)
                        | StoreError::TooDeep(_)),
                    ) => results.push(Err(e)),
                    Some(e) => return Err(e),
                    None => {
                        for w in &op.batch.writes {
                            apply(&txn, w)?;
                        }
                        results.push(Ok(()));
                    }
                }
            }
            tx(txn.commit())?;
            Ok(results)
        });
        match outcome {
            Ok(results) => {
                for (op, result) in ops.into_iter().zip(results) {
                    let _ = op.reply.send(result);
                }
            }
            Err(e) => {
                let e = handle.failed(&db, e);
                tracing::error!(error = %e, batches = ops.len(), "store commit failed");
                for op in ops {
                    let _ = op.reply.send(Err(e.clone()));
                }
                drop(db);
                // Reopen now, so reads work again before the next write comes.
                if handle.broken.load(std::sync::atomic::Ordering::Acquire) {
                    let _ = handle.reopen();
                }
            }
        }
    }
}

/// Whether a write may be applied: creates need a free id, updates an existing one.
fn check(txn: &WriteTransaction, w: &Write) -> Result<(), StoreError> {
    if let Some(record) = w.record()
        && squall_core::json::nesting_depth(record, READABLE_DEPTH) > READABLE_DEPTH
    {
        return Err(StoreError::TooDeep(w.describe()));
    }
    let (table, create, id, kind) = match w {
        Write::Execution { create, id, .. } => (EXECUTION_STATUS, *create, *id, "execution"),
        Write::TriggerInstance { create, id, .. } => {
            (TRIGGER_INSTANCE_STATUS, *create, *id, "trigger instance")
        }
        _ => return Ok(()),
    };
    let exists = tx(tx(txn.open_table(table))?.get(id))?.is_some();
    let name = format!("{kind} {}", ExecutionId::from_u128(id));
    match (create, exists) {
        (true, true) => Err(StoreError::AlreadyExists(name)),
        (false, false) => Err(StoreError::NotFound(name)),
        _ => Ok(()),
    }
}

/// Adds `delta` to the counter `key`.
fn bump(txn: &WriteTransaction, key: &str, delta: i64) -> Result<(), StoreError> {
    let mut t = tx(txn.open_table(COUNTS))?;
    let now = tx(t.get(key))?.map(|v| v.value()).unwrap_or(0);
    tx(t.insert(key, now.saturating_add_signed(delta)))?;
    Ok(())
}

/// Writes a record with a status and two indexes (executions and trigger instances share this
/// shape), keeping the counters `<kind>`, `<kind>/<field name>/<field>` and
/// `<kind>/status/<status>`.
#[allow(clippy::too_many_arguments)]
fn put_indexed(
    txn: &WriteTransaction,
    kind: (&str, &str),
    records: Records,
    statuses: Statuses,
    by_field: Index,
    by_status: Index,
    id: u128,
    field: &str,
    status: &str,
    record: &[u8],
) -> Result<(), StoreError> {
    let mut st = tx(txn.open_table(statuses))?;
    let old = tx(st.get(id))?.map(|s| s.value().to_string());
    let mut status_index = tx(txn.open_table(by_status))?;
    let (name, field_name) = kind;
    match &old {
        Some(old) => {
            tx(status_index.remove((old.as_str(), id)))?;
            if old != status {
                bump(txn, &format!("{name}/status/{old}"), -1)?;
            }
        }
        None => {
            tx(tx(txn.open_table(by_field))?.insert((field, id), ()))?;
            bump(txn, name, 1)?;
            bump(txn, &format!("{name}/{field_name}/{field}"), 1)?;
        }
    }
    if old.as_deref() != Some(status) {
        bump(txn, &format!("{name}/status/{status}"), 1)?;
    }
    tx(status_index.insert((status, id), ()))?;
    tx(st.insert(id, status))?;
    tx(tx(txn.open_table(records))?.insert(id, record))?;
    Ok(())
}

fn apply(txn: &WriteTransaction, w: &Write) -> Result<(), StoreError> {
    match w {
        Write::Execution {
            create,
            id,
            action,
            parent,
            status,
            record,
        } => {
            if let (true, Some(parent)) = (*create, parent) {
                tx(tx(txn.open_table(EXECUTIONS_BY_PARENT))?.insert((parent.as_str(), *id), ()))?;
                bump(txn, &format!("executions/parent/{parent}"), 1)?;
            }
            put_indexed(
                txn,
                ("executions", "action"),
                EXECUTIONS,
                EXECUTION_STATUS,
                EXECUTIONS_BY_ACTION,
                EXECUTIONS_BY_STATUS,
                *id,
                action,
                status,
                record,
            )
        }
        Write::Workflow { id, record } => {
            tx(tx(txn.open_table(WORKFLOWS))?.insert(*id, record.as_slice()))?;
            Ok(())
        }
        Write::TriggerInstance {
            id,
            trigger,
            status,
            record,
            ..
        } => put_indexed(
            txn,
            ("trigger_instances", "trigger"),
            TRIGGER_INSTANCES,
            TRIGGER_INSTANCE_STATUS,
            TRIGGER_INSTANCES_BY_TRIGGER,
            TRIGGER_INSTANCES_BY_STATUS,
            *id,
            trigger,
            status,
            record,
        ),
        Write::Enforcement { id, rule, record } => {
            tx(tx(txn.open_table(ENFORCEMENTS_BY_RULE))?.insert((rule.as_str(), *id), ()))?;
            let previous =
                tx(tx(txn.open_table(ENFORCEMENTS))?.insert(*id, record.as_slice()))?.is_some();
            if !previous {
                bump(txn, "rule_enforcements", 1)?;
                bump(txn, &format!("rule_enforcements/rule/{rule}"), 1)?;
            }
            Ok(())
        }
        Write::PutKey {
            scope,
            reference,
            expires,
            record,
        } => {
            let previous = tx(tx(txn.open_table(key_table(*scope)))?
                .insert(reference.as_str(), record.as_slice()))?
            .map(|old| old.value().to_vec());
            unindex_expiry(txn, *scope, reference, previous.as_deref())?;
            if let Some(at) = expires {
                tx(tx(txn.open_table(KEYS_BY_EXPIRY))?
                    .insert((*at, scope_code(*scope), reference.as_str()), ()))?;
            }
            Ok(())
        }
        Write::DeleteKey { scope, reference } => {
            let previous = tx(tx(txn.open_table(key_table(*scope)))?.remove(reference.as_str()))?
                .map(|old| old.value().to_vec());
            unindex_expiry(txn, *scope, reference, previous.as_deref())
        }
        Write::SweepKeys { now } => sweep_keys(txn, *now),
        Write::PutApiKey { hash, record } => {
            tx(tx(txn.open_table(API_KEYS))?.insert(hash.as_str(), record.as_slice()))?;
            Ok(())
        }
        Write::RuleEnabled { rule, enabled } => {
            tx(tx(txn.open_table(RULE_STATE))?.insert(rule.as_str(), u8::from(*enabled)))?;
            Ok(())
        }
        Write::SensorEnabled { sensor, enabled } => {
            tx(tx(txn.open_table(SENSOR_STATE))?.insert(sensor.as_str(), u8::from(*enabled)))?;
            Ok(())
        }
    }
}

fn key_table(scope: KeyScope) -> Named {
    match scope {
        KeyScope::System => KEYS,
        KeyScope::User => USER_KEYS,
    }
}

fn scope_code(scope: KeyScope) -> u8 {
    match scope {
        KeyScope::System => 0,
        KeyScope::User => 1,
    }
}

/// Removes the expiry index entry of a key's previous record, if it had one.
fn unindex_expiry(
    txn: &WriteTransaction,
    scope: KeyScope,
    reference: &str,
    previous: Option<&[u8]>,
) -> Result<(), StoreError> {
    let Some(bytes) = previous else {
        return Ok(());
    };
    let old: KeyValuePair = decode("key", reference, bytes)?;
    if let Some(at) = old.expire_timestamp {
        tx(tx(txn.open_table(KEYS_BY_EXPIRY))?.remove((
            at.as_millisecond(),
            scope_code(scope),
            reference,
        )))?;
    }
    Ok(())
}

/// Index entries due at `now` (the index has millisecond precision: the records decide).
fn due_keys(
    index: &impl ReadableTable<(i64, u8, &'static str), ()>,
    now: jiff::Timestamp,
) -> Result<Vec<(i64, u8, String)>, StoreError> {
    let end = now.as_millisecond();
    let mut out = Vec::new();
    for entry in tx(index.range((i64::MIN, 0u8, "")..(end.saturating_add(1), 0u8, "")))? {
        let (k, _) = tx(entry)?;
        let (at, scope, reference) = k.value();
        out.push((at, scope, reference.to_string()));
    }
    Ok(out)
}

fn scope_of(code: u8) -> KeyScope {
    if code == 0 {
        KeyScope::System
    } else {
        KeyScope::User
    }
}

/// Deletes the keys expired at `now`.
fn sweep_keys(txn: &WriteTransaction, now: jiff::Timestamp) -> Result<(), StoreError> {
    let due = due_keys(&tx(txn.open_table(KEYS_BY_EXPIRY))?, now)?;
    for (at, code, reference) in due {
        let scope = scope_of(code);
        let mut records = tx(txn.open_table(key_table(scope)))?;
        let expired = match tx(records.get(reference.as_str()))? {
            Some(v) => decode::<KeyValuePair>("key", &reference, v.value())?.is_expired(now),
            None => true,
        };
        if expired {
            tx(records.remove(reference.as_str()))?;
            tx(tx(txn.open_table(KEYS_BY_EXPIRY))?.remove((at, code, reference.as_str())))?;
        }
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(what: &str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        record: format!("{what} {key}"),
        message: e.to_string(),
    })
}

fn get_record<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: Records,
    what: &str,
    id: u128,
) -> Result<Option<T>, StoreError> {
    let t = tx(txn.open_table(table))?;
    let found = tx(t.get(id))?;
    found
        .map(|v| decode(what, &ExecutionId::from_u128(id).to_string(), v.value()))
        .transpose()
}

/// What a scan is for: one page of ids, or how many match.
#[derive(Clone, Copy)]
enum Want {
    Page { offset: usize, limit: usize },
    Count,
}

/// Ids newest first: from one index range when `index` is given, else from the whole table;
/// `keep` filters. A page scan stops as soon as the page is full.
fn ids(
    txn: &ReadTransaction,
    records: Records,
    index: Option<(Index, &str)>,
    mut keep: impl FnMut(u128) -> Result<bool, StoreError>,
    want: Want,
) -> Result<(Vec<u128>, u64), StoreError> {
    let (offset, limit) = match want {
        Want::Page { offset, limit } => (offset, limit),
        Want::Count => (0, 0),
    };
    let mut out = Vec::new();
    let mut matched: u64 = 0;
    // Returns false when the scan can stop.
    let mut visit = |id: u128| -> Result<bool, StoreError> {
        if keep(id)? {
            if matched as usize >= offset && out.len() < limit {
                out.push(id);
            }
            matched += 1;
        }
        Ok(matches!(want, Want::Count) || out.len() < limit)
    };
    if matches!(want, Want::Page { limit: 0, .. }) {
        return Ok((out, 0));
    }
    match index {
        Some((table, key)) => {
            let t = tx(txn.open_table(table))?;
            for entry in tx(t.range((key, 0u128)..=(key, u128::MAX)))?.rev() {
                if !visit(tx(entry)?.0.value().1)? {
                    break;
                }
            }
        }
        None => {
            let t = tx(txn.open_table(records))?;
            for entry in tx(t.iter())?.rev() {
                if !visit(tx(entry)?.0.value())? {
                    break;
                }
            }
        }
    }
    Ok((out, matched))
}

fn counter(txn: &ReadTransaction, key: &str) -> Result<u64, StoreError> {
    let t = tx(txn.open_table(COUNTS))?;
    Ok(tx(t.get(key))?.map(|v| v.value()).unwrap_or(0))
}

/// Ids (or the count) of records of `kind` filtered by an indexed `field` and/or a status.
/// Single-field counts come from the counters; both filters scan the field's index.
#[allow(clippy::too_many_arguments)]
fn indexed_ids(
    txn: &ReadTransaction,
    kind: (&str, &str),
    records: Records,
    statuses: Statuses,
    by_field: Index,
    by_status: Index,
    field: Option<&str>,
    status: Option<&str>,
    want: Want,
) -> Result<(Vec<u128>, u64), StoreError> {
    let (name, field_name) = kind;
    if let Want::Count = want {
        match (field, status) {
            (Some(f), None) => {
                return Ok((
                    Vec::new(),
                    counter(txn, &format!("{name}/{field_name}/{f}"))?,
                ));
            }
            (None, Some(s)) => {
                return Ok((Vec::new(), counter(txn, &format!("{name}/status/{s}"))?));
            }
            (None, None) => return Ok((Vec::new(), counter(txn, name)?)),
            (Some(_), Some(_)) => {}
        }
    }
    match (field, status) {
        (Some(f), Some(s)) => {
            let st = tx(txn.open_table(statuses))?;
            let keep = |id: u128| Ok(tx(st.get(id))?.is_some_and(|v| v.value() == s));
            ids(txn, records, Some((by_field, f)), keep, want)
        }
        (Some(f), None) => ids(txn, records, Some((by_field, f)), |_| Ok(true), want),
        (None, Some(s)) => ids(txn, records, Some((by_status, s)), |_| Ok(true), want),
        (None, None) => ids(txn, records, None, |_| Ok(true), want),
    }
}

fn execution_ids(
    txn: &ReadTransaction,
    f: &ExecutionFilter,
    want: Want,
) -> Result<(Vec<u128>, u64), StoreError> {
    if let Some(parent) = f.parent {
        // A workflow's task executions are few: filter them by reading their records.
        let parent = parent.to_string();
        if let (Want::Count, None, None) = (want, &f.action, f.status) {
            return Ok((
                Vec::new(),
                counter(txn, &format!("executions/parent/{parent}"))?,
            ));
        }
        let keep = |id: u128| -> Result<bool, StoreError> {
            if f.action.is_none() && f.status.is_none() {
                return Ok(true);
            }
            let e: Option<Execution> = get_record(txn, EXECUTIONS, "execution", id)?;
            Ok(e.is_some_and(|e| {
                f.action.as_ref().is_none_or(|a| &e.action.reference == a)
                    && f.status.is_none_or(|s| e.status == s)
            }))
        };
        return ids(
            txn,
            EXECUTIONS,
            Some((EXECUTIONS_BY_PARENT, &parent)),
            keep,
            want,
        );
    }
    let action = f.action.as_ref().map(ToString::to_string);
    indexed_ids(
        txn,
        ("executions", "action"),
        EXECUTIONS,
        EXECUTION_STATUS,
        EXECUTIONS_BY_ACTION,
        EXECUTIONS_BY_STATUS,
        action.as_deref(),
        f.status.map(|s| s.as_str()),
        want,
    )
}

fn trigger_instance_ids(
    txn: &ReadTransaction,
    f: &TriggerInstanceFilter,
    want: Want,
) -> Result<(Vec<u128>, u64), StoreError> {
    let trigger = f.trigger.as_ref().map(ToString::to_string);
    indexed_ids(
        txn,
        ("trigger_instances", "trigger"),
        TRIGGER_INSTANCES,
        TRIGGER_INSTANCE_STATUS,
        TRIGGER_INSTANCES_BY_TRIGGER,
        TRIGGER_INSTANCES_BY_STATUS,
        trigger.as_deref(),
        f.status.map(|s| s.as_str()),
        want,
    )
}

fn enforcement_ids(
    txn: &ReadTransaction,
    f: &EnforcementFilter,
    want: Want,
) -> Result<(Vec<u128>, u64), StoreError> {
    let rule = f.rule.as_ref().map(ToString::to_string);
    // Trigger instance and execution filters read the record (enforcements are few per rule).
    let needs_record = f.trigger_instance.is_some() || f.execution.is_some();
    if let (Want::Count, false) = (want, needs_record) {
        let key = match &rule {
            Some(r) => format!("rule_enforcements/rule/{r}"),
            None => "rule_enforcements".to_string(),
        };
        return Ok((Vec::new(), counter(txn, &key)?));
    }
    let keep = |id: u128| -> Result<bool, StoreError> {
        if !needs_record {
            return Ok(true);
        }
        let e: Option<RuleEnforcement> = get_record(txn, ENFORCEMENTS, "rule enforcement", id)?;
        Ok(e.is_some_and(|e| {
            f.trigger_instance
                .is_none_or(|t| e.trigger_instance_id == t)
                && f.execution.is_none_or(|x| e.execution_id == Some(x))
        }))
    };
    match &rule {
        Some(r) => ids(
            txn,
            ENFORCEMENTS,
            Some((ENFORCEMENTS_BY_RULE, r)),
            keep,
            want,
        ),
        None => ids(txn, ENFORCEMENTS, None, keep, want),
    }
}

fn records<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: Records,
    what: &str,
    ids: Vec<u128>,
) -> Result<Vec<T>, StoreError> {
    ids.into_iter()
        .filter_map(|id| get_record(txn, table, what, id).transpose())
        .collect()
}

impl Liveness for RedbStore {
    fn process(&self) -> &str {
        self.process.id()
    }

    fn is_alive(&self, id: &str) -> bool {
        self.process.is_alive(id)
    }
}

#[async_trait]
impl BatchStore for RedbStore {
    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Op { batch, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl ExecutionStore for RedbStore {
    async fn create(&self, execution: &Execution) -> Result<(), StoreError> {
        let mut b = Batch::new();
        b.create_execution(execution);
        self.commit(b).await
    }

    async fn update(&self, execution: &Execution) -> Result<(), StoreError> {
        let mut b = Batch::new();
        b.update_execution(execution);
        self.commit(b).await
    }

    async fn get(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        self.read(move |txn| get_record(txn, EXECUTIONS, "execution", id.as_u128()))
            .await
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        let f = filter.clone();
        self.read(move |txn| {
            let (ids, _) = execution_ids(
                txn,
                &f,
                Want::Page {
                    offset: f.offset,
                    limit: f.limit,
                },
            )?;
            records(txn, EXECUTIONS, "execution", ids)
        })
        .await
    }

    async fn count(&self, filter: &ExecutionFilter) -> Result<u64, StoreError> {
        let f = filter.clone();
        self.read(move |txn| Ok(execution_ids(txn, &f, Want::Count)?.1))
            .await
    }
}

#[async_trait]
impl WorkflowStore for RedbStore {
    async fn workflow(&self, id: ExecutionId) -> Result<Option<WorkflowState>, StoreError> {
        self.read(move |txn| get_record(txn, WORKFLOWS, "workflow", id.as_u128()))
            .await
    }

    async fn chain(&self, id: ExecutionId) -> Result<Option<ChainState>, StoreError> {
        self.read(move |txn| get_record(txn, WORKFLOWS, "action chain", id.as_u128()))
            .await
    }
}

#[async_trait]
impl TriggerInstanceStore for RedbStore {
    async fn trigger_instance(
        &self,
        id: TriggerInstanceId,
    ) -> Result<Option<TriggerInstance>, StoreError> {
        self.read(move |txn| get_record(txn, TRIGGER_INSTANCES, "trigger instance", id.as_u128()))
            .await
    }

    async fn trigger_instances(
        &self,
        filter: &TriggerInstanceFilter,
    ) -> Result<Vec<TriggerInstance>, StoreError> {
        let f = filter.clone();
        self.read(move |txn| {
            let (ids, _) = trigger_instance_ids(
                txn,
                &f,
                Want::Page {
                    offset: f.offset,
                    limit: f.limit,
                },
            )?;
            records(txn, TRIGGER_INSTANCES, "trigger instance", ids)
        })
        .await
    }

    async fn count_trigger_instances(
        &self,
        filter: &TriggerInstanceFilter,
    ) -> Result<u64, StoreError> {
        let f = filter.clone();
        self.read(move |txn| Ok(trigger_instance_ids(txn, &f, Want::Count)?.1))
            .await
    }
}

#[async_trait]
impl EnforcementStore for RedbStore {
    async fn enforcements(
        &self,
        filter: &EnforcementFilter,
    ) -> Result<Vec<RuleEnforcement>, StoreError> {
        let f = filter.clone();
        self.read(move |txn| {
            let (ids, _) = enforcement_ids(
                txn,
                &f,
                Want::Page {
                    offset: f.offset,
                    limit: f.limit,
                },
            )?;
            records(txn, ENFORCEMENTS, "rule enforcement", ids)
        })
        .await
    }

    async fn count_enforcements(&self, filter: &EnforcementFilter) -> Result<u64, StoreError> {
        let f = filter.clone();
        self.read(move |txn| Ok(enforcement_ids(txn, &f, Want::Count)?.1))
            .await
    }
}

fn get_named<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: Named,
    what: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let t = tx(txn.open_table(table))?;
    let found = tx(t.get(key))?;
    found.map(|v| decode(what, key, v.value())).transpose()
}

/// A key's record unless it has expired at `now`.
fn live_key(
    txn: &ReadTransaction,
    key: &KeyRef,
    now: jiff::Timestamp,
) -> Result<Option<KeyValuePair>, StoreError> {
    let found: Option<KeyValuePair> =
        get_named(txn, key_table(key.scope), "key", &key.reference())?;
    Ok(found.filter(|kv| !kv.is_expired(now)))
}

#[async_trait]
impl KeyValueStore for RedbStore {
    async fn key(&self, key: &KeyRef) -> Result<Option<KeyValuePair>, StoreError> {
        let key = key.clone();
        self.read(move |txn| live_key(txn, &key, jiff::Timestamp::now()))
            .await
    }

    async fn keys(
        &self,
        scope: KeyScope,
        user: Option<&str>,
        prefix: &str,
    ) -> Result<Vec<KeyValuePair>, StoreError> {
        // User keys are stored as `<user>:<name>`: one user's keys are one range.
        let (range, name_prefix) = match (scope, user) {
            (KeyScope::User, Some(user)) => (format!("{user}:{prefix}"), None),
            (KeyScope::User, None) => (String::new(), Some(prefix.to_string())),
            (KeyScope::System, _) => (prefix.to_string(), None),
        };
        self.read(move |txn| {
            let now = jiff::Timestamp::now();
            let t = tx(txn.open_table(key_table(scope)))?;
            let mut out = Vec::new();
            for entry in tx(t.range(range.as_str()..))? {
                let (k, v) = tx(entry)?;
                if !k.value().starts_with(range.as_str()) {
                    break;
                }
                let kv: KeyValuePair = decode("key", k.value(), v.value())?;
                let wanted = name_prefix
                    .as_deref()
                    .is_none_or(|p| kv.name.starts_with(p));
                if wanted && !kv.is_expired(now) {
                    out.push(kv);
                }
            }
            Ok(out)
        })
        .await
    }

    fn key_blocking(&self, key: &KeyRef) -> Result<Option<KeyValuePair>, StoreError> {
        let (txn, used) = self.db.begin_read()?;
        live_key(&txn, key, jiff::Timestamp::now()).map_err(|e| self.db.failed(&used, e))
    }

    async fn expired_keys(
        &self,
        now: jiff::Timestamp,
        limit: usize,
    ) -> Result<Vec<KeyValuePair>, StoreError> {
        self.read(move |txn| {
            let due = due_keys(&tx(txn.open_table(KEYS_BY_EXPIRY))?, now)?;
            let mut out = Vec::new();
            for (_, code, reference) in due {
                if out.len() >= limit {
                    break;
                }
                let found: Option<KeyValuePair> =
                    get_named(txn, key_table(scope_of(code)), "key", &reference)?;
                out.extend(found.filter(|kv| kv.is_expired(now)));
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl ApiKeyStore for RedbStore {
    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash.to_string();
        self.read(move |txn| get_named(txn, API_KEYS, "api key", &hash))
            .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.read(|txn| {
            let t = tx(txn.open_table(API_KEYS))?;
            let mut out: Vec<ApiKey> = Vec::new();
            for entry in tx(t.iter())? {
                let (k, v) = tx(entry)?;
                out.push(decode("api key", k.value(), v.value())?);
            }
            out.sort_by_key(|k| k.id);
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl RuleStateStore for RedbStore {
    async fn rule_overrides(&self) -> Result<Vec<(String, bool)>, StoreError> {
        self.overrides(RULE_STATE).await
    }

    async fn sensor_overrides(&self) -> Result<Vec<(String, bool)>, StoreError> {
        self.overrides(SENSOR_STATE).await
    }
}

impl RedbStore {
    /// Every entry of an enabled-flag table.
    async fn overrides(
        &self,
        table: TableDefinition<'static, &'static str, u8>,
    ) -> Result<Vec<(String, bool)>, StoreError> {
        self.read(move |txn| {
            let t = tx(txn.open_table(table))?;
            let mut out = Vec::new();
            for entry in tx(t.iter())? {
                let (k, v) = tx(entry)?;
                out.push((k.value().to_string(), v.value() != 0));
            }
            Ok(out)
        })
        .await
    }
}

/// Sets `path`'s permission bits to `mode` (Unix; elsewhere nothing).
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(test)]
mod full_disk_tests {
    use super::*;
    use jiff::Timestamp;
    use squall_core::{Action, ExecutionStatus};
    use std::sync::atomic::Ordering;

    /// An execution of about `bytes` bytes.
    fn execution_of(bytes: usize) -> Execution {
        let mut e = execution();
        e.parameters
            .insert("blob".into(), serde_json::Value::String("x".repeat(bytes)));
        e
    }

    fn execution() -> Execution {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"\0asm").unwrap();
        let action = Action::parse(
            "name: a\nrunner_type: wasm\nentry_point: a.wasm\n",
            "ops",
            dir.path(),
            &dir.path().join("a.yaml"),
        )
        .unwrap();
        Execution::new(&action, serde_json::Map::new(), "tester", Timestamp::now())
    }

    /// Issue 10, part 12, without root or a tmpfs: while the disk is full, every write fails
    /// with [`StoreError::Full`] and every read works; once space returns, writes succeed on
    /// the same store with no restart, and every acknowledged write is there, also after a
    /// reopen from the file.
    #[test]
    fn a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (store, full) = RedbStore::open_with_full_disk_switch(dir.path()).unwrap();
            let mut acknowledged = Vec::new();
            for _ in 0..20 {
                let e = execution();
                store.create(&e).await.unwrap();
                acknowledged.push(e);
            }
            full.store(true, Ordering::Release);
            // Each write needs the file to grow.
            for _ in 0..3 {
                let mut e = acknowledged[0].clone();
                e.transition(ExecutionStatus::Scheduled, Timestamp::now())
                    .unwrap();
                e.parameters.insert(
                    "blob".into(),
                    serde_json::Value::String("x".repeat(4 << 20)),
                );
                match store.update(&e).await {
                    Err(StoreError::Full(_)) => {}
                    other => panic!("a write on a full disk gave {other:?}"),
                }
                assert!(matches!(
                    store.create(&execution_of(4 << 20)).await,
                    Err(StoreError::Full(_))
                ));
                // Reads keep working, and show what was acknowledged.
                for e in &acknowledged {
                    assert_eq!(store.get(e.id).await.unwrap().as_ref(), Some(e));
                }
                let filter = ExecutionFilter {
                    limit: 100,
                    ..Default::default()
                };
                assert_eq!(store.count(&filter).await.unwrap(), 20);
            }
            full.store(false, Ordering::Release);
            for _ in 0..5 {
                let e = execution_of(1 << 20);
                store.create(&e).await.unwrap();
                acknowledged.push(e);
            }
            let filter = ExecutionFilter {
                limit: 100,
                ..Default::default()
            };
            assert_eq!(store.count(&filter).await.unwrap(), 25);
            drop(store);
            let store = RedbStore::open(dir.path()).unwrap();
            for e in &acknowledged {
                assert_eq!(store.get(e.id).await.unwrap().as_ref(), Some(e));
            }
        });
    }
}
