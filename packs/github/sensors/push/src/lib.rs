//! `github.PushSensor`: receives GitHub webhooks at `POST /api/v1/webhooks/github` and emits
//! `github.push` for each verified push.
//!
//! Every request must carry GitHub's `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of
//! the raw body keyed with the webhook's secret (GitHub's "Validating webhook deliveries"), the
//! secret being the pack config's `webhook_secret` (`configs/github.yaml`). The signature is
//! compared in constant time. Answers, always JSON:
//!
//! | request | status | body | emits |
//! |---|---|---|---|
//! | no `webhook_secret` configured | 401 | `{"faultstring": ...}` | nothing |
//! | signature missing, malformed or wrong | 401 | `{"faultstring": ...}` | nothing |
//! | no `X-GitHub-Event` header, or a push body that does not parse | 400 | `{"faultstring": ...}` | nothing |
//! | `X-GitHub-Event: ping` | 200 | `{"pong": true}` | nothing |
//! | `X-GitHub-Event: push` | 202 | `{"accepted": "push", "commits": N}` | one `github.push` |
//! | any other event | 202 | `{"ignored": "<event>"}` | nothing |
//!
//! The body may be `application/json` or `application/x-www-form-urlencoded` (GitHub's two
//! content types; the latter carries the JSON in the `payload` field). The `github.push` payload:
//! `{repository, ref, before, after, pusher, commits: [{id, message, author, url, timestamp}],
//! head_commit}` — `repository` is the full name (`owner/repo`), `pusher` and each `author` are
//! names, `head_commit` is a commit of the same shape or `null` (a deleted branch). A commit's
//! `author`, `url` or `timestamp` missing from GitHub's payload is `null`.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use squall_plugin::Error;
use squall_plugin::sensor::{self, Sensor, SensorContext, WebhookRequest, WebhookResponse};

/// The trigger type this sensor emits.
const TRIGGER: &str = "github.push";

/// GitHub's signature header (names arrive in lower case).
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// GitHub's event name header.
const EVENT_HEADER: &str = "x-github-event";

/// The pack config (see `config.schema.yaml`).
#[derive(Debug, Default, Deserialize)]
struct Config {
    #[serde(default)]
    webhook_secret: Option<String>,
}

/// What to answer one request, and what to emit.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
    /// The `github.push` payload to emit, if any.
    emit: Option<Value>,
}

impl Answer {
    fn fault(status: u16, message: impl Into<String>) -> Answer {
        Answer {
            status,
            body: json!({"faultstring": message.into()}),
            emit: None,
        }
    }

    fn ok(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body,
            emit: None,
        }
    }
}

/// Checks `X-Hub-Signature-256` (`header`, if the request had one) against `body`.
///
/// # Errors
/// A message for the 401 answer: missing, not `sha256=<hex>`, or not matching.
fn verify(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), String> {
    let given = header
        .ok_or("missing X-Hub-Signature-256 header (is the webhook's secret set on GitHub?)")?;
    let hex_sig = given
        .trim()
        .strip_prefix("sha256=")
        .ok_or("X-Hub-Signature-256 must be sha256=<hex>")?;
    let sig = hex::decode(hex_sig).map_err(|_| "X-Hub-Signature-256 is not hex".to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| format!("webhook_secret cannot key HMAC-SHA256: {e}"))?;
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| {
        "X-Hub-Signature-256 does not match the body (wrong secret or altered body)".to_string()
    })
}

/// A push event as GitHub sends it; only the fields the trigger carries.
#[derive(Debug, Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    reference: String,
    before: String,
    after: String,
    repository: Repository,
    pusher: Person,
    #[serde(default)]
    commits: Vec<GitCommit>,
    #[serde(default)]
    head_commit: Option<GitCommit>,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Debug, Deserialize)]
struct Person {
    name: String,
}

/// A commit as GitHub sends it. GitHub always sends every field; only `id` and `message` are
/// required here, so an abbreviated payload (a proxy's, an old GitHub Enterprise's) still maps.
#[derive(Debug, Deserialize)]
struct GitCommit {
    id: String,
    message: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    author: Option<Person>,
}

/// One commit of the `github.push` payload; a field GitHub's payload left out is `null`.
#[derive(Debug, Serialize)]
struct Commit {
    id: String,
    message: String,
    author: Option<String>,
    url: Option<String>,
    timestamp: Option<String>,
}

impl From<GitCommit> for Commit {
    fn from(c: GitCommit) -> Commit {
        Commit {
            id: c.id,
            message: c.message,
            author: c.author.map(|a| a.name),
            url: c.url,
            timestamp: c.timestamp,
        }
    }
}

/// The `github.push` payload.
#[derive(Debug, Serialize)]
struct Push {
    repository: String,
    #[serde(rename = "ref")]
    reference: String,
    before: String,
    after: String,
    pusher: String,
    commits: Vec<Commit>,
    head_commit: Option<Commit>,
}

