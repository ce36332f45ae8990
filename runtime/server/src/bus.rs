//! The event bus: every state change, published for the stream, after it is durable.
//!
//! Event names are StackStorm's stream names: `st2.execution__create`,
//! `st2.execution__update`, `st2.trigger_instance__create`, `st2.trigger_instance__update`,
//! `st2.rule_enforcement__create`, and `st2.announcement__<route>` (the announcement runner's,
//! as StackStorm's `st2.announcement` exchange with the route as its routing key). Delivery is
//! best effort: a subscriber that falls more than [`CAPACITY`] events behind loses the oldest
//! (the store has everything).

use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use tokio::sync::broadcast;

/// Events buffered per subscriber.
pub const CAPACITY: usize = 4096;

/// One event: its name and the record as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// e.g. `st2.execution__update`.
    pub name: Cow<'static, str>,
    /// The record after the change.
    pub data: Value,
}

/// The bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl Bus {
    /// A bus with no subscribers.
    pub fn new() -> Bus {
        let (tx, _) = broadcast::channel(CAPACITY);
        Bus { tx }
    }

    /// Publishes `record` as event `name` (dropped when nobody listens).
    pub fn publish<T: Serialize>(&self, name: impl Into<Cow<'static, str>>, record: &T) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let data = serde_json::to_value(record).expect("records serialize");
        let _ = self.tx.send(Event {
            name: name.into(),
            data,
        });
    }

    /// A new subscription, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
