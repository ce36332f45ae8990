//! Action policies at run time (see [`squall_core::policy`] for the YAML):
//!
//! - **Concurrency** (`action.concurrency`, `action.concurrency.attr`): [`Slots`] counts, per
//!   policy (and per value of its `attributes`), the executions this process admitted and that
//!   have not completed. The scheduler's dispatcher asks [`Slots::admit`] before it hands an
//!   execution to a runner; the check and the taking of a slot happen under one lock, so a
//!   burst of simultaneous requests cannot overshoot the threshold. Over the threshold, a
//!   `delay` policy parks the execution (recorded `delayed`) in a first-come queue of the slot;
//!   a freed slot is handed straight to the oldest waiter, which is then requested again
//!   (StackStorm's `delayed` → `requested`). A `cancel` policy ends it `canceled` with
//!   `result.error` naming the policy.
//! - **Retry** (`action.retry`): [`retry_of`] builds the next execution of one that ended
//!   `failed` or `timeout`; the runner commits it together with the original's final status
//!   (see [`crate::Runner::finish`]), so a crash can neither lose nor duplicate it.
//!
//! Scope and limits, by design:
//! - Counts are per server process and live in memory: at a restart, recovery re-requests
//!   every unfinished execution through the scheduler (which admits them again) and adopts
//!   the slots of workflows that resume running.
//! - A slot is held from admission until the execution completes: a workflow paused, or an
//!   inquiry pending, keeps its slot (StackStorm counts only `scheduled` and `running`).
//! - Retry applies only to executions without a `parent`: a workflow task's failure is the
//!   workflow's to handle (its task `retry`), and a policy retry the workflow engine does not
//!   know of would race with the transitions it takes on that failure.
//! - Retry applies to executions whose final status the runner records (`wasm` and
//!   `inquirer` actions); a workflow execution's final status is committed by the workflow
//!   engine and is not retried.

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::execution::{Output, StatusChange};
use squall_core::policy::{Policy, RetryOn, ThresholdAction};
use squall_core::{Execution, ExecutionId, ExecutionStatus, PackSet, Ref};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// One slot pool: a concurrency policy and, for `action.concurrency.attr`, the JSON of the
/// values of its attributes.
type SlotKey = (Ref, String);

/// What [`Slots::admit`] decided.
pub(crate) enum Admission {
    /// Within every threshold: run it (it now holds its slots).
    Admitted,
    /// Over a `delay` policy's threshold: park it until `wake` fires, which hands it a slot.
    Delay {
        /// The policy that holds it back.
        policy: Ref,
        /// Fires when a slot was reserved for it.
        wake: oneshot::Receiver<()>,
    },
    /// Over a `cancel` policy's threshold: end it `canceled` with this `result.error`.
    Cancel {
        /// What `result.error` says.
        message: String,
    },
}

/// The concurrency bookkeeping of one process (see the module docs).
#[derive(Default)]
pub(crate) struct Slots {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Executions holding (or reserved) each slot pool.
    held: HashMap<SlotKey, HashSet<ExecutionId>>,
    /// The pools each execution holds.
    holding: HashMap<ExecutionId, Vec<SlotKey>>,
    /// Executions parked on each pool, oldest first.
    waiting: HashMap<SlotKey, VecDeque<(ExecutionId, oneshot::Sender<()>)>>,
}

/// The concurrency policies applying to `e`, each with the slot pool `e` falls in.
fn pools<'a>(packs: &'a PackSet, e: &'a Execution) -> impl Iterator<Item = (&'a Policy, SlotKey)> {
    packs
        .policies_for(&e.action.reference)
        .filter_map(move |p| {
            let c = p.concurrency()?;
            let values: Vec<&Value> = c
                .attributes
                .iter()
                .map(|a| e.parameters.get(a).unwrap_or(&Value::Null))
                .collect();
            let key = if c.attributes.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&values).unwrap_or_default()
            };
            Some((p, (p.reference.clone(), key)))
        })
}

