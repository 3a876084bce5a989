//! The audit log of one node: appends records to the chain, writes digests, sweeps intents and
//! service events, prunes.
//!
//! Appending: callers hand a record to the node's appender task and wait. The appender takes
//! every record queued at that moment and hands them to the records' home ([`RecordStore`]) as
//! ONE group: segment files write it with one `write` + one `fdatasync`; store rows commit it in
//! one batch with the new head and the removal of the calls' intents, under a check on the head,
//! so several nodes sharing one database keep one chain. A record is acknowledged only once its
//! group is durable. Where the home cannot remove intents in the same write (segments), they are
//! removed right after, and [`Settled`] plus a check at open keep a sweep from chaining them
//! twice.
//!
//! Fail closed for mutating calls: while a mutating call runs, every batch it commits also puts
//! the call's write-ahead intent (its record so far: who, what, the redacted request) — see
//! [`AuditedStore`]. If audit keys cannot be written, or the records' home is failing, the
//! call's own batch fails and the call has no effect. If the record fails after the call's
//! commit, the caller gets an internal error (as for any ambiguous outcome) and the intent is
//! chained as the record by the next sweep: the effect is never unrecorded.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use coffer_core::SharedClock;
use coffer_store::{Entry, Store, StoreError, WriteBatch};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::chain::{ChainEntry, GENESIS, Head};
use crate::digest::{Digest, PublicKeyInfo, Signer};
use crate::record::{ServiceEvent, format_time, parse_time};
use crate::records::{KvRecords, Pending, RecordStore, parse_entry};
use crate::segments::SegmentRecords;
use crate::verify::{Anchor, Trail};
use crate::{AuditError, canonical, keys};

/// Records chained in one store batch at most.
const MAX_BATCH: usize = 1024;
/// Re-chaining attempts when another node moved the head meanwhile.
const MAX_ATTEMPTS: usize = 16;
/// Newest records searched at open for pending keys already chained (see `settle_recorded`):
/// only the last groups before a crash (or a removal that failed just before a restart) hold
/// them; 10,000 records are ~11 MB read once.
const SETTLE_WINDOW: usize = 10_000;
/// An intent this old belongs to a call that died between its write and its record.
pub const STALE_INTENT: Duration = Duration::from_secs(300);
const SIGNING_KEY_PURPOSE: &str = "audit-signing-key";

struct Job {
    record: Vec<u8>,
    clear: Option<Vec<u8>>,
    /// The version of `clear` a sweep read (see [`Pending::expect`]).
    expect: Option<u64>,
    done: oneshot::Sender<Result<(), AuditError>>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    /// PKCS#8 of the Ed25519 key, sealed under the root key with
    /// `coffer_crypto::root_wrapped` (bound to this record's store key); `rotate-root` rewraps it
    /// through [`rewrap_signing_key`].
    sealed: String,
    public: PublicKeyInfo,
}

