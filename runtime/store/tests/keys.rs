//! The datastore in the store: system and user keys apart, expiry hidden from every read and
//! swept without touching keys set again, and a model check against a `BTreeMap`.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use squall_core::datastore::{KeyRef, KeyScope, KeyValuePair};
use squall_store::*;
use std::collections::BTreeMap;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn put(store: &RedbStore, kv: &KeyValuePair) {
    let mut b = Batch::new();
    b.put_key(kv);
    store.commit(b).await.unwrap();
}

fn names(keys: Vec<KeyValuePair>) -> Vec<String> {
    keys.into_iter().map(|k| k.key_ref().to_string()).collect()
}

#[test]
fn system_and_user_keys_are_kept_apart() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        put(&store, &KeyValuePair::system("k", "shared")).await;
        put(
            &store,
            &KeyValuePair::system("alice:k", "system key with a colon"),
        )
        .await;
        put(&store, &KeyValuePair::user("alice", "k", "alice's")).await;
        put(&store, &KeyValuePair::user("al", "k", "al's")).await;
        put(&store, &KeyValuePair::user("bob", "kk", "bob's")).await;

        for (key, want) in [
            (KeyRef::system("k"), Some("shared")),
            (KeyRef::system("alice:k"), Some("system key with a colon")),
            (KeyRef::user("alice", "k"), Some("alice's")),
            (KeyRef::user("al", "k"), Some("al's")),
            (KeyRef::user("bob", "k"), None),
            (KeyRef::user("bob", "kk"), Some("bob's")),
        ] {
            let got = store.key(&key).await.unwrap().map(|k| k.value);
            assert_eq!(got.as_deref(), want, "{key}");
            let blocking = store.key_blocking(&key).unwrap().map(|k| k.value);
            assert_eq!(blocking.as_deref(), want, "{key}");
        }
        for (scope, user, prefix, want) in [
            (
                KeyScope::System,
                None,
                "",
                vec!["st2kv.system.alice:k", "st2kv.system.k"],
            ),
            (KeyScope::System, Some("alice"), "k", vec!["st2kv.system.k"]),
            (
                KeyScope::User,
                Some("alice"),
                "",
                vec!["st2kv.user.alice:k"],
            ),
            (KeyScope::User, Some("al"), "", vec!["st2kv.user.al:k"]),
            (KeyScope::User, Some("bob"), "k", vec!["st2kv.user.bob:kk"]),
            (KeyScope::User, Some("bob"), "x", vec![]),
            (
                KeyScope::User,
                None,
                "k",
                vec!["st2kv.user.al:k", "st2kv.user.alice:k", "st2kv.user.bob:kk"],
            ),
            (KeyScope::User, None, "kk", vec!["st2kv.user.bob:kk"]),
        ] {
            let got = names(store.keys(scope, user, prefix).await.unwrap());
            assert_eq!(got, want, "{scope} {user:?} {prefix:?}");
        }
        let mut b = Batch::new();
        b.delete_key(&KeyRef::user("alice", "k"));
        store.commit(b).await.unwrap();
        assert!(
            store
                .key(&KeyRef::user("alice", "k"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.key(&KeyRef::system("k")).await.unwrap().is_some());
    });
}

