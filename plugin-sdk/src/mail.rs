//! Mail through the operator's SMTP relay, through the host's `squall:plugin/mail` import (what
//! StackStorm's `core.sendmail` does with the machine's `sendmail`).
//!
//! Denied unless the operator granted the relay (`[smtp] server`) to the action's pack
//! (`[packs.<pack>] smtp_allow = ["mail.example.com:587"]` in `squall.toml`).

use crate::bindings::squall::plugin::mail as wit;

pub use wit::Message;

/// Delivers `message` to the relay.
///
/// # Errors
/// The host's message: not granted (naming the grant to add), no relay configured, a bad
/// address, the relay's refusal, a timeout, the execution's budget (100 messages) used up.
pub fn send(message: &Message) -> Result<(), String> {
    wit::send(message)
}
