//! StackStorm's `http-request` runner (`contrib/runners/http_runner/http_runner.py`): an
//! action of any pack whose metadata names a URL (the `url` runner parameter), run as one HTTP
//! request by the `core` pack's HTTP component (`core.http`, the same WebAssembly component
//! and sandbox), under the **action's own pack's** `http_allow` grant.
//!
//! The request is StackStorm's: `url`, `headers`, `cookies` (sent as one `Cookie` header),
//! `allow_redirects` (default false), `username`/`password` (basic authentication) from the
//! runner parameters; `method` (default `POST` with a body, else `GET`), `body`, `params` (the
//! query) and `timeout` (seconds, default 60) from the action's parameters; the
//! `X-Stanley-Action` header names the action, as StackStorm sends it. The result is
//! `{status_code, body, parsed, headers}`, succeeded for 200–206, else failed.
//!
//! Differences, on purpose: the destination must be granted to the action's pack
//! (`[packs.<pack>] http_allow`; the pack need not declare `capabilities.http` in `pack.yaml`,
//! since the action's metadata names its URL), and every address check of the sandbox applies
//! (Squall's own listeners and special addresses refused); `http_proxy`, `https_proxy`,
//! `verify_ssl_cert: false` and file uploads (`file_name`, `file_content`, `file_path`) are
//! refused with a message naming the parameter: certificates are always verified and requests
//! go straight to the granted host.

use crate::Runner;
use crate::commands::{Refusal, Start};
use serde_json::{Map, Value};
use squall_core::capability::HttpPolicy;
use squall_core::{Execution, Ref, RunnerType};
use squall_store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The action whose component runs every `http-request` action.
pub(crate) const HTTP_COMPONENT: &str = "core.http";

/// StackStorm's default request timeout, seconds (`HttpRunner._timeout`).
const DEFAULT_TIMEOUT: f64 = 60.0;

/// Time the execution gets beyond the request's own timeout (connecting, reading the body,
/// the sandbox's start), so that a slow server ends as the request's timeout.
const SLACK: Duration = Duration::from_secs(5);

impl Runner {
    /// Runs an `http-request` execution; see the module docs.
    ///
    /// # Errors
    /// Store failures only.
    pub(crate) async fn run_http(
        &self,
        mut execution: Execution,
        cancel: CancellationToken,
    ) -> Result<Execution, StoreError> {
        let Some(start) = self.start_command(&mut execution) else {
            return self.action_gone(execution).await;
        };
        let Start {
            registry,
            mut resolved,
            grants,
            runner_params,
            action_params,
            ..
        } = start;
        let component = HTTP_COMPONENT.parse::<Ref>().ok().and_then(|r| {
            registry
                .resolve(&r)
                .filter(|c| c.action.runner_type == RunnerType::Wasm)
        });
        let Some(component) = component else {
            let refusal = Refusal::Failed(format!(
                "the http-request runner runs the core pack's HTTP component ({HTTP_COMPONENT}), \
                 which is not loaded"
            ));
            return self.refuse(execution, refusal).await;
        };
        let (params, request_timeout) = match request(&execution, &runner_params, &action_params) {
            Ok(p) => p,
            Err(refusal) => return self.refuse(execution, refusal).await,
        };
        let max = registry.config().limits.max.timeout;
        resolved.limits.timeout = resolved
            .limits
            .timeout
            .max(request_timeout.saturating_add(SLACK))
            .min(max);
        execution.limits = Some(resolved.limits);
        resolved.http = Arc::new(HttpPolicy {
            pack: execution.action.pack.clone(),
            requested: grants.http_allow.clone(),
            granted: grants.http_allow,
        });
        self.run_component(execution, cancel, resolved, &component.action, params)
            .await
    }
}

