//! The redb execution store against its contract, and against a `BTreeMap` model.

use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::Map;
use squall_core::{Action, Execution, ExecutionId, ExecutionStatus, Ref};
use squall_store::{ExecutionFilter, ExecutionStore, RedbStore, StoreError};
use std::collections::BTreeMap;

fn action(name: &str) -> Action {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.wasm"), b"\0asm").unwrap();
    Action::parse(
        &format!("name: {name}\nrunner_type: wasm\nentry_point: a.wasm\n"),
        "ops",
        dir.path(),
        &dir.path().join("a.yaml"),
    )
    .unwrap()
}

fn execution(name: &str) -> Execution {
    Execution::new(&action(name), Map::new(), "tester", Timestamp::now())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn create_get_update_round_trip() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let mut e = execution("a");
        store.create(&e).await.unwrap();
        assert_eq!(store.get(e.id).await.unwrap().unwrap(), e);

        e.transition(ExecutionStatus::Scheduled, Timestamp::now())
            .unwrap();
        store.update(&e).await.unwrap();
        let got = store.get(e.id).await.unwrap().unwrap();
        assert_eq!(got.status, ExecutionStatus::Scheduled);
        assert_eq!(got.log.len(), 2);

        let dup = store.create(&e).await.unwrap_err();
        assert!(matches!(dup, StoreError::AlreadyExists(_)));
        assert_eq!(
            dup.to_string(),
            format!("execution {} already exists", e.id)
        );
        let ghost = execution("a");
        assert!(matches!(
            store.update(&ghost).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(store.get(ExecutionId::new()).await.unwrap().is_none());
    });
}

#[test]
fn records_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let e = execution("a");
    rt().block_on(async {
        let store = RedbStore::open(dir.path()).unwrap();
        store.create(&e).await.unwrap();
    });
    rt().block_on(async {
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(store.get(e.id).await.unwrap().unwrap(), e);
        assert_eq!(store.count(&ExecutionFilter::default()).await.unwrap(), 1);
    });
}

#[test]
fn list_is_newest_first_with_filters_offset_and_limit() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let mut made = Vec::new();
        for i in 0..10 {
            let mut e = execution(if i % 2 == 0 { "even" } else { "odd" });
            if i % 3 == 0 {
                e.transition(ExecutionStatus::Scheduled, Timestamp::now())
                    .unwrap();
            }
            store.create(&e).await.unwrap();
            made.push(e);
        }
        let ids = |v: Vec<Execution>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        let newest_first: Vec<ExecutionId> = made.iter().rev().map(|e| e.id).collect();

        let all = store.list(&ExecutionFilter::default()).await.unwrap();
        assert_eq!(ids(all), newest_first);

        let page = ExecutionFilter {
            offset: 2,
            limit: 3,
            ..Default::default()
        };
        assert_eq!(ids(store.list(&page).await.unwrap()), newest_first[2..5]);

        let even: Ref = "ops.even".parse().unwrap();
        let by_action = ExecutionFilter {
            action: Some(even.clone()),
            ..Default::default()
        };
        let want: Vec<ExecutionId> = made
            .iter()
            .rev()
            .filter(|e| e.action.name == "even")
            .map(|e| e.id)
            .collect();
        assert_eq!(ids(store.list(&by_action).await.unwrap()), want);

        let scheduled = ExecutionFilter {
            status: Some(ExecutionStatus::Scheduled),
            ..Default::default()
        };
        let want: Vec<ExecutionId> = made
            .iter()
            .rev()
            .filter(|e| e.status == ExecutionStatus::Scheduled)
            .map(|e| e.id)
            .collect();
        assert_eq!(ids(store.list(&scheduled).await.unwrap()), want);

        let both = ExecutionFilter {
            action: Some(even),
            status: Some(ExecutionStatus::Scheduled),
            ..Default::default()
        };
        let want: Vec<ExecutionId> = made
            .iter()
            .rev()
            .filter(|e| e.action.name == "even" && e.status == ExecutionStatus::Scheduled)
            .map(|e| e.id)
            .collect();
        assert_eq!(ids(store.list(&both).await.unwrap()), want);
    });
}

