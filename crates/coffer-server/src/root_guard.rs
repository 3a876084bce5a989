//! Root-sealed writes, guarded against a root key rotated through another node.
//!
//! Nodes sharing a store each hold the root key they unsealed with. `rotate-root` through one
//! node rewraps every root-sealed record in one batch that checks the seal record and bumps its
//! `root_generation`; the other nodes still hold the old key. So that none of them can store a
//! record sealed under the old key, meanwhile or afterwards, an unsealed node's services write
//! through a [`RootGuard`]: every batch that puts a root-sealed record
//! ([`crate::root_wrapped::is_root_sealed`]) also checks the seal record at the version this
//! node's root key came from, and puts it back unchanged (which bumps its version). Hence:
//! - a root-sealed write committed after rotate-root read the seal record makes rotate-root's
//!   batch conflict (it answers "the seal state changed meanwhile; try again"), and
//! - a root-sealed write after rotate-root committed conflicts on the seal record.
//!
//! On a conflict the guard reads the seal record. The same `root_generation` (a rekey, or
//! another node's root-sealed write, moved the version): this node's key is current, so it
//! takes the newer version and retries (a few times; a conflict on the batch's own keys stays a
//! conflict). Another generation: the key is stale, the call fails (the server answers
//! `ServiceUnavailable`, as a sealed node does) and the seal watcher
//! ([`crate::seal::follow_root_rotation`], which also looks every second on its own) re-keys the
//! node: re-unsealed from the record with an auto-unseal key, sealed with shares.
//!
//! Fairness: `rotate-root` first marks the seal record as rotating (for a few seconds at most,
//! [`SealState::rotating_until`]). A guard that finds the mark holds its root-sealed write until the
//! rotation lands (then the key is stale, as above) or the mark is lifted or expires, instead
//! of committing and so refusing the rotation: a steady stream of writes can no longer hold a
//! rotation off.
//!
//! One guard per unsealed [`crate::dispatch::Services`]: it holds the generation of exactly the
//! root key those services were built with, so a batch sealed under that key can only ever
//! commit while that key is the one in force.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_store::{Entry, Result, Store, StoreError, WriteBatch};

use coffer_core::{Clock as _, SystemClock};

use crate::seal::{ROTATION_HOLD_MS, SEAL_RECORD_KEY, SealState};

/// Retries of a root-sealed batch after the seal record moved on within the same generation.
const RETRIES: usize = 3;
/// How often a held write looks at the seal record while a rotation is marked.
const HOLD_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// The seal record a node's root key came from: its generation and the store entry read (or
/// written) with it.
#[derive(Debug, Clone)]
pub(crate) struct SealHeld {
    pub generation: u64,
    pub entry: Entry,
}

/// The store an unsealed node's services write through (see the module docs).
pub(crate) struct RootGuard {
    inner: Arc<dyn Store>,
    generation: u64,
    /// The seal record at the newest version seen with `generation`, and its rotation mark.
    seen: Mutex<Seen>,
    stale: AtomicBool,
    /// Wakes the seal watcher when the key is found stale.
    kick: Arc<tokio::sync::Notify>,
    /// How long one write waits for a rotation at most, whatever its mark says: a node whose
    /// clock runs ahead cannot hold other nodes' writes longer than a rotation may take.
    max_hold: std::time::Duration,
}

struct Seen {
    entry: Entry,
    rotating_until: Option<i64>,
}

impl Seen {
    fn new(entry: Entry) -> Self {
        let rotating_until = SealState::of(&entry.value).and_then(|s| s.rotating_until);
        Self {
            entry,
            rotating_until,
        }
    }
}

fn stale_error() -> StoreError {
    StoreError::Unavailable(
        "the root key was rotated through another node; this node is re-keying or sealed".into(),
    )
}

