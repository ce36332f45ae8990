//! End-to-end tests of the datastore through the real `squall serve` and CLI: secrets never
//! leave in plaintext (store file, API, CLI, server log) unless decryption is asked for; rule
//! and workflow templates read and decrypt keys; `core.st2.key_value_pair.value_change` fires
//! rules; keys expire; user-scope keys stay apart; a wrong or missing key file is named.

mod support;

use serde_json::{Value, json};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{SQUALL, Server, new_pack, write_squall_toml};

/// A scratch directory: `squall.toml` (data in `data/`), the shipped packs and a pack `kv`
/// with `rules` and workflow `actions`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(rules: &[(&str, &str)], workflows: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let pack = new_pack(dir.path(), "kv", "");
        std::fs::create_dir_all(pack.join("rules")).unwrap();
        std::fs::create_dir_all(pack.join("actions/workflows")).unwrap();
        for (name, yaml) in rules {
            std::fs::write(pack.join(format!("rules/{name}.yaml")), yaml).unwrap();
        }
        for (name, yaml) in workflows {
            std::fs::write(
                pack.join(format!("actions/{name}.yaml")),
                format!(
                    "name: {name}\nrunner_type: orquesta\nentry_point: workflows/{name}.yaml\n"
                ),
            )
            .unwrap();
            std::fs::write(pack.join(format!("actions/workflows/{name}.yaml")), yaml).unwrap();
        }
        // Pack `kv`'s templates may decrypt `tok` (and no other secret).
        write_squall_toml(dir.path(), "[packs.kv]\nsecret_keys = [\"tok\"]\n");
        Site { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn key_file(&self) -> PathBuf {
        self.data().join("keys/datastore.key")
    }

    fn serve(&self) -> Server {
        Server::start(self.dir.path())
    }

    /// `squall serve` logging at debug level (most of what it could ever print) to `log`.
    fn serve_logging(&self, log: &Path) -> Server {
        let file = std::fs::File::create(log).unwrap();
        Server::start_with_stderr(
            self.dir.path(),
            "127.0.0.1:0",
            &[(
                "SQUALL_LOG",
                OsStr::new("debug,cranelift_codegen=info,wasmtime=info,wasmtime_cranelift=info"),
            )],
            Stdio::from(file),
        )
    }

    /// `squall <args>` as `user`, against `server`, or in-process over `data/` when `None`.
    fn squall(&self, server: Option<&Server>, user: &str, args: &[&str]) -> Output {
        // Nothing listens on port 1: the CLI runs the API in-process.
        let url = server.map_or("http://127.0.0.1:1", |s| s.url.as_str());
        Command::new(SQUALL)
            .current_dir(self.dir.path())
            .env_remove("SQUALL_CONFIG")
            .env_remove("SQUALL_DATA_DIR")
            .env_remove("SQUALL_PACKS")
            .env_remove("SQUALL_LOG")
            .env("SQUALL_API_URL", url)
            .env("USER", user)
            .args(args)
            .output()
            .unwrap()
    }

    /// [`Site::squall`], asserting exit code 0; returns stdout.
    fn ok(&self, server: Option<&Server>, user: &str, args: &[&str]) -> String {
        let out = self.squall(server, user, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Calls `probe` every 50 ms until it gives a value; panics naming `what` after `secs`.
fn poll<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn put(server: &Server, name: &str, body: Value) -> Value {
    let (status, v) = server.send(
        reqwest::Method::PUT,
        &format!("/api/v1/keys/{name}"),
        Some(body),
    );
    assert_eq!(status, 200, "PUT {name}: {v}");
    v
}

// Distinctive plaintexts, so a match anywhere is a leak and not a coincidence.
const IN_PROCESS: &str = "pl41n-in-process-7f3a9c";
const THROUGH_CLI: &str = "pl41n-through-cli-2b8e41";
const THROUGH_API: &str = "pl41n-through-api-c05d17";
const USER_SECRET: &str = "pl41n-user-secret-99ab3e";

#[test]
fn secrets_stay_ciphertext_everywhere_unless_decryption_is_asked_for() {
    let site = Site::new(&[], &[]);
    // No server yet: the CLI runs the API in-process, and must encrypt just the same.
    site.ok(
        None,
        "ops",
        &["key", "set", "early", IN_PROCESS, "--encrypt"],
    );
    let log = site.dir.path().join("server.log");
    let server = site.serve_logging(&log);
    site.ok(
        Some(&server),
        "ops",
        &["key", "set", "tok", THROUGH_CLI, "--encrypt"],
    );
    site.ok(
        Some(&server),
        "ops",
        &[
            "key",
            "set",
            "mine",
            USER_SECRET,
            "--encrypt",
            "--scope",
            "user",
        ],
    );
    let stored = put(
        &server,
        "api",
        json!({"value": THROUGH_API, "secret": true}),
    );
    assert_eq!(stored["encrypted"], true);
    assert_eq!(stored["secret"], true);
    assert_ne!(stored["value"], THROUGH_API);
    put(&server, "plain", json!({"value": "visible"}));
    let secrets = [
        ("early", IN_PROCESS, "system"),
        ("tok", THROUGH_CLI, "system"),
        ("api", THROUGH_API, "system"),
        ("mine", USER_SECRET, "user"),
    ];

    // The data directory holds no plaintext: not the store file, nor anything else.
    let data_files = files(&site.data());
    assert!(data_files.iter().any(|f| f.ends_with("squall.redb")));
    for file in &data_files {
        let bytes = std::fs::read(file).unwrap();
        for (_, plain, _) in secrets {
            assert!(!contains(&bytes, plain), "{plain} in {}", file.display());
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(site.key_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The API: ciphertext unless decrypt=true.
    let list = server.get("/api/v1/keys?scope=all&user=ops");
    let listed = list.to_string();
    for (name, plain, scope) in secrets {
        assert!(!listed.contains(plain), "{plain} in {listed}");
        let path = format!("/api/v1/keys/{name}?scope={scope}&user=ops");
        let kv = server.get(&path);
        assert_eq!(
            (kv["secret"].clone(), kv["encrypted"].clone()),
            (json!(true), json!(true)),
            "{kv}"
        );
        assert!(!kv.to_string().contains(plain), "{kv}");
        let shown = server.get(&format!("{path}&decrypt=true"));
        assert_eq!(shown["value"], plain, "{shown}");
        assert_eq!(shown["encrypted"], false);
        assert_eq!(shown["secret"], true);
    }
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "early", "plain", "tok", "mine"]);
    let decrypted = server
        .get("/api/v1/keys?scope=all&user=ops&decrypt=true")
        .to_string();
    for (_, plain, _) in secrets {
        assert!(decrypted.contains(plain), "{plain} not in {decrypted}");
    }

    // The CLI: ciphertext unless --decrypt.
    for args in [
        vec!["key", "get", "tok"],
        vec!["key", "get", "tok", "--json"],
        vec!["key", "list"],
        vec!["key", "list", "--json"],
        vec!["key", "list", "--scope", "all"],
        vec!["key", "get", "mine", "--scope", "user"],
    ] {
        let out = site.squall(Some(&server), "ops", &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        for (_, plain, _) in secrets {
            assert!(!contains(&out.stdout, plain), "{args:?} printed {plain}");
            assert!(!contains(&out.stderr, plain), "{args:?} printed {plain}");
        }
    }
    let got = site.ok(Some(&server), "ops", &["key", "get", "tok", "--decrypt"]);
    assert_eq!(got, format!("{THROUGH_CLI}\n"));
    let got = site.ok(
        Some(&server),
        "ops",
        &["key", "get", "mine", "--scope", "user", "--decrypt"],
    );
    assert_eq!(got, format!("{USER_SECRET}\n"));
    let all = site.ok(
        Some(&server),
        "ops",
        &["key", "list", "--scope", "all", "--decrypt", "--json"],
    );
    for (_, plain, _) in secrets {
        assert!(all.contains(plain), "{plain} not in {all}");
    }

    // The server's log, at debug level, never saw a plaintext.
    assert_eq!(server.terminate().code(), Some(0));
    let logged = std::fs::read(&log).unwrap();
    assert!(contains(&logged, "datastore key set"), "{}", text(&logged));
    for (_, plain, _) in secrets {
        assert!(!contains(&logged, plain), "{plain} in the server log");
    }

    // A replaced key file: decrypting fails naming the file; the value is never shown.
    let key_file = site.key_file();
    let original = std::fs::read(&key_file).unwrap();
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    let out = site.squall(None, "ops", &["key", "get", "tok", "--decrypt"]);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("cannot decrypt st2kv.system.tok"), "{err}");
    assert!(
        err.contains("datastore key file data/keys/datastore.key"),
        "{err}"
    );
    assert!(!err.contains(THROUGH_CLI));
    // A missing one is named and not recreated over the stored secrets.
    std::fs::remove_file(&key_file).unwrap();
    let out = site.squall(None, "ops", &["key", "set", "new", "x", "--encrypt"]);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "datastore key file data/keys/datastore.key is missing, but 4 secret keys are stored"
        ),
        "{err}"
    );
    assert!(!key_file.exists());
    // Plain keys keep working meanwhile; the restored file decrypts again.
    assert_eq!(site.ok(None, "ops", &["key", "get", "plain"]), "visible\n");
    std::fs::write(&key_file, &original).unwrap();
    let got = site.ok(None, "ops", &["key", "get", "early", "--decrypt"]);
    assert_eq!(got, format!("{IN_PROCESS}\n"));
}

const ON_CHANGE: &str = "name: on_change\nenabled: true\ntrigger: {type: core.st2.key_value_pair.value_change}\n\
criteria:\n  trigger.new_object.name: {type: equals, pattern: watched}\n\
action:\n  ref: core.echo\n  parameters:\n    message: \"{{ trigger.old_object.value }} -> {{ trigger.new_object.value }} \
with {{ st2kv.system.tok | decrypt_kv }} as {{ st2kv.user.editor }}\"\n";

const ON_OTHER: &str = "name: on_other\nenabled: true\ntrigger: {type: core.st2.key_value_pair.value_change}\n\
criteria:\n  trigger.new_object.name: {type: equals, pattern: poke}\n\
action:\n  ref: core.echo\n  parameters:\n    message: \"{{ st2kv.system.other | decrypt_kv }}\"\n";

const READ_KEYS: &str = r#"version: 1.0
tasks:
  read:
    action: core.echo
    input:
      message: "<% st2kv('user.editor') %>"
    next:
      - when: <% succeeded() %>
        publish:
          - editor: <% result().stdout %>
          - tok: "{{ st2kv('system.tok', decrypt=true) }}"
          - cipher: <% st2kv('system.tok') %>
        do: noop
output:
  - editor: <% ctx(editor) %>
  - tok: <% ctx(tok) %>
  - cipher: <% ctx(cipher) %>
"#;

fn executions_of(server: &Server, action: &str) -> Vec<Value> {
    server
        .get(&format!("/api/v1/executions?action={action}&limit=100"))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn templates_decrypt_secrets_and_value_changes_fire_rules() {
    let site = Site::new(
        &[("on_change", ON_CHANGE), ("on_other", ON_OTHER)],
        &[("read_keys", READ_KEYS)],
    );
    let server = site.serve();
    put(
        &server,
        "tok",
        json!({"value": "s3cret-token", "secret": true}),
    );
    // Rules run as the system user, `squall`: its user-scope key.
    put(
        &server,
        "editor",
        json!({"value": "nano", "scope": "user", "user": "squall"}),
    );
    put(&server, "watched", json!({"value": "one"}));
    put(&server, "watched", json!({"value": "two"}));

    let echoed = poll(30, "the value_change rule's execution", || {
        executions_of(&server, "core.echo")
            .into_iter()
            .find(|e| e["status"] == "succeeded")
    });
    assert_eq!(
        echoed["result"]["stdout"], "one -> two with s3cret-token as nano",
        "{echoed}"
    );
    assert_eq!(echoed["context"]["rule"]["ref"], "kv.on_change");

    // Setting the same value again is no change; another value is. A secret's change fires
    // too, its payload keeping the ciphertext.
    put(&server, "watched", json!({"value": "two"}));
    put(&server, "watched", json!({"value": "three"}));
    put(
        &server,
        "tok",
        json!({"value": "n3w-token", "secret": true}),
    );
    let instances = server
        .get("/api/v1/triggerinstances?trigger=core.st2.key_value_pair.value_change&limit=100");
    let payloads: Vec<&Value> = instances
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["payload"])
        .collect();
    assert_eq!(payloads.len(), 3, "{instances:#}");
    let watched: Vec<(&str, &str)> = payloads
        .iter()
        .filter(|p| p["new_object"]["name"] == "watched")
        .map(|p| {
            (
                p["old_object"]["value"].as_str().unwrap(),
                p["new_object"]["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(watched.len(), 2);
    assert!(watched.contains(&("one", "two")) && watched.contains(&("two", "three")));
    let secret = payloads
        .iter()
        .find(|p| p["new_object"]["name"] == "tok")
        .unwrap();
    assert_eq!(secret["new_object"]["encrypted"], true);
    assert!(!secret.to_string().contains("n3w-token"), "{secret}");
    assert!(!secret.to_string().contains("s3cret-token"), "{secret}");
    // Nothing listens to create/update/delete: they are not recorded.
    for kind in ["create", "update", "delete"] {
        let list = server.get(&format!(
            "/api/v1/triggerinstances?trigger=core.st2.key_value_pair.{kind}"
        ));
        assert_eq!(list, json!([]), "{kind}");
    }
    poll(30, "the second rule execution", || {
        let done = executions_of(&server, "core.echo")
            .into_iter()
            .filter(|e| e["status"] == "succeeded")
            .count();
        (done == 2).then_some(())
    });

    // A secret the pack was not granted does not decrypt in its templates: the rule's
    // enforcement fails naming the grant, and the plaintext goes nowhere.
    put(
        &server,
        "other",
        json!({"value": "not-for-kv", "secret": true}),
    );
    put(&server, "poke", json!({"value": "1"}));
    put(&server, "poke", json!({"value": "2"}));
    let refused = poll(30, "the on_other enforcement", || {
        let list = server.get("/api/v1/ruleenforcements?rule_ref=kv.on_other");
        list.as_array().and_then(|a| a.first().cloned())
    });
    assert_eq!(refused["status"], "failed", "{refused:#}");
    let reason = refused["failure_reason"].as_str().unwrap();
    assert!(
        reason.contains("secret key st2kv.system.other is not granted to pack \"kv\""),
        "{reason}"
    );

    // Workflows read user keys of the user they run as, and decrypt on request.
    put(
        &server,
        "editor",
        json!({"value": "vim", "scope": "user", "user": "alice"}),
    );
    let (status, started) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "kv.read_keys", "parameters": {}, "user": "alice"})),
    );
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap();
    let done = server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        e["status"] == "succeeded" || e["status"] == "failed"
    });
    let output = &done["result"]["output"];
    assert_eq!(output["editor"], "vim", "{done:#}");
    assert_eq!(output["tok"], "n3w-token", "{done:#}");
    let cipher = output["cipher"].as_str().unwrap();
    assert!(
        cipher.len() > 40 && !cipher.contains("n3w-token"),
        "{cipher}"
    );
}

