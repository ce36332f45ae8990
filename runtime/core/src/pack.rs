//! Packs: StackStorm's unit of content, loaded from a directory of pack directories.
//!
//! ```text
//! packs/
//!   core/
//!     pack.yaml            ref/name, description, version, author, ... and `capabilities`
//!     actions/*.yaml       action metadata (see crate::action)
//!     actions/*.wasm       components named by `entry_point`
//!     triggers/*.yaml      trigger types (see crate::trigger)
//!     rules/*.yaml         rules (see crate::rule)
//!     sensors/*.yaml       sensors (see crate::sensor), their components beside them
//!     policies/*.yaml      policies (see crate::policy)
//! ```
//!
//! `pack.yaml` takes StackStorm's fields (`ref`, `name`, `description`, `version`, `author`,
//! `email`, `keywords`, `contributors`, `dependencies`, `python_versions`, `stackstorm_version`,
//! `system`, `uid`, `files`, `path`) plus Squall's `capabilities` — what the pack's components
//! ask to use (only granted if the operator also grants it in `squall.toml`):
//!
//! ```yaml
//! capabilities:
//!   http: ["*"]        # destination patterns, see crate::capability
//! ```
//!
//! Loading never stops at a broken file: a bad `pack.yaml` skips that pack, a bad action,
//! trigger or rule file skips that one item, and each problem is reported as a [`PackError`]
//! naming the file and field. Rules are loaded last, so they may use actions and trigger types
//! of any pack.

use crate::action::{Action, ContentError, yaml_message};
use crate::capability::HostPattern;
use crate::reference::{Ref, validate_pack_name};
use crate::rule::{Lookup, Rule};
use crate::trigger::{self, TriggerType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A pack's `pack.yaml`, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackMeta {
    /// The pack's ref (its `ref`, else its `name`).
    #[serde(rename = "ref")]
    pub reference: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Version text (semver by convention).
    pub version: String,
    /// Author.
    pub author: String,
    /// Author's e-mail.
    pub email: String,
    /// Search keywords.
    pub keywords: Vec<String>,
    /// What the pack's components ask to use.
    pub capabilities: Capabilities,
}

/// The `capabilities` block of `pack.yaml`: what the pack requests. Nothing is requested by
/// default, and nothing requested is usable until the operator grants it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Outbound HTTP destinations.
    #[serde(default)]
    pub http: Vec<HostPattern>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    #[serde(default, rename = "ref")]
    reference: Option<String>,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    author: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    capabilities: Capabilities,
    // StackStorm fields that Squall accepts and does not use.
    #[serde(default, rename = "contributors")]
    _contributors: Option<Value>,
    #[serde(default, rename = "dependencies")]
    _dependencies: Option<Value>,
    #[serde(default, rename = "python_versions")]
    _python_versions: Option<Value>,
    #[serde(default, rename = "stackstorm_version")]
    _stackstorm_version: Option<Value>,
    #[serde(default, rename = "system")]
    _system: Option<Value>,
    #[serde(default, rename = "uid")]
    _uid: Option<Value>,
    #[serde(default, rename = "files")]
    _files: Option<Value>,
    #[serde(default, rename = "path")]
    _path: Option<Value>,
}

/// One loaded pack.
#[derive(Debug, Clone)]
pub struct Pack {
    /// Its `pack.yaml`.
    pub meta: PackMeta,
    /// Its directory.
    pub path: PathBuf,
    /// Its valid actions, by name.
    pub actions: BTreeMap<String, Action>,
    /// Its valid trigger types, by name.
    pub trigger_types: BTreeMap<String, TriggerType>,
    /// Its valid rules, by name.
    pub rules: BTreeMap<String, Rule>,
    /// Its config (`config.schema.yaml` + `configs/<pack>.yaml`, see crate::pack_config);
    /// `None` when it has neither file.
    pub config: Option<crate::pack_config::PackConfig>,
    /// Its valid policies, by name (see crate::policy).
    pub policies: BTreeMap<String, crate::policy::Policy>,
    /// Its valid sensors, by class name (see crate::sensor).
    pub sensors: BTreeMap<String, crate::sensor::Sensor>,
}

