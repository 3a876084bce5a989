//! Storage for every service: an ordered key-value space with atomic, optimistically checked
//! write batches.
//!
//! Services read what they need, compute the change, and commit a [`WriteBatch`] whose
//! [`WriteBatch::checks`] say which keys must still be at the versions they read (or still be
//! absent). The engine applies the whole batch or nothing; a failed check returns
//! [`StoreError::Conflict`] and the service re-reads and retries (or answers AWS's
//! `TooManyUpdates`-style error). This shape lets the embedded engine group-commit many batches
//! under one fsync and lets a PostgreSQL engine check versions with row locks, without services
//! knowing which one they run on.

use async_trait::async_trait;
use bytes::Bytes;

pub mod copy;
pub mod embedded;
pub mod memory;
pub mod postgres;

/// A key's value and the commit sequence number that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub version: u64,
    pub value: Bytes,
}

/// One atomic change.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    /// `(key, expected)`: `None` = the key must be absent, `Some(v)` = it must be at version `v`.
    pub checks: Vec<(Vec<u8>, Option<u64>)>,
    /// `(key, value)`: `Some` puts, `None` deletes. Applied in order.
    pub ops: Vec<(Vec<u8>, Option<Bytes>)>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }
    /// Require `key` to be exactly as it was read (`None` = absent).
    pub fn check(&mut self, key: impl Into<Vec<u8>>, read: Option<&Entry>) -> &mut Self {
        self.checks.push((key.into(), read.map(|e| e.version)));
        self
    }
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Bytes>) -> &mut Self {
        self.ops.push((key.into(), Some(value.into())));
        self
    }
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push((key.into(), None));
        self
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A check failed: somebody else changed a key since it was read.
    #[error("concurrent modification")]
    Conflict,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage failure: {0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage every service runs on. Implementations: [`memory::MemoryStore`] (`--dev`), the
/// embedded durable engine (default), [`postgres::PgStore`] (several nodes on one database).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &[u8]) -> Result<Option<Entry>>;
    /// Keys in `[start, end)` in ascending byte order, at most `limit` of them.
    async fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Entry)>>;
    /// Applies the batch atomically and durably (when the engine is durable) and returns the
    /// commit's sequence number, which is the new version of every key it wrote.
    async fn commit(&self, batch: WriteBatch) -> Result<u64>;
}

/// The exclusive upper bound of all keys starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}
