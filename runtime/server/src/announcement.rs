//! StackStorm's `announcement` runner (`contrib/runners/announcement_runner`): publishes the
//! action's parameters on the stream as `st2.announcement__<route>` with the data
//! `{"payload": <action parameters>, "trace_context": null}` — what StackStorm's
//! `AnnouncementDispatcher` sends to its `st2.announcement` exchange and its stream relays —
//! and succeeds with the action parameters as its result (secret parameters masked in both,
//! where StackStorm sends them as given). Without `experimental: true` it
//! fails with StackStorm's `Experimental flag is missing for action <ref>`.
//!
//! A route is one or more words of letters, digits, `_` and `-`, delimited by dots (at most
//! 255 characters, as the runner parameter's schema); any other is refused by name, since it
//! becomes part of a stream event's name.

use crate::Runner;
use crate::commands::{Refusal, Start};
use jiff::Timestamp;
use serde_json::{Value, json};
use squall_core::Execution;
use squall_core::ExecutionStatus;
use squall_store::StoreError;

impl Runner {
    /// Runs an `announcement` execution; see the module docs.
    ///
    /// # Errors
    /// Store failures only.
    pub(crate) async fn run_announcement(
        &self,
        mut execution: Execution,
    ) -> Result<Execution, StoreError> {
        let Some(Start {
            runner_params,
            action_params,
            ..
        }) = self.start_command(&mut execution)
        else {
            return self.action_gone(execution).await;
        };
        if runner_params.get("experimental") != Some(&Value::Bool(true)) {
            let message = format!(
                "Experimental flag is missing for action {}",
                execution.action.reference
            );
            return self.refuse(execution, Refusal::Failed(message)).await;
        }
        let route = match runner_params.get("route") {
            None | Some(Value::Null) => "general",
            Some(Value::String(r)) => r.as_str(),
            Some(other) => {
                let message = format!("parameter \"route\" must be text, not {other}");
                return self.refuse(execution, Refusal::Failed(message)).await;
            }
        };
        if let Err(message) = check_route(route) {
            return self.refuse(execution, Refusal::Failed(message)).await;
        }
        execution
            .transition(ExecutionStatus::Running, Timestamp::now())
            .expect("a scheduled execution can run");
        // Secret parameters are masked in the announcement and in the result alike (StackStorm
        // sends and records them as given).
        let payload = Value::Object(execution.masked_parameters(&action_params));
        self.bus().publish(
            format!("st2.announcement__{route}"),
            &json!({"payload": payload, "trace_context": null}),
        );
        tracing::info!(execution.id = %execution.id, route, "announcement published");
        self.finish(execution, ExecutionStatus::Succeeded, payload)
            .await
    }
}

/// Whether `route` may name a stream event.
///
/// # Errors
/// A message naming the route.
fn check_route(route: &str) -> Result<(), String> {
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if route.len() <= 255 && route.split('.').all(word_ok) {
        Ok(())
    } else {
        Err(format!(
            "route {route:?}: words of letters, digits, \"_\" and \"-\" delimited by dots \
             (at most 255 characters)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_dotted_words() {
        for ok in ["general", "chatops", "a.b-c.d_1"] {
            assert!(check_route(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "x\ndata: {}", "a b", &"a".repeat(256)] {
            assert!(check_route(bad).is_err(), "{bad:?}");
        }
    }
}
