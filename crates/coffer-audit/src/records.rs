//! Where chained records live. Two homes behind one trait:
//!
//! - [`KvRecords`]: rows in the shared [`Store`] (`audit/r/...` + `audit/head`), chained under a
//!   check on the head so several nodes sharing one database keep one chain. Used for the
//!   in-memory store and for shared databases.
//! - [`crate::segments::SegmentRecords`]: append-only segment files beside the embedded store,
//!   one `write` + one `fdatasync` per group of records and no B-tree, so auditing a read costs
//!   a few microseconds instead of a database row (see BENCHMARKS.md "Audit").
//!
//! Both chain records in the order given, make them durable before returning, and serve them
//! back newest first.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use coffer_store::{Entry, Store, StoreError, WriteBatch};
use serde_json::Value;

use crate::AuditError;
use crate::chain::{ChainEntry, GENESIS, Head};
use crate::keys;

/// How long an append keeps re-chaining while other nodes move the head. A bounded number of
/// attempts is not enough: three busy nodes on one database starved a node through 16 of them,
/// and a call whose effect committed then answered InternalFailure (the SDK's retry of it then
/// saw the effect as someone else's). Waiting for a turn is what a shared chain costs.
const APPEND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// One record to chain, and the pending key (intent or service event) it settles.
pub struct Pending<'a> {
    pub record: &'a [u8],
    pub clear: Option<&'a [u8]>,
    /// The version of `clear` the sweep read: the record is chained only while the key is still
    /// at it, so of several nodes sweeping one store exactly one chains it (homes that share no
    /// store, i.e. segment files, ignore it).
    pub expect: Option<u64>,
}

