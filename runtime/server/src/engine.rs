//! The rules engine: matches a trigger instance against the rules listening to its trigger and
//! records what each match launched, as StackStorm's rules engine does.
//!
//! For one instance: standard rules are checked first, then backstop rules only if no standard
//! rule matched. Each matching rule renders its action parameters (Jinja over `trigger` and
//! `st2kv.system`, converted to the declared types) and requests an execution. A criteria error
//! or parameters that do not render or validate give a `failed` enforcement with the reason. The
//! instance's new status, every enforcement and every execution are committed in one
//! transaction, so a crash never loses or doubles a launch.

use crate::{Bus, Runner, Scheduler};
use serde_json::{Map, Value, json};
use squall_core::enforcement::RuleEnforcement;
use squall_core::rule::{Rule, RuleType};
use squall_core::template::{self, Context};
use squall_core::trigger::TriggerInstanceStatus;
use squall_core::{Execution, TriggerInstance};
use squall_store::{Batch, StoreError};

/// The user rule-launched executions run as (StackStorm's system user is `stanley`).
pub const SYSTEM_USER: &str = "squall";

/// What matching one instance decided.
struct Plan {
    enforcements: Vec<RuleEnforcement>,
    executions: Vec<Execution>,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    runner: Runner,
    scheduler: Scheduler,
}

impl Engine {
    /// An engine requesting executions through `runner` and queuing them on `scheduler`.
    pub fn new(runner: Runner, scheduler: Scheduler) -> Engine {
        Engine { runner, scheduler }
    }

    fn bus(&self) -> &Bus {
        self.runner.bus()
    }

    /// Processes a stored, pending instance: evaluate, commit, announce, queue.
    ///
    /// # Errors
    /// Store failures (the instance then stays pending and is processed again at the next
    /// start).
    pub async fn process(
        &self,
        mut instance: TriggerInstance,
    ) -> Result<TriggerInstance, StoreError> {
        let runner = self.runner.clone();
        let matched = instance.clone();
        let plan = tokio::task::spawn_blocking(move || plan(&runner, &matched))
            .await
            .unwrap_or_else(|e| panic!("rule evaluation panicked: {e}"));
        instance.status = TriggerInstanceStatus::Processed;
        let mut batch = Batch::new();
        batch.update_trigger_instance(&instance);
        for e in &plan.executions {
            batch.create_execution(e);
        }
        for r in &plan.enforcements {
            batch.create_enforcement(r);
        }
        self.runner.store().commit(batch).await?;
        self.bus()
            .publish("st2.trigger_instance__update", &instance);
        for r in &plan.enforcements {
            self.bus().publish("st2.rule_enforcement__create", r);
        }
        for e in plan.executions {
            self.runner.announce_created(&e);
            self.scheduler.submit(e);
        }
        Ok(instance)
    }
}

fn plan(runner: &Runner, instance: &TriggerInstance) -> Plan {
    let registry = runner.registry().clone();
    // Rule evaluation runs on a blocking thread: the datastore is read synchronously. Each
    // rule's templates see secrets only as its pack's grants allow.
    let mut ctx = Context::trigger(&instance.payload);
    // One packs version for matching the instance: its rules, and the actions whose parameter
    // types their rendered values are coerced to (each execution is then requested, and
    // pinned, on the version loaded at that moment).
    let packs = registry.packs();
    let rules: Vec<&Rule> = registry
        .rules_in(&packs, &instance.trigger, &instance.trigger_parameters)
        .collect();
    let mut plan = Plan {
        enforcements: Vec::new(),
        executions: Vec::new(),
    };
    let mut standard_matched = false;
    for pass in [RuleType::Standard, RuleType::Backstop] {
        if pass == RuleType::Backstop && standard_matched {
            break;
        }
        for rule in rules.iter().filter(|r| r.kind == pass) {
            ctx.set_keys(runner.key_lookup_for(SYSTEM_USER, rule.reference.pack()));
            match rule.criteria().matches(&instance.payload, &ctx) {
                Ok(false) => continue,
                Ok(true) => {
                    if pass == RuleType::Standard {
                        standard_matched = true;
                    }
                    match launch(runner, &packs, rule, instance, &ctx) {
                        Ok(execution) => {
                            plan.enforcements.push(RuleEnforcement::launched(
                                &rule.reference,
                                instance.id,
                                execution.id,
                            ));
                            plan.executions.push(execution);
                        }
                        Err(reason) => {
                            tracing::warn!(rule.ref = %rule.reference, %reason, "rule matched but could not launch");
                            plan.enforcements.push(RuleEnforcement::failed(
                                &rule.reference,
                                instance.id,
                                reason,
                            ));
                        }
                    }
                }
                Err(e) => {
                    tracing::info!(rule.ref = %rule.reference, error = %e, "criteria error (no match)");
                    plan.enforcements.push(RuleEnforcement::failed(
                        &rule.reference,
                        instance.id,
                        e.to_string(),
                    ));
                }
            }
        }
    }
    plan
}

/// Renders the rule's action parameters and builds the execution it requests.
fn launch(
    runner: &Runner,
    packs: &squall_core::PackSet,
    rule: &Rule,
    instance: &TriggerInstance,
    ctx: &Context,
) -> Result<Execution, String> {
    let action = packs
        .action(&rule.action.reference)
        .ok_or_else(|| format!("action {} not found", rule.action.reference))?;
    let mut params = Map::new();
    for (name, value) in &rule.action.parameters {
        let rendered = template::render_value(value, ctx)
            .map_err(|e| format!("failed to render parameter {name:?}: {e}"))?;
        params.insert(name.clone(), action.parameters.coerce(name, rendered));
    }
    let mut context = Map::new();
    context.insert("rule".into(), json!({"ref": rule.reference.to_string()}));
    context.insert(
        "trigger_instance".into(),
        json!({"id": instance.id.to_string(), "trigger": instance.trigger.to_string()}),
    );
    runner
        .new_execution(&rule.action.reference, &params, SYSTEM_USER, context)
        .map_err(|e| e.to_string())
}

/// The payload of `core.st2.generic.actiontrigger` for a completed execution (StackStorm's
/// fields; secret parameters masked).
pub fn action_trigger_payload(e: &Execution) -> Value {
    let shown = e.masked();
    json!({
        "execution_id": e.id.to_string(),
        "status": e.status.as_str(),
        "start_timestamp": e.start_timestamp.to_string(),
        "action_name": e.action.name,
        "action_ref": e.action.reference.to_string(),
        "runner_ref": e.action.runner_type.name(),
        "parameters": Value::Object(shown.parameters),
        "result": e.result,
    })
}
