//! End-to-end tests of `squall serve`: the real binary on a random port, real webhook payloads,
//! assertions through the REST API and the event stream; timers; kill -9 and restart; bad
//! input; API keys.

mod support;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{
    HttpStub, Response, SQUALL, Server, copy_dir, hostile_action, new_pack, repo, write_squall_toml,
};

/// A scratch directory with a `tests` pack (the hostile component as `tests.hostile`, which
/// echoes, sleeps, ...) plus `rules`, and `squall.toml`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(config: &str, rules: &[(&str, &str)], idempotent: bool) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let pack = new_pack(dir.path(), "tests", "capabilities: {http: [\"*:*\"]}\n");
        std::fs::create_dir_all(pack.join("rules")).unwrap();
        hostile_action(
            &pack,
            "hostile",
            &format!(
                "idempotent: {idempotent}\n\
                 parameters:\n  mode: {{type: string, default: echo}}\n  ms: {{type: integer}}\n  \
                 tag: {{type: string}}\n  commits: {{type: array}}\nlimits: {{timeout: 20s}}\n"
            ),
        );
        for (name, yaml) in rules {
            std::fs::write(pack.join(format!("rules/{name}.yaml")), yaml).unwrap();
        }
        write_squall_toml(dir.path(), config);
        Site { dir }
    }

    fn serve(&self, bind: &str) -> Server {
        Server::start_with(self.dir.path(), bind, &[])
    }
}

fn count(list: &Value, status: &str) -> usize {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == status)
        .count()
}

