//! Rule enforcements: the record that a rule matched a trigger instance and what it launched —
//! or why it did not, as StackStorm's rule enforcement API object.

use crate::execution::ExecutionId;
use crate::reference::Ref;
use crate::trigger::TriggerInstanceId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

crate::id::uuid_id!(
    /// A rule enforcement id (UUIDv7, time-sortable).
    EnforcementId
);

/// `succeeded` (an execution was requested) or `failed` (see `failure_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnforcementStatus {
    /// The action's execution was requested.
    Succeeded,
    /// The rule could not launch its action (criteria error, parameters that do not render or
    /// validate, a disabled or missing action).
    Failed,
}

/// The rule an enforcement belongs to, as it was then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// The rule's ref.
    #[serde(rename = "ref")]
    pub reference: Ref,
}

/// One enforcement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEnforcement {
    /// Its id.
    pub id: EnforcementId,
    /// The rule.
    pub rule: RuleInfo,
    /// The trigger instance that matched.
    pub trigger_instance_id: TriggerInstanceId,
    /// The execution requested, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<ExecutionId>,
    /// Why no execution was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// `succeeded` or `failed`.
    pub status: EnforcementStatus,
    /// When.
    pub enforced_at: Timestamp,
}

impl RuleEnforcement {
    /// An enforcement that requested `execution`.
    pub fn launched(rule: &Ref, instance: TriggerInstanceId, execution: ExecutionId) -> Self {
        RuleEnforcement {
            id: EnforcementId::new(),
            rule: RuleInfo {
                reference: rule.clone(),
            },
            trigger_instance_id: instance,
            execution_id: Some(execution),
            failure_reason: None,
            status: EnforcementStatus::Succeeded,
            enforced_at: Timestamp::now(),
        }
    }

    /// An enforcement that failed for `reason`.
    pub fn failed(rule: &Ref, instance: TriggerInstanceId, reason: impl Into<String>) -> Self {
        RuleEnforcement {
            id: EnforcementId::new(),
            rule: RuleInfo {
                reference: rule.clone(),
            },
            trigger_instance_id: instance,
            execution_id: None,
            failure_reason: Some(reason.into()),
            status: EnforcementStatus::Failed,
            enforced_at: Timestamp::now(),
        }
    }
}
