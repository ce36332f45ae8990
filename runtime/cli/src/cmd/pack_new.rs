//! `squall pack new NAME`: a new pack, in StackStorm's format, that builds, validates and runs
//! as written — an action, a polling sensor with its trigger type, a rule joining them, and a
//! test of the action's logic that runs with plain `python3 -m unittest` (no Squall, no
//! StackStorm needed: the action's work is a function the test calls).
//!
//! Languages: `python` (StackStorm's `python-script` actions and `PollingSensor`s, the format
//! StackStorm users bring) and `js` (the JavaScript SDK, `plugin-sdk/README.md`: the action and
//! the sensor are `index.js` modules that `squall pack build` makes components of; the test
//! runs with `node --test`) and `rust` (crates with the Rust SDK, `squall-plugin`, which is
//! not on a registry yet: the new pack gets this build's copy in `vendor/squall-plugin`).

use crate::Failure;
use std::path::Path;

/// The files of a new Python pack: `(path in the pack, text)`, `{pack}` standing for its ref.
const PYTHON: &[(&str, &str)] = &[
    (
        "pack.yaml",
        "---\n\
         ref: {pack}\n\
         name: {pack}\n\
         version: 0.1.0\n\
         description: '{pack}: made with squall pack new'\n\
         author: '{author}'\n\
         email: '{author}@localhost'\n\
         python_versions:\n\
         \x20 - '3'\n",
    ),
    (
        "requirements.txt",
        "# Python packages the pack's actions and sensors import, one per line as pip takes them\n\
         # (pure-Python ones: a package with C code and no WASI build fails `squall pack build`).\n\
         # StackStorm's environment (requests, six, pytz, simplejson, pyyaml, jinja2) is\n\
         # always there.\n",
    ),
    (
        "actions/lookup.yaml",
        "---\n\
         name: lookup\n\
         runner_type: python-script\n\
         entry_point: lookup.py\n\
         description: GETs http://<host>/ and says how the host answered\n\
         enabled: true\n\
         parameters:\n\
         \x20 host:\n\
         \x20   type: string\n\
         \x20   description: The host (and port) to ask, e.g. example.com\n\
         \x20   required: true\n\
         \x20 path:\n\
         \x20   type: string\n\
         \x20   default: /\n",
    ),
    (
        "actions/lookup.py",
        "import requests\n\
         \n\
         from st2common.runners.base_action import Action\n\
         \n\
         \n\
         def summarize(status, headers):\n\
         \x20   \"\"\"What the action returns for a response (tested in tests/test_lookup.py).\"\"\"\n\
         \x20   return {\"status\": status, \"ok\": 200 <= status < 400, \"server\": headers.get(\"Server\", \"\")}\n\
         \n\
         \n\
         class Lookup(Action):\n\
         \x20   def run(self, host, path):\n\
         \x20       # Outbound HTTP goes through Squall's host: grant it in squall.toml,\n\
         \x20       # [packs.{pack}] http_allow = [\"example.com\"].\n\
         \x20       try:\n\
         \x20           r = requests.get(\"http://%s%s\" % (host, path), timeout=10)\n\
         \x20       except requests.exceptions.ConnectionError as e:\n\
         \x20           return (False, {\"error\": str(e)})\n\
         \x20       self.logger.info(\"%s answered %d\", host, r.status_code)\n\
         \x20       return summarize(r.status_code, r.headers)\n",
    ),
    (
        "sensors/ticker.yaml",
        "---\n\
         class_name: Ticker\n\
         entry_point: ticker.py\n\
         description: Emits {pack}.tick every poll, counting in the datastore\n\
         enabled: true\n\
         poll_interval: 60\n\
         trigger_types:\n\
         \x20 - name: tick\n\
         \x20   description: One poll of {pack}.Ticker\n\
         \x20   payload_schema:\n\
         \x20     type: object\n\
         \x20     properties:\n\
         \x20       count:\n\
         \x20         type: integer\n\
         \x20     required: [count]\n",
    ),
    (
        "sensors/ticker.py",
        "from st2reactor.sensor.base import PollingSensor\n\
         \n\
         \n\
         class Ticker(PollingSensor):\n\
         \x20   def setup(self):\n\
         \x20       self._logger = self.sensor_service.get_logger(__name__)\n\
         \n\
         \x20   def poll(self):\n\
         \x20       # State that outlasts a poll lives in the datastore (kept when the poll succeeds).\n\
         \x20       count = int(self.sensor_service.get_value(\"count\") or 0) + 1\n\
         \x20       self.sensor_service.set_value(\"count\", str(count))\n\
         \x20       self._logger.info(\"tick %d\", count)\n\
         \x20       self.sensor_service.dispatch(trigger=\"{pack}.tick\", payload={\"count\": count})\n\
         \n\
         \x20   def cleanup(self):\n\
         \x20       pass\n\
         \n\
         \x20   def add_trigger(self, trigger):\n\
         \x20       pass\n\
         \n\
         \x20   def update_trigger(self, trigger):\n\
         \x20       pass\n\
         \n\
         \x20   def remove_trigger(self, trigger):\n\
         \x20       pass\n",
    ),
    (
        "rules/on_tick.yaml",
        "---\n\
         name: on_tick\n\
         pack: {pack}\n\
         description: Echo each tick of {pack}.Ticker\n\
         enabled: true\n\
         trigger:\n\
         \x20 type: {pack}.tick\n\
         criteria:\n\
         \x20 trigger.count:\n\
         \x20   type: gt\n\
         \x20   pattern: 0\n\
         action:\n\
         \x20 ref: core.echo\n\
         \x20 parameters:\n\
         \x20   message: \"{pack} tick {{ trigger.count }}\"\n",
    ),
    (
        "tests/test_lookup.py",
        "\"\"\"The action's logic, without Squall or StackStorm: python3 -m unittest discover tests\"\"\"\n\
         \n\
         import os\n\
         import sys\n\
         import types\n\
         import unittest\n\
         \n\
         # lookup.py imports StackStorm's Action class; a stand-in is enough to test summarize().\n\
         base = types.ModuleType(\"st2common.runners.base_action\")\n\
         base.Action = object\n\
         for name in (\"st2common\", \"st2common.runners\"):\n\
         \x20   sys.modules.setdefault(name, types.ModuleType(name))\n\
         sys.modules[\"st2common.runners.base_action\"] = base\n\
         sys.modules.setdefault(\"requests\", types.ModuleType(\"requests\"))\n\
         sys.path.insert(0, os.path.join(os.path.dirname(__file__), \"..\", \"actions\"))\n\
         \n\
         from lookup import summarize  # noqa: E402\n\
         \n\
         \n\
         class SummarizeTest(unittest.TestCase):\n\
         \x20   def test_a_success_is_ok(self):\n\
         \x20       self.assertEqual(\n\
         \x20           summarize(200, {\"Server\": \"nginx\"}),\n\
         \x20           {\"status\": 200, \"ok\": True, \"server\": \"nginx\"},\n\
         \x20       )\n\
         \n\
         \x20   def test_a_server_error_is_not(self):\n\
         \x20       self.assertFalse(summarize(503, {})[\"ok\"])\n\
         \n\
         \n\
         if __name__ == \"__main__\":\n\
         \x20   unittest.main()\n",
    ),
    (
        "README.md",
        "# {pack}\n\
         \n\
         A StackStorm-format pack made with `squall pack new`.\n\
         \n\
         ```console\n\
         $ python3 -m unittest discover -s {pack}/tests   # the action's logic, no server\n\
         $ squall pack build {pack}                       # the Python component (componentize-py)\n\
         $ squall pack validate {pack}\n\
         $ squall pack install ./{pack}                   # into the store; a running server reloads it\n\
         $ printf '[packs.{pack}]\\nhttp_allow = [\"example.com\"]\\n' >> squall.toml   # then restart\n\
         $ squall run {pack}.lookup host=example.com\n\
         ```\n\
         \n\
         - `actions/lookup.py`: a `python-script` action (StackStorm's `Action`).\n\
         - `sensors/ticker.py`: a `PollingSensor` emitting `{pack}.tick`.\n\
         - `rules/on_tick.yaml`: `{pack}.tick` → `core.echo`.\n",
    ),
];