const GITHUB_RULE: &str = "name: on_push\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: github-rule}}\n\
criteria:\n  trigger.headers['X-Github-Event']: {type: equals, pattern: push}\n  trigger.body.ref: {type: equals, pattern: refs/heads/main}\n\
action:\n  ref: tests.hostile\n  parameters:\n    tag: \"{{ trigger.body.repository.full_name }}@{{ trigger.body.after[:7] }}\"\n    commits: \"{{ trigger.body.commits }}\"\n";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn alertmanager_and_github_webhooks_run_rules_end_to_end() {
    let api = HttpStub::start(|_| Response::json(200, &json!({"ok": true})));
    let port = api.port;
    let example = repo().join("examples/auto-remediation/packs");
    let site = Site::new(
        "[packs.remediation]\nhttp_allow = [\"127.0.0.1:*\"]\n[packs.core]\nhttp_allow = [\"127.0.0.1:*\"]\n\
         [webhooks.github-rule]\nhmac_secret = \"gh-secret\"\n",
        &[("on_push", GITHUB_RULE)],
        false,
    );
    // Add the example's remediation pack next to the tests pack.
    copy_dir(
        &example.join("remediation"),
        &site.dir.path().join("packs/remediation"),
    );
    let server = site.serve("127.0.0.1:0");
    for (k, v) in [
        ("remediation_endpoint", format!("http://127.0.0.1:{port}")),
        ("chat_webhook", format!("http://127.0.0.1:{port}/chat")),
    ] {
        let resp = server
            .request(reqwest::Method::PUT, &format!("/api/v1/keys/{k}"))
            .json(&json!({"value": v}))
            .send()
            .unwrap();
        assert!(resp.status().is_success());
    }

    // Alertmanager: the critical alert restarts nginx and the chat hears about it; the warning
    // matches no rule.
    let alert =
        std::fs::read_to_string(repo().join("examples/auto-remediation/alerts/nginx-down.json"))
            .unwrap();
    let resp = server.post("/api/v1/webhooks/alertmanager", &alert);
    assert_eq!(resp.status(), 202);
    let echoed: Value = resp.json().unwrap();
    assert_eq!(echoed["commonLabels"]["service"], "nginx");
    let warning =
        std::fs::read_to_string(repo().join("examples/auto-remediation/alerts/disk-warning.json"))
            .unwrap();
    assert_eq!(
        server
            .post("/api/v1/webhooks/alertmanager", &warning)
            .status(),
        202
    );

    let executions = server.wait_for("/api/v1/executions", 30, |v| count(v, "succeeded") == 2);
    let restart = executions
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"]["ref"] == "remediation.restart_service")
        .unwrap();
    assert_eq!(
        restart["parameters"],
        json!({"service": "nginx", "host": "web-01", "endpoint": format!("http://127.0.0.1:{port}")})
    );
    assert_eq!(
        restart["context"]["rule"]["ref"],
        "remediation.restart_on_critical"
    );
    assert_eq!(restart["result"]["restarted"], true);
    let seen: Vec<(String, String)> = api
        .requests()
        .into_iter()
        .map(|r| (r.path.clone(), r.text()))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let restart_call: Value =
        serde_json::from_str(&seen.iter().find(|(p, _)| p == "/restart").unwrap().1).unwrap();
    assert_eq!(
        (
            restart_call["service"].as_str(),
            restart_call["host"].as_str()
        ),
        (Some("nginx"), Some("web-01"))
    );
    let chat: Value =
        serde_json::from_str(&seen.iter().find(|(p, _)| p == "/chat").unwrap().1).unwrap();
    assert!(
        chat["text"]
            .as_str()
            .unwrap()
            .starts_with("Squall restarted nginx on web-01: succeeded"),
        "{chat}"
    );

    let instances = server.get("/api/v1/triggerinstances?trigger=core.st2.webhook");
    assert_eq!(instances.as_array().unwrap().len(), 2);
    assert!(
        instances
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "processed")
    );
    // Both executions completed, so both fired the action trigger (the chat rule's criteria
    // only matched the restart's).
    let actiontriggers = server.wait_for(
        "/api/v1/triggerinstances?trigger=core.st2.generic.actiontrigger",
        30,
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    );
    let mut fired: Vec<&str> = actiontriggers
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["payload"]["action_ref"].as_str().unwrap())
        .collect();
    fired.sort();
    assert_eq!(fired, ["core.http", "remediation.restart_service"]);
    let enforcements =
        server.get("/api/v1/ruleenforcements?rule_ref=remediation.restart_on_critical");
    assert_eq!(enforcements.as_array().unwrap().len(), 1);
    assert_eq!(enforcements[0]["execution_id"], restart["id"]);

    // GitHub: signed push to main runs tests.on_push with the commits; a bad signature is 401.
    // (Url `github-rule`: the shipped github pack's sensor takes `/api/v1/webhooks/github`.)
    let push = std::fs::read(repo().join("tests/fixtures/webhooks/github-push.json")).unwrap();
    let signed = |sig: &str| {
        server
            .request(reqwest::Method::POST, "/api/v1/webhooks/github-rule")
            .header("content-type", "application/json")
            .header("X-GitHub-Event", "push")
            .header("X-Hub-Signature-256", sig)
            .body(push.clone())
            .send()
            .unwrap()
    };
    assert_eq!(signed("sha256=00").status(), 401);
    assert_eq!(signed(&sign("wrong", &push)).status(), 401);
    assert_eq!(signed(&sign("gh-secret", &push)).status(), 202);
    let runs = server.wait_for("/api/v1/executions?action=tests.hostile", 30, |v| {
        count(v, "succeeded") == 1
    });
    assert_eq!(runs[0]["parameters"]["tag"], "acme/billing@0d1a26e");
    assert_eq!(
        runs[0]["parameters"]["commits"][0]["message"],
        "Fix rounding in invoice totals"
    );
    let github = server.get("/api/v1/triggerinstances?trigger=core.st2.webhook&limit=1");
    assert_eq!(github[0]["trigger_parameters"]["url"], "github-rule");
    assert_eq!(github[0]["payload"]["headers"]["X-Github-Event"], "push");

    let total = server
        .request(reqwest::Method::GET, "/api/v1/executions?limit=1")
        .send()
        .unwrap();
    assert_eq!(total.headers()["X-Total-Count"], "3");
    let openapi = server.get("/api/v1/openapi.json");
    assert!(openapi["paths"]["/api/v1/webhooks/{url}"]["post"].is_object());
}

