//! The in-memory engine: the ordered map every engine keeps, without persistence (`--dev`).

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;

use crate::{Entry, Result, Store, StoreError, WriteBatch};

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) map: BTreeMap<Vec<u8>, Entry>,
    pub(crate) seq: u64,
}

impl Inner {
    pub(crate) fn checks_pass(&self, batch: &WriteBatch) -> bool {
        batch
            .checks
            .iter()
            .all(|(k, want)| self.map.get(k).map(|e| e.version) == *want)
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<Entry> {
        self.map.get(key).cloned()
    }

    pub(crate) fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Entry)> {
        if start >= end {
            return Vec::new();
        }
        self.map
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }

    pub(crate) fn apply(&mut self, seq: u64, batch: WriteBatch) {
        for (k, v) in batch.ops {
            match v {
                Some(value) => {
                    self.map.insert(
                        k,
                        Entry {
                            version: seq,
                            value,
                        },
                    );
                }
                None => {
                    self.map.remove(&k);
                }
            }
        }
        self.seq = seq;
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        Ok(self.read().get(key))
    }

    async fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Entry)>> {
        Ok(self.read().scan(start, end, limit))
    }

    async fn commit(&self, batch: WriteBatch) -> Result<u64> {
        // A panic elsewhere cannot leave the map half-applied (apply does not panic), so a
        // poisoned lock is safe to keep using.
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if !inner.checks_pass(&batch) {
            return Err(StoreError::Conflict);
        }
        let seq = inner.seq + 1;
        inner.apply(seq, batch);
        Ok(seq)
    }
}