impl RootGuard {
    pub fn new(inner: Arc<dyn Store>, held: SealHeld, kick: Arc<tokio::sync::Notify>) -> Self {
        Self {
            inner,
            generation: held.generation,
            seen: Mutex::new(Seen::new(held.entry)),
            stale: AtomicBool::new(false),
            kick,
            max_hold: std::time::Duration::from_millis(ROTATION_HOLD_MS as u64),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn held(&self) -> SealHeld {
        SealHeld {
            generation: self.generation,
            entry: self.seen().entry.clone(),
        }
    }

    /// Whether this guard's root key is known to be stale.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    pub fn mark_stale(&self) {
        if !self.stale.swap(true, Ordering::AcqRel) {
            self.kick.notify_one();
        }
    }

    /// Compares the seal record as just read with the key held: the same generation → keeps the
    /// newer version and answers `false`; another one (or no readable record) → marks the key
    /// stale and answers `true`.
    pub fn observe(&self, current: Option<Entry>) -> bool {
        let state = current.as_ref().and_then(|e| SealState::of(&e.value));
        match (current, state) {
            (Some(e), Some(state)) if state.generation == self.generation => {
                let mut seen = self.seen();
                if e.version > seen.entry.version {
                    *seen = Seen {
                        entry: e,
                        rotating_until: state.rotating_until,
                    };
                }
                false
            }
            _ => {
                self.mark_stale();
                true
            }
        }
    }

    /// Whether the key is stale, reading the seal record unless that is known already (after a
    /// call failed: the failure may come from records sealed under a newer root key). A store
    /// error answers `false`: nothing is known.
    pub async fn check_stale(&self) -> bool {
        if self.is_stale() {
            return true;
        }
        match self.inner.get(SEAL_RECORD_KEY).await {
            Ok(current) => self.observe(current),
            Err(_) => false,
        }
    }
}

/// Whether `batch` puts a root-sealed record and is not a seal action itself (those check and
/// write the seal record on their own).
fn needs_guard(batch: &WriteBatch) -> bool {
    batch
        .ops
        .iter()
        .any(|(k, v)| v.is_some() && crate::root_wrapped::is_root_sealed(k))
        && !batch.ops.iter().any(|(k, _)| k == SEAL_RECORD_KEY)
        && !batch.checks.iter().any(|(k, _)| k == SEAL_RECORD_KEY)
}

#[async_trait]
impl Store for RootGuard {
    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        self.inner.get(key).await
    }