/// `url="http://x"` for the attributes of an `action.concurrency.attr` policy, or `""`.
fn attribute_text(policy: &Policy, e: &Execution) -> String {
    let Some(c) = policy.concurrency() else {
        return String::new();
    };
    let parts: Vec<String> = c
        .attributes
        .iter()
        .map(|a| format!("{a}={}", e.parameters.get(a).unwrap_or(&Value::Null)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" with {}", parts.join(", "))
    }
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides whether `e` may run now, and if so takes a slot of every concurrency policy of
    /// its action (a slot already reserved for it counts as taken). Policies are checked in
    /// ref order; the first one over its threshold decides.
    pub(crate) fn admit(&self, packs: &PackSet, e: &Execution) -> Admission {
        let mut state = self.lock();
        let pools: Vec<(&Policy, SlotKey)> = pools(packs, e).collect();
        let mut blocked = None;
        for (policy, key) in &pools {
            let threshold = policy.concurrency().map_or(u32::MAX, |c| c.threshold) as usize;
            let held = state.held.get(key);
            let mine = held.is_some_and(|h| h.contains(&e.id));
            let count = held.map_or(0, HashSet::len);
            if !mine && count >= threshold {
                blocked = Some((*policy, key.clone(), count));
                break;
            }
        }
        let Some((policy, key, count)) = blocked else {
            let keys: Vec<SlotKey> = pools.into_iter().map(|(_, k)| k).collect();
            for key in &keys {
                state.held.entry(key.clone()).or_default().insert(e.id);
            }
            if !keys.is_empty() {
                state.holding.insert(e.id, keys);
            }
            return Admission::Admitted;
        };
        // Not running: slots reserved for it under other policies go to the next in line.
        let woken = state.release(e.id);
        let (action, threshold) = policy
            .concurrency()
            .map_or((ThresholdAction::Delay, 0), |c| (c.action, c.threshold));
        let admission = match action {
            ThresholdAction::Cancel => Admission::Cancel {
                message: format!(
                    "canceled by policy {}: {count} executions of {}{} are already scheduled or \
                     running (threshold {threshold})",
                    policy.reference,
                    e.action.reference,
                    attribute_text(policy, e),
                ),
            },
            ThresholdAction::Delay => {
                // Queued under the same lock as the check, so no slot can free in between
                // unseen.
                let (tx, rx) = oneshot::channel();
                state.waiting.entry(key).or_default().push_back((e.id, tx));
                Admission::Delay {
                    policy: policy.reference.clone(),
                    wake: rx,
                }
            }
        };
        drop(state);
        for w in woken {
            let _ = w.send(());
        }
        admission
    }

    /// Records that `e` holds slots without checking thresholds (a workflow found running at
    /// recovery, admitted before the restart).
    pub(crate) fn adopt(&self, packs: &PackSet, e: &Execution) {
        let keys: Vec<SlotKey> = pools(packs, e).map(|(_, k)| k).collect();
        if keys.is_empty() {
            return;
        }
        let mut state = self.lock();
        for key in &keys {
            state.held.entry(key.clone()).or_default().insert(e.id);
        }
        state.holding.insert(e.id, keys);
    }

    /// Frees the slots of `id` (completed, or gave up waiting) and withdraws it from any
    /// queue; each freed slot goes to the oldest execution waiting for it, which is woken.
    /// Idempotent.
    pub(crate) fn release(&self, id: ExecutionId) {
        let woken = {
            let mut state = self.lock();
            for queue in state.waiting.values_mut() {
                queue.retain(|(w, _)| *w != id);
            }
            state.release(id)
        };
        for w in woken {
            let _ = w.send(());
        }
    }

    /// How many executions hold a slot of `policy` (all attribute values together).
    #[cfg(test)]
    fn held(&self, policy: &str) -> usize {
        self.lock()
            .held
            .iter()
            .filter(|((p, _), _)| p.to_string() == policy)
            .map(|(_, h)| h.len())
            .sum()
    }
}

impl State {
    /// Frees `id`'s slots, reserving each for the oldest live waiter; returns the wake-ups to
    /// send once the lock is dropped.
    fn release(&mut self, id: ExecutionId) -> Vec<oneshot::Sender<()>> {
        let mut woken = Vec::new();
        for key in self.holding.remove(&id).unwrap_or_default() {
            if let Some(h) = self.held.get_mut(&key) {
                h.remove(&id);
            }
            while let Some((next, wake)) = self.waiting.get_mut(&key).and_then(VecDeque::pop_front)
            {
                if wake.is_closed() {
                    continue; // its waiter stopped (shutdown); the store still says delayed
                }
                self.held.entry(key.clone()).or_default().insert(next);
                self.holding.entry(next).or_default().push(key.clone());
                woken.push(wake);
                break;
            }
            if self.held.get(&key).is_some_and(HashSet::is_empty) {
                self.held.remove(&key);
            }
            if self.waiting.get(&key).is_some_and(VecDeque::is_empty) {
                self.waiting.remove(&key);
            }
        }
        woken
    }
}

