//! Storage errors.

use std::path::PathBuf;
use std::sync::Arc;

/// Why a storage operation failed. [`StoreError::is_retryable`] says whether trying again can
/// help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open store {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: Arc<redb::DatabaseError>,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A read or write transaction failed (I/O, or the file is locked by an incompatible
    /// process). Retrying may help.
    #[error("store transaction failed: {0}")]
    Transaction(#[source] Arc<redb::Error>),
    /// A create for an id that is already stored, e.g. `execution 0195… already exists`.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// An update for an id that is not stored, e.g. `execution 0195… not found`.
    #[error("{0} not found")]
    NotFound(String),
    /// A stored record does not decode (written by an incompatible version, or damaged).
    #[error("stored {record} does not decode: {message}")]
    Corrupt {
        /// The record, e.g. `execution 0195…`.
        record: String,
        /// The decoder's message.
        message: String,
    },
    /// The record nests arrays and objects too deep to be read back (serde_json reads 128
    /// levels); it was refused, like a failed check, and nothing of its batch written.
    #[error("{0} refused: nested too deep to be stored and read back")]
    TooDeep(String),
    /// The disk is full (`ENOSPC`, `EDQUOT`): the write was refused and nothing of it is
    /// acknowledged. Reads keep working; writes succeed again once space returns.
    #[error("no space left for the store ({0}): writes are refused until space returns")]
    Full(String),
    /// The store hit an I/O error and is being reopened (reads and writes may fail for a
    /// moment). Retrying helps.
    #[error("the store is recovering from an I/O error ({0}); retry shortly")]
    Unavailable(String),
    /// The store's writer has stopped (the store is shutting down).
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// Whether the same call may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Transaction(_) | StoreError::Full(_) | StoreError::Unavailable(_)
        )
    }

    /// The I/O failure behind a transaction error, classified: disk full becomes
    /// [`StoreError::Full`], any other I/O error (or redb's "previous I/O error", which holds
    /// until the database is reopened) [`StoreError::Unavailable`]. `None`: not an I/O failure.
    pub(crate) fn io_failure(&self) -> Option<StoreError> {
        let StoreError::Transaction(e) = self else {
            return None;
        };
        match e.as_ref() {
            redb::Error::Io(io) if is_disk_full(io) => Some(StoreError::Full(io.to_string())),
            redb::Error::Io(io) => Some(StoreError::Unavailable(io.to_string())),
            redb::Error::PreviousIo => {
                Some(StoreError::Unavailable("a previous write failed".into()))
            }
            _ => None,
        }
    }

    pub(crate) fn transaction(e: impl Into<redb::Error>) -> Self {
        StoreError::Transaction(Arc::new(e.into()))
    }
}

/// Whether `e` says the disk (or the user's quota) is full.
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    // ENOSPC 28, EDQUOT 122 on Linux.
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28 | 122))
}
