//! [`RedbStore`]: the embedded store, one redb file, with a group-committing writer thread.
//!
//! Tables (keys are execution ids as big-endian `u128`, so key order is creation order):
//!
//! | table | key | value |
//! |---|---|---|
//! | `executions` | id | the record as JSON |
//! | `execution_status` | id | its status name |
//! | `executions_by_action` | (action ref, id) | () |
//! | `executions_by_status` | (status name, id) | () |

use crate::{ExecutionFilter, ExecutionStore, StoreError};
use async_trait::async_trait;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use squall_core::{Execution, ExecutionId};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

const EXECUTIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("executions");
const STATUS: TableDefinition<u128, &str> = TableDefinition::new("execution_status");
const BY_ACTION: TableDefinition<(&str, u128), ()> = TableDefinition::new("executions_by_action");
const BY_STATUS: TableDefinition<(&str, u128), ()> = TableDefinition::new("executions_by_status");

/// Writes waiting when a commit starts are committed with it, up to this many.
const MAX_BATCH: usize = 1024;

/// The file name of the store inside the data directory.
pub const FILE_NAME: &str = "squall.redb";

/// The embedded store: `<data-dir>/squall.redb`. Cheap to clone; the writer thread stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    writes: mpsc::UnboundedSender<Op>,
    path: PathBuf,
}

enum Kind {
    Create,
    Update,
}

struct Op {
    kind: Kind,
    id: ExecutionId,
    action: String,
    status: &'static str,
    record: Vec<u8>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

impl RedbStore {
    /// Opens (creating if needed) the store in `data_dir`, creating the directory too.
    ///
    /// # Errors
    /// [`StoreError::DataDir`] or [`StoreError::Open`] naming the path.
    pub fn open(data_dir: &Path) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source: Arc::new(e),
        })?;
        let path = data_dir.join(FILE_NAME);
        let db = Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(&path)
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                source: Arc::new(e),
            })?;
        let txn = db.begin_write().map_err(StoreError::transaction)?;
        {
            txn.open_table(EXECUTIONS)
                .map_err(StoreError::transaction)?;
            txn.open_table(STATUS).map_err(StoreError::transaction)?;
            txn.open_table(BY_ACTION).map_err(StoreError::transaction)?;
            txn.open_table(BY_STATUS).map_err(StoreError::transaction)?;
        }
        txn.commit().map_err(StoreError::transaction)?;
        let db = Arc::new(db);
        let (writes, queue) = mpsc::unbounded_channel();
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("squall-store-writer".into())
            .spawn(move || writer(writer_db, queue))
            .map_err(|e| StoreError::DataDir {
                path: data_dir.to_path_buf(),
                source: Arc::new(e),
            })?;
        Ok(RedbStore { db, writes, path })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, kind: Kind, execution: &Execution) -> Result<(), StoreError> {
        let record = serde_json::to_vec(execution).expect("execution records always serialize");
        let (reply, answer) = oneshot::channel();
        let op = Op {
            kind,
            id: execution.id,
            action: execution.action.reference.to_string(),
            status: execution.status.as_str(),
            record,
            reply,
        };
        self.writes.send(op).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|_| StoreError::Closed)?
    }
}