#[test]
fn expired_keys_are_invisible_and_swept_but_a_key_set_again_stays() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let now = Timestamp::now();
        let past = now - SignedDuration::from_secs(5);
        let later = now + SignedDuration::from_secs(3600);
        let with_expiry = |mut kv: KeyValuePair, at: Timestamp| {
            kv.expire_timestamp = Some(at);
            kv
        };
        put(
            &store,
            &with_expiry(KeyValuePair::system("gone", "1"), past),
        )
        .await;
        put(
            &store,
            &with_expiry(KeyValuePair::user("u", "gone", "1"), past),
        )
        .await;
        put(
            &store,
            &with_expiry(KeyValuePair::system("later", "1"), later),
        )
        .await;
        put(&store, &KeyValuePair::system("forever", "1")).await;
        // Set with a TTL, then again without: the old expiry must not sweep the new value.
        put(
            &store,
            &with_expiry(KeyValuePair::system("renewed", "old"), past),
        )
        .await;
        put(&store, &KeyValuePair::system("renewed", "new")).await;

        assert!(store.key(&KeyRef::system("gone")).await.unwrap().is_none());
        assert!(
            store
                .key_blocking(&KeyRef::user("u", "gone"))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            names(store.keys(KeyScope::System, None, "").await.unwrap()),
            [
                "st2kv.system.forever",
                "st2kv.system.later",
                "st2kv.system.renewed"
            ]
        );
        assert!(
            store
                .keys(KeyScope::User, None, "")
                .await
                .unwrap()
                .is_empty()
        );

        let due = names(store.expired_keys(now, 10).await.unwrap());
        assert_eq!(due, ["st2kv.system.gone", "st2kv.user.u:gone"]);
        assert_eq!(store.expired_keys(now, 1).await.unwrap().len(), 1);

        let mut b = Batch::new();
        b.delete_expired_keys(now);
        store.commit(b).await.unwrap();
        assert!(store.expired_keys(now, 10).await.unwrap().is_empty());
        assert_eq!(
            store
                .key(&KeyRef::system("renewed"))
                .await
                .unwrap()
                .unwrap()
                .value,
            "new"
        );
        // Later, the hour-long key is due too (and only it).
        let much_later = later + SignedDuration::from_secs(1);
        assert_eq!(
            names(store.expired_keys(much_later, 10).await.unwrap()),
            ["st2kv.system.later"]
        );
        let mut b = Batch::new();
        b.delete_expired_keys(much_later);
        store.commit(b).await.unwrap();
        assert_eq!(
            names(store.keys(KeyScope::System, None, "").await.unwrap()),
            ["st2kv.system.forever", "st2kv.system.renewed"]
        );
    });
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        user: Option<u8>,
        name: u8,
        value: u8,
    },
    Delete {
        user: Option<u8>,
        name: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = proptest::option::of(0u8..3);
    prop_oneof![
        (user.clone(), 0u8..4, any::<u8>()).prop_map(|(user, name, value)| Op::Put {
            user,
            name,
            value
        }),
        (user, 0u8..4).prop_map(|(user, name)| Op::Delete { user, name }),
    ]
}

fn key(user: Option<u8>, name: u8) -> KeyRef {
    match user {
        Some(u) => KeyRef::user(&format!("u{u}"), &format!("k{name}")),
        None => KeyRef::system(&format!("k{name}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn store_matches_a_map(ops in proptest::collection::vec(op(), 1..40)) {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = RedbStore::open(dir.path()).unwrap();
            let mut model: BTreeMap<KeyRef, String> = BTreeMap::new();
            for op in &ops {
                let mut b = Batch::new();
                match op {
                    Op::Put { user, name, value } => {
                        let k = key(*user, *name);
                        let kv = KeyValuePair {
                            name: k.name.clone(),
                            value: value.to_string(),
                            scope: k.scope,
                            user: k.user.clone(),
                            ..Default::default()
                        };
                        b.put_key(&kv);
                        model.insert(k, value.to_string());
                    }
                    Op::Delete { user, name } => {
                        let k = key(*user, *name);
                        b.delete_key(&k);
                        model.remove(&k);
                    }
                }
                store.commit(b).await.unwrap();
            }
            for user in [None, Some(0), Some(1), Some(2)] {
                for name in 0..4 {
                    let k = key(user, name);
                    let got = store.key(&k).await.unwrap().map(|kv| kv.value);
                    assert_eq!(got.as_ref(), model.get(&k), "{k}");
                }
            }
            let system: Vec<String> = model
                .iter()
                .filter(|(k, _)| k.scope == KeyScope::System)
                .map(|(k, _)| k.to_string())
                .collect();
            assert_eq!(names(store.keys(KeyScope::System, None, "").await.unwrap()), system);
            let u1: Vec<String> = model
                .keys()
                .filter(|k| k.user.as_deref() == Some("u1"))
                .map(|k| k.to_string())
                .collect();
            assert_eq!(names(store.keys(KeyScope::User, Some("u1"), "").await.unwrap()), u1);
        });
    }
}
