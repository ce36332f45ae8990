//! The Rust SDK out of tree: `squall-plugin` as `cargo package` makes it (the crate a registry
//! would serve, carrying its own WIT under `wit/`) builds an action in a crate outside this
//! repository's workspace — a pack's `actions/<name>/` built by `squall pack build` — and the
//! real server runs it.

mod support;

use serde_json::json;
use std::process::Command;
use support::{Server, repo, write_squall_toml};

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

#[test]
fn the_packaged_rust_sdk_builds_an_action_outside_the_workspace_that_the_server_runs() {
    // The packaged crate, as published: its files only (no ../wit to lean on).
    let packaged = cargo()
        .current_dir(repo())
        .args([
            "package",
            "-p",
            "squall-plugin",
            "--allow-dirty",
            "--no-verify",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        packaged.status.success(),
        "{}",
        String::from_utf8_lossy(&packaged.stderr)
    );
    // Where cargo writes (CI puts its target directory outside the clone).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| repo().join(d))
        .unwrap_or_else(|| repo().join("target"));
    // The version this workspace builds (squall-cli shares the workspace's version).
    let crate_file = target
        .join("package")
        .join(format!("squall-plugin-{}.crate", env!("CARGO_PKG_VERSION")));
    assert!(
        crate_file.is_file(),
        "cargo package wrote no {}",
        crate_file.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let unpacked = Command::new("tar")
        .current_dir(dir.path())
        .arg("xzf")
        .arg(&crate_file)
        .status()
        .unwrap();
    assert!(unpacked.success());
    let sdk = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("wit/squall.wit").is_file())
        .expect("the packaged crate carries wit/squall.wit");

    // An author's crate, its own workspace, as a pack's action source directory.
    let site = tempfile::tempdir().unwrap();
    write_squall_toml(site.path(), "");
    let pack = support::new_pack(site.path(), "hello", "version: 0.1.0\n");
    let author = pack.join("actions/hello");
    std::fs::create_dir_all(author.join("src")).unwrap();
    std::fs::write(
        author.join("Cargo.toml"),
        format!(
            "[package]\nname = \"hello-action\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nsquall-plugin = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n\
             [workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        author.join("src/lib.rs"),
        "use serde::{Deserialize, Serialize};\n\
         use squall_plugin::{Context, Error};\n\n\
         #[derive(Deserialize)]\nstruct Params { name: String }\n\n\
         #[derive(Serialize)]\nstruct Out { greeting: String, action: String }\n\n\
         fn hello(ctx: &Context, p: Params) -> Result<Out, Error> {\n\
         \x20   Ok(Out { greeting: format!(\"hello, {}\", p.name), action: ctx.action_ref.clone() })\n\
         }\n\n\
         squall_plugin::action!(hello);\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/hello.yaml"),
        "name: hello\nrunner_type: wasm\nentry_point: hello.wasm\nparameters:\n  name:\n    type: string\n    required: true\n",
    )
    .unwrap();
    // `squall pack build` runs cargo: offline (from the registry cache this workspace's build
    // filled), into a target directory of its own under this one, so reruns are incremental.
    let built = Command::new(support::SQUALL)
        .current_dir(site.path())
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_CONFIG")
        .env("CARGO_TARGET_DIR", target.join("out-of-tree"))
        .env("CARGO_NET_OFFLINE", "true")
        .args(["pack", "build", "packs/hello"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{said}");
    assert!(
        said.contains("[1/1] actions/hello (rust, action world)"),
        "{said}"
    );
    assert!(pack.join("actions/hello.wasm").is_file(), "{said}");
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pack.join(".squall/components.lock")).unwrap())
            .unwrap();
    assert_eq!(lock["components"][0]["language"], "rust", "{lock:#}");
    assert_eq!(lock["components"][0]["component"], "actions/hello.wasm");

    let server = Server::start(site.path());
    let done = server.run_to_end("hello.hello", json!({"name": "Ann"}));
    assert_eq!(
        done["result"],
        json!({"greeting": "hello, Ann", "action": "hello.hello"}),
        "{done:#}"
    );
}

#[test]
fn a_new_rust_pack_builds_with_its_vendored_sdk_and_runs() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| repo().join(d))
        .unwrap_or_else(|| repo().join("target"));
    let site = tempfile::tempdir().unwrap();
    let stub = support::HttpStub::start(|_| support::Response::json(200, &json!({"ok": true})));
    let host = format!("127.0.0.1:{}", stub.port);
    write_squall_toml(
        site.path(),
        &format!("[packs.acme]\nhttp_allow = [\"{host}\"]\n"),
    );
    std::fs::create_dir_all(site.path().join("packs")).unwrap();
    let squall = |args: &[&str]| {
        Command::new(support::SQUALL)
            .current_dir(site.path())
            .env_remove("SQUALL_DATA_DIR")
            .env_remove("SQUALL_CONFIG")
            .env_remove("SQUALL_API_URL")
            // Offline (from the registry cache this workspace's build filled), into a target
            // directory shared with the other out-of-tree build, so reruns are incremental.
            .env("CARGO_TARGET_DIR", target.join("out-of-tree"))
            .env("CARGO_NET_OFFLINE", "true")
            .args(args)
            .output()
            .unwrap()
    };
    let made = squall(&["pack", "new", "acme", "--lang", "rust", "--dir", "packs"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pack = site.path().join("packs/acme");
    assert!(pack.join("vendor/squall-plugin/wit/squall.wit").is_file());
    // The destination this test serves instead of example.com.
    let yaml = pack.join("pack.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, text.replace("example.com", &host)).unwrap();

    let built = squall(&["pack", "build", "packs/acme"]);
    let said = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{said}");
    assert!(
        said.contains("[1/2] actions/lookup (rust, action world)"),
        "{said}"
    );
    assert!(
        said.contains("[2/2] sensors/ticker (rust, sensor world)"),
        "{said}"
    );
    let validated = squall(&["pack", "validate", "packs/acme"]);
    assert!(
        validated.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );

    let server = Server::start(site.path());
    let done = server.run_to_end("acme.lookup", json!({"host": host, "path": "/health"}));
    assert_eq!(
        done["result"],
        json!({"status": 200, "ok": true, "server": ""}),
        "{done:#}"
    );
    assert_eq!(stub.paths(), ["/health"]);
    // The sensor polled once at start: tick 1 → the rule → core.echo.
    let echo = server.first_succeeded("core.echo");
    assert_eq!(echo["result"]["stdout"], "acme tick 1", "{echo:#}");
}
