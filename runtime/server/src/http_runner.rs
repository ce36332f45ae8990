//! StackStorm's `http-request` runner (`contrib/runners/http_runner/http_runner.py`): an
//! action of any pack whose metadata names a URL (the `url` runner parameter), run as one HTTP
//! request by the `core` pack's HTTP component (`core.http`, the same WebAssembly component
//! and sandbox), under the **action's own pack's** `http_allow` grant.
//!
//! The request is StackStorm's: `url`, `headers`, `cookies` (sent as one `Cookie` header),
//! `allow_redirects` (default false), `username`/`password` (basic authentication),
//! `url_hosts_blacklist`/`url_hosts_whitelist` (the URL's host checked against them, with
//! st2's messages) from the runner parameters; `method` (default `POST` with a body, else
//! `GET`), `body` (text as given; any value as JSON under `Content-Type: application/json`, an
//! object form-encoded otherwise, as `requests` sends a dict), `params` (the query) and
//! `timeout` (seconds, default 60) from the action's parameters; the `X-Stanley-Action` header
//! names the action, as StackStorm sets it. The result is `{status_code, body, parsed,
//! headers}`, succeeded for 200–206, else failed.
//!
//! Differences, on purpose: the destination must be granted to the action's pack
//! (`[packs.<pack>] http_allow`; when the pack also declares `capabilities.http` in
//! `pack.yaml`, the destination must match that too — otherwise the action's metadata naming
//! its URL is the request), and every address check of the sandbox applies (Squall's own
//! listeners and special addresses refused); the execution's wall time is the request's
//! `timeout` plus a few seconds, never above the action's `limits.timeout` nor
//! `[limits.max] timeout`; `http_proxy`, `https_proxy`, `verify_ssl_cert: false`, file uploads
//! (`file_name`, `file_content`, `file_path`) and `auth` (which st2 hands to `requests`, where
//! a string cannot work) are refused with a message naming the parameter: certificates are
//! always verified and requests go straight to the granted host. A request that times out
//! fails (st2 records `timeout`), and the `User-Agent` is Squall's.

use crate::Runner;
use crate::commands::{Refusal, Start};
use serde_json::{Map, Value};
use squall_core::capability::HttpPolicy;
use squall_core::local_runner::python_str;
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
        let Some(Start {
            registry,
            mut resolved,
            grants,
            runner_params,
            action_params,
            ..
        }) = self.start_command(&mut execution)
        else {
            return self.action_gone(execution).await;
        };
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
            .min(resolved.action.limits.timeout.unwrap_or(max))
            .min(max);
        execution.limits = Some(resolved.limits);
        resolved.http = stackstorm_http_policy(&resolved.http, grants.http_allow);
        self.run_component(execution, cancel, resolved, &component.action, params)
            .await
    }
}

/// The outbound HTTP policy of StackStorm content (`http-request` and `python-script`
/// actions), which cannot declare Squall's `capabilities.http` in its `pack.yaml`: the
/// operator's `granted` alone decides, narrowed by the pack's own `capabilities.http` when it
/// does declare one.
pub(crate) fn stackstorm_http_policy(
    policy: &HttpPolicy,
    granted: Vec<squall_core::capability::HostPattern>,
) -> Arc<HttpPolicy> {
    let requested = if policy.requested.is_empty() {
        granted.clone()
    } else {
        policy.requested.clone()
    };
    Arc::new(HttpPolicy {
        pack: policy.pack.clone(),
        requested,
        granted,
    })
}

