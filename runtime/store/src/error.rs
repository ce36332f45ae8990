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
    /// The store's writer has stopped (the store is shutting down).
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// Whether the same call may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Transaction(_))
    }

    pub(crate) fn transaction(e: impl Into<redb::Error>) -> Self {
        StoreError::Transaction(Arc::new(e.into()))
    }
}
