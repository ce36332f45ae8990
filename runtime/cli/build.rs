//! Builds the components of the shipped packs and of the examples' packs from source.
//!
//! Every `packs/<pack>/{actions,sensors}/<name>/` (and the same under
//! `examples/<example>/packs/`) directory holding a Cargo crate is compiled to a `wasm32-wasip2`
//! component (see `squall-plugin-build`) and copied to `.../<name>.wasm` beside it, the path its
//! action or sensor YAML names as `entry_point`. A file is rewritten only when its bytes
//! change, so unchanged packs keep their timestamps.

use squall_plugin_build::{Guest, build_components, rerun_if_changed};
use std::path::{Path, PathBuf};

fn package_name(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let package = text.split("[package]").nth(1)?;
    package.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
    })
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let mut bases = vec![root.join("packs")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("packs"))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    examples.sort();
    bases.extend(examples);
    rerun_if_changed(
        bases
            .iter()
            .chain([&root.join("plugin-sdk/src"), &root.join("plugin-sdk/wit")]),
    );

    let mut guests = Vec::new();
    let mut outputs = Vec::new();
    let mut pack_dirs: Vec<PathBuf> = bases
        .iter()
        .flat_map(|base| std::fs::read_dir(base).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    pack_dirs.sort();
    for pack in pack_dirs {
        let mut crates: Vec<PathBuf> = ["actions", "sensors"]
            .iter()
            .flat_map(|kind| std::fs::read_dir(pack.join(kind)).into_iter().flatten())
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        crates.sort();
        for dir in crates {
            let manifest = dir.join("Cargo.toml");
            let Some(name) = package_name(&manifest) else {
                continue;
            };
            outputs.push(dir.with_extension("wasm"));
            guests.push(Guest { package: name });
        }
    }
    if guests.is_empty() {
        return;
    }
    let built = build_components(&root, &guests).unwrap_or_else(|e| panic!("{e}"));
    for (component, target) in built.iter().zip(&outputs) {
        let bytes = std::fs::read(component).unwrap();
        if std::fs::read(target).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(target, &bytes)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
        }
    }
}
