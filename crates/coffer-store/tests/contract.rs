//! The store contract, run against every engine: memory, embedded, PostgreSQL. Each engine's
//! module below opens fresh storage per test (PostgreSQL: a database of its own, see
//! `coffer_store::postgres::scratch`) and runs the same cases.
//!
//! The concurrency cases drive several "nodes" at once: the same store for the single-process
//! engines, separate connection pools on one database for PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;

use coffer_store::{Entry, Store, StoreError, WriteBatch, prefix_end};

/// Storage opened for one test, with what keeps it alive (a directory, a database).
pub struct Engine {
    pub nodes: Vec<Arc<dyn Store>>,
    _keep: Box<dyn std::any::Any + Send>,
}

impl Engine {
    fn store(&self) -> &dyn Store {
        &*self.nodes[0]
    }
}

async fn memory() -> Option<Engine> {
    let s: Arc<dyn Store> = Arc::new(coffer_store::memory::MemoryStore::new());
    Some(Engine {
        nodes: vec![s.clone(), s],
        _keep: Box::new(()),
    })
}

async fn embedded() -> Option<Engine> {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn Store> =
        Arc::new(coffer_store::embedded::EmbeddedStore::open(dir.path()).unwrap());
    Some(Engine {
        nodes: vec![s.clone(), s],
        _keep: Box::new(dir),
    })
}

async fn postgres() -> Option<Engine> {
    use coffer_store::postgres::{PgStore, scratch::ScratchDb};
    let db = ScratchDb::create("store_contract").await?;
    let mut nodes: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..2 {
        nodes.push(Arc::new(PgStore::connect_with(db.url(), 4).await.unwrap()));
    }
    Some(Engine {
        nodes,
        _keep: Box::new(db),
    })
}

fn put(k: &str, v: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(k.as_bytes().to_vec(), v.as_bytes().to_vec());
    b
}

async fn value(s: &dyn Store, k: &[u8]) -> Option<Vec<u8>> {
    s.get(k).await.unwrap().map(|e| e.value.to_vec())
}

mod cases {
    use super::*;

    pub async fn versions_are_commit_numbers(e: Engine) {
        let s = e.store();
        assert_eq!(s.get(b"missing").await.unwrap(), None);
        let s1 = s.commit(put("a", "1")).await.unwrap();
        let s2 = s.commit(put("b", "2")).await.unwrap();
        assert!(s2 > s1, "sequence numbers increase");
        assert_eq!(
            s.get(b"a").await.unwrap(),
            Some(Entry {
                version: s1,
                value: "1".into()
            })
        );
        let s3 = s.commit(put("a", "3")).await.unwrap();
        assert!(s3 > s2);
        assert_eq!(s.get(b"a").await.unwrap().unwrap().version, s3);
        // A batch without ops still commits (its checks held) and is numbered.
        let mut checks_only = WriteBatch::new();
        checks_only.check(b"b".to_vec(), s.get(b"b").await.unwrap().as_ref());
        let s4 = s.commit(checks_only).await.unwrap();
        assert!(s4 > s3);
        assert!(s.commit(WriteBatch::new()).await.unwrap() > s4);
    }

    pub async fn ops_apply_in_order(e: Engine) {
        let s = e.store();
        let mut b = WriteBatch::new();
        b.put(b"x".to_vec(), b"1".to_vec())
            .delete(b"x".to_vec())
            .delete(b"y".to_vec())
            .put(b"y".to_vec(), b"2".to_vec())
            .put(b"z".to_vec(), b"3".to_vec())
            .put(b"z".to_vec(), b"4".to_vec());
        let seq = s.commit(b).await.unwrap();
        assert_eq!(value(s, b"x").await, None);
        assert_eq!(value(s, b"y").await.as_deref(), Some(&b"2"[..]));
        let z = s.get(b"z").await.unwrap().unwrap();
        assert_eq!((&z.value[..], z.version), (&b"4"[..], seq));
        // Deleting a missing key is no error.
        let mut d = WriteBatch::new();
        d.delete(b"never".to_vec());
        s.commit(d).await.unwrap();
    }

    pub async fn scans_are_bytewise_half_open_and_limited(e: Engine) {
        let s = e.store();
        let keys: [&[u8]; 7] = [b"p", b"p\x00", b"p\x01", b"p\x7f", b"p\x80", b"p\xff", b"q"];
        let mut b = WriteBatch::new();
        for k in keys.iter().rev() {
            b.put(k.to_vec(), k.to_vec());
        }
        s.commit(b).await.unwrap();
        let all = s.scan(b"", &[0xff, 0xff], 100).await.unwrap();
        let got: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(got, keys.to_vec());
        let under = s.scan(b"p\x00", &prefix_end(b"p"), 100).await.unwrap();
        assert_eq!(under.len(), 5, "start inclusive, end exclusive");
        let first2 = s.scan(b"p", b"q", 2).await.unwrap();
        assert_eq!(first2[1].0, b"p\x00".to_vec());
        assert!(s.scan(b"q", b"p", 10).await.unwrap().is_empty());
        assert!(s.scan(b"p", b"p", 10).await.unwrap().is_empty());
        assert!(s.scan(b"p", b"q", 0).await.unwrap().is_empty());
        assert_eq!(s.scan(b"", b"\xff\xff", usize::MAX).await.unwrap().len(), 7);
    }

