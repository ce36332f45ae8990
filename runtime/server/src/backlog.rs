//! Counting work accepted and not started, for `[server] max_backlog`.
//!
//! A [`Backlog`] counts live [`Ticket`]s: each queued item carries one, and the count goes down
//! when it is dropped — taken off the queue, refused, or lost with a task that panicked — so
//! the count cannot drift from what is really waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A count of waiting items. Cheap to clone (the clones share the count).
#[derive(Debug, Clone, Default)]
pub(crate) struct Backlog(Arc<AtomicUsize>);

impl Backlog {
    /// Counts one more item until the returned ticket is dropped.
    pub(crate) fn ticket(&self) -> Ticket {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ticket(self.0.clone())
    }

    /// Items waiting now.
    pub(crate) fn len(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One waiting item of a [`Backlog`].
#[derive(Debug)]
pub(crate) struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_follows_live_tickets() {
        let backlog = Backlog::default();
        let a = backlog.ticket();
        let b = backlog.clone().ticket();
        assert_eq!(backlog.len(), 2);
        drop(a);
        assert_eq!(backlog.len(), 1);
        let lost = std::thread::spawn(move || {
            let _b = b;
            panic!("a task that panics still gives its ticket back");
        });
        assert!(lost.join().is_err());
        assert_eq!(backlog.len(), 0);
    }
}