impl From<PushEvent> for Push {
    fn from(e: PushEvent) -> Push {
        Push {
            repository: e.repository.full_name,
            reference: e.reference,
            before: e.before,
            after: e.after,
            pusher: e.pusher.name,
            commits: e.commits.into_iter().map(Commit::from).collect(),
            head_commit: e.head_commit.map(Commit::from),
        }
    }
}

/// The event's JSON text: the body, or its `payload` field when form-encoded.
fn event_json(request: &WebhookRequest) -> Result<Vec<u8>, String> {
    let form = request
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Ok(request.body.clone());
    }
    form_urlencoded::parse(&request.body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned().into_bytes())
        .ok_or_else(|| "form-encoded body has no payload field".to_string())
}

/// Maps a push event body to the `github.push` payload.
///
/// # Errors
/// A message naming the JSON problem (syntax or a missing field).
fn push_payload(request: &WebhookRequest) -> Result<Value, String> {
    let text = event_json(request)?;
    let event: PushEvent = serde_json::from_slice(&text)
        .map_err(|e| format!("push event body is not GitHub's push payload: {e}"))?;
    serde_json::to_value(Push::from(event)).map_err(|e| e.to_string())
}

/// Decides the answer to one request, given the configured secret.
fn handle(secret: Option<&str>, request: &WebhookRequest) -> Answer {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Answer::fault(
            401,
            "github.PushSensor has no webhook secret: set webhook_secret in configs/github.yaml",
        );
    };
    if let Err(message) = verify(secret, request.header(SIGNATURE_HEADER), &request.body) {
        return Answer::fault(401, message);
    }
    match request.header(EVENT_HEADER).map(str::trim) {
        None | Some("") => Answer::fault(400, "missing X-GitHub-Event header"),
        Some("ping") => Answer::ok(200, json!({"pong": true})),
        Some("push") => match push_payload(request) {
            Ok(payload) => {
                let commits = payload["commits"].as_array().map_or(0, Vec::len);
                Answer {
                    status: 202,
                    body: json!({"accepted": "push", "commits": commits}),
                    emit: Some(payload),
                }
            }
            Err(message) => Answer::fault(400, message),
        },
        Some(other) => Answer::ok(202, json!({"ignored": other})),
    }
}

struct PushSensor;

impl Sensor for PushSensor {
    fn webhook(ctx: &SensorContext, request: WebhookRequest) -> Result<WebhookResponse, Error> {
        let config: Config = ctx.config()?;
        let answer = handle(config.webhook_secret.as_deref(), &request);
        if let Some(payload) = &answer.emit {
            sensor::emit(TRIGGER, payload)?;
        }
        Ok(WebhookResponse::new(answer.status, answer.body))
    }
}

