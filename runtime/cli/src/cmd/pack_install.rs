//! `squall pack install PATH|GIT-URL`, `squall pack rollback PACK`, `squall pack uninstall
//! PACK`: installed packs are content-addressed, so switching versions is one link.
//!
//! Layout (Squall's own; StackStorm copies packs into `/opt/stackstorm/packs/<pack>`):
//!
//! ```text
//! <data_dir>/packs/<pack>/<version>/   an installed version, never changed once written;
//!                                      <version> = the first 16 hex digits of the SHA-256 of
//!                                      the pack's files (see `tree_digest`), built (its Python
//!                                      and JavaScript components) and validated before it is
//!                                      linked
//! <data_dir>/packs/<pack>/history      one line per switch: `<version> <RFC 3339> <source>`
//! <packs_dir>/<pack> -> <data_dir>/packs/<pack>/<version>   the version loaded
//! ```
//!
//! `<packs_dir>` is `--packs-dir`, else the first packs directory (as st2 installs into the
//! first of its `packs_base_paths`). The link is replaced by `rename(2)` of a new link over
//! it, so a reader sees the old version or the new one, never neither. A pack directory that
//! is not such a link (the operator's own) is never replaced or removed. After the switch a
//! running server is asked to reload the pack (`POST /api/v1/packs/register`); if it refuses,
//! the link goes back to the previous version and the command fails with the server's
//! reasons.

use crate::Failure;
use crate::client::Client;
use crate::settings::Settings;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where the installed versions of `pack` live.
fn store_of(settings: &Settings, pack: &str) -> PathBuf {
    settings.data_dir.join("packs").join(pack)
}

/// The packs directory holding the links.
fn links_dir(settings: &Settings, packs_dir: Option<&Path>) -> Result<PathBuf, Failure> {
    packs_dir
        .map(Path::to_path_buf)
        .or_else(|| settings.packs_dirs.first().cloned())
        .ok_or_else(|| Failure::input("no packs directory to install into (packs_dirs is empty)"))
}

/// A git URL rather than a path: `https://`, `http://`, `ssh://`, `git://`, `file://` or
/// `git@host:...`; an optional `=REF` suffix names a branch or tag, as `st2 pack install
/// <url>=<version>` (a commit id is not accepted: `git clone --branch` takes names only).
fn git_source(source: &str) -> Option<(String, Option<String>)> {
    let is_git = ["https://", "http://", "ssh://", "git://", "file://", "git@"]
        .iter()
        .any(|p| source.starts_with(p));
    if !is_git {
        return None;
    }
    // `=` after the last `/` separates the ref (URLs have no `=` in their path in practice).
    let slash = source.rfind('/').unwrap_or(0);
    match source[slash..].find('=') {
        Some(i) => {
            let (url, reference) = source.split_at(slash + i);
            Some((url.to_string(), Some(reference[1..].to_string())))
        }
        None => Some((source.to_string(), None)),
    }
}

/// The pack's ref from its `pack.yaml` (`ref`, else `name`), checked as StackStorm's
/// `PACK_REF_WHITELIST_REGEX` (`^[a-z0-9_]+$`, st2common/constants/pack.py).
fn pack_ref(dir: &Path) -> Result<String, Failure> {
    #[derive(serde::Deserialize)]
    struct Meta {
        name: Option<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    }
    let file = dir.join("pack.yaml");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Failure::input(format!("{}: not a pack ({e})", file.display())))?;
    let meta: Meta = serde_saphyr::from_str(&text)
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    let reference = meta
        .reference
        .or(meta.name)
        .ok_or_else(|| Failure::input(format!("{}: name: missing", file.display())))?;
    if !valid_ref(&reference) {
        return Err(Failure::input(format!(
            "{}: ref: {reference:?} is not a valid pack ref (lowercase letters, digits and _ \
             only); set `ref:` in pack.yaml",
            file.display()
        )));
    }
    Ok(reference)
}

