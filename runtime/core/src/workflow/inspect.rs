//! Workflow inspection, before anything runs (`squall workflow inspect`, and at pack load), as
//! Orquesta's `inspect()`: every problem found, each naming the task and field.
//!
//! - syntax and shape (from [`WorkflowSpec::parse`]), reserved names;
//! - `do` naming a task that does not exist;
//! - expressions that do not parse (including unsupported YAQL);
//! - context variables read before any path assigns them (input, vars and the publishes on
//!   some path to the task count as assigned);
//! - actions that are not loaded, parameters the action does not declare, required parameters
//!   given nowhere.

use super::expr;
use super::spec::{ENGINE_COMMANDS, WorkflowError, WorkflowSpec};
use crate::action::Action;
use serde_json::Value;
use std::collections::BTreeSet;

/// Finds a loaded action by ref.
pub type ActionLookup<'a> = &'a dyn Fn(&str) -> Option<Action>;

/// Inspects a parsed workflow. `action` looks actions up by ref (`None` skips action checks).
/// Returns every problem, in file order; empty when the workflow is fine.
pub fn inspect(spec: &WorkflowSpec, action: Option<ActionLookup<'_>>) -> Vec<WorkflowError> {
    let mut errors = Vec::new();
    let expressions = |field: String, value: &Value, errors: &mut Vec<WorkflowError>| {
        if let Err(e) = expr::check(value) {
            errors.push(WorkflowError::at(field, e.0));
        }
    };

    // Variables assigned before each task could start, grown to a fixpoint over the graph.
    let mut base: BTreeSet<String> = BTreeSet::new();
    for (i, input) in spec.input.iter().enumerate() {
        if let Some(d) = &input.default {
            expressions(format!("input[{i}].{}", input.name), d, &mut errors);
            undefined(&format!("input[{i}].{}", input.name), d, &base, &mut errors);
        }
        base.insert(input.name.clone());
    }
    for (i, (name, value)) in spec.vars.iter().enumerate() {
        expressions(format!("vars[{i}].{name}"), value, &mut errors);
        undefined(&format!("vars[{i}].{name}"), value, &base, &mut errors);
        base.insert(name.clone());
    }
    let n = spec.tasks.len();
    let mut before: Vec<Option<BTreeSet<String>>> = vec![None; n];
    for &r in &spec.graph.roots {
        before[r] = Some(base.clone());
    }
    loop {
        let mut changed = false;
        for (from, task) in spec.tasks.iter().enumerate() {
            let Some(vars) = before[from].clone() else {
                continue;
            };
            for tr in &task.next {
                let mut out = vars.clone();
                out.extend(tr.publish.iter().map(|(k, _)| k.clone()));
                for target in &tr.targets {
                    if let Some(to) = spec.task_index(target) {
                        changed |= before[to].is_none();
                        let entry = before[to].get_or_insert_with(BTreeSet::new);
                        let len = entry.len();
                        entry.extend(out.iter().cloned());
                        changed |= entry.len() != len;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut everything = base.clone();

    for (ti, task) in spec.tasks.iter().enumerate() {
        let at = |f: &str| format!("tasks.{}.{f}", task.name);
        let vars = before[ti].clone().unwrap_or_else(|| base.clone());
        let mut fields: Vec<(String, &Value)> = Vec::new();
        let action_value = task.action.clone().map(Value::String);
        if let Some(a) = &action_value {
            fields.push((at("action"), a));
        }
        for (k, v) in &task.inline_input {
            fields.push((at(&format!("action.{k}")), v));
        }
        for (k, v) in &task.input {
            fields.push((at(&format!("input.{k}")), v));
        }
        if let Some(w) = &task.with {
            fields.push((at("with.items"), &w.items));
            if let Some(c) = &w.concurrency {
                fields.push((at("with.concurrency"), c));
            }
        }
        if let Some(d) = &task.delay {
            fields.push((at("delay"), d));
        }
        let retry_when = task
            .retry
            .as_ref()
            .and_then(|r| r.when.clone())
            .map(Value::String);
        if let Some(r) = &task.retry {
            fields.push((at("retry.count"), &r.count));
            if let Some(d) = &r.delay {
                fields.push((at("retry.delay"), d));
            }
        }
        for (field, value) in &fields {
            expressions(field.clone(), value, &mut errors);
            undefined(field, value, &vars, &mut errors);
        }
        if let Some(w) = &retry_when {
            expressions(at("retry.when"), w, &mut errors);
            undefined(&at("retry.when"), w, &vars, &mut errors);
        }
        for (i, tr) in task.next.iter().enumerate() {
            let nat = |f: &str| at(&format!("next[{i}].{f}"));
            let mut rolling = vars.clone();
            if let Some(w) = &tr.when {
                let w = Value::String(w.clone());
                expressions(nat("when"), &w, &mut errors);
                undefined(&nat("when"), &w, &rolling, &mut errors);
            }
            for (k, v) in &tr.publish {
                let field = nat(&format!("publish.{k}"));
                expressions(field.clone(), v, &mut errors);
                undefined(&field, v, &rolling, &mut errors);
                rolling.insert(k.clone());
                everything.insert(k.clone());
            }
            for target in &tr.targets {
                if !ENGINE_COMMANDS.contains(&target.as_str()) && spec.task_index(target).is_none()
                {
                    errors.push(WorkflowError::at(
                        nat("do"),
                        format!("task {target:?} is not defined"),
                    ));
                }
            }
        }
        if let (Some(lookup), Some(reference)) = (action, &task.action)
            && !expr::is_expression(reference)
        {
            match lookup(reference) {
                None => errors.push(WorkflowError::at(
                    at("action"),
                    format!("action {reference:?} not found"),
                )),
                Some(a) => {
                    let given: BTreeSet<&str> = task
                        .inline_input
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .chain(task.input.keys().map(String::as_str))
                        .collect();
                    for k in &given {
                        if a.parameters.get(k).is_none() {
                            errors.push(WorkflowError::at(
                                at(&format!("input.{k}")),
                                format!("action {reference} has no parameter {k:?}"),
                            ));
                        }
                    }
                    for p in a.parameters.specs() {
                        if p.required && p.default.is_none() && !given.contains(p.name.as_str()) {
                            errors.push(WorkflowError::at(
                                at("input"),
                                format!(
                                    "required parameter {:?} of {reference} is not given",
                                    p.name
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
    for (i, (name, value)) in spec.output.iter().enumerate() {
        let field = format!("output[{i}].{name}");
        expressions(field.clone(), value, &mut errors);
        undefined(&field, value, &everything, &mut errors);
        everything.insert(name.clone());
    }
    errors
}

fn undefined(field: &str, value: &Value, vars: &BTreeSet<String>, errors: &mut Vec<WorkflowError>) {
    for name in expr::context_references(value) {
        if !vars.contains(&name) {
            errors.push(WorkflowError::at(
                field,
                format!("variable \"{name}\" is referenced before assignment"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let spec = WorkflowSpec::parse(yaml).unwrap();
        let lookup = |r: &str| -> Option<Action> {
            (r == "core.echo").then(|| {
                crate::action::test_action(
                    "name: echo\nrunner_type: wasm\nentry_point: a.wasm\nparameters:\n  message: {type: string, required: true}\n",
                )
            })
        };
        inspect(&spec, Some(&lookup))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_workflow_has_no_problems() {
        let p = problems(
            r#"
version: 1.0
input: [name]
vars: [{greeting: "<% 'hi ' + ctx(name) %>"}]
tasks:
  t1:
    action: core.echo message=<% ctx(greeting) %>
    next:
      - when: <% succeeded() %>
        publish: [{said: <% result().stdout %>}, {twice: "{{ ctx('said') ~ ctx('said') }}"}]
        do: t2
  t2:
    action: core.echo
    input: {message: "{{ ctx().said }}"}
output:
  - said: <% ctx(said) %>
"#,
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn every_problem_is_named_with_task_and_field() {
        let p = problems(
            r#"
version: 1.0
input: [a]
tasks:
  t1:
    action: core.echo message=<% ctx(b) %> colour=red
    next:
      - when: <% foo(1) %>
        do: [t2, nope]
  t2:
    action: core.nothing
  t3:
    action: core.echo
    input: {message: "{{ ctx( }}"}
"#,
        );
        let want = [
            "tasks.t1.action.message: variable \"b\" is referenced before assignment",
            "tasks.t1.next[0].when: YaqlEvaluationException",
            "tasks.t1.next[0].do: task \"nope\" is not defined",
            "tasks.t1.input.colour: action core.echo has no parameter \"colour\"",
            "tasks.t2.action: action \"core.nothing\" not found",
            "tasks.t3.input.message: JinjaEvaluationException",
        ];
        assert_eq!(p.len(), want.len(), "{p:#?}");
        for (got, want) in p.iter().zip(want) {
            assert!(got.starts_with(want), "{got} vs {want}");
        }
    }

    #[test]
    fn a_variable_published_on_another_branch_counts_as_assigned() {
        let p = problems(
            "version: 1.0\ntasks:\n  a:\n    next: [{publish: [{x: 1}], do: c}]\n  b:\n    next: [{do: c}]\n  c:\n    action: core.echo message=<% ctx(x) %>\n",
        );
        assert!(p.is_empty(), "{p:?}");
        let p = problems("version: 1.0\ntasks:\n  a:\n    action: core.echo\n");
        assert_eq!(
            p,
            ["tasks.a.input: required parameter \"message\" of core.echo is not given"]
        );
    }
}
