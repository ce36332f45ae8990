//! Reading a pack's files without leaving the pack.
//!
//! A pack is untrusted content. Every file the loader reads or hands to the host (metadata
//! YAML, workflows, components, `config.schema.yaml`) must resolve — links followed — to a path
//! inside the pack's own directory: a symbolic link leading out (to the datastore key, say) is
//! refused, and the refusal never quotes what the file holds. The pack directory itself may be
//! a link (an operator's `packs/acme -> /srv/acme`); its target is the boundary.

use std::path::{Path, PathBuf};

/// Checks that `path` resolves (links followed) to somewhere inside `pack_dir`; returns the
/// resolved path.
///
/// # Errors
/// A message saying where it leads (or why it cannot be resolved), never its contents.
pub fn confine(pack_dir: &Path, path: &Path) -> Result<PathBuf, String> {
    let root = pack_dir.canonicalize().map_err(|e| {
        format!(
            "cannot resolve the pack directory {}: {e}",
            pack_dir.display()
        )
    })?;
    let real = path
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(format!(
            "{} leads outside the pack (to {}); pack files must stay inside {}",
            path.display(),
            real.display(),
            root.display()
        ))
    }
}

/// Reads the text of `path`, a file of the pack at `pack_dir`, after [`confine`].
/// `Ok(None)` when it does not exist.
///
/// # Errors
/// [`confine`]'s message, or the I/O error (not the contents).
pub fn read_text(pack_dir: &Path, path: &Path) -> Result<Option<String>, String> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
        Ok(_) => {}
    }
    // Read what was checked, not the path again (a link swapped in between leads nowhere).
    let real = confine(pack_dir, path)?;
    match std::fs::read_to_string(&real) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err("cannot read: not UTF-8 text".into())
        }
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

/// The pack directory of a path under `<pack>/<sub>/` (its grandparent), for [`confine`].
pub fn pack_dir_of(sub_dir: &Path) -> PathBuf {
    sub_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| sub_dir.to_path_buf())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_leading_out_are_refused_without_quoting() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("datastore.key");
        std::fs::write(&secret, "TOP-SECRET-KEY-MATERIAL\n").unwrap();
        let pack = tempfile::tempdir().unwrap();
        std::fs::create_dir(pack.path().join("actions")).unwrap();
        std::fs::write(pack.path().join("actions/ok.yaml"), "name: ok\n").unwrap();
        std::os::unix::fs::symlink(&secret, pack.path().join("actions/leak.yaml")).unwrap();
        std::os::unix::fs::symlink("ok.yaml", pack.path().join("actions/alias.yaml")).unwrap();

        let e = read_text(pack.path(), &pack.path().join("actions/leak.yaml")).unwrap_err();
        assert!(e.contains("leads outside the pack"), "{e}");
        assert!(!e.contains("TOP-SECRET"), "{e}");
        assert_eq!(
            read_text(pack.path(), &pack.path().join("actions/alias.yaml")).unwrap(),
            Some("name: ok\n".into())
        );
        assert_eq!(
            read_text(pack.path(), &pack.path().join("actions/none.yaml")).unwrap(),
            None
        );
    }
}
