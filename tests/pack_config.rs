//! End-to-end tests of pack configs (`config.schema.yaml` + `configs/<pack>.yaml`): a broken
//! config is reported at load naming file and field (golden file), an action's parameter default
//! `{{ config_context.greeting }}` gets the configured value (itself rendered from a secret in
//! the datastore with `decrypt_kv`) through the real server, and the config API and CLI mask
//! secrets.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use support::{SQUALL, Server, copy_dir, repo};

/// Runs `squall args...` in `dir` with `env` (nothing else leaks in from the environment).
fn squall(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(SQUALL)
        .current_dir(dir)
        .env_remove("SQUALL_CONFIG")
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_PACKS")
        .env_remove("SQUALL_LOG")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `core`'s echo component, for scratch actions (`{"stdout": message}`).
fn echo_wasm() -> std::path::PathBuf {
    repo().join("packs/core/actions/echo.wasm")
}

#[test]
fn broken_configs_are_reported_with_file_and_field_and_the_packs_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = repo().join("tests/fixtures/broken-configs");
    copy_dir(&fixture.join("packs"), &dir.path().join("packs"));
    copy_dir(&fixture.join("configs"), &dir.path().join("configs"));
    std::fs::copy(
        echo_wasm(),
        dir.path().join("packs/badvalues/actions/greet.wasm"),
    )
    .unwrap();
    // Nothing listens on port 1: commands run in-process over the local directories; paths
    // relative to the working directory, so messages name `packs/...` as a user sees them.
    let env = [
        ("SQUALL_PACKS", "packs"),
        ("SQUALL_DATA_DIR", "data"),
        ("SQUALL_API_URL", "http://127.0.0.1:1"),
    ];
    let out = squall(dir.path(), &env, &["action", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let golden = fixture.join("expected-errors.txt");
    let stderr = text(&out.stderr);
    if std::env::var_os("SQUALL_BLESS").is_some() {
        std::fs::write(&golden, &stderr).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        stderr, expected,
        "stderr differs from the golden file (rerun with SQUALL_BLESS=1 to accept)"
    );
    assert!(!stderr.contains("12345"), "a secret value leaked: {stderr}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["ref"], "badvalues.greet", "the pack still loads");

    // The config as loaded: defaults filled in, secrets masked, problems on stderr, exit 2.
    let out = squall(dir.path(), &env, &["pack", "config", "noconfig", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["values"], json!({"timeout": 30}));
    assert!(
        text(&out.stderr).contains(
            "error: configs/noconfig.yaml: token: is required and config.schema.yaml gives it no default"
        ),
        "{}",
        text(&out.stderr)
    );

    // Its action runs when given what it needs; it is refused when its default needs the
    // invalid config, naming the problem.
    let out = squall(
        dir.path(),
        &env,
        &["run", "badvalues.greet", "message=hi", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = squall(dir.path(), &env, &["run", "badvalues.greet", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "config_context: the config of pack \"badvalues\" is invalid: configs/badvalues.yaml: "
        ),
        "{err}"
    );
}

/// A scratch site: the pack `greeter` (action `greeter.greet`: `core`'s echo component with
/// `message` defaulting to the configured greeting) with a config schema and config.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("packs/greeter");
    std::fs::create_dir_all(pack.join("actions")).unwrap();
    std::fs::create_dir_all(dir.path().join("configs")).unwrap();
    std::fs::write(pack.join("pack.yaml"), "name: greeter\n").unwrap();
    std::fs::copy(echo_wasm(), pack.join("actions/greet.wasm")).unwrap();
    std::fs::write(
        pack.join("actions/greet.yaml"),
        "name: greet\nrunner_type: wasm\nentry_point: greet.wasm\nparameters:\n  \
         message: {type: string, default: \"{{ config_context.greeting }}{{ config_context.suffix }}\"}\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("config.schema.yaml"),
        "greeting: {type: string, required: true}\n\
         suffix: {type: string, default: \"!\"}\n\
         api_token: {type: string, required: true, secret: true}\n\
         servers:\n  type: array\n  items:\n    type: object\n    properties:\n      \
         host: {type: string, required: true}\n      password: {type: string, secret: true}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("configs/greeter.yaml"),
        "greeting: \"hello from {{ st2kv.system.site | decrypt_kv }}\"\napi_token: hunter2\n\
         servers: [{host: db-01, password: pa55}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("squall.toml"),
        "data_dir = \"data\"\npacks_dirs = [\"packs\"]\n",
    )
    .unwrap();
    dir
}

#[test]
fn config_context_reaches_parameter_defaults_and_the_api_masks_secrets() {
    let dir = site();
    let server = Server::start(dir.path());
    let (status, body) = server.send(
        reqwest::Method::PUT,
        "/api/v1/keys/site",
        Some(json!({"name": "site", "value": "squall", "secret": true})),
    );
    assert_eq!(status, 200, "{body}");

    let config = server.get("/api/v1/configs/greeter");
    assert_eq!(
        config["values"],
        json!({
            "greeting": "hello from {{ st2kv.system.site | decrypt_kv }}",
            "suffix": "!",
            "api_token": "********",
            "servers": [{"host": "db-01", "password": "********"}],
        }),
        "templates as written, defaults filled in, secrets masked"
    );
    assert_eq!(config["errors"], json!([]));
    let shown = server.get("/api/v1/configs/greeter?show_secrets=true");
    assert_eq!(shown["values"]["api_token"], "hunter2");
    assert_eq!(shown["values"]["servers"][0]["password"], "pa55");
    let all = server.get("/api/v1/configs");
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["pack"], "greeter");
    assert_eq!(all[0]["values"]["api_token"], "********");
    let (status, body) = server.send(reqwest::Method::GET, "/api/v1/configs/nope", None);
    assert_eq!(status, 404, "{body}");
    let openapi = server.get("/api/v1/openapi.json");
    for path in ["/api/v1/configs", "/api/v1/configs/{pack}"] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} not in the OpenAPI doc"
        );
    }

    let (status, created) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "greeter.greet"})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let done = server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        ["succeeded", "failed", "timeout"].contains(&e["status"].as_str().unwrap_or(""))
    });
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["parameters"]["message"], "hello from squall!");
    assert_eq!(done["result"]["stdout"], "hello from squall!");

    // The CLI against the server: a table with secrets masked, or shown when asked.
    let env = [("SQUALL_API_URL", server.url.as_str())];
    let out = squall(dir.path(), &env, &["pack", "config", "greeter"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains("api_token") && table.contains("********") && !table.contains("hunter2"),
        "{table}"
    );
    let out = squall(
        dir.path(),
        &env,
        &["pack", "config", "greeter", "--show-secrets", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["values"]["api_token"], "hunter2");
    let out = squall(dir.path(), &env, &["pack", "config", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
