//! Log lines into the execution record through the host's `squall:plugin/log` import.
//!
//! Lines are kept in the execution's `output.log`, bounded by the action's `max_output` (default
//! 1 MiB of text); past that the host counts dropped lines instead of storing them. Plain
//! `println!`/`eprintln!` also work: they land in `output.stdout` / `output.stderr`.

use crate::bindings::squall::plugin::log as wit;

pub use wit::Level;

/// Appends one line at `level`.
pub fn log(level: Level, message: impl AsRef<str>) {
    wit::log(level, message.as_ref());
}

/// Appends one `trace` line.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message);
}

/// Appends one `debug` line.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Appends one `info` line.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Appends one `warn` line.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Appends one `error` line.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