/// The metadata of a new pack with Squall's SDKs (`js`, `rust`): the action's and sensor's
/// YAML naming `lookup.wasm` and `ticker.wasm` (which `squall pack build` makes of the
/// language's source directories), and the rule; `{lang}` stands for the language.
const SDK_METADATA: &[(&str, &str)] = &[
    (
        "pack.yaml",
        r#"---
ref: {pack}
name: {pack}
version: 0.1.0
description: '{pack}: made with squall pack new --lang {lang}'
author: '{author}'
email: '{author}@localhost'
capabilities:
  # Outbound HTTP the pack asks for; the operator grants it in squall.toml.
  http: ["example.com"]
"#,
    ),
    (
        "actions/lookup.yaml",
        r#"---
name: lookup
runner_type: wasm
entry_point: lookup.wasm
description: GETs http://<host><path> and says how the host answered
enabled: true
parameters:
  host:
    type: string
    description: The host (and port) to ask, e.g. example.com
    required: true
  path:
    type: string
    default: /
"#,
    ),
    (
        "sensors/ticker.yaml",
        r#"---
class_name: Ticker
entry_point: ticker.wasm
description: Emits {pack}.tick every poll, counting in the datastore
enabled: true
poll_interval: 60
trigger_types:
  - name: tick
    description: One poll of {pack}.Ticker
    payload_schema:
      type: object
      properties:
        count:
          type: integer
      required: [count]
"#,
    ),
    (
        "rules/on_tick.yaml",
        r#"---
name: on_tick
pack: {pack}
description: Echo each tick of {pack}.Ticker
enabled: true
trigger:
  type: {pack}.tick
criteria:
  trigger.count:
    type: gt
    pattern: 0
action:
  ref: core.echo
  parameters:
    message: "{pack} tick {{ trigger.count }}"
"#,
    ),
];

