//! Conductor tests, written from StackStorm's documentation of the Orquesta language: each
//! case runs a workflow against a simulated runner (executions complete in request order) and
//! checks the task sequence, final status, output and errors.

use super::*;
use ExecutionStatus::*;
use serde_json::json;
use std::collections::{HashMap, VecDeque};

/// How a simulated action ends: (status, result), given the dispatch and how many times that
/// task was dispatched before.
type Outcome = dyn Fn(&Dispatch, u32) -> (ExecutionStatus, Value);

/// Runs actions by their input: `fail: true` fails; otherwise the result is the input.
fn by_input(d: &Dispatch, _: u32) -> (ExecutionStatus, Value) {
    if d.input.get("fail") == Some(&json!(true)) {
        (Failed, json!({"error": "boom"}))
    } else {
        (Succeeded, Value::Object(d.input.clone()))
    }
}

struct Sim<'a> {
    c: Conductor<'a>,
    queue: VecDeque<Dispatch>,
    /// Task names in dispatch order (`name[item]` for items).
    log: Vec<String>,
    calls: HashMap<String, u32>,
    next_id: u32,
    in_flight: usize,
    max_in_flight: usize,
}

impl<'a> Sim<'a> {
    fn new(spec: &'a WorkflowSpec, input: Value) -> Self {
        Sim::with_budget(spec, input, &WorkflowSettings::default())
    }

    fn with_budget(spec: &'a WorkflowSpec, input: Value, budget: &WorkflowSettings) -> Self {
        let c = Conductor::start(spec, input.as_object().unwrap(), None, budget);
        let mut sim = Sim {
            c,
            queue: VecDeque::new(),
            log: Vec::new(),
            calls: HashMap::new(),
            next_id: 0,
            in_flight: 0,
            max_in_flight: 0,
        };
        sim.collect();
        sim
    }

    fn collect(&mut self) {
        for d in self.c.take_dispatches() {
            self.next_id += 1;
            self.c.bind(d.task, d.run, format!("ex{}", self.next_id));
            self.log.push(match d.item {
                Some(i) => format!("{}[{i}]", d.task_name),
                None => d.task_name.clone(),
            });
            self.in_flight += 1;
            self.max_in_flight = self.max_in_flight.max(self.in_flight);
            self.queue.push_back(d);
        }
    }

    /// Completes the oldest requested execution.
    fn step(&mut self, outcome: &Outcome) -> bool {
        let Some(d) = self.queue.pop_front() else {
            return false;
        };
        let n = self.calls.entry(d.task_name.clone()).or_default();
        let (status, result) = outcome(&d, *n);
        *n += 1;
        self.in_flight -= 1;
        self.c.update(d.task, d.run, status, result);
        self.collect();
        true
    }

    fn run(mut self, outcome: &Outcome) -> Self {
        while self.step(outcome) {}
        self
    }
}

/// A workflow that may have problems inspection would report.
fn uninspected(yaml: &str) -> WorkflowSpec {
    WorkflowSpec::parse(yaml).unwrap()
}

fn spec(yaml: &str) -> WorkflowSpec {
    let s = WorkflowSpec::parse(yaml).unwrap();
    let problems = crate::workflow::inspect(&s, None);
    assert!(problems.is_empty(), "{problems:?}");
    s
}

