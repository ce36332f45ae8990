//! Counting work accepted and not started, for `[server] max_backlog`.
//!
//! A [`Backlog`] counts live [`Ticket`]s: each queued item carries one, and the count goes down
//! when it is dropped — taken off the queue, refused, or lost with a task that panicked — so
//! the count cannot drift from what is really waiting.
//!
//! Memory that waiting work held is given back to the system once the server is quiet again
//! ([`give_back_when_idle`]): glibc keeps freed heap pages, and a server that once absorbed a
//! burst would otherwise stay at its peak size for good.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Items that passed through any backlog since the last time memory was given back before it
/// is given back again: 256.
pub(crate) const TRIM_AFTER: usize = 256;

/// How often the server looks whether it is idle after a burst: every 5 s.
pub(crate) const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Fewer items than this entering the backlogs in a [`TRIM_EVERY`] period is quiet: 8 (a
/// timer or sensor firing now and then does not keep memory from coming back).
pub(crate) const QUIET_BELOW: usize = 8;

/// Tickets ever issued, by every backlog of the process.
static ISSUED: AtomicUsize = AtomicUsize::new(0);

/// A count of waiting items. Cheap to clone (the clones share the count).
#[derive(Debug, Clone, Default)]
pub(crate) struct Backlog(Arc<AtomicUsize>);

impl Backlog {
    /// Counts one more item until the returned ticket is dropped.
    pub(crate) fn ticket(&self) -> Ticket {
        self.0.fetch_add(1, Ordering::Relaxed);
        ISSUED.fetch_add(1, Ordering::Relaxed);
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

/// Gives freed heap memory back to the system once the server is quiet after a burst: at a
/// [`TRIM_EVERY`] tick when fewer than [`QUIET_BELOW`] items entered any backlog since the
/// previous tick, nothing is
/// waiting (`waiting()` is 0), and at least [`TRIM_AFTER`] items went through since the last
/// time. Never while work arrives: giving memory back holds the allocator's locks, and under
/// load that stalls every thread for as long as it takes. Runs until `stop`.
pub(crate) async fn give_back_when_idle(
    waiting: impl Fn() -> usize,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut trimmed_at = ISSUED.load(Ordering::Relaxed);
    let mut previous = trimmed_at;
    loop {
        tokio::select! {
            () = tokio::time::sleep(TRIM_EVERY) => {}
            () = stop.cancelled() => return,
        }
        let issued = ISSUED.load(Ordering::Relaxed);
        let quiet = issued.wrapping_sub(previous) < QUIET_BELOW;
        previous = issued;
        if quiet && issued.wrapping_sub(trimmed_at) >= TRIM_AFTER && waiting() == 0 {
            trimmed_at = issued;
            let _ = tokio::task::spawn_blocking(give_back_memory).await;
        }
    }
}

/// Returns the allocator's free memory to the system (it takes milliseconds on a large heap:
/// run it off the async workers). Only glibc needs it; elsewhere it does nothing.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only releases free memory of the allocator's own arenas, under
        // their locks; it touches no memory the program holds.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released, "idle after a burst: freed memory given back");
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