/// The files of a new JavaScript pack (the JavaScript SDK), as [`PYTHON`], beside [`SDK_METADATA`].
const JAVASCRIPT: &[(&str, &str)] = &[
    (
        "actions/lookup/index.js",
        r#"// The action: squall pack build makes actions/lookup.wasm of this module.

/// What the action returns for a response (tested in tests/lookup.test.mjs).
export function summarize(status, server) {
  return { status, ok: status >= 200 && status < 400, server: server ?? "" };
}

export const parameters = { host: "string", path: "string" };

export async function run(ctx, { host, path }) {
  // Outbound HTTP goes through Squall's host: grant it in squall.toml,
  // [packs.{pack}] http_allow = ["example.com"].
  let answer;
  try {
    answer = await fetch(`http://${host}${path}`);
  } catch (e) {
    throw new ctx.ActionError(`${host}: ${e.message}`, { error: e.message });
  }
  ctx.log.info(`${host} answered ${answer.status}`);
  return summarize(answer.status, answer.headers.get("server"));
}
"#,
    ),
    (
        "sensors/ticker/index.js",
        r#"// The sensor: squall pack build makes sensors/ticker.wasm of this module.

export function poll(ctx) {
  // State that outlasts a poll lives in the datastore (kept when the poll succeeds).
  const count = Number(ctx.datastore.get("count") ?? 0) + 1;
  ctx.datastore.set("count", String(count));
  ctx.log.info(`tick ${count}`);
  ctx.emit("{pack}.tick", { count });
}
"#,
    ),
    (
        "package.json",
        r#"{
  "name": "{pack}",
  "private": true,
  "type": "module",
  "description": "Only for node --test: squall pack build reads the modules itself"
}
"#,
    ),
    (
        "tests/lookup.test.mjs",
        r#"// The action's logic, without Squall: node --test
import { test } from "node:test";
import assert from "node:assert/strict";
import { summarize } from "../actions/lookup/index.js";

test("a success is ok", () => {
  assert.deepEqual(summarize(200, "nginx"), { status: 200, ok: true, server: "nginx" });
});

test("a server error is not", () => {
  assert.equal(summarize(503, null).ok, false);
});
"#,
    ),
    (
        "README.md",
        r#"# {pack}

A pack made with `squall pack new --lang js` (Squall's JavaScript SDK).

```console
$ (cd {pack} && node --test)                  # the action's logic, no server
$ squall pack build {pack}                   # actions/lookup.wasm, sensors/ticker.wasm (componentize-js)
$ squall pack validate {pack}
$ squall pack install ./{pack}               # into the store; a running server reloads it
$ printf '[packs.{pack}]
http_allow = ["example.com"]
' >> squall.toml   # then restart
$ squall run {pack}.lookup host=example.com
```

- `actions/lookup/index.js`: the action (`run(ctx, params)`, `fetch`, `ctx.log`).
- `sensors/ticker/index.js`: a sensor emitting `{pack}.tick` (`ctx.datastore`, `ctx.emit`).
- `rules/on_tick.yaml`: `{pack}.tick` → `core.echo`.
"#,
    ),
];