#[test]
fn bad_webhooks_are_refused_and_nothing_is_stored() {
    let rule = "name: r\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: hook}}\naction: {ref: tests.hostile}\n";
    let site = Site::new(
        "[server]\nmax_body = \"4KiB\"\n[webhooks.signed]\nhmac_secret = \"k\"\n",
        &[
            ("r", rule),
            (
                "s",
                &rule
                    .replace("name: r", "name: s")
                    .replace("url: hook", "url: signed"),
            ),
        ],
        false,
    );
    let server = site.serve("127.0.0.1:0");
    let fault = |resp: reqwest::blocking::Response, status: u16| {
        assert_eq!(resp.status(), status);
        let v: Value = resp.json().unwrap();
        v["faultstring"].as_str().unwrap().to_string()
    };
    let malformed = fault(
        server.post("/api/v1/webhooks/hook", "{\"alerts\": [1, 2"),
        400,
    );
    assert!(malformed.contains("not valid JSON"), "{malformed}");
    let unknown = fault(server.post("/api/v1/webhooks/nope", "{}"), 404);
    assert!(unknown.contains("\"nope\""), "{unknown}");
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(10_000));
    let too_big = fault(server.post("/api/v1/webhooks/hook", &huge), 413);
    assert!(too_big.contains("4096 byte limit"), "{too_big}");
    let unsigned = fault(server.post("/api/v1/webhooks/signed", "{}"), 401);
    assert!(unsigned.contains("X-Hub-Signature-256"), "{unsigned}");
    let bad_generic = fault(
        server.post(
            "/api/v1/webhooks/st2",
            r#"{"trigger": "nope.nope", "payload": {}}"#,
        ),
        404,
    );
    assert!(
        bad_generic.contains("trigger type nope.nope not found"),
        "{bad_generic}"
    );
    assert_eq!(server.get("/api/v1/triggerinstances"), json!([]));
    assert_eq!(server.get("/api/v1/executions"), json!([]));
    assert_eq!(server.post("/api/v1/webhooks/hook", "{}").status(), 202);
    server.wait_for("/api/v1/executions", 20, |v| count(v, "succeeded") == 1);
}

#[test]
fn timers_fire_on_schedule_and_dates_once() {
    let date = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4))
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    let timer = |name: &str, trigger: &str, params: &str| {
        format!(
            "name: {name}\nenabled: true\ntrigger: {{type: {trigger}, parameters: {params}}}\naction: {{ref: tests.hostile, parameters: {{tag: {name}}}}}\n"
        )
    };
    let rules = [
        (
            "every",
            timer(
                "every",
                "core.st2.IntervalTimer",
                "{unit: seconds, delta: 1}",
            ),
        ),
        (
            "cron",
            timer("cron", "core.st2.CronTimer", "{second: \"*/2\"}"),
        ),
        (
            "once",
            timer(
                "once",
                "core.st2.DateTimer",
                &format!("{{date: \"{date}\"}}"),
            ),
        ),
    ];
    let rules: Vec<(&str, &str)> = rules.iter().map(|(n, y)| (*n, y.as_str())).collect();
    let site = Site::new("", &rules, false);
    let started = Instant::now();
    let server = site.serve("127.0.0.1:0");
    let tags = |v: &Value, tag: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["parameters"]["tag"] == tag && e["status"] == "succeeded")
            .count()
    };
    let all = server.wait_for("/api/v1/executions?limit=100", 15, |v| {
        tags(v, "every") >= 3 && tags(v, "cron") >= 2 && tags(v, "once") == 1
    });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2900),
        "3 one-second ticks took {took:?}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let later = server.get("/api/v1/executions?limit=100");
    assert_eq!(tags(&later, "once"), 1, "a date timer fires once");
    assert!(
        tags(&later, "every") > tags(&all, "every"),
        "the interval keeps firing"
    );
    let payload = server.get("/api/v1/triggerinstances?trigger=core.st2.IntervalTimer&limit=1");
    assert_eq!(
        payload[0]["payload"]["schedule"],
        json!({"unit": "seconds", "delta": 1})
    );
}