/// A record handed straight to the home's writer: resolves once it is durable.
pub type Submitted = Result<tokio::sync::oneshot::Receiver<Result<(), AuditError>>, AuditError>;

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Chains `batch` after the head, in order, and makes it durable. Returns whether the
    /// `clear` keys were removed in the same durable write; if not, the caller removes them.
    async fn append(&self, batch: &[Pending<'_>]) -> Result<bool, AuditError>;

    /// Whether [`RecordStore::submit`] is served (segments: a read's record then skips the
    /// appender task, and the writer groups what arrives meanwhile).
    fn has_writer(&self) -> bool {
        false
    }

    /// Hands one record that settles no pending key straight to the home's own writer.
    fn submit(&self, _record: Vec<u8>) -> Submitted {
        Err(AuditError::Internal(
            "this record home has no writer of its own".into(),
        ))
    }

    /// The last chained record's number and hash.
    async fn head(&self) -> Result<Head, AuditError>;

    /// Stored entries (ChainEntry bytes) newest first, below `after` (exclusive; `None` = from
    /// the head), at most `limit`.
    async fn scan_newest(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Bytes)>, AuditError>;

    /// Every stored entry in stored order, for verification: (the number its key names, when
    /// the home has keys; the entry), and the head as the home records it, when it does.
    async fn entries(&self) -> Result<(Vec<(Option<u64>, ChainEntry)>, Option<Head>), AuditError>;

    /// Removes records numbered below `seq` (a sealed prune point); may keep some in a shared
    /// unit of storage. Returns how many were removed.
    async fn remove_below(&self, seq: u64) -> Result<usize, AuditError>;

    /// Of `ids`, the event ids among the newest `window` records: pending keys whose record was
    /// written but whose removal was lost (a crash between the two) are settled, not chained
    /// twice. Homes that clear in the same write answer none.
    async fn recorded(
        &self,
        _ids: &HashSet<String>,
        _window: usize,
    ) -> Result<HashSet<String>, AuditError> {
        Ok(HashSet::new())
    }

    /// True while appends are known to fail: mutating calls are then refused before they
    /// change anything (fail closed).
    fn failing(&self) -> bool {
        false
    }

    /// Finishes what is in flight and lets go of files.
    async fn close(&self) {}
}

/// Records as rows of the shared store (see the module docs).
pub struct KvRecords {
    store: Arc<dyn Store>,
    /// The head this node last committed (with the head key's entry), or None: re-read.
    known: tokio::sync::Mutex<Option<(Head, Option<Entry>)>>,
}

impl KvRecords {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            known: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl RecordStore for KvRecords {
    async fn append(&self, batch: &[Pending<'_>]) -> Result<bool, AuditError> {
        let mut known = self.known.lock().await;
        // Items another node settled meanwhile (their pending key moved): chained there.
        let mut gone = vec![false; batch.len()];
        let deadline = tokio::time::Instant::now() + APPEND_DEADLINE;
        for attempt in 0u32.. {
            if tokio::time::Instant::now() > deadline {
                break;
            }
            if !gone.is_empty() && gone.iter().all(|g| *g) {
                return Ok(true);
            }
            let (head, head_entry) = match known.take() {
                Some(k) => k,
                None => read_head(&*self.store).await?,
            };
            let mut b = WriteBatch::new();
            b.check(keys::HEAD, head_entry.as_ref());
            let mut h = head;
            for (p, _) in batch.iter().zip(&gone).filter(|(_, g)| !**g) {
                if let (Some(k), Some(v)) = (p.clear, p.expect) {
                    b.checks.push((k.to_vec(), Some(v)));
                }
                let seq = h.seq + 1;
                let (bytes, hash) = ChainEntry::encode(seq, &h.hash, p.record);
                b.put(keys::record(seq), bytes);
                if let Some(k) = p.clear {
                    b.delete(k.to_vec());
                }
                h = Head { seq, hash };
            }
            let head_bytes =
                serde_json::to_vec(&h).map_err(|e| AuditError::Internal(e.to_string()))?;
            b.put(keys::HEAD, head_bytes.clone());
            match self.store.commit(b).await {
                Ok(version) => {
                    *known = Some((
                        h,
                        Some(Entry {
                            version,
                            value: head_bytes.into(),
                        }),
                    ));
                    return Ok(true);
                }
                // Another node appended (re-read its head and chain after it), or settled one
                // of the swept keys (leave that one out).
                Err(StoreError::Conflict) => {
                    for (p, g) in batch.iter().zip(gone.iter_mut()) {
                        if let (Some(k), Some(v)) = (p.clear, p.expect)
                            && !*g
                        {
                            *g = self.store.get(k).await?.is_none_or(|e| e.version != v);
                        }
                    }
                    // A little jitter so the nodes that lost do not all come back at once.
                    tokio::time::sleep(jitter(attempt)).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit records could not be written");
                    return Err(e.into());
                }
            }
        }
        Err(AuditError::Unavailable(
            "the audit chain head kept moving".into(),
        ))
    }

    async fn head(&self) -> Result<Head, AuditError> {
        Ok(read_head(&*self.store).await?.0)
    }

    async fn scan_newest(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Bytes)>, AuditError> {
        let start = match after {
            Some(seq) => {
                let mut k = keys::record(seq);
                k.push(0);
                k
            }
            None => keys::RECORDS.as_bytes().to_vec(),
        };
        let end = coffer_store::prefix_end(keys::RECORDS.as_bytes());
        Ok(self
            .store
            .scan(&start, &end, limit)
            .await?
            .into_iter()
            .filter_map(|(k, e)| Some((keys::record_seq(&k)?, e.value)))
            .collect())
    }

    async fn entries(&self) -> Result<(Vec<(Option<u64>, ChainEntry)>, Option<Head>), AuditError> {
        // One scan: the records and the head as one consistent view.
        let end = coffer_store::prefix_end(keys::PREFIX);
        let rows = self.store.scan(keys::PREFIX, &end, usize::MAX).await?;
        let t = crate::log::trail_from_rows(
            rows.iter().map(|(k, e)| (k.as_slice(), e.value.as_ref())),
        )?;
        Ok((t.entries, t.head))
    }

    async fn remove_below(&self, seq: u64) -> Result<usize, AuditError> {
        let start = keys::record(seq.saturating_sub(1));
        let end = coffer_store::prefix_end(keys::RECORDS.as_bytes());
        let mut removed = 0;
        loop {
            let rows = self.store.scan(&start, &end, 1024).await?;
            if rows.is_empty() {
                return Ok(removed);
            }
            let mut b = WriteBatch::new();
            for (k, _) in &rows {
                b.delete(k.clone());
            }
            self.store.commit(b).await?;
            removed += rows.len();
        }
    }
}

/// Up to `attempt` (at most 8) milliseconds, drawn at random.
fn jitter(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let max_us = u64::from(attempt.min(8)) * 1000;
    std::time::Duration::from_micros(h.finish() % (max_us + 1))
}

/// The head recorded in the store (`audit/head`) and its entry.
pub async fn read_head(store: &dyn Store) -> Result<(Head, Option<Entry>), AuditError> {
    match store.get(keys::HEAD).await? {
        Some(e) => {
            let h: Head = serde_json::from_slice(&e.value)
                .map_err(|_| AuditError::Internal("unreadable audit chain head".into()))?;
            Ok((h, Some(e)))
        }
        None => Ok((Head::EMPTY, None)),
    }
}

/// An entry as stored; an unreadable one is kept as an obviously modified record (numbered
/// `seq`) rather than skipped, so verification names it.
pub fn parse_entry(bytes: &[u8], seq: u64) -> ChainEntry {
    serde_json::from_slice::<ChainEntry>(bytes).unwrap_or(ChainEntry {
        seq,
        prev: GENESIS,
        hash: GENESIS,
        record: Value::String(String::from_utf8_lossy(bytes).into_owned()),
    })
}

/// A store key and its value.
pub type Row = (Vec<u8>, Vec<u8>);

/// Chained entries (as read from any home, oldest first) as the rows [`KvRecords`] keeps: each
/// entry under its number's key, exactly as chained (its stored hash is kept, so a tampered
/// entry stays detectable), and the head after the last. For moving a trail from segment files
/// into a store that keeps it as rows (`coffer migrate` to PostgreSQL).
pub fn entries_as_rows(entries: &[ChainEntry]) -> Result<Vec<Row>, AuditError> {
    let json = |e: serde_json::Error| AuditError::Internal(e.to_string());
    let mut rows = Vec::with_capacity(entries.len() + 1);
    for e in entries {
        rows.push((keys::record(e.seq), serde_json::to_vec(e).map_err(json)?));
    }
    if let Some(last) = entries.last() {
        let head = Head {
            seq: last.seq,
            hash: last.hash,
        };
        rows.push((
            keys::HEAD.to_vec(),
            serde_json::to_vec(&head).map_err(json)?,
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_store::memory::MemoryStore;

    #[tokio::test]
    async fn entries_moved_as_rows_read_back_as_the_same_chain() {
        let mut entries = Vec::new();
        let mut prev = GENESIS;
        for seq in 5..9u64 {
            let rec = serde_json::json!({"eventName": "GetSecretValue", "n": seq});
            let (bytes, hash) = ChainEntry::encode(seq, &prev, &crate::canonical::to_vec(&rec));
            entries.push(serde_json::from_slice::<ChainEntry>(&bytes).unwrap());
            prev = hash;
        }
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut b = WriteBatch::new();
        for (k, v) in entries_as_rows(&entries).unwrap() {
            b.put(k, v);
        }
        store.commit(b).await.unwrap();
        let trail = crate::log::read_trail(&*store).await.unwrap();
        let got: Vec<ChainEntry> = trail.entries.into_iter().map(|(_, e)| e).collect();
        let mut want = entries.clone();
        want.sort_by_key(|e| std::cmp::Reverse(e.seq));
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|e| want.contains(e)));
        assert_eq!(trail.head, Some(Head { seq: 8, hash: prev }));
        // New records chain after the moved ones.
        let kv = KvRecords::new(store.clone());
        assert_eq!(kv.head().await.unwrap().seq, 8);
        assert!(entries_as_rows(&[]).unwrap().is_empty());
    }
}
