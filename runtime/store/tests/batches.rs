//! Batches commit all or nothing; trigger instances, enforcements, keys, API keys and rule
//! state round-trip with their filters.

use jiff::Timestamp;
use serde_json::{Map, json};
use squall_core::apikey::{ApiKey, ApiKeyId};
use squall_core::datastore::{KeyRef, KeyScope, KeyValuePair};
use squall_core::enforcement::RuleEnforcement;
use squall_core::trigger::TriggerInstanceStatus;
use squall_core::{Action, Execution, TriggerInstance};
use squall_store::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn execution() -> Execution {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.wasm"), b"\0asm").unwrap();
    let a = Action::parse(
        "name: a\nrunner_type: wasm\nentry_point: a.wasm\n",
        "ops",
        dir.path(),
        &dir.path().join("a.yaml"),
    )
    .unwrap();
    Execution::new(&a, Map::new(), "t", Timestamp::now())
}

#[test]
fn a_refused_write_leaves_nothing_of_its_batch() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let existing = execution();
        store.create(&existing).await.unwrap();

        let instance =
            TriggerInstance::new("core.st2.webhook".parse().unwrap(), Map::new(), json!({}));
        let fresh = execution();
        let mut batch = Batch::new();
        batch
            .create_trigger_instance(&instance)
            .create_execution(&fresh)
            .create_execution(&existing);
        assert!(matches!(
            store.commit(batch).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(store.trigger_instance(instance.id).await.unwrap().is_none());
        assert!(store.get(fresh.id).await.unwrap().is_none());

        let mut batch = Batch::new();
        batch
            .create_trigger_instance(&instance)
            .create_execution(&fresh);
        store.commit(batch).await.unwrap();
        assert_eq!(
            store.trigger_instance(instance.id).await.unwrap().unwrap(),
            instance
        );
        assert!(store.get(fresh.id).await.unwrap().is_some());
    });
}

#[test]
fn trigger_instances_and_enforcements_filter_newest_first() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let mut made = Vec::new();
        for i in 0..6 {
            let trigger = if i % 2 == 0 {
                "core.st2.webhook"
            } else {
                "github.push"
            };
            let mut t = TriggerInstance::new(trigger.parse().unwrap(), Map::new(), json!({"i": i}));
            let mut b = Batch::new();
            b.create_trigger_instance(&t);
            store.commit(b).await.unwrap();
            if i < 2 {
                t.status = TriggerInstanceStatus::Processed;
                let e = execution();
                let enf = RuleEnforcement::launched(&"ops.r".parse().unwrap(), t.id, e.id);
                let mut b = Batch::new();
                b.update_trigger_instance(&t)
                    .create_execution(&e)
                    .create_enforcement(&enf);
                store.commit(b).await.unwrap();
            }
            made.push(t);
        }
        let pushes = store
            .trigger_instances(&TriggerInstanceFilter {
                trigger: Some("github.push".parse().unwrap()),
                ..Default::default()
            })
            .await
            .unwrap();
        let want: Vec<_> = made
            .iter()
            .rev()
            .filter(|t| t.trigger.to_string() == "github.push")
            .cloned()
            .collect();
        assert_eq!(pushes, want);
        let pending = TriggerInstanceFilter {
            status: Some(TriggerInstanceStatus::Pending),
            ..Default::default()
        };
        assert_eq!(store.count_trigger_instances(&pending).await.unwrap(), 4);

        let by_rule = EnforcementFilter {
            rule: Some("ops.r".parse().unwrap()),
            ..Default::default()
        };
        let enfs = store.enforcements(&by_rule).await.unwrap();
        assert_eq!(enfs.len(), 2);
        assert_eq!(enfs[0].trigger_instance_id, made[1].id);
        let for_first = EnforcementFilter {
            trigger_instance: Some(made[0].id),
            ..Default::default()
        };
        assert_eq!(store.count_enforcements(&for_first).await.unwrap(), 1);
    });
}

#[test]
fn keys_api_keys_and_rule_state_round_trip() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let kv = KeyValuePair::system;
        let mut b = Batch::new();
        b.put_key(&kv("nginx.threshold", "3"))
            .put_key(&kv("nginx.port", "80"))
            .put_key(&kv("other", "x"));
        store.commit(b).await.unwrap();
        let port = KeyRef::system("nginx.port");
        assert_eq!(store.key(&port).await.unwrap().unwrap().value, "80");
        let other = KeyRef::system("other");
        assert_eq!(store.key_blocking(&other).unwrap().unwrap().value, "x");
        let names: Vec<String> = store
            .keys(KeyScope::System, None, "nginx.")
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.name)
            .collect();
        assert_eq!(names, ["nginx.port", "nginx.threshold"]);
        let mut b = Batch::new();
        b.delete_key(&other);
        store.commit(b).await.unwrap();
        assert!(store.key(&other).await.unwrap().is_none());

        let key = ApiKey {
            id: ApiKeyId::new(),
            key_hash: "ab".repeat(32),
            user: "ops".into(),
            description: String::new(),
            created_at: Timestamp::now(),
            enabled: true,
        };
        let mut b = Batch::new();
        b.put_api_key(&key).set_rule_enabled("ops.r", false);
        store.commit(b).await.unwrap();
        assert_eq!(store.api_key(&"ab".repeat(32)).await.unwrap().unwrap(), key);
        assert_eq!(store.api_keys().await.unwrap().len(), 1);
        assert_eq!(
            store.rule_overrides().await.unwrap(),
            [("ops.r".to_string(), false)]
        );
    });
}