#[test]
fn concurrent_writers_share_commits_and_all_land() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let template = execution("burst");
        let mut tasks = Vec::new();
        for _ in 0..500 {
            let store = store.clone();
            let mut e = template.clone();
            e.id = ExecutionId::new();
            tasks.push(tokio::spawn(async move { store.create(&e).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.count(&ExecutionFilter::default()).await.unwrap(), 500);
    });
}

#[derive(Debug, Clone)]
enum Step {
    /// Create an execution of action `.0`, a task of the `.1 % len`th stored one when given.
    Create(usize, Option<usize>),
    Advance(usize),
    /// List by action, status, parent (`% len`th stored), offset, limit.
    List(Option<usize>, Option<usize>, Option<usize>, usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, proptest::option::of(0..64usize)).prop_map(|(a, p)| Step::Create(a, p)),
        (0..64usize).prop_map(Step::Advance),
        (
            proptest::option::of(0..3usize),
            proptest::option::of(0..4usize),
            proptest::option::of(0..64usize),
            0..5usize,
            0..8usize
        )
            .prop_map(|(a, s, p, o, l)| Step::List(a, s, p, o, l)),
    ]
}

const NAMES: [&str; 3] = ["a", "b", "c"];
const FLOW: [ExecutionStatus; 4] = [
    ExecutionStatus::Requested,
    ExecutionStatus::Scheduled,
    ExecutionStatus::Running,
    ExecutionStatus::Succeeded,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn store_matches_a_btreemap_model(steps in proptest::collection::vec(step(), 1..40)) {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let actions: Vec<Action> = NAMES.iter().map(|n| action(n)).collect();
        let mut model: BTreeMap<ExecutionId, Execution> = BTreeMap::new();
        rt.block_on(async {
            for s in steps {
                match s {
                    Step::Create(a, parent) => {
                        let mut e = Execution::new(&actions[a], Map::new(), "p", Timestamp::now());
                        if let Some(p) = parent.filter(|_| !model.is_empty()) {
                            e.parent = model.keys().nth(p % model.len()).copied();
                        }
                        store.create(&e).await.unwrap();
                        model.insert(e.id, e);
                    }
                    Step::Advance(i) => {
                        if model.is_empty() { continue; }
                        let id = *model.keys().nth(i % model.len()).unwrap();
                        let e = model.get_mut(&id).unwrap();
                        let at = FLOW.iter().position(|s| *s == e.status).unwrap();
                        if at + 1 < FLOW.len() {
                            e.transition(FLOW[at + 1], Timestamp::now()).unwrap();
                            store.update(e).await.unwrap();
                        }
                    }
                    Step::List(a, s, p, offset, limit) => {
                        let filter = ExecutionFilter {
                            action: a.map(|a| format!("ops.{}", NAMES[a]).parse().unwrap()),
                            parent: p.filter(|_| !model.is_empty()).and_then(|p| model.keys().nth(p % model.len()).copied()),
                            status: s.map(|s| FLOW[s]),
                            offset,
                            limit,
                        };
                        let want: Vec<Execution> = model
                            .values()
                            .rev()
                            .filter(|e| filter.action.as_ref().is_none_or(|r| &e.action.reference == r))
                            .filter(|e| filter.status.is_none_or(|s| e.status == s))
                            .filter(|e| filter.parent.is_none_or(|p| e.parent == Some(p)))
                            .skip(offset)
                            .take(limit)
                            .cloned()
                            .collect();
                        let got = store.list(&filter).await.unwrap();
                        assert_eq!(got, want);
                        let total = model
                            .values()
                            .filter(|e| filter.action.as_ref().is_none_or(|r| &e.action.reference == r))
                            .filter(|e| filter.status.is_none_or(|s| e.status == s))
                            .filter(|e| filter.parent.is_none_or(|p| e.parent == Some(p)))
                            .count() as u64;
                        assert_eq!(store.count(&filter).await.unwrap(), total);
                    }
                }
            }
        });
    }
}