    pub async fn failed_checks_apply_nothing(e: Engine) {
        let s = e.store();
        let mut create = put("k", "1");
        create.check(b"k".to_vec(), None);
        s.commit(create.clone()).await.unwrap();
        let mut again = put("k", "x");
        again.put(b"side".to_vec(), b"y".to_vec());
        again.check(b"k".to_vec(), None);
        assert!(matches!(s.commit(again).await, Err(StoreError::Conflict)));
        assert_eq!(value(s, b"side").await, None);

        let read = s.get(b"k").await.unwrap();
        let mut update = put("k", "2");
        update.check(b"k".to_vec(), read.as_ref());
        s.commit(update.clone()).await.unwrap();
        assert!(matches!(s.commit(update).await, Err(StoreError::Conflict)));
        // A version check on a missing key fails; an absent check on a deleted key passes.
        let mut gone = WriteBatch::new();
        gone.delete(b"k".to_vec());
        s.commit(gone).await.unwrap();
        let mut stale = put("k", "3");
        stale.checks.push((b"k".to_vec(), read.map(|e| e.version)));
        assert!(matches!(s.commit(stale).await, Err(StoreError::Conflict)));
        s.commit(create).await.unwrap();
    }

    /// Read-modify-write of one counter from many tasks on every node: every successful commit
    /// must be counted. A store that checks versions without excluding concurrent writers lets
    /// two commits read the same version and both succeed (a lost update).
    pub async fn no_lost_update_on_a_hot_key(e: Engine) {
        const TASKS: usize = 8;
        const INCREMENTS: usize = 25;
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let s = e.nodes[t % e.nodes.len()].clone();
                tokio::spawn(async move {
                    let mut versions = Vec::new();
                    let mut conflicts = 0;
                    while versions.len() < INCREMENTS {
                        let read = s.get(b"counter").await.unwrap();
                        let n: u64 = read
                            .as_ref()
                            .map(|e| std::str::from_utf8(&e.value).unwrap().parse().unwrap())
                            .unwrap_or(0);
                        let mut b = put("counter", &(n + 1).to_string());
                        b.check(b"counter".to_vec(), read.as_ref());
                        match s.commit(b).await {
                            Ok(v) => versions.push(v),
                            Err(StoreError::Conflict) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    (versions, conflicts)
                })
            })
            .collect();
        let mut all = HashSet::new();
        for t in tasks {
            let (versions, _conflicts) = t.await.unwrap();
            for v in versions {
                assert!(all.insert(v), "version {v} handed out twice");
            }
        }
        let total = (TASKS * INCREMENTS) as u64;
        let end = e.store().get(b"counter").await.unwrap().unwrap();
        assert_eq!(std::str::from_utf8(&end.value).unwrap(), total.to_string());
        assert_eq!(end.version, *all.iter().max().unwrap());
    }

    /// Many tasks create the same absent key: exactly one wins each round, and the losers'
    /// other writes are not applied. Absent keys have no row to lock, so this needs more than
    /// row locks.
    pub async fn one_creator_of_an_absent_key(e: Engine) {
        for round in 0..20 {
            let key = format!("new/{round}");
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let s = e.nodes[t % e.nodes.len()].clone();
                    let key = key.clone();
                    tokio::spawn(async move {
                        let mut b = put(&key, &t.to_string());
                        b.put(format!("side/{round}/{t}").into_bytes(), b"x".to_vec());
                        b.check(key.into_bytes(), None);
                        s.commit(b).await
                    })
                })
                .collect();
            let mut winners = 0;
            for t in tasks {
                match t.await.unwrap() {
                    Ok(_) => winners += 1,
                    Err(StoreError::Conflict) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(winners, 1, "round {round}");
            let prefix = format!("side/{round}/");
            let sides = e
                .store()
                .scan(prefix.as_bytes(), &prefix_end(prefix.as_bytes()), 100)
                .await
                .unwrap();
            assert_eq!(sides.len(), 1, "losers wrote nothing (round {round})");
        }
    }

    /// Write skew: each of two tasks checks both keys and sets only its own. Serial execution
    /// lets at most one set its key; a store that guards only the keys a batch writes lets both.
    pub async fn checks_guard_keys_that_are_not_written(e: Engine) {
        for round in 0..30 {
            let (x, y) = (format!("skew/{round}/x"), format!("skew/{round}/y"));
            let tasks: Vec<_> = [x.clone(), y.clone()]
                .into_iter()
                .enumerate()
                .map(|(t, mine)| {
                    let s = e.nodes[t % e.nodes.len()].clone();
                    let (x, y) = (x.clone(), y.clone());
                    tokio::spawn(async move {
                        let rx = s.get(x.as_bytes()).await.unwrap();
                        let ry = s.get(y.as_bytes()).await.unwrap();
                        if rx.is_some() || ry.is_some() {
                            return false;
                        }
                        let mut b = put(&mine, "on");
                        b.check(x.into_bytes(), None).check(y.into_bytes(), None);
                        s.commit(b).await.is_ok()
                    })
                })
                .collect();
            let mut set = 0;
            for t in tasks {
                set += usize::from(t.await.unwrap());
            }
            assert!(set <= 1, "round {round}: both keys set");
        }
    }
}

macro_rules! contract {
    ($engine:ident) => {
        mod $engine {
            use super::*;

            contract!(@case $engine versions_are_commit_numbers);
            contract!(@case $engine ops_apply_in_order);
            contract!(@case $engine scans_are_bytewise_half_open_and_limited);
            contract!(@case $engine failed_checks_apply_nothing);
            contract!(@case $engine no_lost_update_on_a_hot_key);
            contract!(@case $engine one_creator_of_an_absent_key);
            contract!(@case $engine checks_guard_keys_that_are_not_written);
        }
    };
    (@case $engine:ident $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let Some(engine) = super::$engine().await else {
                return;
            };
            cases::$case(engine).await;
        }
    };
}

contract!(memory);
contract!(embedded);
contract!(postgres);
