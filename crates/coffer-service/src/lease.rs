//! Named leases in the store: at most one owner (a node, usually) holds a lease until it releases
//! it or its expiry passes, so background work runs on one node at a time even when several nodes
//! share one store.
//!
//! Built only on the [`Store`] trait's optimistic checks, so it behaves the same on every engine:
//! taking or renewing a lease is a batch that requires the lease record to still be at the version
//! that was read, and of two nodes racing for a free or expired lease exactly one commit passes.
//!
//! A node can lose a lease without knowing (it paused past the expiry and another node took
//! over). Work whose effect must happen once adds [`Lease::fence`] to the batch that records it:
//! that batch then commits only while the lease is still the one this owner took.
//!
//! Expiry is judged by the acquiring node's [`Clock`]; nodes' clocks should agree to well within
//! a lease's time to live (NTP does this easily for the tens of seconds used here).

use std::time::Duration;

use coffer_core::SharedClock;
use coffer_store::{Entry, Store, StoreError, WriteBatch};
use serde::{Deserialize, Serialize};

/// Key prefix of every lease record.
pub const LEASE_PREFIX: &[u8] = b"lease/";

/// The stored record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    owner: String,
    /// Unix milliseconds after which any owner may take the lease.
    expires_ms: i64,
}

/// A lease held by this owner, as of its last successful acquire or renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    name: String,
    owner: String,
    /// Version of the lease record this owner wrote; any later write means it was lost.
    version: u64,
    expires_ms: i64,
}

impl Lease {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// Unix milliseconds at which the lease expires unless renewed.
    pub fn expires_ms(&self) -> i64 {
        self.expires_ms
    }
    /// Makes `batch` commit only while this lease is still held as taken (nobody renewed it
    /// over, released it, or took it after expiry).
    pub fn fence(&self, batch: &mut WriteBatch) {
        batch
            .checks
            .push((lease_key(&self.name), Some(self.version)));
    }
}

/// Acquires, renews and releases leases in one store by one clock.
#[derive(Clone)]
pub struct Leases {
    store: std::sync::Arc<dyn Store>,
    clock: SharedClock,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").finish_non_exhaustive()
    }
}