/// The writer thread: takes every waiting write, applies them in one transaction, commits,
/// then answers each. Per-write refusals (duplicate create, update of a missing id) are
/// answered without failing the rest of the batch.
fn writer(db: Arc<Database>, mut queue: mpsc::UnboundedReceiver<Op>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let outcome = db
            .begin_write()
            .map_err(StoreError::transaction)
            .and_then(|txn| {
                let results = batch
                    .iter()
                    .map(|op| apply(&txn, op))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                txn.commit().map_err(StoreError::transaction)?;
                Ok(results)
            });
        match outcome {
            Ok(results) => {
                for (op, result) in batch.into_iter().zip(results) {
                    let _ = op.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "store commit failed");
                for op in batch {
                    let _ = op.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Applies one write. The outer `Result` is a transaction failure (fails the batch); the inner
/// one is this write's own refusal.
fn apply(txn: &WriteTransaction, op: &Op) -> Result<Result<(), StoreError>, StoreError> {
    let key = op.id.as_u128();
    let mut status = txn.open_table(STATUS).map_err(StoreError::transaction)?;
    let old = status
        .get(key)
        .map_err(StoreError::transaction)?
        .map(|s| s.value().to_string());
    let mut by_status = txn.open_table(BY_STATUS).map_err(StoreError::transaction)?;
    match (&op.kind, old) {
        (Kind::Create, Some(_)) => return Ok(Err(StoreError::AlreadyExists(op.id))),
        (Kind::Update, None) => return Ok(Err(StoreError::NotFound(op.id))),
        (Kind::Create, None) => {
            let mut by_action = txn.open_table(BY_ACTION).map_err(StoreError::transaction)?;
            by_action
                .insert((op.action.as_str(), key), ())
                .map_err(StoreError::transaction)?;
        }
        (Kind::Update, Some(old)) => {
            by_status
                .remove((old.as_str(), key))
                .map_err(StoreError::transaction)?;
        }
    }
    by_status
        .insert((op.status, key), ())
        .map_err(StoreError::transaction)?;
    status
        .insert(key, op.status)
        .map_err(StoreError::transaction)?;
    let mut records = txn
        .open_table(EXECUTIONS)
        .map_err(StoreError::transaction)?;
    records
        .insert(key, op.record.as_slice())
        .map_err(StoreError::transaction)?;
    Ok(Ok(()))
}

fn decode(key: u128, bytes: &[u8]) -> Result<Execution, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        id: ExecutionId::from_u128(key),
        message: e.to_string(),
    })
}

fn list_blocking(db: &Database, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
    let txn = db.begin_read().map_err(StoreError::transaction)?;
    let records = txn
        .open_table(EXECUTIONS)
        .map_err(StoreError::transaction)?;
    let status = txn.open_table(STATUS).map_err(StoreError::transaction)?;
    let mut ids: Vec<u128> = Vec::with_capacity(filter.limit.min(1024));
    let mut skipped = 0;
    let mut take = |key: u128| -> Result<bool, StoreError> {
        if let (Some(want), Some(_)) = (filter.status, &filter.action) {
            let st = status.get(key).map_err(StoreError::transaction)?;
            if st.map(|s| s.value() != want.as_str()).unwrap_or(true) {
                return Ok(true);
            }
        }
        if skipped < filter.offset {
            skipped += 1;
        } else {
            ids.push(key);
        }
        Ok(ids.len() < filter.limit)
    };
    if filter.limit > 0 {
        match (&filter.action, filter.status) {
            (Some(action), _) => {
                let index = txn.open_table(BY_ACTION).map_err(StoreError::transaction)?;
                let a = action.to_string();
                let range = index
                    .range((a.as_str(), 0u128)..=(a.as_str(), u128::MAX))
                    .map_err(StoreError::transaction)?;
                for entry in range.rev() {
                    let (k, _) = entry.map_err(StoreError::transaction)?;
                    if !take(k.value().1)? {
                        break;
                    }
                }
            }
            (None, Some(st)) => {
                let index = txn.open_table(BY_STATUS).map_err(StoreError::transaction)?;
                let range = index
                    .range((st.as_str(), 0u128)..=(st.as_str(), u128::MAX))
                    .map_err(StoreError::transaction)?;
                for entry in range.rev() {
                    let (k, _) = entry.map_err(StoreError::transaction)?;
                    if !take(k.value().1)? {
                        break;
                    }
                }
            }
            (None, None) => {
                for entry in records.iter().map_err(StoreError::transaction)?.rev() {
                    let (k, _) = entry.map_err(StoreError::transaction)?;
                    if !take(k.value())? {
                        break;
                    }
                }
            }
        }
    }
    ids.into_iter()
        .filter_map(|key| match records.get(key) {
            Ok(Some(v)) => Some(decode(key, v.value())),
            Ok(None) => None,
            Err(e) => Some(Err(StoreError::transaction(e))),
        })
        .collect()
}

#[async_trait]
impl ExecutionStore for RedbStore {
    async fn create(&self, execution: &Execution) -> Result<(), StoreError> {
        self.write(Kind::Create, execution).await
    }

    async fn update(&self, execution: &Execution) -> Result<(), StoreError> {
        self.write(Kind::Update, execution).await
    }

    async fn get(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        self.read(move |db| {
            let txn = db.begin_read().map_err(StoreError::transaction)?;
            let records = txn
                .open_table(EXECUTIONS)
                .map_err(StoreError::transaction)?;
            let key = id.as_u128();
            match records.get(key).map_err(StoreError::transaction)? {
                Some(v) => decode(key, v.value()).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        let filter = filter.clone();
        self.read(move |db| list_blocking(db, &filter)).await
    }
}

impl RedbStore {
    /// How many execution records are stored.
    ///
    /// # Errors
    /// Transaction errors.
    pub async fn count(&self) -> Result<u64, StoreError> {
        self.read(|db| {
            let txn = db.begin_read().map_err(StoreError::transaction)?;
            let records = txn
                .open_table(EXECUTIONS)
                .map_err(StoreError::transaction)?;
            records.len().map_err(StoreError::transaction)
        })
        .await
    }
}
