//! Builds `tests/components/*` guest crates to components (see `squall-plugin-build`) and
//! writes `paths.rs` with one constant per component.

use squall_plugin_build::{Guest, build_components, rerun_if_changed};
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..");
    rerun_if_changed([
        manifest.join("hostile"),
        manifest.join("sensor"),
        manifest.join("conformance-action"),
        manifest.join("conformance-sensor"),
        root.join("plugin-sdk/src"),
        root.join("plugin-sdk/wit"),
    ]);
    let guests = [
        Guest {
            package: "test-hostile".into(),
        },
        Guest {
            package: "test-sensor".into(),
        },
        Guest {
            package: "conformance-action".into(),
        },
        Guest {
            package: "conformance-sensor".into(),
        },
    ];
    let built = build_components(&root, &guests).unwrap_or_else(|e| panic!("{e}"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let mut consts = String::new();
    for (guest, path) in guests.iter().zip(built) {
        let copy = out.join(path.file_name().unwrap());
        std::fs::copy(&path, &copy).unwrap();
        let name = guest.package.replace('-', "_").to_uppercase();
        consts.push_str(&format!(
            "/// Path of the `{}` component.\npub const {name}: &str = {:?};\n",
            guest.package,
            copy.display().to_string()
        ));
    }
    std::fs::write(out.join("paths.rs"), consts).unwrap();
}
