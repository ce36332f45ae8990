//! A batch: writes to several aggregates committed in one transaction, all or none.
//!
//! Rule processing needs this: the trigger instance's new status, its rule enforcements and the
//! executions they request must become durable together, or a crash could request an
//! execution twice (or never).

use squall_core::apikey::ApiKey;
use squall_core::datastore::{KeyRef, KeyScope, KeyValuePair};
use squall_core::enforcement::RuleEnforcement;
use squall_core::workflow::WorkflowState;
use squall_core::{Execution, ExecutionId, TriggerInstance};

/// One record write; fields are what the indexes need plus the record as JSON.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Execution {
        create: bool,
        id: u128,
        action: String,
        parent: Option<String>,
        status: &'static str,
        record: Vec<u8>,
    },
    Workflow {
        id: u128,
        record: Vec<u8>,
    },
    TriggerInstance {
        create: bool,
        id: u128,
        trigger: String,
        status: &'static str,
        record: Vec<u8>,
    },
    Enforcement {
        id: u128,
        rule: String,
        record: Vec<u8>,
    },
    PutKey {
        scope: KeyScope,
        reference: String,
        /// Unix milliseconds, for the expiry index.
        expires: Option<i64>,
        record: Vec<u8>,
    },
    DeleteKey {
        scope: KeyScope,
        reference: String,
    },
    SweepKeys {
        now: jiff::Timestamp,
    },
    PutApiKey {
        hash: String,
        record: Vec<u8>,
    },
    RuleEnabled {
        rule: String,
        enabled: bool,
    },
    SensorEnabled {
        sensor: String,
        enabled: bool,
    },
}

impl Write {
    /// The record's JSON, for writes that carry one.
    pub(crate) fn record(&self) -> Option<&[u8]> {
        match self {
            Write::Execution { record, .. }
            | Write::Workflow { record, .. }
            | Write::TriggerInstance { record, .. }
            | Write::Enforcement { record, .. }
            | Write::PutKey { record, .. }
            | Write::PutApiKey { record, .. } => Some(record),
            _ => None,
        }
    }

    /// What is written, for messages: `execution 0195…`, `key system:foo`, ...
    pub(crate) fn describe(&self) -> String {
        match self {
            Write::Execution { id, .. } => format!("execution {}", ExecutionId::from_u128(*id)),
            Write::Workflow { id, .. } => {
                format!("workflow state {}", ExecutionId::from_u128(*id))
            }
            Write::TriggerInstance { id, .. } => {
                format!("trigger instance {}", ExecutionId::from_u128(*id))
            }
            Write::Enforcement { id, .. } => {
                format!("rule enforcement {}", ExecutionId::from_u128(*id))
            }
            Write::PutKey { reference, .. } => format!("key {reference}"),
            Write::PutApiKey { .. } => "api key".into(),
            other => format!("{other:?}"),
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialize")
}

/// Writes to commit together (see [`crate::BatchStore::commit`]).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub(crate) writes: Vec<Write>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Whether nothing is in it.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Stores a new execution (refused if the id exists).
    pub fn create_execution(&mut self, e: &Execution) -> &mut Self {
        self.execution(e, true)
    }

    /// Replaces a stored execution (refused if the id is not stored).
    pub fn update_execution(&mut self, e: &Execution) -> &mut Self {
        self.execution(e, false)
    }

    fn execution(&mut self, e: &Execution, create: bool) -> &mut Self {
        self.writes.push(Write::Execution {
            create,
            id: e.id.as_u128(),
            action: e.action.reference.to_string(),
            parent: e.parent.map(|p| p.to_string()),
            status: e.status.as_str(),
            record: json(e),
        });
        self
    }

    /// Stores (or replaces) the conductor state of the workflow execution `id`.
    pub fn put_workflow(&mut self, id: ExecutionId, state: &WorkflowState) -> &mut Self {
        self.put_workflow_json(id, json(state))
    }

    /// [`Batch::put_workflow`] with the state already serialized (`serde_json::to_vec` of a
    /// [`WorkflowState`]), for a caller that measured it.
    pub fn put_workflow_json(&mut self, id: ExecutionId, record: Vec<u8>) -> &mut Self {
        self.writes.push(Write::Workflow {
            id: id.as_u128(),
            record,
        });
        self
    }

    /// Stores a new trigger instance (refused if the id exists).
    pub fn create_trigger_instance(&mut self, t: &TriggerInstance) -> &mut Self {
        self.trigger_instance(t, true)
    }

    /// Replaces a stored trigger instance (refused if the id is not stored).
    pub fn update_trigger_instance(&mut self, t: &TriggerInstance) -> &mut Self {
        self.trigger_instance(t, false)
    }

    fn trigger_instance(&mut self, t: &TriggerInstance, create: bool) -> &mut Self {
        self.writes.push(Write::TriggerInstance {
            create,
            id: t.id.as_u128(),
            trigger: t.trigger.to_string(),
            status: t.status.as_str(),
            record: json(t),
        });
        self
    }

    /// Stores a rule enforcement.
    pub fn create_enforcement(&mut self, r: &RuleEnforcement) -> &mut Self {
        self.writes.push(Write::Enforcement {
            id: r.id.as_u128(),
            rule: r.rule.reference.to_string(),
            record: json(r),
        });
        self
    }

    /// Sets a datastore key (creating or replacing it): the key is `kv`'s scope, user and name
    /// ([`KeyValuePair::key_ref`]); the record is stored as given, so a secret's value must
    /// already be its ciphertext.
    pub fn put_key(&mut self, kv: &KeyValuePair) -> &mut Self {
        self.writes.push(Write::PutKey {
            scope: kv.scope,
            reference: kv.key_ref().reference(),
            expires: kv.expire_timestamp.map(|t| t.as_millisecond()),
            record: json(kv),
        });
        self
    }

    /// Deletes a datastore key (no effect if absent).
    pub fn delete_key(&mut self, key: &KeyRef) -> &mut Self {
        self.writes.push(Write::DeleteKey {
            scope: key.scope,
            reference: key.reference(),
        });
        self
    }

    /// Deletes every datastore key expired at `now` (those set again meanwhile stay): the TTL
    /// sweep, race-free against writers since it is decided inside the commit.
    pub fn delete_expired_keys(&mut self, now: jiff::Timestamp) -> &mut Self {
        self.writes.push(Write::SweepKeys { now });
        self
    }

    /// Stores an API key (by its hash).
    pub fn put_api_key(&mut self, key: &ApiKey) -> &mut Self {
        self.writes.push(Write::PutApiKey {
            hash: key.key_hash.clone(),
            record: json(key),
        });
        self
    }

    /// Records that a sensor is enabled or disabled, overriding its YAML.
    pub fn set_sensor_enabled(&mut self, sensor: &str, enabled: bool) -> &mut Self {
        self.writes.push(Write::SensorEnabled {
            sensor: sensor.to_string(),
            enabled,
        });
        self
    }

    /// Records that a rule is enabled or disabled, overriding its YAML.
    pub fn set_rule_enabled(&mut self, rule: &str, enabled: bool) -> &mut Self {
        self.writes.push(Write::RuleEnabled {
            rule: rule.to_string(),
            enabled,
        });
        self
    }
}
