//! Bounded capture of a component's stdout and stderr.
//!
//! Unlike wasmtime's `MemoryOutputPipe`, a full buffer is not an error for the guest: writes
//! always succeed, the first `capacity` bytes are kept and the rest are only counted. A guest
//! that writes forever is stopped by its fuel or time limit, not by the host running out of
//! memory.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Largest write the guest is told it may make at once (bytes).
const WRITE_BUDGET: usize = 64 * 1024;

/// A clonable handle to one captured stream.
#[derive(Clone)]
pub(crate) struct CapturePipe {
    inner: Arc<Mutex<Captured>>,
}

struct Captured {
    kept: Vec<u8>,
    capacity: usize,
    dropped: u64,
}

impl CapturePipe {
    /// A pipe keeping at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        CapturePipe {
            inner: Arc::new(Mutex::new(Captured {
                kept: Vec::new(),
                capacity,
                dropped: 0,
            })),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = c.capacity.saturating_sub(c.kept.len());
        let keep = room.min(bytes.len());
        c.kept.extend_from_slice(&bytes[..keep]);
        c.dropped += (bytes.len() - keep) as u64;
    }

    /// The kept text (invalid UTF-8 replaced) and the number of bytes dropped.
    pub(crate) fn take(&self) -> (String, u64) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let kept = std::mem::take(&mut c.kept);
        (String::from_utf8_lossy(&kept).into_owned(), c.dropped)
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturePipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturePipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturePipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl AsyncWrite for CapturePipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_counts_the_rest() {
        let pipe = CapturePipe::new(5);
        let mut stream = pipe.p2_stream();
        stream.write(Bytes::from_static(b"hello world")).unwrap();
        stream.write(Bytes::from_static(b"!!")).unwrap();
        assert_eq!(stream.check_write().unwrap(), WRITE_BUDGET);
        assert_eq!(pipe.take(), ("hello".to_string(), 8));
    }
}