/// StackStorm's `PACK_REF_WHITELIST_REGEX`, `^[a-z0-9_]+$`.
fn valid_ref(reference: &str) -> bool {
    !reference.is_empty()
        && reference
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `pack` named on the command line, checked as a pack ref (it becomes a path).
fn named(pack: &str) -> Result<&str, Failure> {
    if valid_ref(pack) {
        Ok(pack)
    } else {
        Err(Failure::input(format!(
            "{pack:?} is not a pack ref (lowercase letters, digits and _ only)"
        )))
    }
}

/// Every file under `dir` (relative paths, sorted), `.git` and the build output `.squall`
/// left out.
pub(crate) fn files(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    fn walk(root: &Path, at: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(at)? {
            let entry = entry?;
            let name = entry.file_name();
            if name == ".git" || name == ".squall" {
                continue;
            }
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else {
                out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out).map_err(|e| Failure::input(format!("{}: {e}", dir.display())))?;
    out.sort();
    Ok(out)
}

/// The version of the pack at `dir`: the first 16 hex digits of the SHA-256 over each file's
/// relative path, kind (file or link) and content (a link's target), in path order.
pub(crate) fn tree_digest(dir: &Path, files: &[PathBuf]) -> Result<String, Failure> {
    let mut hash = Sha256::new();
    for rel in files {
        let path = dir.join(rel);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
        let (kind, bytes) = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            ("link", target.to_string_lossy().into_owned().into_bytes())
        } else {
            let bytes = std::fs::read(&path)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            ("file", bytes)
        };
        hash.update(rel.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(kind.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(hex::encode(hash.finalize())[..16].to_string())
}

/// Copies `files` of `from` into `to` (links copied as links: the loader confines them to the
/// pack).
pub(crate) fn copy_files(from: &Path, to: &Path, files: &[PathBuf]) -> Result<(), Failure> {
    for rel in files {
        let (src, dst) = (from.join(rel), to.join(rel));
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::internal(format!("{}: {e}", parent.display())))?;
        }
        let meta = std::fs::symlink_metadata(&src)
            .map_err(|e| Failure::input(format!("{}: {e}", src.display())))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&src)
                .map_err(|e| Failure::input(format!("{}: {e}", src.display())))?;
            std::os::unix::fs::symlink(target, &dst)
                .map_err(|e| Failure::internal(format!("{}: {e}", dst.display())))?;
        } else {
            std::fs::copy(&src, &dst)
                .map_err(|e| Failure::internal(format!("{}: {e}", dst.display())))?;
        }
    }
    Ok(())
}

/// Whether the pack has Python or JavaScript content to build (a `.py` or `.js` file under
/// `actions/` or `sensors/`). Rust sources are not built at install: `cargo build` runs the
/// crate's build script and procedural macros on this machine, unsandboxed; a pack from
/// elsewhere ships its Rust components built (`squall pack build` on the author's machine).
fn has_sources(files: &[PathBuf]) -> bool {
    files.iter().any(|f| {
        (f.starts_with("actions") || f.starts_with("sensors"))
            && f.extension().is_some_and(|e| e == "py" || e == "js")
    })
}

/// The version the link `<links>/<pack>` points at, `None` when there is no link; an error
/// when the path exists and is not a link into this data directory's store (the operator's
/// own pack directory, never touched).
fn current_version(
    settings: &Settings,
    link: &Path,
    pack: &str,
) -> Result<Option<String>, Failure> {
    let meta = match std::fs::symlink_metadata(link) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::input(format!("{}: {e}", link.display()))),
    };
    let not_ours = || {
        Failure::input(format!(
            "{} exists and was not installed by `squall pack install` (it is not a link into {}); \
             move it away first, or install into another packs directory (--packs-dir)",
            link.display(),
            store_of(settings, pack).display()
        ))
    };
    if !meta.file_type().is_symlink() {
        return Err(not_ours());
    }
    let target =
        std::fs::read_link(link).map_err(|e| Failure::input(format!("{}: {e}", link.display())))?;
    let store = absolute(&store_of(settings, pack));
    match target.parent() {
        Some(parent) if absolute(parent) == store => {
            Ok(target.file_name().map(|n| n.to_string_lossy().into_owned()))
        }
        _ => Err(not_ours()),
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

/// Points `link` at `target` atomically (a new link renamed over the old one).
fn switch(link: &Path, target: &Path) -> Result<(), Failure> {
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = link.with_file_name(format!(".{name}.squall-link-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .map_err(|e| Failure::internal(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::internal(format!("{}: {e}", link.display()))
    })
}

fn record(settings: &Settings, pack: &str, version: &str, source: &str) -> Result<(), Failure> {
    use std::io::Write;
    let file = store_of(settings, pack).join("history");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .map_err(|e| Failure::internal(format!("{}: {e}", file.display())))?;
    writeln!(f, "{version} {} {source}", jiff::Timestamp::now())
        .map_err(|e| Failure::internal(format!("{}: {e}", file.display())))
}

/// The versions in `pack`'s history, oldest first.
fn history(settings: &Settings, pack: &str) -> Vec<String> {
    std::fs::read_to_string(store_of(settings, pack).join("history"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Asks a running server to reload `packs` (all when empty). `Ok(None)`: no server runs.
///
/// # Errors
/// The server's refusal (exit code 2), naming each problem.
async fn register(settings: &Settings, packs: &[&str]) -> Result<Option<Value>, Failure> {
    let client = Client::connect(settings).await?;
    if client.is_local() {
        client.close().await;
        return Ok(None);
    }
    let reply = client
        .call(
            reqwest::Method::POST,
            "/api/v1/packs/register",
            Some(json!({ "packs": packs })),
        )
        .await;
    client.close().await;
    reply.map(|r| Some(r.body))
}

/// Switches `<links>/<pack>` to `version` and has a running server load it; if the server
/// refuses, switches back to `previous` (or removes the link) and fails with its reasons.
async fn activate(
    settings: &Settings,
    link: &Path,
    pack: &str,
    version: &str,
    previous: Option<&str>,
    source: &str,
) -> Result<(), Failure> {
    let store = absolute(&store_of(settings, pack));
    switch(link, &store.join(version))?;
    match register(settings, &[pack]).await {
        Ok(Some(_)) => eprintln!("{pack}: version {version} serving"),
        Ok(None) => eprintln!(
            "{pack}: version {version} installed; no server is running (squall serve loads it \
             at start)"
        ),
        Err(e) => {
            match previous {
                Some(p) => switch(link, &store.join(p))?,
                None => {
                    let _ = std::fs::remove_file(link);
                }
            }
            return Err(Failure {
                code: e.code,
                message: format!(
                    "the server refused {pack} version {version}; {}: {}",
                    match previous {
                        Some(p) => format!("version {p} stays installed"),
                        None => "nothing was installed".to_string(),
                    },
                    e.message
                ),
            });
        }
    }
    record(settings, pack, version, source)
}

/// `squall pack install SOURCE`: see the module docs. Prints the pack and version.
///
/// # Errors
/// [`Failure`] (exit code 2) naming the file, the git command or the problem: not a pack, a
/// bad ref, a build or validation problem (each printed), the link path taken by the
/// operator's own directory, the server refusing the new version.
pub async fn install(
    settings: &Settings,
    source: &str,
    packs_dir: Option<&Path>,
    tools: &crate::cmd::pack_sdk::Toolchain,
) -> Result<u8, Failure> {
    let cloned =
        tempfile::tempdir().map_err(|e| Failure::internal(format!("temporary directory: {e}")))?;
    let from = match git_source(source) {
        Some((url, reference)) => {
            let dir = cloned.path().join("pack");
            let mut git = std::process::Command::new("git");
            git.args(["clone", "--quiet", "--depth", "1"]);
            if let Some(r) = &reference {
                git.args(["--branch", r]);
            }
            git.arg("--").arg(&url).arg(&dir);
            // Never prompt for credentials: fail instead.
            git.env("GIT_TERMINAL_PROMPT", "0");
            let out = git
                .output()
                .map_err(|e| Failure::input(format!("cannot run git ({e}): install git")))?;
            if !out.status.success() {
                return Err(Failure::input(format!(
                    "git clone {url} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            dir
        }
        None => PathBuf::from(source),
    };
    let pack = pack_ref(&from)?;
    let links = links_dir(settings, packs_dir)?;
    let link = links.join(&pack);
    let previous = current_version(settings, &link, &pack)?;
    let files = files(&from)?;
    let version = tree_digest(&from, &files)?;
    let store = store_of(settings, &pack);
    let target = store.join(&version);
    if target.is_dir() {
        eprintln!("{pack}: version {version} is already in the store; switching to it");
    } else {
        // Staged under the store (same file system: the rename is atomic), in a directory of
        // its own named after the pack, so validation sees it as it will be served.
        std::fs::create_dir_all(&store)
            .map_err(|e| Failure::internal(format!("{}: {e}", store.display())))?;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&store)
            .map_err(|e| Failure::internal(format!("{}: {e}", store.display())))?;
        let staged = staging.path().join(&pack);
        copy_files(&from, &staged, &files)?;
        if has_sources(&files) {
            eprintln!("{pack}: building its components");
            let code = crate::cmd::pack::build(settings, &staged, tools, false)?;
            if code != 0 {
                return Ok(code);
            }
        }
        // Problems name the source's files, not the staging directory.
        let shown_as =
            |s: &str| s.replace(&staged.display().to_string(), &from.display().to_string());
        let outcome =
            crate::cmd::pack::validate_to(settings, &staged, &|s| eprint!("{}", shown_as(s)));
        match outcome {
            Ok(0) => {}
            Ok(code) => return Ok(code),
            Err(e) => {
                return Err(Failure {
                    code: e.code,
                    message: format!("{pack} not installed: {}", shown_as(&e.message)),
                });
            }
        }
        std::fs::rename(&staged, &target)
            .map_err(|e| Failure::internal(format!("{}: {e}", target.display())))?;
    }
    if previous.as_deref() == Some(version.as_str()) {
        eprintln!("{pack}: version {version} is already the one installed");
    }
    activate(
        settings,
        &link,
        &pack,
        &version,
        previous.as_deref(),
        source,
    )
    .await?;
    crate::output::out(&format!("{pack} {version}\n"));
    Ok(0)
}

/// The installed pack `pack`: its checked ref, its link and the version the link points at.
///
/// # Errors
/// [`Failure`] (exit code 2): not a pack ref, not installed, or not installed by `squall pack
/// install`.
fn installed<'a>(
    settings: &Settings,
    pack: &'a str,
    packs_dir: Option<&Path>,
) -> Result<(&'a str, PathBuf, String), Failure> {
    let pack = named(pack)?;
    let link = links_dir(settings, packs_dir)?.join(pack);
    let current = current_version(settings, &link, pack)?.ok_or_else(|| {
        Failure::input(format!("{pack} is not installed (no {})", link.display()))
    })?;
    Ok((pack, link, current))
}

/// `squall pack rollback PACK`: back to the version installed before the current one (from
/// the store: nothing is copied or built).
///
/// # Errors
/// [`Failure`] (exit code 2): the pack is not installed, or has no earlier version; the server
/// refusing it.
pub async fn rollback(
    settings: &Settings,
    pack: &str,
    packs_dir: Option<&Path>,
) -> Result<u8, Failure> {
    let (pack, link, current) = installed(settings, pack, packs_dir)?;
    let versions = history(settings, pack);
    // The history's last entry is the current version; the one before it that differs and is
    // still in the store is the previous.
    let store = store_of(settings, pack);
    let last = versions.iter().rposition(|v| *v == current);
    let previous = last
        .and_then(|i| {
            versions[..i]
                .iter()
                .rev()
                .find(|v| **v != current && store.join(v).is_dir())
        })
        .cloned()
        .ok_or_else(|| Failure::input(format!("{pack}: no earlier version to roll back to")))?;
    activate(
        settings,
        &link,
        pack,
        &previous,
        Some(&current),
        &format!("rollback from {current}"),
    )
    .await?;
    crate::output::out(&format!("{pack} {previous}\n"));
    Ok(0)
}

/// `squall pack uninstall PACK`: removes the link (the versions stay in the store, so
/// installing one again is instant) and has a running server reload without the pack.
///
/// # Errors
/// [`Failure`] (exit code 2): not installed by `squall pack install`; the server refusing.
pub async fn uninstall(
    settings: &Settings,
    pack: &str,
    packs_dir: Option<&Path>,
) -> Result<u8, Failure> {
    let (pack, link, current) = installed(settings, pack, packs_dir)?;
    std::fs::remove_file(&link)
        .map_err(|e| Failure::internal(format!("{}: {e}", link.display())))?;
    match register(settings, &[]).await {
        Ok(_) => {}
        Err(e) => {
            let store = absolute(&store_of(settings, pack));
            switch(&link, &store.join(&current))?;
            return Err(Failure {
                code: e.code,
                message: format!(
                    "the server refused to reload without {pack}; it stays installed: {}",
                    e.message
                ),
            });
        }
    }
    record(settings, pack, "-", "uninstall")?;
    eprintln!(
        "{pack}: uninstalled (version {current} stays in {})",
        store_of(settings, pack).display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sources_and_their_refs_are_told_from_paths() {
        assert_eq!(git_source("./packs/acme"), None);
        assert_eq!(git_source("/srv/acme"), None);
        assert_eq!(
            git_source("https://github.com/StackStorm-Exchange/stackstorm-aws.git=v1.2.0"),
            Some((
                "https://github.com/StackStorm-Exchange/stackstorm-aws.git".into(),
                Some("v1.2.0".into())
            ))
        );
        assert_eq!(
            git_source("file:///tmp/acme"),
            Some(("file:///tmp/acme".into(), None))
        );
        assert_eq!(
            git_source("git@github.com:acme/pack.git"),
            Some(("git@github.com:acme/pack.git".into(), None))
        );
    }

    #[test]
    fn the_version_changes_with_any_file_and_ignores_git_and_the_build() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pack.yaml"), "name: acme\n").unwrap();
        std::fs::create_dir_all(dir.path().join("actions")).unwrap();
        std::fs::write(dir.path().join("actions/a.yaml"), "name: a\n").unwrap();
        let v1 = tree_digest(dir.path(), &files(dir.path()).unwrap()).unwrap();
        assert_eq!(v1.len(), 16);
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join(".squall")).unwrap();
        std::fs::write(dir.path().join(".squall/python-actions.lock"), "x").unwrap();
        assert_eq!(
            tree_digest(dir.path(), &files(dir.path()).unwrap()).unwrap(),
            v1
        );
        std::fs::write(dir.path().join("actions/a.yaml"), "name: b\n").unwrap();
        assert_ne!(
            tree_digest(dir.path(), &files(dir.path()).unwrap()).unwrap(),
            v1
        );
    }

    #[test]
    fn a_pack_ref_must_match_stackstorms_whitelist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pack.yaml"), "name: Acme-Pack\n").unwrap();
        let e = pack_ref(dir.path()).unwrap_err();
        assert!(e.message.contains("not a valid pack ref"), "{}", e.message);
        std::fs::write(
            dir.path().join("pack.yaml"),
            "name: Acme Pack\nref: acme_pack\n",
        )
        .unwrap();
        assert_eq!(pack_ref(dir.path()).unwrap(), "acme_pack");
    }
}