    async fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Entry)>> {
        self.inner.scan(start, end, limit).await
    }

    async fn commit(&self, batch: WriteBatch) -> Result<u64> {
        if !needs_guard(&batch) {
            return self.inner.commit(batch).await;
        }
        let mut conflicts = 0;
        let mut holding_since: Option<std::time::Instant> = None;
        while conflicts <= RETRIES {
            if self.is_stale() {
                return Err(stale_error());
            }
            let (held, rotating_until) = {
                let seen = self.seen();
                (seen.entry.clone(), seen.rotating_until)
            };
            let now = SystemClock.now_millis();
            if let Some(until) = rotating_until
                && until > now
                && holding_since
                    .get_or_insert_with(std::time::Instant::now)
                    .elapsed()
                    < self.max_hold
            {
                // Held while another node rotates the root key (see the module docs).
                let left = u64::try_from(until - now).unwrap_or(0);
                tokio::time::sleep(HOLD_POLL.min(std::time::Duration::from_millis(left))).await;
                let current = self.inner.get(SEAL_RECORD_KEY).await?;
                if self.observe(current) {
                    return Err(stale_error());
                }
                continue;
            }
            let mut guarded = batch.clone();
            guarded
                .check(SEAL_RECORD_KEY, Some(&held))
                .put(SEAL_RECORD_KEY, held.value.clone());
            match self.inner.commit(guarded).await {
                Ok(version) => {
                    // The record as held, at the version this commit gave it: the next
                    // root-sealed write of this node need not conflict first.
                    let mut seen = self.seen();
                    if version > seen.entry.version {
                        seen.entry = Entry {
                            version,
                            value: held.value,
                        };
                    }
                    return Ok(version);
                }
                Err(StoreError::Conflict) => {
                    let current = self.inner.get(SEAL_RECORD_KEY).await?;
                    // Versions only grow: the seal record as held means another key conflicted.
                    if current.as_ref().is_some_and(|e| e.version == held.version) {
                        return Err(StoreError::Conflict);
                    }
                    if self.observe(current) {
                        return Err(stale_error());
                    }
                    conflicts += 1;
                }
                other => return other,
            }
        }
        Err(StoreError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_store::memory::MemoryStore;

    const KMS_KEY: &[u8] = b"kms/key/000000000000/us-east-1/k";

    fn record(generation: u64, note: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "method": {"type": "auto", "source": "dev"},
            "wrapped_root": note,
            "root_generation": generation,
        }))
        .unwrap()
    }

    async fn put(store: &dyn Store, key: &[u8], value: Vec<u8>) -> Entry {
        let mut b = WriteBatch::new();
        b.put(key.to_vec(), value.clone());
        let version = store.commit(b).await.unwrap();
        Entry {
            version,
            value: value.into(),
        }
    }

    async fn guard_at(generation: u64) -> (Arc<MemoryStore>, RootGuard, Arc<tokio::sync::Notify>) {
        let store = Arc::new(MemoryStore::new());
        let entry = put(&*store, SEAL_RECORD_KEY, record(generation, "a")).await;
        let kick = Arc::new(tokio::sync::Notify::new());
        let guard = RootGuard::new(store.clone(), SealHeld { generation, entry }, kick.clone());
        (store, guard, kick)
    }

    fn kms_put(value: &str) -> WriteBatch {
        let mut b = WriteBatch::new();
        b.put(KMS_KEY.to_vec(), value.as_bytes().to_vec());
        b
    }

    #[tokio::test]
    async fn root_sealed_writes_check_and_bump_the_seal_record_others_pass() {
        let (store, guard, _) = guard_at(0).await;
        let before = store.get(SEAL_RECORD_KEY).await.unwrap().unwrap();
        let mut b = WriteBatch::new();
        b.put(b"secret/x".to_vec(), b"v".to_vec())
            .put(b"iam/000000000000/user/alice".to_vec(), b"u".to_vec());
        guard.commit(b).await.unwrap();
        assert_eq!(
            store.get(SEAL_RECORD_KEY).await.unwrap(),
            Some(before.clone())
        );
        let v = guard.commit(kms_put("k1")).await.unwrap();
        let after = store.get(SEAL_RECORD_KEY).await.unwrap().unwrap();
        assert_eq!((after.version, &after.value), (v, &before.value));
        assert_eq!(guard.held().entry, after, "the guard follows its own write");
        // Deleting a root-sealed record leaves nothing sealed: not guarded.
        let mut b = WriteBatch::new();
        b.delete(KMS_KEY.to_vec());
        guard.commit(b).await.unwrap();
        assert_eq!(
            store.get(SEAL_RECORD_KEY).await.unwrap().unwrap().version,
            v
        );
    }

    #[tokio::test]
    async fn same_generation_moves_are_followed_other_conflicts_stay() {
        let (store, guard, _) = guard_at(3).await;
        // A rekey (or another node's root-sealed write) moves the record, same generation.
        put(&*store, SEAL_RECORD_KEY, record(3, "rekeyed")).await;
        guard.commit(kms_put("k1")).await.unwrap();
        assert_eq!(
            store.get(KMS_KEY).await.unwrap().unwrap().value,
            b"k1".as_slice()
        );
        assert_eq!(
            store.get(SEAL_RECORD_KEY).await.unwrap().unwrap().value,
            record(3, "rekeyed").as_slice(),
            "put back unchanged"
        );
        assert!(!guard.is_stale());
        // A conflict on the batch's own key is the caller's.
        let mut b = kms_put("k2");
        b.check(KMS_KEY.to_vec(), None);
        assert!(matches!(guard.commit(b).await, Err(StoreError::Conflict)));
        assert!(!guard.is_stale());
    }

    #[tokio::test]
    async fn a_rotated_root_fails_root_sealed_writes_and_wakes_the_watcher() {
        let (store, guard, kick) = guard_at(0).await;
        put(&*store, SEAL_RECORD_KEY, record(1, "rotated")).await;
        let err = guard
            .commit(kms_put("under the old root"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(store.get(KMS_KEY).await.unwrap(), None);
        assert!(guard.is_stale());
        tokio::time::timeout(std::time::Duration::from_secs(1), kick.notified())
            .await
            .expect("the watcher is woken");
        // Other writes still pass; seal actions (which write the record) are left alone.
        let mut b = WriteBatch::new();
        b.put(b"secret/x".to_vec(), b"v".to_vec());
        guard.commit(b).await.unwrap();
        let current = store.get(SEAL_RECORD_KEY).await.unwrap();
        let mut b = kms_put("rewrapped");
        b.check(SEAL_RECORD_KEY.to_vec(), current.as_ref())
            .put(SEAL_RECORD_KEY.to_vec(), record(2, "x"));
        guard.commit(b).await.unwrap();
    }

    fn marked(generation: u64, until: i64) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(&record(generation, "a")).unwrap();
        v["rotating_until"] = until.into();
        serde_json::to_vec(&v).unwrap()
    }

    /// Starts a root-sealed write and shows it is still held after a while.
    async fn held_write(
        store: &Arc<MemoryStore>,
        guard: Arc<RootGuard>,
    ) -> tokio::task::JoinHandle<Result<u64>> {
        let write = tokio::spawn(async move { guard.commit(kms_put("k1")).await });
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(!write.is_finished(), "held while the rotation is marked");
        assert_eq!(store.get(KMS_KEY).await.unwrap(), None);
        write
    }

    #[tokio::test]
    async fn a_marked_rotation_holds_root_sealed_writes_until_it_lands() {
        let (store, guard, _) = guard_at(0).await;
        let guard = Arc::new(guard);
        put(
            &*store,
            SEAL_RECORD_KEY,
            marked(0, SystemClock.now_millis() + 5_000),
        )
        .await;
        let write = held_write(&store, guard.clone()).await;
        // Other writes are not held.
        let mut b = WriteBatch::new();
        b.put(b"secret/x".to_vec(), b"v".to_vec());
        guard.commit(b).await.unwrap();
        put(&*store, SEAL_RECORD_KEY, record(1, "rotated")).await;
        let err = write.await.unwrap().unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(guard.is_stale());
        assert_eq!(store.get(KMS_KEY).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_lifted_or_expired_mark_lets_held_writes_through() {
        let (store, guard, _) = guard_at(2).await;
        let guard = Arc::new(guard);
        put(
            &*store,
            SEAL_RECORD_KEY,
            marked(2, SystemClock.now_millis() + 5_000),
        )
        .await;
        let write = held_write(&store, guard.clone()).await;
        // The rotation failed and lifted its mark: the write goes through, same key.
        put(&*store, SEAL_RECORD_KEY, record(2, "a")).await;
        write.await.unwrap().unwrap();
        assert!(store.get(KMS_KEY).await.unwrap().is_some());
        assert!(!guard.is_stale());
        // A mark left by a rotation that died holds nothing once expired.
        put(
            &*store,
            SEAL_RECORD_KEY,
            marked(2, SystemClock.now_millis() - 1),
        )
        .await;
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            guard.commit(kms_put("k2")),
        )
        .await
        .expect("not held")
        .unwrap();
        // A mark expiring while a write waits lets it through at the expiry.
        put(
            &*store,
            SEAL_RECORD_KEY,
            marked(2, SystemClock.now_millis() + 400),
        )
        .await;
        let started = std::time::Instant::now();
        guard.commit(kms_put("k3")).await.unwrap();
        assert!(started.elapsed() >= std::time::Duration::from_millis(300));
        assert_eq!(
            store.get(KMS_KEY).await.unwrap().unwrap().value,
            b"k3".as_slice()
        );
    }

    #[tokio::test]
    async fn a_mark_far_ahead_holds_a_write_no_longer_than_a_rotation_may_take() {
        let (store, mut guard, _) = guard_at(1).await;
        guard.max_hold = std::time::Duration::from_millis(300);
        // Written by a node whose clock runs an hour ahead.
        put(
            &*store,
            SEAL_RECORD_KEY,
            marked(1, SystemClock.now_millis() + 3_600_000),
        )
        .await;
        let started = std::time::Instant::now();
        guard.commit(kms_put("k1")).await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(300)
                && waited < std::time::Duration::from_secs(5),
            "{waited:?}"
        );
        assert!(store.get(KMS_KEY).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn check_stale_reads_the_record_once_known() {
        let (store, guard, _) = guard_at(0).await;
        assert!(!guard.check_stale().await);
        put(&*store, SEAL_RECORD_KEY, record(0, "rekeyed")).await;
        assert!(!guard.check_stale().await);
        assert_eq!(
            guard.held().entry.value,
            record(0, "rekeyed").as_slice(),
            "the newer version of the same generation is held"
        );
        put(&*store, SEAL_RECORD_KEY, record(1, "rotated")).await;
        assert!(guard.check_stale().await);
        assert!(guard.is_stale());
    }
}