/// A problem found while loading packs: the file, the field (when known) and the reason.
///
/// Displays as `packs/ops/actions/x.yaml: runner_type: unknown runner "pythn"; ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// The field, dotted (`parameters.url.type`), or empty.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.path.display(),
                self.field,
                self.message
            )
        }
    }
}

impl std::error::Error for PackError {}

impl PackError {
    fn new(path: &Path, field: &str, message: impl Into<String>) -> Self {
        PackError {
            path: path.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn content(path: &Path, e: ContentError) -> Self {
        PackError::new(path, &e.field, e.message)
    }
}

/// Every pack found in a directory, and every problem met on the way.
#[derive(Debug, Clone)]
pub struct PackSet {
    /// Loaded packs, by ref.
    pub packs: BTreeMap<String, Pack>,
    /// Problems, in the order found.
    pub errors: Vec<PackError>,
    /// StackStorm's built-in trigger types (`core.st2.*`).
    pub builtin_trigger_types: Vec<TriggerType>,
}

impl Default for PackSet {
    fn default() -> Self {
        PackSet {
            packs: BTreeMap::new(),
            errors: Vec::new(),
            builtin_trigger_types: trigger::builtins(),
        }
    }
}

impl PackSet {
    /// Loads every pack directory under `dir` (directories whose name starts with `.` are
    /// skipped). Never fails: a missing `dir` is itself reported as an error.
    pub fn load(dir: &Path) -> PackSet {
        PackSet::load_all(&[dir.to_path_buf()])
    }

    /// Loads the packs of several directories, in order (StackStorm's `packs_base_paths`); a
    /// pack whose ref was already loaded from an earlier directory is reported and skipped.
    pub fn load_all(bases: &[PathBuf]) -> PackSet {
        PackSet::load_all_with_configs(bases, None)
    }

    /// [`PackSet::load_all`], taking packs' configs (`<pack>.yaml`) from `configs_dir` (the
    /// operator's `configs_dir`); `None`: from `configs` beside each packs directory (see
    /// crate::pack_config).
    pub fn load_all_with_configs(bases: &[PathBuf], configs_dir: Option<&Path>) -> PackSet {
        let mut set = PackSet::default();
        for base in bases {
            let entries = match std::fs::read_dir(base) {
                Ok(entries) => entries,
                Err(e) => {
                    set.errors.push(PackError::new(
                        base,
                        "",
                        format!("cannot read packs directory: {e}"),
                    ));
                    continue;
                }
            };
            let mut dirs: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            dirs.sort();
            for pack_dir in &dirs {
                set.load_pack(pack_dir);
            }
        }
        set.load_configs(configs_dir);
        let packs: Vec<(String, PathBuf)> = set
            .packs
            .values()
            .map(|p| (p.meta.reference.clone(), p.path.clone()))
            .collect();
        // Workflows and rules may name actions and trigger types of any pack, so they load
        // against a snapshot of everything else.
        let snapshot = set.clone();
        set.load_workflows(&snapshot);
        let snapshot = set.clone();
        for (pack, dir) in packs {
            set.load_rules(&snapshot, &pack, &dir);
            set.load_policies(&snapshot, &pack, &dir);
        }
        set
    }

    /// Loads `<dir>/<sub>/*.yaml` with `parse`, recording failures; returns what parsed, by the
    /// name `name_of` gives, rejecting duplicates.
    pub(crate) fn load_items<T>(
        &mut self,
        dir: &Path,
        sub: &str,
        mut parse: impl FnMut(&str, &Path) -> Result<T, ContentError>,
        name_of: impl Fn(&T) -> String,
    ) -> BTreeMap<String, (T, PathBuf)> {
        let mut items: BTreeMap<String, (T, PathBuf)> = BTreeMap::new();
        for file in yaml_files(&dir.join(sub)) {
            let loaded = crate::pack_files::read_text(dir, &file)
                .and_then(|t| t.ok_or_else(|| "cannot read: not found".to_string()))
                .map_err(|e| PackError::new(&file, "", e))
                .and_then(|text| parse(&text, &file).map_err(|e| PackError::content(&file, e)));
            match loaded {
                Ok(item) => {
                    let name = name_of(&item);
                    if let Some((_, first)) = items.get(&name) {
                        self.errors.push(PackError::new(
                            &file,
                            "name",
                            format!("{name:?} is already defined in {}", first.display()),
                        ));
                    } else {
                        items.insert(name, (item, file));
                    }
                }
                Err(e) => self.errors.push(e),
            }
        }
        items
    }

    /// Parses and inspects the workflow of every `orquesta` action and the chain of every
    /// `action-chain` action; an action whose workflow or chain has problems is reported
    /// (naming the file, task or node, and field) and not loaded.
    fn load_workflows(&mut self, snapshot: &PackSet) {
        let lookup =
            |r: &str| -> Option<Action> { snapshot.action(&r.parse::<Ref>().ok()?).cloned() };
        for pack in self.packs.values_mut() {
            let mut broken = Vec::new();
            for (name, action) in pack.actions.iter_mut() {
                if !action.runner_type.is_conducted() {
                    continue;
                }
                let file = action.entry_path.clone();
                let text = crate::pack_files::read_text(&pack.path, &file)
                    .and_then(|t| t.ok_or_else(|| "cannot read: not found".to_string()));
                let problems = match text {
                    Err(e) => vec![PackError::new(&file, "", e)],
                    Ok(text) if action.runner_type == crate::RunnerType::ActionChain => {
                        match load_chain(&text, &action.reference, &lookup) {
                            Ok(spec) => {
                                action.chain = Some(std::sync::Arc::new(spec));
                                Vec::new()
                            }
                            Err(e) => vec![PackError::new(&file, &e.field, e.message)],
                        }
                    }
                    Ok(text) => match crate::workflow::WorkflowSpec::parse(&text) {
                        Err(e) => vec![PackError::new(&file, &e.field, e.message)],
                        Ok(spec) => {
                            let found = crate::workflow::inspect(&spec, Some(&lookup));
                            if found.is_empty() {
                                action.workflow = Some(std::sync::Arc::new(spec));
                            }
                            found
                                .into_iter()
                                .map(|e| PackError::new(&file, &e.field, e.message))
                                .collect()
                        }
                    },
                };
                if !problems.is_empty() {
                    self.errors.extend(problems);
                    broken.push(name.clone());
                }
            }
            for name in broken {
                pack.actions.remove(&name);
            }
        }
    }

    fn load_rules(&mut self, snapshot: &PackSet, pack: &str, dir: &Path) {
        let find_action = |r: &Ref| snapshot.action(r);
        let find_type = |r: &Ref| snapshot.trigger_type(r);
        let lookup = Lookup {
            action: &find_action,
            trigger_type: &find_type,
        };
        let rules = self.load_items(
            dir,
            "rules",
            |text, file| Rule::parse(text, pack, file, &lookup),
            |r: &Rule| r.reference.name().to_string(),
        );
        if let Some(p) = self.packs.get_mut(pack) {
            p.rules = rules.into_iter().map(|(k, (r, _))| (k, r)).collect();
        }
    }

    fn load_pack(&mut self, dir: &Path) {
        let meta_file = dir.join("pack.yaml");
        let text = match crate::pack_files::read_text(dir, &meta_file)
            .and_then(|t| t.ok_or_else(|| "cannot read: No such file or directory".to_string()))
        {
            Ok(t) => t,
            Err(e) => {
                self.errors.push(PackError::new(&meta_file, "", e));
                return;
            }
        };
        let meta = match parse_pack_meta(&text, &meta_file) {
            Ok(m) => m,
            Err(e) => {
                self.errors.push(PackError::content(&meta_file, e));
                return;
            }
        };
        if let Some(existing) = self.packs.get(&meta.reference) {
            self.errors.push(PackError::new(
                &meta_file,
                "ref",
                format!(
                    "pack {:?} is already loaded from {}",
                    meta.reference,
                    existing.path.display()
                ),
            ));
            return;
        }
        let actions_dir = dir.join("actions");
        let pack = meta.reference.clone();
        let mut actions = self.load_items(
            dir,
            "actions",
            |text, file| Action::parse(text, &pack, &actions_dir, file),
            |a: &Action| a.reference.name().to_string(),
        );
        let mut trigger_types = self.load_items(
            dir,
            "triggers",
            |text, file| TriggerType::parse(text, &pack, file),
            |t: &TriggerType| t.reference.name().to_string(),
        );
        let mut sensors = self.load_sensors(dir, &pack, &mut trigger_types);
        self.attach_python_component(dir, &mut actions, &mut sensors);
        self.packs.insert(
            meta.reference.clone(),
            Pack {
                meta,
                path: dir.to_path_buf(),
                actions: actions.into_iter().map(|(k, (a, _))| (k, a)).collect(),
                trigger_types: trigger_types
                    .into_iter()
                    .map(|(k, (t, _))| (k, t))
                    .collect(),
                rules: BTreeMap::new(),
                config: None,
                policies: BTreeMap::new(),
                sensors,
            },
        );
    }

    /// Points the pack's `python-script` actions and Python sensors at the component `squall
    /// pack build` made of its Python files, when that build is current
    /// ([`crate::python::check_built`]); when it is not, each of them is reported (file, field
    /// `entry_point`, the command to run) and not loaded.
    fn attach_python_component(
        &mut self,
        dir: &Path,
        actions: &mut BTreeMap<String, (Action, PathBuf)>,
        sensors: &mut BTreeMap<String, crate::sensor::Sensor>,
    ) {
        let entries = crate::python::Entries {
            actions: actions
                .values()
                .filter(|(a, _)| a.runner_type == crate::RunnerType::PythonScript)
                .map(|(a, _)| a.entry_point.clone())
                .collect(),
            sensors: sensors
                .values()
                .filter(|s| s.is_python())
                .map(|s| (s.reference.name().to_string(), s.entry_point.clone()))
                .collect(),
        };
        if entries.is_empty() {
            return;
        }
        match crate::python::check_built(dir, &entries) {
            Ok(component) => {
                for (a, _) in actions.values_mut() {
                    if a.runner_type == crate::RunnerType::PythonScript {
                        a.entry_path = component.clone();
                    }
                }
                for s in sensors.values_mut() {
                    if s.is_python() {
                        s.entry_path = component.clone();
                    }
                }
            }
            Err(message) => {
                actions.retain(|_, (a, file)| {
                    if a.runner_type != crate::RunnerType::PythonScript {
                        return true;
                    }
                    self.errors
                        .push(PackError::new(file, "entry_point", message.clone()));
                    false
                });
                sensors.retain(|_, s| {
                    if !s.is_python() {
                        return true;
                    }
                    self.errors.push(PackError::new(
                        &s.metadata_file,
                        "entry_point",
                        message.clone(),
                    ));
                    false
                });
            }
        }
    }

    /// Loads `sensors/*.yaml`; trigger types a sensor declares inline join `trigger_types`
    /// (a name already defined there is an error on the sensor's file).
    fn load_sensors(
        &mut self,
        dir: &Path,
        pack: &str,
        trigger_types: &mut BTreeMap<String, (TriggerType, PathBuf)>,
    ) -> BTreeMap<String, crate::sensor::Sensor> {
        let sensors_dir = dir.join("sensors");
        let loaded = self.load_items(
            dir,
            "sensors",
            |text, file| crate::sensor::Sensor::parse(text, pack, &sensors_dir, file),
            |(s, _): &(crate::sensor::Sensor, Vec<TriggerType>)| s.reference.name().to_string(),
        );
        let mut sensors = BTreeMap::new();
        for (name, ((sensor, declared), file)) in loaded {
            let mut clash = None;
            for t in &declared {
                if let Some((_, first)) = trigger_types.get(t.reference.name()) {
                    clash = Some(PackError::new(
                        &file,
                        "trigger_types",
                        format!(
                            "trigger type {:?} is already defined in {}",
                            t.reference.name(),
                            first.display()
                        ),
                    ));
                }
            }
            if let Some(e) = clash {
                self.errors.push(e);
                continue;
            }
            for t in declared {
                trigger_types.insert(t.reference.name().to_string(), (t, file.clone()));
            }
            sensors.insert(name, sensor);
        }
        sensors
    }

    /// Every loaded sensor, ordered by ref.
    pub fn sensors(&self) -> impl Iterator<Item = &crate::sensor::Sensor> {
        self.packs.values().flat_map(|p| p.sensors.values())
    }

    /// The sensor with this ref, if loaded.
    pub fn sensor(&self, reference: &Ref) -> Option<&crate::sensor::Sensor> {
        self.packs
            .get(reference.pack())?
            .sensors
            .get(reference.name())
    }

    /// The action with this ref, if loaded.
    pub fn action(&self, reference: &Ref) -> Option<&Action> {
        self.packs
            .get(reference.pack())?
            .actions
            .get(reference.name())
    }

    /// Every loaded action, ordered by ref.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.packs.values().flat_map(|p| p.actions.values())
    }

    /// The pack with this ref, if loaded.
    pub fn pack(&self, reference: &str) -> Option<&Pack> {
        self.packs.get(reference)
    }

    /// The trigger type with this ref (built-in or from a pack), if loaded.
    pub fn trigger_type(&self, reference: &Ref) -> Option<&TriggerType> {
        self.builtin_trigger_types
            .iter()
            .find(|t| &t.reference == reference)
            .or_else(|| {
                self.packs
                    .get(reference.pack())?
                    .trigger_types
                    .get(reference.name())
            })
    }

    /// Every trigger type: built-ins first, then packs' by ref.
    pub fn trigger_types(&self) -> impl Iterator<Item = &TriggerType> {
        self.builtin_trigger_types
            .iter()
            .chain(self.packs.values().flat_map(|p| p.trigger_types.values()))
    }

    /// The rule with this ref, if loaded.
    pub fn rule(&self, reference: &Ref) -> Option<&Rule> {
        self.packs
            .get(reference.pack())?
            .rules
            .get(reference.name())
    }

    /// Every loaded rule, ordered by ref.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.packs.values().flat_map(|p| p.rules.values())
    }
}