/// `context.policies.retry.retry_count` of `e` (0 for an original).
fn retry_count(e: &Execution) -> u64 {
    e.context
        .get("policies")
        .and_then(|p| p.get("retry"))
        .and_then(|r| r.get("retry_count"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The retry of `e`, if a retry policy of its action calls for one: `e` ended `failed`
/// (`retry_on: failure`) or `timeout` (`retry_on: timeout`), has no `parent`, and fewer than
/// `max_retry_count` retries preceded it. The retry is a new `requested` execution (owned by
/// `owner`) of the same action with the same parameters, the same context plus StackStorm's
/// `context.policies.retry` = `{applied_policy, retried_liveaction_id, retry_count}` (the id
/// of `e`, and the count including this retry), and `delay` = the policy's delay in ms
/// (`None` for 0). Nothing is stored.
pub(crate) fn retry_of(packs: &PackSet, e: &Execution, owner: &str) -> Option<Execution> {
    if e.parent.is_some() {
        return None;
    }
    let on = match e.status {
        ExecutionStatus::Failed => RetryOn::Failure,
        ExecutionStatus::Timeout => RetryOn::Timeout,
        _ => return None,
    };
    let count = retry_count(e);
    let (policy, retry) = packs
        .policies_for(&e.action.reference)
        .filter_map(|p| Some((p, p.retry()?)))
        .find(|(_, r)| r.retry_on == on)?;
    if count >= u64::from(retry.max_retry_count) {
        return None;
    }
    let now = Timestamp::now();
    let mut context: Map<String, Value> = e.context.clone();
    let mut policies = context
        .remove("policies")
        .and_then(|p| match p {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    policies.insert(
        "retry".into(),
        json!({
            "applied_policy": policy.reference.to_string(),
            "retried_liveaction_id": e.id.to_string(),
            "retry_count": count + 1,
        }),
    );
    context.insert("policies".into(), Value::Object(policies));
    Some(Execution {
        id: ExecutionId::new(),
        action: e.action.clone(),
        parameters: e.parameters.clone(),
        secret_parameters: e.secret_parameters.clone(),
        status: ExecutionStatus::Requested,
        result: Value::Null,
        context,
        start_timestamp: now,
        end_timestamp: None,
        elapsed_seconds: None,
        log: vec![StatusChange {
            status: ExecutionStatus::Requested,
            timestamp: now,
        }],
        limits: None,
        usage: None,
        output: Output::default(),
        commands: Vec::new(),
        owner: Some(owner.to_string()),
        parent: None,
        children: Vec::new(),
        delay: (retry.delay_ms > 0).then_some(retry.delay_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack set with `ops.http` (parameter `url`) and the given policy files.
    fn packs(policies: &[&str]) -> (tempfile::TempDir, PackSet) {
        let dir = tempfile::tempdir().unwrap();
        let pack = dir.path().join("ops");
        std::fs::create_dir_all(pack.join("actions")).unwrap();
        std::fs::create_dir_all(pack.join("policies")).unwrap();
        std::fs::write(pack.join("pack.yaml"), "name: ops\n").unwrap();
        std::fs::write(pack.join("actions/http.wasm"), b"\0asm").unwrap();
        std::fs::write(
            pack.join("actions/http.yaml"),
            "name: http\nrunner_type: wasm\nentry_point: http.wasm\nparameters:\n  url: {type: string}\n",
        )
        .unwrap();
        for (i, p) in policies.iter().enumerate() {
            std::fs::write(
                pack.join(format!("policies/p{i}.yaml")),
                format!("name: p{i}\nresource_ref: ops.http\n{p}"),
            )
            .unwrap();
        }
        let set = PackSet::load(dir.path());
        assert!(set.errors.is_empty(), "{:?}", set.errors);
        (dir, set)
    }

    fn execution(packs: &PackSet, url: &str) -> Execution {
        let action = packs.action(&"ops.http".parse().unwrap()).unwrap();
        let mut params = Map::new();
        params.insert("url".into(), json!(url));
        Execution::new(action, params, "test", Timestamp::now())
    }

    /// Runs `e` through scheduled and running to failed.
    fn fail(e: &mut Execution) {
        let t = Timestamp::now();
        for s in [
            ExecutionStatus::Scheduled,
            ExecutionStatus::Running,
            ExecutionStatus::Failed,
        ] {
            e.transition(s, t).unwrap();
        }
    }

    #[test]
    fn delay_parks_over_threshold_and_hands_the_freed_slot_to_the_oldest() {
        let (_d, packs) = packs(&["policy_type: action.concurrency\nparameters: {threshold: 2}\n"]);
        let e: Vec<Execution> = (0..4).map(|_| execution(&packs, "a")).collect();
        let slots = Slots::default();
        assert!(matches!(slots.admit(&packs, &e[0]), Admission::Admitted));
        assert!(matches!(slots.admit(&packs, &e[1]), Admission::Admitted));
        let Admission::Delay {
            policy,
            wake: mut w2,
        } = slots.admit(&packs, &e[2])
        else {
            panic!("third should be delayed")
        };
        assert_eq!(policy.to_string(), "ops.p0");
        let Admission::Delay { wake: mut w3, .. } = slots.admit(&packs, &e[3]) else {
            panic!("fourth should be delayed")
        };
        assert_eq!(slots.held("ops.p0"), 2);
        slots.release(e[0].id);
        assert!(w2.try_recv().is_ok(), "the oldest waiter is woken");
        assert!(w3.try_recv().is_err(), "the next one still waits");
        assert_eq!(slots.held("ops.p0"), 2, "the slot went to the waiter");
        // The woken one holds its slot: admitting it again does not count it twice.
        assert!(matches!(slots.admit(&packs, &e[2]), Admission::Admitted));
        assert_eq!(slots.held("ops.p0"), 2);
        slots.release(e[0].id); // twice: no effect
        assert!(w3.try_recv().is_err());
        slots.release(e[1].id);
        assert!(w3.try_recv().is_ok());
    }

    #[test]
    fn cancel_names_the_policy_and_attr_counts_per_value() {
        let (_d, packs) = packs(&[
            "policy_type: action.concurrency.attr\nparameters: {threshold: 1, action: cancel, attributes: [url]}\n",
        ]);
        let slots = Slots::default();
        let a1 = execution(&packs, "a");
        let b1 = execution(&packs, "b");
        assert!(matches!(slots.admit(&packs, &a1), Admission::Admitted));
        assert!(matches!(slots.admit(&packs, &b1), Admission::Admitted));
        let Admission::Cancel { message } = slots.admit(&packs, &execution(&packs, "a")) else {
            panic!("a second \"a\" is over the threshold")
        };
        assert!(
            message
                .starts_with("canceled by policy ops.p0: 1 executions of ops.http with url=\"a\""),
            "{message}"
        );
        slots.release(a1.id);
        assert!(matches!(
            slots.admit(&packs, &execution(&packs, "a")),
            Admission::Admitted
        ));
    }

    #[test]
    fn a_burst_from_many_threads_never_exceeds_the_threshold() {
        let (_d, packs) = packs(&["policy_type: action.concurrency\nparameters: {threshold: 3}\n"]);
        let slots = Slots::default();
        let admitted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    let e = execution(&packs, "x");
                    if matches!(slots.admit(&packs, &e), Admission::Admitted) {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 3);
        assert_eq!(slots.held("ops.p0"), 3);
    }

    #[test]
    fn retry_follows_the_policy_and_counts() {
        let (_d, packs) = packs(&[
            "policy_type: action.retry\nparameters: {retry_on: failure, max_retry_count: 2, delay: 3}\n",
        ]);
        let mut e = execution(&packs, "a");
        fail(&mut e);
        let r1 = retry_of(&packs, &e, "me").expect("first retry");
        assert_eq!(r1.status, ExecutionStatus::Requested);
        assert_eq!(r1.parameters, e.parameters);
        assert_eq!(r1.delay, Some(3000));
        assert_eq!(r1.owner.as_deref(), Some("me"));
        assert_eq!(r1.context["user"], "test");
        assert_eq!(
            r1.context["policies"]["retry"],
            json!({"applied_policy": "ops.p0", "retried_liveaction_id": e.id.to_string(), "retry_count": 1})
        );
        let mut r1 = r1;
        fail(&mut r1);
        let r2 = retry_of(&packs, &r1, "me").expect("second retry");
        assert_eq!(r2.context["policies"]["retry"]["retry_count"], 2);
        let mut r2 = r2;
        fail(&mut r2);
        assert!(
            retry_of(&packs, &r2, "me").is_none(),
            "max_retry_count reached"
        );

        for (status, parent, retried) in [
            (ExecutionStatus::Timeout, false, false),
            (ExecutionStatus::Succeeded, false, false),
            (ExecutionStatus::Canceled, false, false),
            (ExecutionStatus::Failed, true, false),
            (ExecutionStatus::Failed, false, true),
        ] {
            let mut e = execution(&packs, "a");
            e.status = status;
            e.parent = parent.then(ExecutionId::new);
            assert_eq!(
                retry_of(&packs, &e, "me").is_some(),
                retried,
                "{status} parent={parent}"
            );
        }
    }
}