fn errors(sim: &Sim) -> Vec<(String, String)> {
    sim.c
        .state()
        .errors
        .iter()
        .map(|e| {
            (
                e.get("task_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const SEQUENCE: &str = r#"
version: 1.0
input: [name, {greeting: hello}]
vars: [{count: 0}]
tasks:
  t1:
    action: core.echo message="{{ ctx('greeting') }} {{ ctx('name') }}"
    next:
      - when: <% succeeded() %>
        publish: [{said: <% result() %>}]
        do: t2
  t2:
    action: core.echo
    input: {message: "{{ ctx('said').message }}!"}
    next:
      - when: <% succeeded() %>
        publish: "last={{ result().message }}"
        do: t3
  t3:
output:
  - said: "{{ ctx('last') }}"
  - name: <% ctx(name) %>
"#;

#[test]
fn sequence_publishes_and_renders_output() {
    let s = spec(SEQUENCE);
    let sim = Sim::new(&s, json!({"name": "ops"})).run(&by_input);
    assert_eq!(sim.log, ["t1", "t2"]);
    assert_eq!(sim.c.status(), Succeeded);
    assert_eq!(
        sim.c.result(),
        json!({"output": {"said": "hello ops!", "name": "ops"}})
    );
    let t3 = sim.c.state().tasks.iter().find(|t| t.name == "t3").unwrap();
    assert_eq!((t3.status, &t3.result), (Succeeded, &Value::Null));
}

#[test]
fn transitions_decide_the_path() {
    // (case, task outcomes by task name, expected dispatch sequence, final status)
    const WF: &str = r#"
version: 1.0
tasks:
  t1:
    action: core.noop
    next:
      - when: <% succeeded() %>
        do: ok
      - when: <% failed() %>
        do: cleanup
  ok:
    action: core.noop
  cleanup:
    action: core.noop
"#;
    let s = spec(WF);
    for (case, failing, want, status) in [
        ("success path", vec![], vec!["t1", "ok"], Succeeded),
        (
            "failure remediated by a task",
            vec!["t1"],
            vec!["t1", "cleanup"],
            Succeeded,
        ),
        (
            "remediation fails too",
            vec!["t1", "cleanup"],
            vec!["t1", "cleanup"],
            Failed,
        ),
    ] {
        let outcome = move |d: &Dispatch, _: u32| {
            if failing.contains(&d.task_name.as_str()) {
                (Failed, json!({"error": "x"}))
            } else {
                (Succeeded, json!({}))
            }
        };
        let sim = Sim::new(&s, json!({})).run(&outcome);
        assert_eq!(sim.log, want, "{case}");
        assert_eq!(sim.c.status(), status, "{case}");
    }
}

#[test]
fn engine_commands_remediate_or_fail() {
    for (case, next, want_status, want_log) in [
        ("no transition: fail-fast", "", Failed, vec!["t1"]),
        (
            "noop remediates",
            "next: [{when: <% failed() %>, do: noop}]",
            Succeeded,
            vec!["t1"],
        ),
        (
            "continue does not remediate",
            "next: [{when: <% failed() %>, do: continue}]",
            Failed,
            vec!["t1"],
        ),
        (
            "fail fails after running the cleanup",
            "next: [{when: <% failed() %>, do: [cleanup, fail]}]",
            Failed,
            vec!["t1", "cleanup"],
        ),
        (
            "fail after success",
            "next: [{when: <% succeeded() %>, do: fail}]",
            Failed,
            vec!["t1"],
        ),
    ] {
        let mut yaml = format!(
            "version: 1.0\ntasks:\n  t1:\n    action: core.noop fail={}\n    {next}\n",
            case != "fail after success"
        );
        if next.contains("cleanup") {
            yaml.push_str("  cleanup:\n    action: core.noop\n");
        }
        let s = spec(&yaml);
        let sim = Sim::new(&s, json!({})).run(&by_input);
        assert_eq!(sim.c.status(), want_status, "{case}");
        assert_eq!(sim.log, want_log, "{case}");
    }
}

#[test]
fn fail_fast_lets_running_tasks_finish_and_starts_nothing_new() {
    let s = spec(
        r#"
version: 1.0
tasks:
  start:
    next: [{do: [a, b]}]
  a:
    action: core.noop fail=true
  b:
    action: core.noop
    next: [{do: c}]
  c:
    action: core.noop
output:
  - done: true
"#,
    );
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!(sim.log, ["a", "b"]);
    assert_eq!(sim.c.status(), Failed);
    assert_eq!(
        errors(&sim),
        [(
            "a".to_string(),
            "Execution failed. See result for details.".to_string()
        )]
    );
    let r = sim.c.result();
    assert_eq!(
        r["output"],
        json!({"done": true}),
        "output is rendered when the workflow fails"
    );
    assert_eq!(r["errors"][0]["result"], json!({"error": "boom"}));
}

const BRANCHES: &str = r#"
version: 1.0
tasks:
  start:
    next: [{do: [a, b]}]
  a:
    action: core.noop
    next: [{publish: [{x: 1}], do: c}]
  b:
    action: core.noop
    next: [{publish: [{y: 2}], do: c}]
  c:
    JOIN
    action: core.noop
    input: {seen: "{{ ctx().x ~ '-' ~ ctx().y }}"}
"#;

#[test]
fn a_join_runs_once_with_the_merged_context_and_without_join_once_per_route() {
    let s = spec(&BRANCHES.replace("JOIN", "join: all"));
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!(sim.log, ["a", "b", "c"]);
    assert_eq!(sim.c.status(), Succeeded);
    let c = sim.c.state().tasks.iter().find(|t| t.name == "c").unwrap();
    assert_eq!(c.result["seen"], "1-2");

    let s = spec(&BRANCHES.replace("JOIN", "join: 1"));
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!(
        sim.log,
        ["a", "b", "c"],
        "join: 1 starts at the first arrival, once"
    );

    let s = spec(
        &BRANCHES
            .replace("JOIN", "")
            .replace("{{ ctx().x ~ '-' ~ ctx().y }}", "x"),
    );
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!(sim.log, ["a", "b", "c", "c"], "one run per route");
    let routes: Vec<usize> = sim
        .c
        .state()
        .tasks
        .iter()
        .filter(|t| t.name == "c")
        .map(|t| t.route)
        .collect();
    assert_eq!(routes, [1, 2]);
    assert_eq!(sim.c.state().routes[1], ["a__t0"]);
}

#[test]
fn an_unreachable_join_fails_the_workflow() {
    let s = spec(
        r#"
version: 1.0
tasks:
  t1:
    action: core.noop
    next:
      - when: <% succeeded() %>
        do: a
      - when: <% failed() %>
        do: b
  a:
    next: [{do: c}]
  b:
    next: [{do: c}]
  c:
    join: all
    action: core.noop
"#,
    );
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!(sim.log, ["t1"]);
    assert_eq!(sim.c.status(), Failed);
    assert!(
        errors(&sim)[0]
            .1
            .starts_with("UnreachableJoinError: The join task \"c\""),
        "{:?}",
        errors(&sim)
    );
}

#[test]
fn with_items_keeps_item_order_and_caps_concurrency() {
    let s = spec(
        r#"
version: 1.0
input: [hosts]
tasks:
  deploy:
    with: {items: "host in {{ ctx('hosts') }}", concurrency: 2}
    action: core.echo message="{{ item('host') }}"
    next:
      - publish: [{out: <% result() %>}]
        do: noop
output: [{out: <% ctx(out) %>}]
"#,
    );
    let sim = Sim::new(&s, json!({"hosts": ["h1", "h2", "h3", "h4", "h5"]})).run(&by_input);
    assert_eq!(
        sim.log,
        [
            "deploy[0]",
            "deploy[1]",
            "deploy[2]",
            "deploy[3]",
            "deploy[4]"
        ]
    );
    assert_eq!(sim.max_in_flight, 2);
    assert_eq!(sim.c.status(), Succeeded);
    let result = sim.c.result();
    let messages: Vec<&Value> = result["output"]["out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["message"])
        .collect();
    assert_eq!(messages, ["h1", "h2", "h3", "h4", "h5"]);
}

#[test]
fn a_failed_item_fails_the_task_and_starts_no_more_items() {
    let s = spec(
        r#"
version: 1.0
tasks:
  t:
    with: {items: "n in {{ [1, 2, 3, 4] }}", concurrency: 1}
    action: core.noop fail="{{ item('n') == 2 }}"
"#,
    );
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!(sim.log, ["t[0]", "t[1]"]);
    assert_eq!(sim.c.status(), Failed);
    let t = &sim.c.state().tasks[0];
    assert_eq!(
        t.result,
        json!([{"fail": false}, {"error": "boom"}, null, null])
    );
}

#[test]
fn empty_items_succeed_at_once_and_several_names_zip() {
    let s = spec("version: 1.0\ntasks:\n  t:\n    with: \"{{ [] }}\"\n    action: core.noop\n");
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!((sim.log.len(), sim.c.status()), (0, Succeeded));

    let s = spec(
        "version: 1.0\ntasks:\n  t:\n    with: \"a, b in {{ zip([1, 2], ['x', 'y']) }}\"\n    action: core.echo message=\"{{ item('a') ~ item('b') }}\"\n",
    );
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!(
        sim.c.state().tasks[0].result,
        json!([{"message": "1x"}, {"message": "2y"}])
    );
}

#[test]
fn retry_runs_again_until_it_succeeds_or_the_count_is_spent() {
    let s = spec(
        "version: 1.0\ntasks:\n  t:\n    action: core.noop\n    retry: {count: 3, delay: 2}\n",
    );
    // Fails twice, succeeds on the third try.
    let third = |_: &Dispatch, n: u32| {
        if n < 2 {
            (Failed, json!({}))
        } else {
            (Succeeded, json!({"ok": true}))
        }
    };
    let mut sim = Sim::new(&s, json!({}));
    assert_eq!(sim.queue[0].delay_ms, None, "the first try is not delayed");
    sim.step(&third);
    assert_eq!(
        sim.queue[0].delay_ms,
        Some(2000),
        "a retry waits retry.delay"
    );
    let sim = sim.run(&third);
    assert_eq!(sim.log, ["t", "t", "t"]);
    assert_eq!(sim.c.status(), Succeeded);
    assert!(
        sim.c.state().errors.is_empty(),
        "{:?}",
        sim.c.state().errors
    );

    let always = |_: &Dispatch, _: u32| (Failed, json!({}));
    let s = spec("version: 1.0\ntasks:\n  t:\n    action: core.noop\n    retry: {count: 1}\n");
    let sim = Sim::new(&s, json!({})).run(&always);
    assert_eq!(
        (sim.log.len(), sim.c.status()),
        (2, Failed),
        "count is the number of retries"
    );

    let s = spec(
        "version: 1.0\ntasks:\n  t:\n    action: core.noop\n    next:\n      - when: <% failed() %>\n        do: retry\n",
    );
    let sim = Sim::new(&s, json!({})).run(&third);
    assert_eq!(
        (sim.log.len(), sim.c.status()),
        (3, Succeeded),
        "do: retry retries up to 3 times"
    );
}

#[test]
fn retry_when_can_look_at_a_successful_result() {
    let s = spec(
        "version: 1.0\ntasks:\n  t:\n    action: core.noop\n    retry: {when: \"{{ result().code != 200 }}\", count: 5}\n",
    );
    let outcome =
        |_: &Dispatch, n: u32| (Succeeded, json!({"code": if n < 3 { 503 } else { 200 }}));
    let sim = Sim::new(&s, json!({})).run(&outcome);
    assert_eq!((sim.log.len(), sim.c.status()), (4, Succeeded));
}

#[test]
fn inputs_defaults_vars_and_delay() {
    let s = spec(
        r#"
version: 1.0
input: [a, {b: "{{ ctx('a') ~ '!' }}"}, c]
vars: [{d: "{{ ctx('b') ~ '?' }}"}]
tasks:
  t:
    delay: 3
    action: core.echo message="{{ ctx('d') }}"
output: [{c: "{{ ctx('c') }}"}]
"#,
    );
    let mut sim = Sim::new(&s, json!({"a": "x"}));
    assert_eq!(sim.queue[0].input["message"], "x!?");
    assert_eq!(sim.queue[0].delay_ms, Some(3000));
    sim.step(&by_input);
    assert_eq!(
        sim.c.result()["output"],
        json!({"c": null}),
        "a missing input is null"
    );
}

#[test]
fn expression_errors_fail_the_workflow_with_orquesta_messages() {
    let s = uninspected(
        "version: 1.0\ntasks:\n  t1:\n    action: core.noop\n    next: [{publish: [{x: \"{{ ctx('missing') }}\"}], do: t2}]\n  t2:\n    action: core.noop\n",
    );
    let sim = Sim::new(&s, json!({})).run(&by_input);
    assert_eq!(sim.log, ["t1"]);
    assert_eq!(sim.c.status(), Failed);
    let e = &sim.c.state().errors[0];
    assert_eq!(e["task_id"], "t1");
    assert_eq!(e["task_transition_id"], "t2__t0");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("The variable \"missing\" is undefined"),
        "{e}"
    );

    let s = uninspected(
        "version: 1.0\ninput: [{a: \"{{ ctx('nope') }}\"}]\ntasks:\n  t: {action: core.noop}\n",
    );
    let sim = Sim::new(&s, json!({}));
    assert_eq!(
        (sim.log.len(), sim.c.status()),
        (0, Failed),
        "bad input fails before any task"
    );
}

const TWO: &str = "version: 1.0\ntasks:\n  a:\n    action: core.noop\n    next: [{do: a2}]\n  a2:\n    action: core.noop\n  b:\n    action: core.noop\n";

#[test]
fn pause_holds_new_tasks_and_resume_continues() {
    let s = spec(TWO);
    let mut sim = Sim::new(&s, json!({}));
    assert_eq!(sim.log, ["a", "b"]);
    sim.c.pause().unwrap();
    assert_eq!(sim.c.status(), Pausing);
    sim.step(&by_input); // a completes: a2 is staged, not started
    assert_eq!(sim.log, ["a", "b"]);
    sim.step(&by_input); // b completes: nothing runs
    assert_eq!(sim.c.status(), Paused);
    assert!(sim.c.pause().is_ok(), "pausing twice is fine");
    sim.c.resume().unwrap();
    sim.collect();
    let sim = sim.run(&by_input);
    assert_eq!(sim.log, ["a", "b", "a2"]);
    assert_eq!(sim.c.status(), Succeeded);
    let mut done = Sim::new(&s, json!({})).run(&by_input);
    assert!(
        done.c
            .pause()
            .unwrap_err()
            .0
            .contains("only a running workflow")
    );
    assert!(done.c.resume().is_err());
    assert!(done.c.cancel().is_err());
}

#[test]
fn cancel_waits_for_running_tasks_then_ends_canceled() {
    let s = spec(TWO);
    let mut sim = Sim::new(&s, json!({}));
    let active = sim.c.cancel().unwrap();
    assert_eq!(active, ["ex1", "ex2"]);
    assert_eq!(sim.c.status(), Canceling);
    let canceled = |_: &Dispatch, _: u32| (Canceled, json!({}));
    let sim = sim.run(&canceled);
    assert_eq!(sim.log, ["a", "b"]);
    assert_eq!(sim.c.status(), Canceled);
}

#[test]
fn a_pending_task_pauses_the_workflow_until_it_completes() {
    let s = spec(
        "version: 1.0\ntasks:\n  ask:\n    action: core.ask\n    next: [{when: <% succeeded() %>, do: go}]\n  go:\n    action: core.noop\n",
    );
    let mut sim = Sim::new(&s, json!({}));
    let d = sim.queue.pop_front().unwrap();
    sim.c.update(d.task, d.run, Pending, Value::Null);
    assert_eq!(sim.c.status(), Paused);
    assert_eq!(sim.c.state().tasks[0].status, Pending);
    sim.c.update(
        d.task,
        d.run,
        Succeeded,
        json!({"response": {"continue": true}}),
    );
    assert_eq!(sim.c.status(), Running);
    sim.collect();
    let sim = sim.run(&by_input);
    assert_eq!(sim.log, ["ask", "go"]);
    assert_eq!(sim.c.status(), Succeeded);
}

#[test]
fn rerun_from_a_task_keeps_what_completed() {
    let s = spec(SEQUENCE);
    let fail_t2 = |d: &Dispatch, _: u32| {
        if d.task_name == "t2" {
            (Failed, json!({"error": "x"}))
        } else {
            by_input(d, 0)
        }
    };
    let sim = Sim::new(&s, json!({"name": "ops"})).run(&fail_t2);
    assert_eq!(sim.c.status(), Failed);
    let state = sim.c.into_state();
    let refused = Conductor::rerun(
        &s,
        &state,
        &["nope".into()],
        None,
        &WorkflowSettings::default(),
    )
    .err()
    .unwrap();
    assert!(refused.0.contains("did not run"), "{refused}");
    for tasks in [vec!["t2".to_string()], vec![]] {
        let c = Conductor::rerun(&s, &state, &tasks, None, &WorkflowSettings::default()).unwrap();
        let mut sim = Sim {
            c,
            queue: VecDeque::new(),
            log: Vec::new(),
            calls: HashMap::new(),
            next_id: 10,
            in_flight: 0,
            max_in_flight: 0,
        };
        sim.collect();
        let sim = sim.run(&by_input);
        assert_eq!(sim.log, ["t2"], "t1 is not run again ({tasks:?})");
        assert_eq!(sim.c.status(), Succeeded);
        assert_eq!(
            sim.c.result(),
            json!({"output": {"said": "hello ops!", "name": "ops"}})
        );
    }
    let mut running = Sim::new(&s, json!({"name": "ops"}));
    running.step(&by_input);
    assert!(
        Conductor::rerun(
            &s,
            running.c.state(),
            &[],
            None,
            &WorkflowSettings::default()
        )
        .is_err()
    );
}

#[test]
fn the_state_survives_serialization_mid_run() {
    let s = spec(SEQUENCE);
    let mut sim = Sim::new(&s, json!({"name": "ops"}));
    sim.step(&by_input);
    let saved = serde_json::to_string(sim.c.state()).unwrap();
    let restored: WorkflowState = serde_json::from_str(&saved).unwrap();
    assert_eq!(&restored, sim.c.state());
    let d = sim.queue.pop_front().unwrap();
    let mut c = Conductor::resume_from(&s, restored, None, &WorkflowSettings::default());
    assert_eq!(c.find("ex2"), Some((d.task, d.run)));
    c.update(d.task, d.run, Succeeded, Value::Object(d.input.clone()));
    c.update(d.task, d.run, Succeeded, Value::Object(d.input.clone()));
    assert_eq!(c.status(), Succeeded, "a repeated report is ignored");
}

#[test]
fn publish_without_do_reaches_the_output() {
    let s = spec(
        "version: 1.0\ntasks:\n  t:\n    action: core.noop\n    next:\n      - when: <% succeeded() %>\n        publish: \"code=<% result().code %>\"\noutput: [{code: <% ctx(code) %>}]\n",
    );
    let ok = |_: &Dispatch, _: u32| (Succeeded, json!({"code": 7}));
    let sim = Sim::new(&s, json!({})).run(&ok);
    assert_eq!(sim.c.result(), json!({"output": {"code": 7}}));
}

const SPIN: &str = r#"
version: 1.0
tasks:
  start:
    next: [{do: a}]
  a:
    next: [{do: b}]
  b:
    next: [{do: a}]
"#;

#[test]
fn a_cycle_of_actionless_tasks_stops_at_the_transition_budget() {
    let s = spec(SPIN);
    let started = std::time::Instant::now();
    let sim = Sim::new(&s, json!({}));
    assert_eq!(sim.c.status(), Failed);
    let errors = errors(&sim);
    assert!(
        errors[0]
            .1
            .contains("[workflows] max_transitions_per_event"),
        "{errors:?}"
    );
    let budget = WorkflowSettings::default().max_transitions_per_event;
    assert!(sim.c.state().tasks.len() <= budget + 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn tasks_items_and_state_size_have_budgets() {
    let s = spec(SPIN);
    let budget = WorkflowSettings {
        max_tasks: 50,
        ..WorkflowSettings::default()
    };
    let c = Conductor::start(&s, &Map::new(), None, &budget);
    assert_eq!(c.status(), Failed);
    assert!(
        c.state().errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("[workflows] max_tasks"),
        "{:?}",
        c.state().errors
    );
    assert_eq!(c.state().tasks.len(), 50);

    let items = spec(
        "version: 1.0\ntasks:\n  each:\n    with: <% range(0, 20) %>\n    action: core.noop\n",
    );
    let budget = WorkflowSettings {
        max_items: 10,
        ..WorkflowSettings::default()
    };
    let c = Conductor::start(&items, &Map::new(), None, &budget);
    assert_eq!(c.status(), Failed);
    let text = serde_json::to_string(&c.state().errors).unwrap();
    assert!(
        text.contains("20 items, over the limit of 10 ([workflows] max_items)"),
        "{text}"
    );

    let budget = WorkflowSettings {
        max_state_bytes: 100,
        ..WorkflowSettings::default()
    };
    let mut c = Conductor::start(&items, &Map::new(), None, &budget);
    assert_eq!(c.status(), Running);
    assert!(c.check_state_size(101));
    let text = serde_json::to_string(&c.state().errors).unwrap();
    assert!(text.contains("[workflows] max_state_bytes"), "{text}");
}

#[test]
fn retries_are_charged_to_the_task_budget() {
    let s = spec(
        "version: 1.0\ntasks:\n  again:\n    action: core.noop\n    \
         retry: {when: <% succeeded() %>, count: 1000000000}\n",
    );
    let budget = WorkflowSettings {
        max_tasks: 20,
        ..WorkflowSettings::default()
    };
    let sim = Sim::with_budget(&s, json!({}), &budget).run(&by_input);
    assert_eq!(sim.c.status(), Failed);
    assert_eq!(sim.log.len(), 20, "{:?}", sim.log);
    let text = serde_json::to_string(&sim.c.state().errors).unwrap();
    assert!(text.contains("[workflows] max_tasks"), "{text}");

    // A task without an action cannot fail and is never retried: no loop.
    let s = spec(
        "version: 1.0\ntasks:\n  idle:\n    retry: {when: <% succeeded() %>, count: 1000000000}\n",
    );
    let sim = Sim::new(&s, json!({}));
    assert_eq!(sim.c.status(), Succeeded);
}