#[test]
fn kill_9_loses_nothing_accepted() {
    let rule = "name: work\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: work}}\n\
                action: {ref: tests.hostile, parameters: {mode: sleep, ms: 150, tag: \"{{ trigger.body.n }}\"}}\n";
    let site = Site::new("[server]\nconcurrency = 1\n", &[("work", rule)], true);
    let server = site.serve("127.0.0.1:0");
    let accepted = 12;
    for n in 0..accepted {
        assert_eq!(
            server
                .post("/api/v1/webhooks/work", &format!("{{\"n\": \"{n}\"}}"))
                .status(),
            202
        );
    }
    // Some have run, one is running, the rest are queued or not yet matched.
    std::thread::sleep(Duration::from_millis(400));
    server.kill_9();

    let server = site.serve("127.0.0.1:0");
    let done = server.wait_for("/api/v1/executions?limit=100", 60, |v| {
        count(v, "succeeded") == accepted
    });
    let mut tags: Vec<String> = done
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["parameters"]["tag"].as_str().unwrap().to_string())
        .collect();
    tags.sort_by_key(|t| t.parse::<u32>().unwrap());
    assert_eq!(
        tags,
        (0..accepted).map(|n| n.to_string()).collect::<Vec<_>>(),
        "each accepted event ran exactly once"
    );
    let instances = server.get("/api/v1/triggerinstances?limit=100");
    assert_eq!(count(&instances, "processed"), accepted);
    let enforcements = server.get("/api/v1/ruleenforcements?limit=100");
    assert_eq!(enforcements.as_array().unwrap().len(), accepted);
}

#[test]
fn running_work_of_a_killed_server_is_abandoned_with_a_reason() {
    let rule = "name: slow\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: slow}}\n\
                action: {ref: tests.hostile, parameters: {mode: sleep, ms: 10000}}\n";
    let site = Site::new("", &[("slow", rule)], false);
    let server = site.serve("127.0.0.1:0");
    assert_eq!(server.post("/api/v1/webhooks/slow", "{}").status(), 202);
    server.wait_for("/api/v1/executions", 20, |v| count(v, "running") == 1);
    server.kill_9();
    let server = site.serve("127.0.0.1:0");
    let list = server.wait_for("/api/v1/executions", 20, |v| count(v, "abandoned") == 1);
    let reason = list[0]["result"]["error"].as_str().unwrap();
    assert!(
        reason.contains("Squall stopped while this execution was running"),
        "{reason}"
    );
}

