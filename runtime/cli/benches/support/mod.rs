//! What the benchmarks share: percentiles, a host caching compiled components in a scratch
//! directory, and a registry over the shipped packs plus a scratch directory's `packs/`.
//!
//! Each benchmark includes it with `mod support;` and uses part of it.

#![allow(dead_code)]

use squall_core::{Config, PackSet};
use squall_host::{Host, HostConfig};
use squall_server::Registry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The `p` quantile (0.0-1.0) of `sorted`, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The repository root (the shipped packs are in `packs/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A host with `config`'s settings and ceiling, caching compiled components in
/// `<scratch>/cache`.
pub fn host(config: &Config, scratch: &Path) -> Host {
    Host::new(&HostConfig {
        settings: config.host.clone(),
        ceiling: config.limits.max,
        cache_dir: scratch.join("cache"),
        cache_key_file: scratch.join("cache.key"),
    })
    .unwrap()
}

/// A registry over the shipped packs and `<scratch>/packs` (which must load without errors),
/// with `core.noop` and every sensor component already compiled, so no measurement includes
/// compiling them (sensors start with the services; compiling the shipped ones cold takes a
/// core for about a second on this machine).
pub fn registry(config: Config, scratch: &Path) -> Arc<Registry> {
    let packs = PackSet::load_all(&[repo().join("packs"), scratch.join("packs")]);
    assert!(packs.errors.is_empty(), "{:?}", packs.errors);
    let host = host(&config, scratch);
    let registry =
        Arc::new(Registry::new(packs, config, host).with_process_root(scratch.join("processes")));
    let noop = registry
        .packs()
        .action(&"core.noop".parse().unwrap())
        .unwrap()
        .clone();
    registry.prepare(&noop).unwrap();
    for sensor in registry.packs().sensors() {
        registry.host().prepare_sensor(&sensor.entry_path).unwrap();
    }
    registry
}

/// A host with `config`'s settings caching compiled components where `squall` keeps them for
/// the data directory `data_dir` (`settings.rs`), so what `squall pack build` compiled is found.
pub fn data_dir_host(config: &Config, data_dir: &Path) -> Host {
    Host::new(&HostConfig {
        settings: config.host.clone(),
        ceiling: config.limits.max,
        cache_dir: data_dir.join("cache").join("components"),
        cache_key_file: data_dir.join("keys").join("cache.key"),
    })
    .unwrap()
}

/// A loopback HTTP server answering every request `200` with the JSON `body`; returns its
/// port.
pub fn http_server(body: &'static [u8]) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(body);
            });
        }
    });
    port
}

/// Copies the tree `from` into `to`; directories named `.squall` (build output) are left out.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != ".squall" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