/// Parses a `pack.yaml` text.
///
/// # Errors
/// [`ContentError`] naming the field.
fn parse_pack_meta(text: &str, file: &Path) -> Result<PackMeta, ContentError> {
    let raw: RawPack = serde_saphyr::from_str(text).map_err(|e| ContentError {
        field: String::new(),
        message: yaml_message(&e, file),
    })?;
    let (field, reference) = match raw.reference {
        Some(r) => ("ref", r),
        None => ("name", raw.name.clone()),
    };
    validate_pack_name(&reference).map_err(|e| ContentError {
        field: field.to_string(),
        message: e.to_string(),
    })?;
    let version = match raw.version {
        None => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
    };
    Ok(PackMeta {
        reference,
        name: raw.name,
        description: raw.description,
        version,
        author: raw.author,
        email: raw.email,
        keywords: raw.keywords,
        capabilities: raw.capabilities,
    })
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Parses an ActionChain file and checks that every action it names (Jinja refs aside) is
/// loaded, as Orquesta workflows are inspected (StackStorm finds an unknown ref only when the
/// node is reached).
fn load_chain(
    text: &str,
    reference: &Ref,
    lookup: &dyn Fn(&str) -> Option<Action>,
) -> Result<crate::chain::ChainSpec, crate::chain::ChainError> {
    let spec = crate::chain::ChainSpec::parse(text, &reference.to_string())?;
    for (i, action) in spec.actions() {
        if lookup(action).is_none() {
            return Err(crate::chain::ChainError {
                field: format!("chain[{i}].ref"),
                message: format!(
                    "Task :: {} - Action with ref {action} not registered.",
                    spec.chain[i].name
                ),
            });
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    const GOOD_ACTION: &str = "name: hello\nrunner_type: wasm\nentry_point: hello.wasm\n";

    #[test]
    fn broken_content_is_reported_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "good/pack.yaml",
            "name: good\nversion: 1.0.0\ncapabilities: {http: [\"*\"]}\n",
        );
        write(root, "good/actions/hello.yaml", GOOD_ACTION);
        write(root, "good/actions/hello.wasm", "\0asm");
        write(
            root,
            "good/actions/bad.yaml",
            "name: bad\nrunner_type: shell\nentry_point: x\n",
        );
        write(root, "broken/pack.yaml", "name: [unclosed\n");
        write(root, "nometa/actions/x.yaml", GOOD_ACTION);
        write(root, ".git/pack.yaml", "garbage");
        let set = PackSet::load(root);

        assert_eq!(set.packs.keys().collect::<Vec<_>>(), ["good"]);
        let good = set.pack("good").unwrap();
        assert_eq!(good.meta.version, "1.0.0");
        assert_eq!(good.meta.capabilities.http.len(), 1);
        assert!(set.action(&"good.hello".parse().unwrap()).is_some());
        assert!(set.action(&"good.bad".parse().unwrap()).is_none());

        let messages: Vec<String> = set.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(messages[0].contains("broken/pack.yaml: "), "{messages:#?}");
        assert!(
            messages[1].contains("good/actions/bad.yaml: runner_type: unknown runner \"shell\""),
            "{messages:#?}"
        );
        assert!(
            messages[2].contains("nometa/pack.yaml: cannot read"),
            "{messages:#?}"
        );
    }

    #[test]
    fn sensors_load_and_register_their_inline_trigger_types() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "gh/pack.yaml", "name: gh\n");
        write(root, "gh/sensors/push.wasm", "\0asm");
        write(
            root,
            "gh/sensors/push.yaml",
            "class_name: PushSensor\nentry_point: push.wasm\npoll_interval: 0\nwebhooks: [gh]\n\
             trigger_types:\n  - name: push\n    payload_schema: {type: object}\n",
        );
        write(root, "gh/triggers/ping.yaml", "name: ping\n");
        // Declares a trigger type already defined in triggers/: refused, naming the file.
        write(
            root,
            "gh/sensors/clash.yaml",
            "class_name: Clash\nentry_point: push.wasm\ntrigger_types:\n  - name: ping\n",
        );
        write(
            root,
            "gh/sensors/broken.yaml",
            "class_name: Broken\nentry_point: missing.wasm\ntrigger_types: [gh.push]\n",
        );
        let set = PackSet::load(root);
        let sensors: Vec<String> = set.sensors().map(|s| s.reference.to_string()).collect();
        assert_eq!(sensors, ["gh.PushSensor"]);
        assert!(set.trigger_type(&"gh.push".parse().unwrap()).is_some());
        assert!(set.sensor(&"gh.PushSensor".parse().unwrap()).is_some());
        let messages: Vec<String> = set.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(
            messages[0].contains(
                "gh/sensors/broken.yaml: entry_point: component \"missing.wasm\" not found"
            ),
            "{messages:#?}"
        );
        assert!(
            messages[1].contains(
                "gh/sensors/clash.yaml: trigger_types: trigger type \"ping\" is already defined"
            ),
            "{messages:#?}"
        );
    }

    #[test]
    fn pack_yaml_fields_are_checked() {
        for (yaml, field, want) in [
            ("name: Bad Name\n", "name", "must match"),
            ("name: x\nref: Bad\n", "ref", "must match"),
            ("name: x\nbogus: 1\n", "", "bogus"),
            (
                "name: x\ncapabilities: {http: [\"ftp://x\"]}\n",
                "",
                "ftp://x",
            ),
            ("name: x\ncapabilities: {files: []}\n", "", "files"),
        ] {
            let err = parse_pack_meta(yaml, Path::new("pack.yaml")).unwrap_err();
            assert_eq!(err.field, field, "{yaml}: {err:?}");
            assert!(err.message.contains(want), "{yaml}: {err:?}");
        }
        let ok = parse_pack_meta(
            "name: Core Pack\nref: core\nversion: 3.1\n",
            Path::new("pack.yaml"),
        )
        .unwrap();
        assert_eq!(
            (ok.reference.as_str(), ok.version.as_str()),
            ("core", "3.1")
        );
    }

    #[test]
    fn missing_packs_dir_is_an_error_not_a_panic() {
        let set = PackSet::load(Path::new("/nonexistent/packs"));
        assert!(set.packs.is_empty());
        assert!(
            set.errors[0]
                .to_string()
                .starts_with("/nonexistent/packs: cannot read packs directory")
        );
    }
}
