//! Process liveness for the embedded store: each process that opens the store holds an
//! exclusive lock on `<data-dir>/processes/<id>.lock` for its lifetime. The operating system
//! releases the lock when the process dies — also on `kill -9` — so "can I lock it?" answers
//! "is that process gone?" without trusting pids.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// This process's lock.
pub(crate) struct ProcessLock {
    id: String,
    dir: PathBuf,
    _file: File,
}

impl ProcessLock {
    /// Registers this process in `data_dir`.
    pub(crate) fn acquire(data_dir: &Path) -> std::io::Result<ProcessLock> {
        let dir = data_dir.join("processes");
        std::fs::create_dir_all(&dir)?;
        let id = uuid::Uuid::now_v7().to_string();
        let file = File::create(dir.join(format!("{id}.lock")))?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => std::io::Error::other("fresh process lock is already held"),
        })?;
        Ok(ProcessLock {
            id,
            dir,
            _file: file,
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Whether process `id` still holds its lock. A dead process's lock file is removed.
    pub(crate) fn is_alive(&self, id: &str) -> bool {
        if id == self.id {
            return true;
        }
        // Ids come from records: only a UUID may name a file here.
        if uuid::Uuid::parse_str(id).is_err() {
            return false;
        }
        let path = self.dir.join(format!("{id}.lock"));
        let Ok(file) = File::open(&path) else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(_)) => false,
        }
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(format!("{}.lock", self.id)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_and_a_released_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let me = ProcessLock::acquire(dir.path()).unwrap();
        let other = ProcessLock::acquire(dir.path()).unwrap();
        assert!(me.is_alive(me.id()));
        // Within one process, a second handle on the same file would succeed to lock on some
        // platforms; what matters is the file disappearing when the owner goes.
        let other_id = other.id().to_string();
        drop(other);
        assert!(!me.is_alive(&other_id));
        assert!(!me.is_alive("not-a-uuid/../../etc"));
        assert!(!me.is_alive(&uuid::Uuid::now_v7().to_string()));
    }
}