/// The component's parameters (`packs/core/actions/http.yaml`) for the execution, and the
/// request's timeout.
///
/// # Errors
/// A parameter Squall does not honour, or a URL host the action's lists refuse, named.
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
    check_url_hosts(url, runner)?;
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
            .map(|(k, v)| format!("{k}={}", python_str(v)))
            .collect::<Vec<_>>()
            .join("; ");
        headers.insert("Cookie".into(), Value::String(line));
    }
    // As st2, the action's name always (a caller's header of that name is replaced).
    headers.retain(|k, _| !k.eq_ignore_ascii_case("x-stanley-action"));
    headers.insert(
        "X-Stanley-Action".into(),
        Value::String(execution.action.name.clone()),
    );
    // st2's `float(timeout)`: a number or its text.
    let timeout = match action.get("timeout") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT,
        Some(v) => v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|t: &f64| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| {
                Refusal::Failed(format!(
                    "parameter \"timeout\" must be a number of seconds, not {v}"
                ))
            })?,
    };
    let json_content = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type")
            && v.as_str().map(str::trim) == Some("application/json")
    });
    let body = match action.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => Some(b.clone()),
        // Under a JSON content type st2 sends any value as JSON (`_cast_object`, `json.dumps`).
        Some(other) if json_content => Some(other.to_string()),
        // Otherwise `requests` form-encodes a dict.
        Some(Value::Object(fields)) => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                form.append_pair(k, &python_str(v));
            }
            if !has(&headers, "content-type") {
                headers.insert(
                    "Content-Type".into(),
                    Value::String("application/x-www-form-urlencoded".into()),
                );
            }
            Some(form.finish())
        }
        Some(other) => {
            return Err(Refusal::Failed(format!(
                "parameter \"body\" must be text or an object (or any JSON value with \
                 Content-Type: application/json), not {other}"
            )));
        }
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
    if let Some(body) = body {
        params.insert("body".into(), Value::String(body));
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

/// StackStorm's `url_hosts_blacklist` and `url_hosts_whitelist` (`HTTPClient._is_url_*`): the
/// URL's host, without port and brackets, must not be in the first / must be in the second;
/// both at once is an error.
///
/// # Errors
/// StackStorm's messages.
fn check_url_hosts(url: &str, runner: &Map<String, Value>) -> Result<(), Refusal> {
    let list = |name: &str| -> Vec<String> {
        match runner.get(name) {
            Some(Value::Array(items)) => items.iter().map(python_str).collect(),
            _ => Vec::new(),
        }
    };
    let (black, white) = (list("url_hosts_blacklist"), list("url_hosts_whitelist"));
    if !black.is_empty() && !white.is_empty() {
        return Err(Refusal::Failed(
            "\"url_hosts_blacklist\" and \"url_hosts_whitelist\" parameters are mutually \
             exclusive. Only one should be provided."
                .into(),
        ));
    }
    if black.is_empty() && white.is_empty() {
        return Ok(());
    }
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        .unwrap_or_default();
    if black.contains(&host) {
        return Err(Refusal::Denied(format!("URL \"{url}\" is blacklisted")));
    }
    if !white.is_empty() && !white.contains(&host) {
        return Err(Refusal::Denied(format!("URL \"{url}\" is not whitelisted")));
    }
    Ok(())
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
                json!({"url": "https://api.example.com/v1", "headers": {"Accept": "json", "Content-Type": "application/json"},
                        "cookies": {"a": 1, "b": "x"}, "allow_redirects": false,
                        "verify_ssl_cert": true, "username": "u", "password": "p"}),
            ),
            &obj(json!({"method": "PUT", "body": {"k": [1]}, "params": {"q": "1"}, "timeout": 5})),
        )
        .unwrap();
        assert_eq!(
            params,
            json!({"url": "https://api.example.com/v1",
                   "headers": {"Accept": "json", "Content-Type": "application/json", "Cookie": "a=1; b=x", "X-Stanley-Action": "health"},
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

        // An object body without a JSON content type is form-encoded, as requests sends a
        // dict; a caller's X-Stanley-Action is replaced; a timeout may be text.
        let (params, timeout) = request(
            &execution(),
            &obj(json!({"url": "http://x/", "headers": {"x-stanley-action": "forged"}})),
            &obj(json!({"body": {"a": "1 2", "b": true}, "timeout": "2.5"})),
        )
        .unwrap();
        assert_eq!(params["body"], "a=1+2&b=True");
        assert_eq!(
            params["headers"],
            json!({"X-Stanley-Action": "health", "Content-Type": "application/x-www-form-urlencoded"})
        );
        assert_eq!(timeout, Duration::from_millis(2500));
    }

    #[test]
    fn url_host_lists_as_st2() {
        let check = |runner: Value| check_url_hosts("https://[::1]:8443/x", &obj(runner));
        assert!(check(json!({})).is_ok());
        assert!(check(json!({"url_hosts_whitelist": ["::1"]})).is_ok());
        let Err(Refusal::Denied(m)) = check(json!({"url_hosts_blacklist": ["::1"]})) else {
            panic!("blacklisted host accepted");
        };
        assert_eq!(m, "URL \"https://[::1]:8443/x\" is blacklisted");
        let Err(Refusal::Denied(m)) = check(json!({"url_hosts_whitelist": ["example.com"]})) else {
            panic!("host outside the whitelist accepted");
        };
        assert_eq!(m, "URL \"https://[::1]:8443/x\" is not whitelisted");
        assert!(matches!(
            check(json!({"url_hosts_whitelist": ["a"], "url_hosts_blacklist": ["b"]})),
            Err(Refusal::Failed(_))
        ));
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
            (json!({"url": "http://x/"}), json!({"body": [1, 2]}), "body"),
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