fn lease_key(name: &str) -> Vec<u8> {
    let mut k = LEASE_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn decode(entry: &Entry) -> Result<Record, StoreError> {
    serde_json::from_slice(&entry.value)
        .map_err(|e| StoreError::Internal(format!("unreadable lease record: {e}")))
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl Leases {
    pub fn new(store: std::sync::Arc<dyn Store>, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Takes lease `name` for `owner` for `ttl` if it is free, expired, or already `owner`'s
    /// (then it is extended). `Ok(None)`: another owner holds it, or won the race for it.
    pub async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let key = lease_key(name);
        let current = self.store.get(&key).await?;
        let now = self.clock.now_millis();
        if let Some(entry) = &current {
            let rec = decode(entry)?;
            if rec.owner != owner && rec.expires_ms > now {
                return Ok(None);
            }
        }
        self.write(name, owner, ttl, &key, current.as_ref(), now)
            .await
    }

    /// Extends a held lease by `ttl` from now. `Ok(None)`: it was lost (expired and taken, or
    /// released) and the caller must stop the work it guards.
    pub async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let key = lease_key(&lease.name);
        let current = self.store.get(&key).await?;
        match &current {
            Some(e) if e.version == lease.version => {}
            _ => return Ok(None),
        }
        let now = self.clock.now_millis();
        self.write(&lease.name, &lease.owner, ttl, &key, current.as_ref(), now)
            .await
    }

    /// Gives the lease up so another owner can take it at once. Releasing a lease that was
    /// already lost changes nothing.
    pub async fn release(&self, lease: Lease) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        lease.fence(&mut batch);
        batch.delete(lease_key(&lease.name));
        match self.store.commit(batch).await {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The current holder of `name` and its expiry, if anyone holds it now.
    pub async fn holder(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        let Some(entry) = self.store.get(&lease_key(name)).await? else {
            return Ok(None);
        };
        let rec = decode(&entry)?;
        Ok((rec.expires_ms > self.clock.now_millis()).then_some((rec.owner, rec.expires_ms)))
    }

    async fn write(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        key: &[u8],
        read: Option<&Entry>,
        now: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let rec = Record {
            owner: owner.to_string(),
            expires_ms: now.saturating_add(ttl_ms(ttl)),
        };
        let value = serde_json::to_vec(&rec)
            .map_err(|e| StoreError::Internal(format!("lease record: {e}")))?;
        let mut batch = WriteBatch::new();
        batch.check(key.to_vec(), read).put(key.to_vec(), value);
        match self.store.commit(batch).await {
            Ok(version) => Ok(Some(Lease {
                name: name.to_string(),
                owner: rec.owner,
                version,
                expires_ms: rec.expires_ms,
            })),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use coffer_core::ManualClock;
    use coffer_store::memory::MemoryStore;

    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn setup() -> (Leases, Arc<ManualClock>, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new();
        (Leases::new(store.clone(), clock.clone()), clock, store)
    }

    #[tokio::test]
    async fn one_owner_at_a_time_until_expiry() {
        let (leases, clock, _) = setup();
        let a = leases.acquire("job", "node-a", TTL).await.unwrap().unwrap();
        assert_eq!((a.name(), a.owner()), ("job", "node-a"));
        assert!(
            leases
                .acquire("job", "node-b", TTL)
                .await
                .unwrap()
                .is_none()
        );
        // Other names are independent.
        assert!(
            leases
                .acquire("other", "node-b", TTL)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            leases.holder("job").await.unwrap(),
            Some(("node-a".to_string(), a.expires_ms()))
        );

        clock.advance(TTL - Duration::from_millis(1));
        assert!(
            leases
                .acquire("job", "node-b", TTL)
                .await
                .unwrap()
                .is_none()
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(leases.holder("job").await.unwrap(), None);
        let b = leases.acquire("job", "node-b", TTL).await.unwrap().unwrap();
        assert_eq!(b.owner(), "node-b");
        // The old owner learns it lost the lease and cannot renew it back.
        assert!(leases.renew(&a, TTL).await.unwrap().is_none());
        assert_eq!(leases.holder("job").await.unwrap().unwrap().0, "node-b");
    }

    #[tokio::test]
    async fn renew_extends_and_reacquire_by_owner_extends() {
        let (leases, clock, _) = setup();
        let a = leases.acquire("job", "node-a", TTL).await.unwrap().unwrap();
        clock.advance(Duration::from_secs(20));
        let a2 = leases.renew(&a, TTL).await.unwrap().unwrap();
        assert_eq!(a2.expires_ms(), a.expires_ms() + 20_000);
        // The superseded handle is stale: renewing it again fails, the fresh one works.
        assert!(leases.renew(&a, TTL).await.unwrap().is_none());
        clock.advance(Duration::from_secs(20));
        assert!(
            leases
                .acquire("job", "node-b", TTL)
                .await
                .unwrap()
                .is_none()
        );
        // Owner re-acquiring (e.g. after its own restart) extends rather than waits.
        let a3 = leases.acquire("job", "node-a", TTL).await.unwrap().unwrap();
        assert!(a3.expires_ms() > a2.expires_ms());
    }

    #[tokio::test]
    async fn release_frees_at_once_and_stale_release_is_harmless() {
        let (leases, clock, _) = setup();
        let a = leases.acquire("job", "node-a", TTL).await.unwrap().unwrap();
        leases.release(a.clone()).await.unwrap();
        assert_eq!(leases.holder("job").await.unwrap(), None);
        let b = leases.acquire("job", "node-b", TTL).await.unwrap().unwrap();
        // A's handle is stale: releasing it again does not free B's lease.
        leases.release(a).await.unwrap();
        assert_eq!(leases.holder("job").await.unwrap().unwrap().0, "node-b");
        clock.advance(TTL);
        let c = leases.acquire("job", "node-c", TTL).await.unwrap().unwrap();
        leases.release(b).await.unwrap();
        assert_eq!(leases.holder("job").await.unwrap().unwrap().0, c.owner());
    }

    #[tokio::test]
    async fn fence_rejects_work_of_a_lost_lease() {
        let (leases, clock, store) = setup();
        let a = leases.acquire("job", "node-a", TTL).await.unwrap().unwrap();
        let mut ok = WriteBatch::new();
        ok.put(b"done/1".to_vec(), b"a".to_vec());
        a.fence(&mut ok);
        store.commit(ok).await.unwrap();

        clock.advance(TTL);
        let _b = leases.acquire("job", "node-b", TTL).await.unwrap().unwrap();
        let mut late = WriteBatch::new();
        late.put(b"done/2".to_vec(), b"a".to_vec());
        a.fence(&mut late);
        assert!(matches!(
            store.commit(late).await,
            Err(StoreError::Conflict)
        ));
        assert!(store.get(b"done/2").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_acquirers_have_exactly_one_winner() {
        let (leases, clock, _) = setup();
        for round in 0..20 {
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let l = leases.clone();
                    tokio::spawn(async move {
                        l.acquire("job", &format!("node-{round}-{i}"), TTL)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut winners = 0;
            for t in tasks {
                winners += usize::from(t.await.unwrap().is_some());
            }
            assert_eq!(winners, 1, "round {round}");
            clock.advance(TTL);
        }
    }

    #[tokio::test]
    async fn corrupt_record_is_an_error_not_a_free_lease() {
        let (leases, _, store) = setup();
        let mut b = WriteBatch::new();
        b.put(lease_key("job"), b"not json".to_vec());
        store.commit(b).await.unwrap();
        assert!(matches!(
            leases.acquire("job", "node-a", TTL).await,
            Err(StoreError::Internal(_))
        ));
    }
}