#[test]
fn keys_expire_and_user_keys_stay_apart() {
    let site = Site::new(&[], &[]);
    let server = site.serve();

    // TTL: visible, then gone from every read (3 s: the reads below take CLI starts on a
    // loaded machine).
    let set = site.ok(
        Some(&server),
        "ops",
        &["key", "set", "lease", "held", "--ttl", "3", "--json"],
    );
    let record: Value = serde_json::from_str(&set).unwrap();
    let expires = record["expire_timestamp"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.contains('T'), "{expires}");
    put(&server, "stays", json!({"value": "here"}));
    assert_eq!(
        site.ok(Some(&server), "ops", &["key", "get", "lease"]),
        "held\n"
    );
    poll(15, "the key to expire", || {
        let (status, _) = server.send(reqwest::Method::GET, "/api/v1/keys/lease", None);
        (status == 404).then_some(())
    });
    let out = site.squall(Some(&server), "ops", &["key", "get", "lease"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("key \"lease\" not found in st2kv.system"));
    let names: Vec<String> = server
        .get("/api/v1/keys")
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["stays"]);
    let (status, v) = server.send(
        reqwest::Method::PUT,
        "/api/v1/keys/short",
        Some(json!({"value": "x", "ttl": 0})),
    );
    assert_eq!(status, 400);
    assert!(v["faultstring"].as_str().unwrap().contains("ttl 0"), "{v}");

    // User scope: each user's `editor` is theirs; the system one is apart from both.
    site.ok(
        Some(&server),
        "alice",
        &["key", "set", "editor", "vim", "--scope", "user"],
    );
    site.ok(
        Some(&server),
        "bob",
        &["key", "set", "editor", "emacs", "--scope", "user"],
    );
    site.ok(Some(&server), "alice", &["key", "set", "editor", "nano"]);
    for (user, args, want) in [
        ("alice", vec!["--scope", "user"], "vim\n"),
        ("bob", vec!["--scope", "user"], "emacs\n"),
        ("alice", vec![], "nano\n"),
        ("bob", vec!["--scope", "system"], "nano\n"),
    ] {
        let mut all = vec!["key", "get", "editor"];
        all.extend(args);
        assert_eq!(site.ok(Some(&server), user, &all), want, "{user} {all:?}");
    }
    let out = site.squall(
        Some(&server),
        "carol",
        &["key", "get", "editor", "--scope", "user"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("key \"editor\" of user \"carol\" not found in st2kv.user"),
        "{}",
        text(&out.stderr)
    );
    let mine = site.ok(
        Some(&server),
        "alice",
        &["key", "list", "--scope", "user", "--json"],
    );
    let mine: Value = serde_json::from_str(&mine).unwrap();
    assert_eq!(
        mine,
        json!([{"name": "editor", "value": "vim", "scope": "st2kv.user", "user": "alice",
                "secret": false, "encrypted": false}])
    );
    let both = server.get("/api/v1/keys?scope=all&user=bob");
    let both: Vec<(&str, &str)> = both
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["scope"].as_str().unwrap(), k["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        both,
        [
            ("st2kv.system", "nano"),
            ("st2kv.system", "here"),
            ("st2kv.user", "emacs")
        ]
    );
    assert_eq!(server.get("/api/v1/keys/editor?user=bob")["value"], "emacs");
    let (status, v) = server.send(reqwest::Method::GET, "/api/v1/keys/editor?scope=pack", None);
    assert_eq!(status, 400);
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("invalid scope \"pack\""),
        "{v}"
    );

    site.ok(
        Some(&server),
        "alice",
        &["key", "delete", "editor", "--scope", "user"],
    );
    assert_eq!(
        site.ok(
            Some(&server),
            "bob",
            &["key", "get", "editor", "--scope", "user"]
        ),
        "emacs\n"
    );
    assert_eq!(
        site.ok(Some(&server), "bob", &["key", "get", "editor"]),
        "nano\n"
    );
    let (status, v) = server.send(
        reqwest::Method::DELETE,
        "/api/v1/keys/editor?user=alice",
        None,
    );
    assert_eq!(status, 404, "{v}");
}