/// The files of a new Rust pack, as [`PYTHON`], beside [`SDK_METADATA`]; the Rust SDK goes
/// with them ([`RUST_SDK`]).
const RUST: &[(&str, &str)] = &[
    (
        "actions/lookup/Cargo.toml",
        r#"[package]
name = "squall-{pack}-lookup"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
squall-plugin = { path = "../../vendor/squall-plugin" }
serde = { version = "1", features = ["derive"] }

# A workspace of its own: squall pack build runs cargo here.
[workspace]
"#,
    ),
    (
        "actions/lookup/.cargo/config.toml",
        r#"# Builds (cargo test, cargo build) go under the pack's build directory, which
# squall pack install leaves out; squall pack build sets its own target directory.
[build]
target-dir = "../../.squall/cargo-target"
"#,
    ),
    (
        "actions/lookup/src/lib.rs",
        r#"//! The action: `squall pack build` makes `actions/lookup.wasm` of this crate.

use serde::{Deserialize, Serialize};
use squall_plugin::{Context, Error, http, log};

#[derive(Deserialize)]
struct Params {
    host: String,
    path: String,
}

#[derive(Debug, PartialEq, Serialize)]
struct Summary {
    status: u16,
    ok: bool,
    server: String,
}

/// What the action returns for a response.
fn summarize(status: u16, server: Option<&str>) -> Summary {
    Summary {
        status,
        ok: (200..400).contains(&status),
        server: server.unwrap_or_default().to_string(),
    }
}

fn lookup(_ctx: &Context, p: Params) -> Result<Summary, Error> {
    // Outbound HTTP goes through Squall's host: grant it in squall.toml,
    // [packs.{pack}] http_allow = ["example.com"].
    let answer = http::Request::new("GET", format!("http://{}{}", p.host, p.path))
        .send()
        .map_err(|e| Error::new(format!("{}: {e}", p.host)))?;
    log::info(format!("{} answered {}", p.host, answer.status));
    Ok(summarize(answer.status, answer.header("server")))
}

squall_plugin::action!(lookup);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_is_ok() {
        assert_eq!(
            summarize(200, Some("nginx")),
            Summary { status: 200, ok: true, server: "nginx".into() }
        );
    }

    #[test]
    fn a_server_error_is_not() {
        assert!(!summarize(503, None).ok);
    }
}
"#,
    ),
    (
        "sensors/ticker/Cargo.toml",
        r#"[package]
name = "squall-{pack}-ticker"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
squall-plugin = { path = "../../vendor/squall-plugin" }

[workspace]
"#,
    ),
    (
        "sensors/ticker/.cargo/config.toml",
        r#"# Builds (cargo test, cargo build) go under the pack's build directory, which
# squall pack install leaves out; squall pack build sets its own target directory.
[build]
target-dir = "../../.squall/cargo-target"
"#,
    ),
    (
        "sensors/ticker/src/lib.rs",
        r#"//! The sensor: `squall pack build` makes `sensors/ticker.wasm` of this crate.

use squall_plugin::Error;
use squall_plugin::sensor::{self, Sensor, SensorContext};

struct Ticker;

impl Sensor for Ticker {
    fn poll(_ctx: &SensorContext) -> Result<(), Error> {
        // State that outlasts a poll lives in the datastore (kept when the poll succeeds).
        let count: u64 = sensor::datastore::get("count")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            + 1;
        sensor::datastore::set("count", &count.to_string(), None)?;
        squall_plugin::log::info(format!("tick {count}"));
        sensor::emit("{pack}.tick", &squall_plugin::serde_json::json!({ "count": count }))
    }
}

squall_plugin::sensor!(Ticker);
"#,
    ),
    (
        "README.md",
        r#"# {pack}

A pack made with `squall pack new --lang rust` (Squall's Rust SDK, `squall-plugin`, vendored
in `vendor/squall-plugin`: it is not on a registry yet).

```console
$ (cd {pack}/actions/lookup && cargo test)     # the action's logic, natively, no server
$ squall pack build {pack}                     # actions/lookup.wasm, sensors/ticker.wasm (cargo)
$ squall pack validate {pack}
$ printf '[packs.{pack}]\nhttp_allow = ["example.com"]\n' >> squall.toml   # then restart
$ squall run {pack}.lookup host=example.com
```

- `actions/lookup/`: the action (`squall_plugin::action!`, `http`, `log`).
- `sensors/ticker/`: a sensor emitting `{pack}.tick` (`sensor::datastore`, `sensor::emit`).
- `rules/on_tick.yaml`: `{pack}.tick` → `core.echo`.

`squall pack install` does not run `cargo` (a build script would run unsandboxed): build here,
then install the pack with its `.wasm` files.
"#,
    ),
];