pub struct AuditLog {
    store: Arc<dyn Store>,
    records: Arc<dyn RecordStore>,
    /// Pending keys (intents, service events) whose record is chained but whose removal from
    /// the store is in flight (`false`) or failed (`true`): the sweep leaves the first alone and
    /// removes the second instead of chaining them again.
    settled: Settled,
    clock: SharedClock,
    /// Loaded at unseal ([`AuditLog::load_signer`]), dropped at seal: records are appended
    /// while sealed too (they need no key), digests wait for the next unseal.
    signer: std::sync::RwLock<Option<Arc<Signer>>>,
    jobs: mpsc::UnboundedSender<Job>,
    /// Benchmark baseline only: records are dropped, nothing is written.
    noop: bool,
    /// One digest or prune at a time on this node (other nodes are kept out by store checks).
    sealing: tokio::sync::Mutex<()>,
    /// One sweep at a time on this node: two (the periodic job and an explicit run) would both
    /// read a pending key before either chains it, and chain it twice. Across nodes sharing a
    /// store the check on the pending key's version ([`Pending::expect`]) does the same.
    sweeping: tokio::sync::Mutex<()>,
    /// Stops the appender (which holds the store) on [`AuditLog::stop`].
    appender: std::sync::Mutex<Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("signer", &self.signer)
            .field("noop", &self.noop)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Starts the appender. Needs no root key: the log is opened while the server may still be
    /// sealed; the digest signer comes later ([`AuditLog::load_signer`]). `noop` replaces
    /// auditing with nothing: for measuring its cost, never for serving.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: SharedClock,
        noop: bool,
    ) -> Result<Arc<Self>, AuditError> {
        let records = Arc::new(KvRecords::new(store.clone()));
        Self::open_with(store, records, clock, noop).await
    }

    /// As [`AuditLog::open`], with the chained records kept in `records` (the store keeps
    /// digests, intents and service events).
    pub async fn open_with(
        store: Arc<dyn Store>,
        records: Arc<dyn RecordStore>,
        clock: SharedClock,
        noop: bool,
    ) -> Result<Arc<Self>, AuditError> {
        let settled = Settled::default();
        if !noop {
            settle_recorded(&*store, &*records).await?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(appender(
            store.clone(),
            records.clone(),
            settled.clone(),
            rx,
            stopped,
        ));
        Ok(Arc::new(Self {
            store,
            records,
            settled,
            clock,
            signer: std::sync::RwLock::new(None),
            jobs: tx,
            noop,
            sealing: tokio::sync::Mutex::new(()),
            sweeping: tokio::sync::Mutex::new(()),
            appender: std::sync::Mutex::new(Some((stop, task))),
        }))
    }

    /// Ends the appender once what is queued is written, releasing its hold on the store (so
    /// the data directory can be reopened at once). Appends after this fail (closed).
    pub async fn stop(&self) {
        let taken = self
            .appender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((stop, task)) = taken {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.records.close().await;
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    pub fn is_noop(&self) -> bool {
        self.noop
    }

    /// Loads (or, on the first unseal, creates and stores) the digest signing key, sealed under
    /// the root key.
    pub async fn load_signer(&self, root: &coffer_crypto::AeadKey) -> Result<(), AuditError> {
        self.load_signer_through(&*self.store, root).await
    }

    /// [`AuditLog::load_signer`], creating the key (when absent) through `store`: a view of this
    /// log's store that adds to root-sealed writes what the server needs (its check that the
    /// root key is still the one in force).
    pub async fn load_signer_through(
        &self,
        store: &dyn Store,
        root: &coffer_crypto::AeadKey,
    ) -> Result<(), AuditError> {
        let signer = load_or_create_signer(store, root).await?;
        *self.signer.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(signer));
        Ok(())
    }

    /// Drops the signing key (on seal).
    pub fn forget_signer(&self) {
        *self.signer.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn signer(&self) -> Option<Arc<Signer>> {
        self.signer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The digest signing key's public half; `None` while sealed.
    pub fn public_key(&self) -> Option<PublicKeyInfo> {
        self.signer().map(|s| PublicKeyInfo::of(s.public_key()))
    }

    /// The store services should write through: it adds the running call's intent to every
    /// batch (see the module docs).
    pub fn services_store(&self) -> Arc<dyn Store> {
        if self.noop {
            return self.store.clone();
        }
        Arc::new(AuditedStore {
            inner: self.store.clone(),
            records: self.records.clone(),
        })
    }

    /// The intent key of a call starting now.
    pub fn intent_key(&self, request_id: &str) -> Vec<u8> {
        keys::pending(keys::INTENTS, self.clock.now_millis(), request_id)
    }

    /// Runs `call` with `intent` (the call's record so far, in canonical form:
    /// [`crate::record::ApiCall::canonical`]) attached to every batch it commits under `key`.
    pub async fn with_intent<F: Future>(
        &self,
        key: Vec<u8>,
        intent: Vec<u8>,
        call: F,
    ) -> F::Output {
        if self.noop {
            return call.await;
        }
        let bytes = Bytes::from(intent);
        INTENT.scope(Intent { key, bytes }, call).await
    }

    /// Chains `record` (canonical bytes: [`crate::record::ApiCall::canonical`]); the returned
    /// future resolves once it is committed. `clear` is an intent key to remove in the same
    /// batch. The record is queued here, before the future is first polled, and the future
    /// borrows nothing: a caller can free what it no longer needs before it waits (under load
    /// hundreds of calls wait at once, and what they hold on to while parked costs cache misses).
    pub fn append(
        &self,
        record: Vec<u8>,
        clear: Option<Vec<u8>>,
    ) -> impl Future<Output = Result<(), AuditError>> + Send + 'static {
        let queued = if self.noop {
            None
        } else if clear.is_none() && self.records.has_writer() {
            // Nothing to settle: straight to the home's writer.
            Some(self.records.submit(record))
        } else {
            Some(self.submit(record, clear, None))
        };
        async move {
            let Some(done) = queued else {
                return Ok(());
            };
            done?
                .await
                .map_err(|_| AuditError::Unavailable("audit appender stopped".into()))?
        }
    }

    fn submit(
        &self,
        record: Vec<u8>,
        clear: Option<Vec<u8>>,
        expect: Option<u64>,
    ) -> Result<oneshot::Receiver<Result<(), AuditError>>, AuditError> {
        let (done, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                record,
                clear,
                expect,
                done,
            })
            .map_err(|_| AuditError::Unavailable("audit appender stopped".into()))?;
        Ok(rx)
    }

    /// The key and bytes a service puts in the batch that carries out `event`, so the action
    /// and its record are committed together; [`AuditLog::sweep`] chains it.
    pub fn service_event_put(&self, event: &ServiceEvent) -> (Vec<u8>, Bytes) {
        let id = crate::record::new_call_id();
        (
            keys::pending(keys::SERVICE_EVENTS, event.event_time_ms, &id),
            Bytes::from(event.canonical(&id)),
        )
    }

    /// Chains pending service events, and the intents of calls that died before their record
    /// was written (older than [`STALE_INTENT`]). Returns how many records it handed to the
    /// chain (one another node sharing the store chained first is counted, not chained again).
    pub async fn sweep(&self) -> Result<usize, AuditError> {
        if self.noop {
            return Ok(0);
        }
        let _one = self.sweeping.lock().await;
        let mut waits = Vec::new();
        let mut settle = WriteBatch::new();
        let end = coffer_store::prefix_end(keys::SERVICE_EVENTS.as_bytes());
        let events = self
            .store
            .scan(keys::SERVICE_EVENTS.as_bytes(), &end, MAX_BATCH)
            .await?;
        let stale = self.clock.now_millis() - STALE_INTENT.as_millis() as i64;
        let end = keys::pending_before(keys::INTENTS, stale);
        let intents = self
            .store
            .scan(keys::INTENTS.as_bytes(), &end, MAX_BATCH)
            .await?;
        for (k, e, intent) in events
            .into_iter()
            .map(|(k, e)| (k, e, false))
            .chain(intents.into_iter().map(|(k, e)| (k, e, true)))
        {
            match self.settled.state(&k) {
                Some(Clearing::InFlight) => continue,
                Some(Clearing::Failed) => {
                    settle.delete(k);
                    continue;
                }
                None => {}
            }
            if !intent {
                waits.push(self.submit(e.value.to_vec(), Some(k), Some(e.version))?);
                continue;
            }
            let mut record: Value = serde_json::from_slice(&e.value).unwrap_or_else(|_| json!({}));
            record["additionalEventData"] = json!({
                "recoveredFromIntent": true,
                "note": "the call wrote its intent but its outcome was not recorded",
            });
            waits.push(self.submit(canonical::to_vec(&record), Some(k), Some(e.version))?);
        }
        if !settle.ops.is_empty() {
            let keys: Vec<Vec<u8>> = settle.ops.iter().map(|(k, _)| k.clone()).collect();
            self.store.commit(settle).await?;
            self.settled.forget(&keys);
        }
        let n = waits.len();
        for w in waits {
            w.await
                .map_err(|_| AuditError::Unavailable("audit appender stopped".into()))??;
        }
        Ok(n)
    }

    /// Seals the chain up to its current head with a signed digest, unless the last digest
    /// already covers it. Returns the new digest.
    pub async fn seal(&self, reason: &str) -> Result<Option<Digest>, AuditError> {
        self.seal_unless_within(reason, None).await
    }

    /// The periodic digest: as [`AuditLog::seal`], unless the last digest (made by any node
    /// sharing the store) is younger than `gap`. Judged again after losing a race for the next
    /// digest number, so nodes running their periodic jobs at once make one digest between them.
    pub async fn seal_periodic(&self, gap: Duration) -> Result<Option<Digest>, AuditError> {
        self.seal_unless_within("interval", Some(gap)).await
    }

    async fn seal_unless_within(
        &self,
        reason: &str,
        gap: Option<Duration>,
    ) -> Result<Option<Digest>, AuditError> {
        if self.noop {
            return Ok(None);
        }
        // Sealed: no signing key; the next digest (after unseal) covers what was appended.
        let Some(signer) = self.signer() else {
            return Ok(None);
        };
        let _one = self.sealing.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            // The head is one key, so this is a consistent (head seq, hash) pair; records appended
            // after it do not make the digest less true, so the head is not checked at commit.
            let head = self.records.head().await?;
            let last = last_digest(&*self.store).await?;
            if let Some(l) = &last
                && l.end_sequence == head.seq
            {
                return Ok(None);
            }
            let now_secs = self.clock.now_millis().div_euclid(1000);
            if let (Some(l), Some(gap)) = (&last, gap)
                && parse_time(&l.digest_time).is_some_and(|t| now_secs - t < gap.as_secs() as i64)
            {
                return Ok(None);
            }
            let (number, start, prev) = match &last {
                Some(l) => (l.number + 1, l.end_sequence + 1, l.hash()),
                None => (1, 1, GENESIS),
            };
            let d = signer.sign(Digest {
                number,
                start_sequence: start,
                end_sequence: head.seq,
                end_hash: head.hash,
                previous_digest_hash: prev,
                digest_time: format_time(self.clock.now_millis()),
                reason: reason.into(),
                signature_algorithm: String::new(),
                public_key_fingerprint: String::new(),
                signature: String::new(),
            });
            let mut b = WriteBatch::new();
            b.check(keys::digest(number), None)
                .put(keys::digest(number), json_bytes(&d)?);
            match self.store.commit(b).await {
                Ok(_) => return Ok(Some(d)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuditError::Unavailable(
            "the chain head kept moving while sealing".into(),
        ))
    }

    /// Removes records older than `retention`, at a digest boundary: the newest digest made
    /// before the cut-off seals the prune point, and the anchor records where the trail now
    /// starts. Returns how many records were removed.
    pub async fn prune(&self, retention: Duration) -> Result<usize, AuditError> {
        if self.noop {
            return Ok(0);
        }
        let cutoff = (self.clock.now_millis() - retention.as_millis() as i64).div_euclid(1000);
        let _one = self.sealing.lock().await;
        let digests = read_digests(&*self.store).await?;
        // Digests are oldest first; everything a digest covers was recorded before its time.
        let Some(seal) = digests
            .iter()
            .rev()
            .find(|d| parse_time(&d.digest_time).is_some_and(|t| t < cutoff) && d.end_sequence > 0)
        else {
            return Ok(0);
        };
        let anchor = Anchor {
            seq: seal.end_sequence + 1,
            prev: seal.end_hash,
        };
        let current = self.store.get(keys::ANCHOR).await?;
        let current_anchor: Option<Anchor> = current
            .as_ref()
            .and_then(|e| serde_json::from_slice(&e.value).ok());
        if current_anchor.is_some_and(|a| a.seq > anchor.seq) {
            return Ok(0);
        }
        // The anchor first: from then on, readers ignore records below it, so a crash halfway
        // through the deletions leaves a verifiable trail (the rest goes on the next run).
        if current_anchor != Some(anchor) {
            let mut b = WriteBatch::new();
            b.check(keys::ANCHOR, current.as_ref())
                .put(keys::ANCHOR, json_bytes(&anchor)?);
            self.store.commit(b).await?;
        }
        self.records.remove_below(anchor.seq).await
    }

    /// Everything verification needs, from the store and the records' home. Digests are read
    /// first, so every record they cover is in the entries read after.
    pub async fn read_trail(&self) -> Result<Trail, AuditError> {
        let digests = read_digests(&*self.store).await?;
        let anchor = self
            .store
            .get(keys::ANCHOR)
            .await?
            .and_then(|e| serde_json::from_slice(&e.value).ok());
        let (entries, head) = self.records.entries().await?;
        Ok(assemble(entries, digests, anchor, head))
    }

    /// Newest-first records from `after` (exclusive; `None` = from the head), at most `limit`.
    pub(crate) async fn scan_newest(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Bytes)>, AuditError> {
        self.records.scan_newest(after, limit).await
    }
}

/// `rotate-root`'s rewrap of the signing key record (coffer-server's root_wrapped::RECORDS).
pub fn rewrap_signing_key(
    value: &[u8],
    old: &coffer_crypto::AeadKey,
    new: &coffer_crypto::AeadKey,
) -> Result<Vec<u8>, String> {
    let mut stored: StoredKey =
        serde_json::from_slice(value).map_err(|_| "unreadable audit signing key record")?;
    stored.sealed = coffer_crypto::root_wrapped::rewrap(
        old,
        new,
        keys::SIGNING_KEY,
        SIGNING_KEY_PURPOSE,
        &stored.sealed,
    )
    .map_err(|e| e.to_string())?;
    serde_json::to_vec(&stored).map_err(|e| e.to_string())
}

async fn load_or_create_signer(
    store: &dyn Store,
    root: &coffer_crypto::AeadKey,
) -> Result<Signer, AuditError> {
    for _ in 0..MAX_ATTEMPTS {
        if let Some(e) = store.get(keys::SIGNING_KEY).await? {
            let stored: StoredKey = serde_json::from_slice(&e.value)
                .map_err(|_| AuditError::Internal("unreadable audit signing key record".into()))?;
            let pkcs8 = coffer_crypto::root_wrapped::open(
                root,
                keys::SIGNING_KEY,
                SIGNING_KEY_PURPOSE,
                &stored.sealed,
            )
            .map_err(|_| {
                AuditError::Internal(
                    "the audit signing key cannot be unsealed with this root key".into(),
                )
            })?;
            return Signer::from_pkcs8(&pkcs8);
        }
        let (signer, pkcs8) = Signer::generate()?;
        let sealed =
            coffer_crypto::root_wrapped::seal(root, keys::SIGNING_KEY, SIGNING_KEY_PURPOSE, &pkcs8)
                .map_err(|_| AuditError::Internal("sealing the audit signing key failed".into()))?;
        let stored = StoredKey {
            sealed,
            public: PublicKeyInfo::of(signer.public_key()),
        };
        let mut b = WriteBatch::new();
        b.check(keys::SIGNING_KEY, None)
            .put(keys::SIGNING_KEY, json_bytes(&stored)?);
        match store.commit(b).await {
            Ok(_) => return Ok(signer),
            // Another node created it first: use theirs.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AuditError::Unavailable(
        "could not settle the audit signing key".into(),
    ))
}

/// The public key recorded next to the sealed signing key (for `coffer audit verify` on a data
/// directory when no key is pinned).
pub fn stored_public_key(value: &[u8]) -> Option<PublicKeyInfo> {
    serde_json::from_slice::<StoredKey>(value)
        .ok()
        .map(|k| k.public)
}

fn json_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>, AuditError> {
    serde_json::to_vec(v).map_err(|e| AuditError::Internal(e.to_string()))
}

async fn last_digest(store: &dyn Store) -> Result<Option<Digest>, AuditError> {
    let end = coffer_store::prefix_end(keys::DIGESTS.as_bytes());
    let rows = store.scan(keys::DIGESTS.as_bytes(), &end, 1).await?;
    Ok(rows
        .first()
        .and_then(|(_, e)| serde_json::from_slice(&e.value).ok()))
}

/// All digests, oldest first.
async fn read_digests(store: &dyn Store) -> Result<Vec<Digest>, AuditError> {
    let end = coffer_store::prefix_end(keys::DIGESTS.as_bytes());
    let rows = store
        .scan(keys::DIGESTS.as_bytes(), &end, usize::MAX)
        .await?;
    let mut out: Vec<Digest> = rows
        .iter()
        .filter_map(|(_, e)| serde_json::from_slice(&e.value).ok())
        .collect();
    out.reverse();
    Ok(out)
}

/// Reads a whole trail kept as store rows (records included) from `store`.
pub async fn read_trail(store: &dyn Store) -> Result<Trail, AuditError> {
    let end = coffer_store::prefix_end(keys::PREFIX);
    let rows = store.scan(keys::PREFIX, &end, usize::MAX).await?;
    trail_from_rows(rows.iter().map(|(k, e)| (k.as_slice(), e.value.as_ref())))
}

/// Reads the trail of a data directory as it is on disk, read-only, beside a running server:
/// digests (and records an earlier version kept as rows) from the database, records from the
/// segment files. Also returns the public key recorded beside the signing key.
pub fn read_data_dir(dir: &Path) -> Result<(Trail, Option<PublicKeyInfo>), AuditError> {
    let rows = coffer_store::embedded::read_prefix(dir, keys::PREFIX)?;
    let key = rows
        .iter()
        .find(|(k, _)| k.as_slice() == keys::SIGNING_KEY)
        .and_then(|(_, v)| stored_public_key(v));
    let trail = trail_from_rows(rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))?;
    let segments = SegmentRecords::read_dir(&segments_dir(dir))?;
    if segments.is_empty() {
        return Ok((trail, key));
    }
    // Rows an earlier version wrote, then the segments; the store's head stopped moving when
    // segments took over.
    let entries = trail
        .entries
        .into_iter()
        .chain(segments.into_iter().map(|e| (None, e)))
        .collect();
    let trail = assemble(entries, trail.digests, trail.anchor, None);
    Ok((trail, key))
}

/// Where a data directory keeps its audit segments.
pub fn segments_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

/// Builds a trail from raw `audit/` rows (any order), as read from a live store or straight
/// from a data directory's database.
pub fn trail_from_rows<'a>(
    rows: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Trail, AuditError> {
    let mut records = Vec::new();
    let mut digests = Vec::new();
    let (mut head, mut anchor) = (None, None);
    for (k, v) in rows {
        if let Some(slot) = keys::record_seq(k) {
            records.push((Some(slot), parse_entry(v, slot)));
        } else if k.starts_with(keys::DIGESTS.as_bytes()) {
            let d: Digest = serde_json::from_slice(v)
                .map_err(|_| AuditError::Internal("unreadable digest".into()))?;
            digests.push(d);
        } else if k == keys::HEAD {
            head = serde_json::from_slice(v).ok();
        } else if k == keys::ANCHOR {
            anchor = serde_json::from_slice(v).ok();
        }
    }
    records.sort_by_key(|(slot, _)| *slot);
    digests.sort_by_key(|d| d.number);
    Ok(assemble(records, digests, anchor, head))
}

/// A trail from its parts: records below the anchor (pruned away, or about to be) left out.
fn assemble(
    entries: Vec<(Option<u64>, ChainEntry)>,
    digests: Vec<Digest>,
    anchor: Option<Anchor>,
    head: Option<Head>,
) -> Trail {
    let floor = anchor.map_or(0, |a| a.seq);
    Trail {
        entries: entries
            .into_iter()
            .filter(|(slot, e)| slot.unwrap_or(e.seq) >= floor)
            .collect(),
        digests,
        anchor,
        head,
    }
}

async fn appender(
    store: Arc<dyn Store>,
    records: Arc<dyn RecordStore>,
    settled: Settled,
    mut rx: mpsc::UnboundedReceiver<Job>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut stopping = false;
    loop {
        let first = if stopping {
            // Drain what is already queued, then let go of the store.
            match rx.try_recv() {
                Ok(j) => j,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                biased;
                j = rx.recv() => match j {
                    Some(j) => j,
                    None => break,
                },
                _ = &mut stop => {
                    stopping = true;
                    rx.close();
                    continue;
                }
            }
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let batch: Vec<Pending> = jobs
            .iter()
            .map(|j| Pending {
                record: &j.record,
                clear: j.clear.as_deref(),
                expect: j.expect,
            })
            .collect();
        let result = records.append(&batch).await;
        if let Ok(false) = result {
            let clears: Vec<Vec<u8>> = jobs.iter().filter_map(|j| j.clear.clone()).collect();
            if !clears.is_empty() {
                clear_later(store.clone(), settled.clone(), clears);
            }
        }
        let result = result.map(|_| ());
        for j in jobs {
            let _ = j.done.send(result.clone());
        }
    }
}

/// Removes the pending keys of records just chained, off the appender's path (see
/// [`Settled`]).
fn clear_later(store: Arc<dyn Store>, settled: Settled, clears: Vec<Vec<u8>>) {
    settled.set(&clears, Clearing::InFlight);
    tokio::spawn(async move {
        let mut b = WriteBatch::new();
        for k in &clears {
            b.delete(k.clone());
        }
        match store.commit(b).await {
            Ok(_) => settled.forget(&clears),
            Err(e) => {
                tracing::warn!(error = %e, "chained records' pending keys not removed; the sweep will");
                settled.set(&clears, Clearing::Failed);
            }
        }
    });
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Clearing {
    InFlight,
    Failed,
}

/// Pending keys whose record is chained but whose removal is not (yet) committed.
#[derive(Clone, Default)]
struct Settled(Arc<std::sync::Mutex<HashMap<Vec<u8>, Clearing>>>);

impl Settled {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Clearing>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set(&self, keys: &[Vec<u8>], state: Clearing) {
        let mut m = self.lock();
        for k in keys {
            m.insert(k.clone(), state);
        }
    }
    fn forget(&self, keys: &[Vec<u8>]) {
        let mut m = self.lock();
        for k in keys {
            m.remove(k);
        }
    }
    fn state(&self, key: &[u8]) -> Option<Clearing> {
        self.lock().get(key).copied()
    }
}

/// At open: removes pending keys whose record is already chained (a crash came between the
/// record and the key's removal), so the sweep does not chain them twice.
async fn settle_recorded(store: &dyn Store, records: &dyn RecordStore) -> Result<(), AuditError> {
    let mut pending = Vec::new();
    for prefix in [keys::SERVICE_EVENTS, keys::INTENTS] {
        let end = coffer_store::prefix_end(prefix.as_bytes());
        pending.extend(store.scan(prefix.as_bytes(), &end, usize::MAX).await?);
    }
    let id_of = |v: &[u8]| -> Option<String> {
        let r: Value = serde_json::from_slice(v).ok()?;
        r.get("eventID")?.as_str().map(str::to_string)
    };
    let ids: HashSet<String> = pending
        .iter()
        .filter_map(|(_, e)| id_of(&e.value))
        .collect();
    let found = records.recorded(&ids, SETTLE_WINDOW).await?;
    if found.is_empty() {
        return Ok(());
    }
    let mut b = WriteBatch::new();
    for (k, e) in &pending {
        if id_of(&e.value).is_some_and(|id| found.contains(&id)) {
            b.delete(k.clone());
        }
    }
    store.commit(b).await?;
    Ok(())
}

#[derive(Clone)]
struct Intent {
    key: Vec<u8>,
    bytes: Bytes,
}

tokio::task_local! {
    static INTENT: Intent;
}

/// The store as services see it: every batch committed while a mutating call runs carries the
/// call's intent.
struct AuditedStore {
    inner: Arc<dyn Store>,
    records: Arc<dyn RecordStore>,
}

#[async_trait]
impl Store for AuditedStore {
    async fn get(&self, key: &[u8]) -> coffer_store::Result<Option<Entry>> {
        self.inner.get(key).await
    }

    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> coffer_store::Result<Vec<(Vec<u8>, Entry)>> {
        self.inner.scan(start, end, limit).await
    }

    async fn commit(&self, mut batch: WriteBatch) -> coffer_store::Result<u64> {
        if INTENT
            .try_with(|i| batch.put(i.key.clone(), i.bytes.clone()).ops.len())
            .is_ok()
            && self.records.failing()
        {
            // The call's record could not be written: refuse its effect (fail closed).
            return Err(StoreError::Unavailable(
                "audit records cannot be written".into(),
            ));
        }
        self.inner.commit(batch).await
    }
}

impl coffer_service::audit::ServiceEventLog for AuditLog {
    fn record(&self, a: &coffer_service::audit::ServiceAction<'_>) -> (Vec<u8>, Vec<u8>) {
        let event = ServiceEvent {
            event_time_ms: a.time_ms,
            service: a.service,
            event_name: a.event_name,
            account_id: a.account_id.to_string(),
            region: a.region.to_string(),
            resources: vec![crate::record::Resource {
                arn: a.resource_arn.clone(),
                account_id: a.account_id.to_string(),
                kind: a.resource_type,
            }],
            details: a.details.clone(),
        };
        let (k, v) = self.service_event_put(&event);
        (k, v.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::Clock as _;
    use coffer_store::memory::MemoryStore;

    /// A crash between a record's write (segments) and its intent's removal (store) leaves the
    /// intent behind: at the next open it is settled, not chained a second time by the sweep;
    /// an intent whose record never made it is still chained.
    #[tokio::test]
    async fn intents_already_chained_are_settled_at_open_and_orphans_still_swept() {
        let dir = std::env::temp_dir().join(format!("coffer-log-{}", uuid::Uuid::new_v4()));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = coffer_core::ManualClock::new();
        let written = json!({"eventID": "e-written", "eventName": "PutSecretValue"});
        let orphan = json!({"eventID": "e-orphan", "eventName": "PutSecretValue"});
        let (k_written, k_orphan) = (
            keys::pending(keys::INTENTS, clock.now_millis(), "r-1"),
            keys::pending(keys::INTENTS, clock.now_millis(), "r-2"),
        );
        let mut b = WriteBatch::new();
        b.put(k_written.clone(), canonical::to_vec(&written))
            .put(k_orphan.clone(), canonical::to_vec(&orphan));
        store.commit(b).await.unwrap();
        let records = Arc::new(SegmentRecords::open(&dir, Head::EMPTY).unwrap());
        let bytes = canonical::to_vec(&written);
        records
            .append(&[Pending {
                record: &bytes,
                clear: None,
                expect: None,
            }])
            .await
            .unwrap();

        let log = AuditLog::open_with(store.clone(), records, clock.clone(), false)
            .await
            .unwrap();
        assert!(store.get(&k_written).await.unwrap().is_none(), "settled");
        assert!(store.get(&k_orphan).await.unwrap().is_some());
        clock.advance(STALE_INTENT + Duration::from_secs(1));
        assert_eq!(log.sweep().await.unwrap(), 1, "only the orphan is chained");
        let trail = log.read_trail().await.unwrap();
        let ids: Vec<&str> = trail
            .entries
            .iter()
            .filter_map(|(_, e)| e.record["eventID"].as_str())
            .collect();
        assert_eq!(ids, ["e-written", "e-orphan"]);
        log.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Pending service events in `store`, due now.
    async fn queue_events(store: &dyn Store, clock: &coffer_core::ManualClock, n: usize) {
        let mut b = WriteBatch::new();
        for i in 0..n {
            let event = json!({"eventID": format!("svc-{i}"), "eventName": "DeleteSecret"});
            b.put(
                keys::pending(
                    keys::SERVICE_EVENTS,
                    clock.now_millis(),
                    &format!("svc-{i}"),
                ),
                canonical::to_vec(&event),
            );
        }
        store.commit(b).await.unwrap();
    }

    /// The periodic job and an explicit run may sweep at once: each pending service event is
    /// still chained exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_sweeps_chain_a_service_event_once() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = coffer_core::ManualClock::new();
        let log = AuditLog::open(store.clone(), clock.clone(), false)
            .await
            .unwrap();
        queue_events(&*store, &clock, 20).await;
        let sweeps: Vec<_> = (0..4)
            .map(|_| {
                let log = log.clone();
                tokio::spawn(async move { log.sweep().await.unwrap() })
            })
            .collect();
        let mut chained = 0;
        for s in sweeps {
            chained += s.await.unwrap();
        }
        assert_eq!(chained, 20);
        assert_eq!(log.read_trail().await.unwrap().entries.len(), 20);
        log.stop().await;
    }

    /// A node's view of a shared store whose scans of pending service events wait for the
    /// other nodes' (the race the check on swept keys closes, made certain).
    struct MeetAtScan {
        inner: Arc<dyn Store>,
        barrier: Arc<tokio::sync::Barrier>,
    }

    #[async_trait]
    impl Store for MeetAtScan {
        async fn get(&self, key: &[u8]) -> coffer_store::Result<Option<Entry>> {
            self.inner.get(key).await
        }
        async fn scan(
            &self,
            start: &[u8],
            end: &[u8],
            limit: usize,
        ) -> coffer_store::Result<Vec<(Vec<u8>, Entry)>> {
            let rows = self.inner.scan(start, end, limit).await?;
            if start == keys::SERVICE_EVENTS.as_bytes() && !rows.is_empty() {
                self.barrier.wait().await;
            }
            Ok(rows)
        }
        async fn commit(&self, batch: WriteBatch) -> coffer_store::Result<u64> {
            self.inner.commit(batch).await
        }
    }

    /// Three nodes on one store sweep the same pending events while appending records of their
    /// own: one chain holds every record once (fails without the check on the swept key).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_sharing_a_store_keep_one_chain_and_chain_each_event_once() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = coffer_core::ManualClock::new();
        // Every node's sweep reads the pending events before any of them chains one.
        let read_together = Arc::new(tokio::sync::Barrier::new(3));
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let node_store = Arc::new(MeetAtScan {
                inner: store.clone(),
                barrier: read_together.clone(),
            });
            let records = Arc::new(KvRecords::new(node_store.clone()));
            nodes.push(
                AuditLog::open_with(node_store, records, clock.clone(), false)
                    .await
                    .unwrap(),
            );
        }
        queue_events(&*store, &clock, 50).await;
        let mut tasks = tokio::task::JoinSet::new();
        for (n, log) in nodes.iter().enumerate() {
            let sweeper = log.clone();
            tasks.spawn(async move {
                sweeper.sweep().await.unwrap();
            });
            for i in 0..30 {
                let log = log.clone();
                tasks.spawn(async move {
                    let rec =
                        json!({"eventID": format!("call-{n}-{i}"), "eventName": "GetSecretValue"});
                    log.append(canonical::to_vec(&rec), None).await.unwrap();
                });
            }
        }
        while let Some(t) = tasks.join_next().await {
            t.unwrap();
        }
        let trail = nodes[0].read_trail().await.unwrap();
        let mut ids: Vec<&str> = trail
            .entries
            .iter()
            .filter_map(|(_, e)| e.record["eventID"].as_str())
            .collect();
        assert_eq!(ids.len(), 50 + 3 * 30, "no record lost or chained twice");
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 50 + 3 * 30);
        let report = crate::verify::verify(&trail, &[0; 32]);
        assert!(report.ok(), "{report:?}");
        for log in nodes {
            log.stop().await;
        }
    }

    /// Nodes sharing a store running their periodic jobs at once make one digest per gap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_make_one_periodic_digest_between_them() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = coffer_core::ManualClock::new();
        let root = coffer_crypto::AeadKey::new(&[7; 32]);
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let log = AuditLog::open(store.clone(), clock.clone(), false)
                .await
                .unwrap();
            log.load_signer(&root).await.unwrap();
            nodes.push(log);
        }
        let gap = Duration::from_secs(30);
        for round in 1..=2u64 {
            nodes[0]
                .append(
                    canonical::to_vec(&json!({"eventID": format!("e{round}")})),
                    None,
                )
                .await
                .unwrap();
            let runs: Vec<_> = nodes
                .iter()
                .map(|n| {
                    let n = n.clone();
                    tokio::spawn(async move { n.seal_periodic(gap).await.unwrap() })
                })
                .collect();
            let mut made = 0;
            for r in runs {
                made += usize::from(r.await.unwrap().is_some());
            }
            assert_eq!(made, 1, "round {round}");
            assert_eq!(read_digests(&*store).await.unwrap().len() as u64, round);
            // Within the gap: nothing more, although records were appended.
            nodes[1]
                .append(canonical::to_vec(&json!({"eventID": "x"})), None)
                .await
                .unwrap();
            assert!(nodes[2].seal_periodic(gap).await.unwrap().is_none());
            clock.advance(gap);
        }
        for n in nodes {
            n.stop().await;
        }
    }
}