squall_plugin::sensor!(PushSensor);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "It's a Secret to Everybody";

    /// GitHub's documented test vector ("Validating webhook deliveries").
    const GITHUB_BODY: &str = "Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn sign(body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn request(event: Option<&str>, signature: Option<&str>, body: &str) -> WebhookRequest {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(e) = event {
            headers.push(("x-github-event".into(), e.into()));
        }
        if let Some(s) = signature {
            headers.push(("x-hub-signature-256".into(), s.into()));
        }
        WebhookRequest {
            url: "github".into(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn signed(event: &str, body: &str) -> WebhookRequest {
        request(Some(event), Some(&sign(body.as_bytes())), body)
    }

    fn commit(id: &str) -> Value {
        json!({
            "id": id,
            "tree_id": "t",
            "message": format!("commit {id}"),
            "timestamp": "2025-01-02T03:04:05+01:00",
            "url": format!("https://github.com/octo/hello/commit/{id}"),
            "author": {"name": "Mona", "email": "mona@example.com", "username": "octocat"},
            "committer": {"name": "Mona", "email": "mona@example.com"},
            "added": [], "removed": [], "modified": ["README.md"],
        })
    }

    fn push_body(ids: &[&str]) -> String {
        let commits: Vec<Value> = ids.iter().map(|id| commit(id)).collect();
        json!({
            "ref": "refs/heads/main",
            "before": "0000",
            "after": ids.last().copied().unwrap_or("0000"),
            "created": false, "deleted": false, "forced": false,
            "repository": {"id": 1, "name": "hello", "full_name": "octo/hello"},
            "pusher": {"name": "octocat", "email": "octocat@example.com"},
            "sender": {"login": "octocat"},
            "head_commit": ids.last().map(|id| commit(id)),
            "commits": commits,
        })
        .to_string()
    }

    #[test]
    fn verify_accepts_githubs_test_vector_and_rejects_the_rest() {
        let body = GITHUB_BODY.as_bytes();
        let good = GITHUB_SIGNATURE;
        let flipped = GITHUB_SIGNATURE.replace("757107", "757108");
        for (secret, header, body, expected) in [
            (SECRET, Some(good), body, Ok(())),
            (SECRET, Some(&format!(" {good} ")[..]), body, Ok(())),
            (
                SECRET,
                Some(good),
                &b"Hello, World?"[..],
                Err("does not match"),
            ),
            ("another secret", Some(good), body, Err("does not match")),
            (SECRET, Some(&flipped[..]), body, Err("does not match")),
            (SECRET, Some(&good[..21]), body, Err("does not match")),
            (SECRET, Some(&good[7..]), body, Err("must be sha256=<hex>")),
            (SECRET, Some("sha1=0123"), body, Err("must be sha256=<hex>")),
            (SECRET, Some("sha256=zz"), body, Err("not hex")),
            (SECRET, None, body, Err("missing X-Hub-Signature-256")),
        ] {
            let got = verify(secret, header, body);
            match expected {
                Ok(()) => assert_eq!(got, Ok(()), "{header:?}"),
                Err(part) => {
                    let e = got.expect_err(part);
                    assert!(e.contains(part), "{header:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn handle_answers_each_case_of_the_table() {
        let push = push_body(&["a1", "b2"]);
        for (name, secret, req, status, body_has, emits) in [
            (
                "no secret",
                None,
                signed("push", &push),
                401,
                "no webhook secret",
                false,
            ),
            (
                "empty secret",
                Some(""),
                signed("push", &push),
                401,
                "no webhook secret",
                false,
            ),
            (
                "unsigned",
                Some(SECRET),
                request(Some("push"), None, &push),
                401,
                "missing",
                false,
            ),
            (
                "bad sig",
                Some(SECRET),
                request(Some("push"), Some(GITHUB_SIGNATURE), &push),
                401,
                "does not match",
                false,
            ),
            (
                "no event",
                Some(SECRET),
                request(None, Some(&sign(push.as_bytes())), &push),
                400,
                "X-GitHub-Event",
                false,
            ),
            (
                "ping",
                Some(SECRET),
                signed("ping", r#"{"zen":"Keep it logically awesome."}"#),
                200,
                "pong",
                false,
            ),
            (
                "push",
                Some(SECRET),
                signed("push", &push),
                202,
                "accepted",
                true,
            ),
            (
                "bad push",
                Some(SECRET),
                signed("push", r#"{"ref": 5}"#),
                400,
                "not GitHub's push payload",
                false,
            ),
            (
                "issues",
                Some(SECRET),
                signed("issues", "{}"),
                202,
                "ignored",
                false,
            ),
        ] {
            let a = handle(secret, &req);
            assert_eq!(a.status, status, "{name}: {a:?}");
            assert!(a.body.to_string().contains(body_has), "{name}: {a:?}");
            assert_eq!(a.emit.is_some(), emits, "{name}: {a:?}");
        }
    }

    #[test]
    fn push_maps_commits_and_counts_them() {
        let a = handle(Some(SECRET), &signed("push", &push_body(&["a1", "b2"])));
        assert_eq!(a.body, json!({"accepted": "push", "commits": 2}));
        let c = |id: &str| {
            json!({
                "id": id,
                "message": format!("commit {id}"),
                "author": "Mona",
                "url": format!("https://github.com/octo/hello/commit/{id}"),
                "timestamp": "2025-01-02T03:04:05+01:00",
            })
        };
        assert_eq!(
            a.emit.unwrap(),
            json!({
                "repository": "octo/hello",
                "ref": "refs/heads/main",
                "before": "0000",
                "after": "b2",
                "pusher": "octocat",
                "commits": [c("a1"), c("b2")],
                "head_commit": c("b2"),
            })
        );
    }

    #[test]
    fn a_deleted_branch_has_no_commits_and_a_null_head_commit() {
        let a = handle(Some(SECRET), &signed("push", &push_body(&[])));
        assert_eq!(a.body, json!({"accepted": "push", "commits": 0}));
        let p = a.emit.unwrap();
        assert_eq!(
            (p["commits"].clone(), p["head_commit"].clone()),
            (json!([]), Value::Null)
        );
    }

    #[test]
    fn an_abbreviated_head_commit_maps_with_nulls() {
        let mut body: Value = serde_json::from_str(&push_body(&["d4"])).unwrap();
        body["head_commit"] = json!({"id": "d4", "message": "short"});
        let a = handle(Some(SECRET), &signed("push", &body.to_string()));
        assert_eq!(
            a.emit.unwrap()["head_commit"],
            json!({"id": "d4", "message": "short", "author": null, "url": null, "timestamp": null})
        );
    }

    #[test]
    fn form_encoded_bodies_carry_the_event_in_payload() {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &push_body(&["c3"]))
            .finish();
        let mut req = signed("push", &body);
        req.headers[0].1 = "application/x-www-form-urlencoded".into();
        let a = handle(Some(SECRET), &req);
        assert_eq!(a.status, 202, "{a:?}");
        assert_eq!(a.emit.unwrap()["after"], "c3");
        let mut empty = signed("push", "a=b");
        empty.headers[0].1 = "application/x-www-form-urlencoded; charset=utf-8".into();
        let a = handle(Some(SECRET), &empty);
        assert_eq!(a.status, 400, "{a:?}");
        assert!(a.body.to_string().contains("no payload field"), "{a:?}");
    }
}