/// The Rust SDK vendored into a new Rust pack as `vendor/squall-plugin/`: this build's
/// `plugin-sdk` sources and WIT, with a manifest of its own (the workspace's fields and
/// dependency versions written out; a test keeps them equal).
const RUST_SDK: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        r#"[package]
name = "squall-plugin"
description = "Guest SDK for writing Squall actions in Rust (vendored by squall pack new)"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
license = "Apache-2.0"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
serde_path_to_error = "0.1"
url = "2.5"
wit-bindgen = "0.61"
"#,
    ),
    (
        "src/lib.rs",
        include_str!("../../../../plugin-sdk/src/lib.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../../plugin-sdk/src/http.rs"),
    ),
    (
        "src/log.rs",
        include_str!("../../../../plugin-sdk/src/log.rs"),
    ),
    (
        "src/mail.rs",
        include_str!("../../../../plugin-sdk/src/mail.rs"),
    ),
    (
        "src/process.rs",
        include_str!("../../../../plugin-sdk/src/process.rs"),
    ),
    (
        "src/sensor.rs",
        include_str!("../../../../plugin-sdk/src/sensor.rs"),
    ),
    (
        "src/triggers.rs",
        include_str!("../../../../plugin-sdk/src/triggers.rs"),
    ),
];

/// `squall pack new NAME --lang LANG --dir DIR`: writes the pack to `<dir>/<name>` and prints
/// its path. Refuses a name that is not a StackStorm pack ref, an existing directory, and any
/// language but `python`, `js` (`javascript`) and `rust`.
///
/// # Errors
/// [`Failure`] (exit code 2) naming the problem; 3 when a file cannot be written.
pub fn new(name: &str, lang: &str, dir: &Path) -> Result<u8, Failure> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Failure::input(format!(
            "{name:?} is not a valid pack ref: lowercase letters, digits and _ only (as \
             StackStorm's PACK_REF_WHITELIST_REGEX)"
        )));
    }
    let (files, lang) = match lang {
        "python" => (PYTHON, lang),
        "js" | "javascript" => (JAVASCRIPT, "js"),
        "rust" => (RUST, "rust"),
        other => {
            return Err(Failure::input(format!(
                "--lang {other}: python (StackStorm's format), js or rust (Squall's SDKs)"
            )));
        }
    };
    let pack = dir.join(name);
    if pack.exists() {
        return Err(Failure::input(format!(
            "{} already exists; nothing was written",
            pack.display()
        )));
    }
    let author = std::env::var("USER").unwrap_or_else(|_| "squall".into());
    let mut all: Vec<(String, String)> = files
        .iter()
        .chain(if lang == "python" { &[] } else { SDK_METADATA })
        .map(|(rel, text)| {
            let text = text
                .replace("{pack}", name)
                .replace("{author}", &author)
                .replace("{lang}", lang);
            (rel.to_string(), text)
        })
        .collect();
    if lang == "rust" {
        // Verbatim: the SDK's sources are not templates.
        let wit = squall_core::python::WIT_FILES
            .iter()
            .map(|(rel, text)| (format!("wit/{rel}"), *text));
        all.extend(
            RUST_SDK
                .iter()
                .map(|(rel, text)| (rel.to_string(), *text))
                .chain(wit)
                .map(|(rel, text)| (format!("vendor/squall-plugin/{rel}"), text.to_string())),
        );
    }
    for (rel, text) in all {
        let path = pack.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::internal(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Failure::internal(format!("{}: {e}", path.display())))?;
    }
    crate::output::out(&format!("{}\n", pack.display()));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored SDK's manifest says what the workspace's does.
    #[test]
    fn the_vendored_rust_sdk_manifest_matches_the_workspace() {
        let workspace = include_str!("../../../../Cargo.toml");
        let manifest = RUST_SDK[0].1;
        for dep in [
            "serde",
            "serde_json",
            "serde_path_to_error",
            "url",
            "wit-bindgen",
        ] {
            let line = workspace
                .lines()
                .find(|l| l.starts_with(&format!("{dep} =")))
                .unwrap_or_else(|| panic!("{dep} is not a workspace dependency"));
            assert!(manifest.contains(line), "{line}");
        }
        for field in ["edition", "rust-version", "license"] {
            let line = workspace
                .lines()
                .find(|l| l.starts_with(&format!("{field} =")))
                .unwrap();
            assert!(manifest.contains(line), "{line}");
        }
        let sdk = include_str!("../../../../plugin-sdk/Cargo.toml");
        for dep in sdk
            .split("[dependencies]")
            .nth(1)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(d, _)| d)
        {
            assert!(manifest.contains(&format!("\n{dep} = ")), "{dep}");
        }
    }
}