/// The component's parameters (`packs/core/actions/http.yaml`) for the execution, and the
/// request's timeout.
///
/// # Errors
/// A parameter Squall does not honour, named.
fn request(
    execution: &Execution,
    runner: &Map<String, Value>,
    action: &Map<String, Value>,
) -> Result<(Value, Duration), Refusal> {
    let given = |name: &str| {
        runner
            .get(name)
            .or_else(|| action.get(name))
            .filter(|v| !v.is_null() && *v != "")
    };
    for (name, why) in [
        (
            "http_proxy",
            "proxies are not supported: requests go straight to the granted host",
        ),
        (
            "https_proxy",
            "proxies are not supported: requests go straight to the granted host",
        ),
        ("file_name", "file uploads are not supported"),
        ("file_content", "file uploads are not supported"),
        ("file_path", "file uploads are not supported"),
        (
            "auth",
            "use username and password, or an Authorization header",
        ),
    ] {
        if given(name).is_some() {
            return Err(Refusal::Failed(format!("parameter {name:?}: {why}")));
        }
    }
    if runner.get("verify_ssl_cert") == Some(&Value::Bool(false)) {
        return Err(Refusal::Failed(
            "parameter \"verify_ssl_cert\": false is not supported: certificates are always \
             verified"
                .into(),
        ));
    }
    let Some(url) = runner
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    else {
        return Err(Refusal::Failed("URL must be specified.".into()));
    };
    let mut headers = match runner.get("headers") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(h)) => h.clone(),
        Some(other) => {
            return Err(Refusal::Failed(format!(
                "parameter \"headers\" must be an object, not {other}"
            )));
        }
    };
    let has = |headers: &Map<String, Value>, name: &str| {
        headers.keys().any(|k| k.eq_ignore_ascii_case(name))
    };
    if let Some(Value::Object(cookies)) = runner.get("cookies")
        && !cookies.is_empty()
        && !has(&headers, "cookie")
    {
        let line = cookies
            .iter()
            .map(|(k, v)| format!("{k}={}", squall_core::local_runner::python_str(v)))
            .collect::<Vec<_>>()
            .join("; ");
        headers.insert("Cookie".into(), Value::String(line));
    }
    if !has(&headers, "x-stanley-action") {
        headers.insert(
            "X-Stanley-Action".into(),
            Value::String(execution.action.name.clone()),
        );
    }
    let timeout = match action.get("timeout") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT,
        Some(v) => v
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| {
                Refusal::Failed(format!(
                    "parameter \"timeout\" must be a number of seconds, not {v}"
                ))
            })?,
    };
    let mut params = Map::new();
    params.insert("url".into(), Value::String(url.to_string()));
    params.insert("headers".into(), Value::Object(headers));
    params.insert("timeout".into(), Value::from(timeout));
    params.insert(
        "allow_redirects".into(),
        Value::Bool(runner.get("allow_redirects") == Some(&Value::Bool(true))),
    );
    for name in ["username", "password"] {
        if let Some(Value::String(v)) = runner.get(name) {
            params.insert(name.into(), Value::String(v.clone()));
        }
    }
    if let Some(Value::String(m)) = action.get("method") {
        params.insert("method".into(), Value::String(m.clone()));
    }
    match action.get("body") {
        None | Some(Value::Null) => {}
        Some(Value::String(b)) => {
            params.insert("body".into(), Value::String(b.clone()));
        }
        // StackStorm sends an object body as JSON (`_cast_object`, then `json.dumps`).
        Some(other) => {
            params.insert("body".into(), Value::String(other.to_string()));
        }
    }
    match action.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(q)) => {
            params.insert("params".into(), Value::Object(q.clone()));
        }
        Some(other) => {
            return Err(Refusal::Failed(format!(
                "parameter \"params\" must be an object, not {other}"
            )));
        }
    }
    Ok((
        Value::Object(params),
        Duration::try_from_secs_f64(timeout).unwrap_or(Duration::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn execution() -> Execution {
        let dir = tempfile::tempdir().unwrap();
        let action = squall_core::Action::parse(
            "name: health\nrunner_type: http-request\nparameters:\n  url: {default: \"http://x/\"}\n",
            "ops",
            dir.path(),
            &dir.path().join("health.yaml"),
        )
        .unwrap();
        Execution::new(&action, Map::new(), "tester", jiff::Timestamp::now())
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn st2_parameters_become_one_request() {
        let (params, timeout) = request(
            &execution(),
            &obj(
                json!({"url": "https://api.example.com/v1", "headers": {"Accept": "json"},
                        "cookies": {"a": 1, "b": "x"}, "allow_redirects": false,
                        "verify_ssl_cert": true, "username": "u", "password": "p"}),
            ),
            &obj(json!({"method": "PUT", "body": {"k": [1]}, "params": {"q": "1"}, "timeout": 5})),
        )
        .unwrap();
        assert_eq!(
            params,
            json!({"url": "https://api.example.com/v1",
                   "headers": {"Accept": "json", "Cookie": "a=1; b=x", "X-Stanley-Action": "health"},
                   "timeout": 5.0, "allow_redirects": false, "username": "u", "password": "p",
                   "method": "PUT", "body": "{\"k\":[1]}", "params": {"q": "1"}})
        );
        assert_eq!(timeout, Duration::from_secs(5));
        let (params, timeout) =
            request(&execution(), &obj(json!({"url": "http://x/"})), &Map::new()).unwrap();
        assert_eq!(params["timeout"], 60.0);
        assert_eq!(timeout, Duration::from_secs(60));
        assert!(
            params.get("method").is_none(),
            "the component picks GET or POST"
        );
    }

    #[test]
    fn what_squall_does_not_honour_is_refused_by_name() {
        for (runner, action, named) in [
            (
                json!({"url": "http://x/", "http_proxy": "http://p:3128"}),
                json!({}),
                "http_proxy",
            ),
            (
                json!({"url": "http://x/", "verify_ssl_cert": false}),
                json!({}),
                "verify_ssl_cert",
            ),
            (
                json!({"url": "http://x/"}),
                json!({"file_path": "/etc/passwd"}),
                "file_path",
            ),
            (
                json!({"url": "http://x/"}),
                json!({"timeout": "soon"}),
                "timeout",
            ),
            (
                json!({"url": "http://x/", "headers": "x"}),
                json!({}),
                "headers",
            ),
        ] {
            let Err(Refusal::Failed(message)) = request(&execution(), &obj(runner), &obj(action))
            else {
                panic!("{named} accepted");
            };
            assert!(message.contains(&format!("{named:?}")), "{message}");
        }
        let Err(Refusal::Failed(message)) = request(&execution(), &Map::new(), &Map::new()) else {
            panic!("no url accepted");
        };
        assert_eq!(message, "URL must be specified.");
    }
}
