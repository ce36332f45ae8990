//! The rules engine through `Services`: standard and backstop rules, disabled rules, criteria
//! errors and parameters that do not render become failed enforcements; matches launch
//! executions with rendered, typed parameters.

use serde_json::{Map, Value, json};
use squall_core::config::HostSettings;
use squall_core::enforcement::EnforcementStatus;
use squall_core::{Config, Limits, PackSet, Ref};
use squall_host::{Host, HostConfig};
use squall_server::{Mode, Registry, Services};
use squall_store::{
    EnforcementFilter, EnforcementStore, ExecutionFilter, ExecutionStore, RedbStore,
    TriggerInstanceStore,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RULES: &[(&str, &str)] = &[
    (
        "standard",
        "name: standard\nenabled: true\ntrigger: {type: tests.event}\n\
         criteria: {trigger.kind: {type: equals, pattern: known}}\n\
         action: {ref: tests.echo, parameters: {n: '{{ trigger.count }}', label: '{{ trigger.kind }}-{{ trigger.count }}'}}\n",
    ),
    (
        "backstop",
        "name: backstop\nenabled: true\ntype: backstop\ntrigger: {type: tests.event}\naction: {ref: tests.echo, parameters: {label: unmatched}}\n",
    ),
    (
        "disabled",
        "name: disabled\ntrigger: {type: tests.event}\naction: {ref: tests.echo, parameters: {label: never}}\n",
    ),
    (
        "erroring",
        "name: erroring\nenabled: true\ntrigger: {type: tests.event}\n\
         criteria: {trigger.count: {type: lessthan, pattern: ten}}\naction: {ref: tests.echo}\n",
    ),
    (
        "unrenderable",
        "name: unrenderable\nenabled: true\ntrigger: {type: tests.event}\n\
         criteria: {trigger.kind: {type: equals, pattern: bad}}\n\
         action: {ref: tests.echo, parameters: {n: '{{ trigger.count }}'}}\n",
    ),
];

struct Fixture {
    services: Services,
    store: Arc<RedbStore>,
    _dir: tempfile::TempDir,
}

fn fixture(rt: &tokio::runtime::Runtime) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("packs/tests");
    for sub in ["actions", "rules", "triggers"] {
        std::fs::create_dir_all(pack.join(sub)).unwrap();
    }
    std::fs::write(pack.join("pack.yaml"), "name: tests\n").unwrap();
    std::fs::copy(
        squall_test_components::TEST_HOSTILE,
        pack.join("actions/echo.wasm"),
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/echo.yaml"),
        "name: echo\nrunner_type: wasm\nentry_point: echo.wasm\nparameters:\n  mode: {type: string, default: echo}\n  n: {type: integer}\n  label: {type: string}\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("triggers/event.yaml"),
        "name: event\npayload_schema:\n  type: object\n  properties:\n    kind: {type: string, required: true}\n    count: {}\n",
    )
    .unwrap();
    for (name, yaml) in RULES {
        std::fs::write(pack.join(format!("rules/{name}.yaml")), yaml).unwrap();
    }
    let packs = PackSet::load(&dir.path().join("packs"));
    assert!(packs.errors.is_empty(), "{:?}", packs.errors);
    let host = Host::new(&HostConfig {
        settings: HostSettings::default(),
        ceiling: Limits::CEILING,
        cache_dir: dir.path().join("cache"),
        cache_key_file: dir.path().join("cache.key"),
    })
    .unwrap();
    let registry = Arc::new(Registry::new(packs, Config::default(), host));
    let store = Arc::new(RedbStore::open(&dir.path().join("data")).unwrap());
    let services = rt
        .block_on(Services::start(registry, store.clone(), Mode::Server))
        .unwrap();
    Fixture {
        services,
        store,
        _dir: dir,
    }
}

fn event(
    f: &Fixture,
    rt: &tokio::runtime::Runtime,
    payload: Value,
) -> Vec<(String, EnforcementStatus, Option<String>)> {
    let trigger: Ref = "tests.event".parse().unwrap();
    let instance = rt
        .block_on(f.services.dispatch(&trigger, &Map::new(), payload))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = rt
            .block_on(f.store.trigger_instance(instance.id))
            .unwrap()
            .unwrap();
        if got.status == squall_core::trigger::TriggerInstanceStatus::Processed {
            break;
        }
        assert!(Instant::now() < deadline, "not processed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let filter = EnforcementFilter {
        trigger_instance: Some(instance.id),
        ..Default::default()
    };
    let mut found: Vec<_> = rt
        .block_on(f.store.enforcements(&filter))
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.rule.reference.name().to_string(),
                e.status,
                e.failure_reason,
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn standard_backstop_disabled_and_failing_rules() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let f = fixture(&rt);
    use EnforcementStatus::{Failed, Succeeded};

    // A standard match: the backstop stays quiet; the criteria error is recorded as failed.
    let got = event(&f, &rt, json!({"kind": "known", "count": 3}));
    let names: Vec<(&str, EnforcementStatus)> =
        got.iter().map(|(n, s, _)| (n.as_str(), *s)).collect();
    assert_eq!(names, [("erroring", Failed), ("standard", Succeeded)]);
    assert!(
        got[0]
            .2
            .as_deref()
            .unwrap()
            .contains("cannot compare a number with a string"),
        "{got:?}"
    );

    // No standard match (the erroring one does not match either): the backstop fires.
    let got = event(&f, &rt, json!({"kind": "other", "count": 3}));
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["backstop", "erroring"]);

    // A match whose parameters do not validate: failed enforcement, no execution.
    let got = event(&f, &rt, json!({"kind": "bad", "count": "three"}));
    let bad = got.iter().find(|(n, _, _)| n == "unrenderable").unwrap();
    assert_eq!(bad.1, Failed);
    assert!(bad.2.as_deref().unwrap().contains("\"n\""), "{bad:?}");

    // The launched execution got typed, rendered parameters and ran.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ran = loop {
        let list = rt
            .block_on(f.store.list(&ExecutionFilter::default()))
            .unwrap();
        if list.len() == 2 && list.iter().all(|e| e.status.is_completed()) {
            break list;
        }
        assert!(Instant::now() < deadline, "{list:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let standard = ran
        .iter()
        .find(|e| e.context["rule"]["ref"] == "tests.standard")
        .unwrap();
    assert_eq!(standard.parameters["n"], json!(3));
    assert_eq!(standard.parameters["label"], json!("known-3"));
    assert_eq!(standard.result["label"], json!("known-3"));
    assert!(
        ran.iter()
            .all(|e| e.context["rule"]["ref"] != "tests.disabled")
    );

    // Payloads are checked against the trigger type's schema.
    let trigger: Ref = "tests.event".parse().unwrap();
    let err = rt
        .block_on(
            f.services
                .dispatch(&trigger, &Map::new(), json!({"count": 1})),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("\"kind\" is a required property"),
        "{err}"
    );
    rt.block_on(f.services.shutdown(Duration::from_secs(5)));
}