#[test]
fn a_starting_server_leaves_work_of_a_live_cli_alone() {
    let site = Site::new("", &[], false);
    // No server: the CLI runs the execution in-process and waits for it.
    let mut cli = Command::new(SQUALL)
        .current_dir(site.dir.path())
        .env("SQUALL_API_URL", "http://127.0.0.1:9")
        .args(["run", "tests.hostile", "mode=sleep", "ms=2500", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // A server starting now must not abandon or re-run the CLI's execution.
    let server = site.serve("127.0.0.1:0");
    let list = server.wait_for("/api/v1/executions", 20, |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    });
    assert_ne!(list[0]["status"], "abandoned", "{list:#}");
    let status = cli.wait().unwrap();
    let mut out = String::new();
    cli.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(status.success(), "{out}");
    let record: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(record["status"], "succeeded");
    let after = server.get(&format!(
        "/api/v1/executions/{}",
        record["id"].as_str().unwrap()
    ));
    assert_eq!(after["status"], "succeeded");
    assert_eq!(
        server.get("/api/v1/executions").as_array().unwrap().len(),
        1,
        "it ran once"
    );
}

#[test]
fn sigterm_finishes_running_work_and_exits_cleanly() {
    let site = Site::new("", &[], false);
    let server = site.serve("127.0.0.1:0");
    let resp = server.post(
        "/api/v1/executions",
        r#"{"action": "tests.hostile", "parameters": {"mode": "sleep", "ms": 700}}"#,
    );
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.wait_for(&format!("/api/v1/executions/{id}"), 20, |v| {
        v["status"] == "running"
    });
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let server = site.serve("127.0.0.1:0");
    assert_eq!(
        server.get(&format!("/api/v1/executions/{id}"))["status"],
        "succeeded"
    );
}

#[test]
fn executions_via_the_api_stream_and_cancel() {
    let site = Site::new("", &[], false);
    let server = site.serve("127.0.0.1:0");
    let rx = server.stream_lines("/stream/v1/stream?events=st2.execution__update", 20);

    let bad = server.post(
        "/api/v1/executions",
        r#"{"action": "tests.hostile", "parameters": {"ms": "soon"}}"#,
    );
    assert_eq!(bad.status(), 400);
    assert!(
        bad.json::<Value>().unwrap()["faultstring"]
            .as_str()
            .unwrap()
            .contains("\"ms\"")
    );
    assert_eq!(
        server
            .post("/api/v1/executions", r#"{"action": "tests.nope"}"#)
            .status(),
        404
    );

    let resp = server.post(
        "/api/v1/executions",
        r#"{"action": "tests.hostile", "parameters": {"mode": "sleep", "ms": 30000}}"#,
    );
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.wait_for(&format!("/api/v1/executions/{id}"), 20, |v| {
        v["status"] == "running"
    });
    let canceled: Value = server
        .request(reqwest::Method::DELETE, &format!("/api/v1/executions/{id}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["result"]["message"], "Action canceled by user.");
    let again = server
        .request(reqwest::Method::DELETE, &format!("/api/v1/executions/{id}"))
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            saw.push(line.clone());
            if line.starts_with("data:") && line.contains(&id) && line.contains("\"canceled\"") {
                break;
            }
        }
    }
    assert!(
        saw.iter().any(|l| l == "event: st2.execution__update"),
        "{saw:?}"
    );
    assert!(
        saw.iter()
            .any(|l| l.contains(&id) && l.contains("\"running\"")),
        "{saw:?}"
    );
    assert!(
        saw.iter()
            .any(|l| l.contains(&id) && l.contains("\"canceled\"")),
        "{saw:?}"
    );
}

#[test]
fn rules_enable_and_disable_through_the_cli_and_survive_restarts() {
    let rule = "name: r\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: hook}}\naction: {ref: tests.hostile}\n";
    let site = Site::new("", &[("r", rule)], false);
    let server = site.serve("127.0.0.1:0");
    let cli = |args: &[&str]| {
        let out = Command::new(SQUALL)
            .current_dir(site.dir.path())
            .env("SQUALL_API_URL", &server.url)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(cli(&["rule", "disable", "tests.r"]).contains("false"));
    assert_eq!(
        server.post("/api/v1/webhooks/hook", "{}").status(),
        404,
        "a disabled rule's webhook is gone"
    );
    drop(server);
    let server = site.serve("127.0.0.1:0");
    assert_eq!(server.get("/api/v1/rules/tests.r")["enabled"], false);
    let cli = |args: &[&str]| {
        let out = Command::new(SQUALL)
            .current_dir(site.dir.path())
            .env("SQUALL_API_URL", &server.url)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(cli(&["rule", "enable", "tests.r"]).contains("true"));
    assert_eq!(server.post("/api/v1/webhooks/hook", "{}").status(), 202);
    server.wait_for("/api/v1/executions", 20, |v| count(v, "succeeded") == 1);
    assert!(cli(&["execution", "list"]).contains("tests.hostile"));
    assert!(cli(&["rule-enforcement", "list"]).contains("tests.r"));
    assert!(cli(&["trigger-instance", "list"]).contains("core.st2.webhook"));
    assert!(cli(&["webhook", "list"]).contains("hook"));
    assert!(cli(&["trigger", "list"]).contains("core.st2.CronTimer"));
}

#[test]
fn a_listener_beyond_loopback_requires_an_api_key() {
    let site = Site::new("", &[], false);
    let mut server = site.serve("0.0.0.0:0");
    let refused = server
        .request(reqwest::Method::GET, "/api/v1/executions")
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401);
    let wrong = server
        .request(reqwest::Method::GET, "/api/v1/executions")
        .header("St2-Api-Key", "nope")
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let out = Command::new(SQUALL)
        .current_dir(site.dir.path())
        .args(["apikey", "create", "--user", "ci"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(key.len(), 64);
    server.key = Some(key.clone());
    assert_eq!(server.get("/api/v1/executions"), json!([]));
    let via_query = server
        .http
        .get(format!("{}/api/v1/actions?st2-api-key={key}", server.url))
        .send()
        .unwrap();
    assert_eq!(via_query.status(), 200);
    let listed = Command::new(SQUALL)
        .current_dir(site.dir.path())
        .args(["apikey", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("ci") && !listed.contains(&key), "{listed}");
}

/// The README tour from a checkout (issue 12, part 1): the server it starts
/// (`squall serve --packs packs:examples/auto-remediation/packs:examples/cicd-canary/packs`)
/// has the examples' rules, so the Alertmanager webhook it posts is taken (it was a 404); and
/// the `configs/monitor.yaml` its sensor step writes does not reach the examples' own servers
/// (`squall --config examples/<example>/squall.toml serve`), whose monitor sensor used to fail
/// on the tour's ungranted target at every poll.
#[test]
fn the_readme_tour_serves_the_examples_and_leaves_them_alone() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("packs"), &dir.path().join("packs"));
    copy_dir(&repo().join("examples"), &dir.path().join("examples"));
    let packs =
        std::ffi::OsStr::new("packs:examples/auto-remediation/packs:examples/cicd-canary/packs");
    let server = Server::start_with(dir.path(), "127.0.0.1:0", &[("SQUALL_PACKS", packs)]);
    let alert = std::fs::read_to_string(
        dir.path()
            .join("examples/auto-remediation/alerts/nginx-down.json"),
    )
    .unwrap();
    let resp = server.post("/api/v1/webhooks/alertmanager", &alert);
    assert_eq!(resp.status(), 202, "{}", resp.text().unwrap());
    let rules = server.get("/api/v1/rules");
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ref"] == "deploy.on_push"),
        "{rules:#}"
    );
    drop(server);

    std::fs::create_dir_all(dir.path().join("configs")).unwrap();
    std::fs::write(
        dir.path().join("configs/monitor.yaml"),
        "targets:\n  - {name: web, url: \"http://127.0.0.1:8080/\"}\n",
    )
    .unwrap();
    for example in ["auto-remediation", "cicd-canary"] {
        let log = dir.path().join(format!("{example}.log"));
        let config = dir.path().join(format!("examples/{example}/squall.toml"));
        let server = Server::start_with_stderr(
            dir.path(),
            "127.0.0.1:0",
            &[("SQUALL_CONFIG", config.as_os_str())],
            std::process::Stdio::from(std::fs::File::create(&log).unwrap()),
        );
        // The monitor sensor polls once at start: with no target of its own, nothing to check.
        let sensor = server.wait_for("/api/v1/sensortypes/monitor.StatusSensor", 20, |s| {
            s["status"]["calls"].as_u64() >= Some(1)
        });
        assert_eq!(sensor["status"]["failures"], 0, "{sensor:#}");
        drop(server);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !text.contains("monitor"),
            "{example}'s server saw the tour's monitor config:\n{text}"
        );
    }
}
