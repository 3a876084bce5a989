//! Decoded forms of hot store records, so a read does not re-parse JSON it parsed before.
//!
//! Every lookup starts from the [`Entry`] just read from the store: a cached decoding is used only
//! when it was made from an entry with the same version *and* byte-identical value, so a hit is
//! exactly what decoding that entry again would give — it can never be staler than the store read
//! it accompanies. Bounded in entries and bytes; when full, arbitrary entries make room.
//! Used by the Secrets Manager and Parameter Store read paths.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_store::Entry;

/// Records kept per cache.
pub const MAX_ENTRIES: usize = 4096;
/// Raw record bytes kept per cache (records of secrets with long version histories are large).
pub const MAX_BYTES: usize = 32 << 20;

struct Slot<T> {
    entry: Entry,
    decoded: Arc<T>,
}

struct Inner<T> {
    map: HashMap<Vec<u8>, Slot<T>>,
    bytes: usize,
}

/// Store key → the decoding of one version of its record.
pub struct Decoded<T> {
    inner: RwLock<Inner<T>>,
}

impl<T> Default for Decoded<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Decoded<T> {
    pub fn new() -> Self {
        Self {
            inner: RwLock::new(Inner {
                map: HashMap::new(),
                bytes: 0,
            }),
        }
    }

    /// `entry` (just read at `key`) decoded, from the cache when it holds this exact entry.
    /// `None` when `decode` rejects the bytes (nothing is cached then).
    pub fn get(
        &self,
        key: &[u8],
        entry: &Entry,
        decode: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Option<Arc<T>> {
        self.get_or_decode(key, entry, decode, true)
    }

    /// [`Decoded::get`], but a miss is not cached: for callers about to replace the record (a
    /// writer), whose decoding would only be evicted by its own write.
    pub fn get_uncached_miss(
        &self,
        key: &[u8],
        entry: &Entry,
        decode: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Option<Arc<T>> {
        self.get_or_decode(key, entry, decode, false)
    }

    fn get_or_decode(
        &self,
        key: &[u8],
        entry: &Entry,
        decode: impl FnOnce(&[u8]) -> Option<T>,
        keep: bool,
    ) -> Option<Arc<T>> {
        if let Ok(inner) = self.inner.read()
            && let Some(slot) = inner.map.get(key)
            && slot.entry.version == entry.version
            && same_bytes(&slot.entry, entry)
        {
            return Some(slot.decoded.clone());
        }
        let decoded = Arc::new(decode(&entry.value)?);
        let size = key.len() + entry.value.len();
        if keep
            && size <= MAX_BYTES
            && let Ok(mut inner) = self.inner.write()
        {
            match inner.map.get(key) {
                // A reader that raced a writer does not push out the newer decoding.
                Some(old) if old.entry.version > entry.version => return Some(decoded),
                Some(_) => {
                    if let Some(old) = inner.map.remove(key) {
                        inner.bytes -= key.len() + old.entry.value.len();
                    }
                }
                None => {}
            }
            while !inner.map.is_empty()
                && (inner.map.len() >= MAX_ENTRIES || inner.bytes + size > MAX_BYTES)
            {
                let Some(victim) = inner.map.keys().next().cloned() else {
                    break;
                };
                if let Some(old) = inner.map.remove(&victim) {
                    inner.bytes -= victim.len() + old.entry.value.len();
                }
            }
            inner.bytes += size;
            inner.map.insert(
                key.to_vec(),
                Slot {
                    entry: entry.clone(),
                    decoded: decoded.clone(),
                },
            );
        }
        Some(decoded)
    }

    /// Records currently kept.
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether two entries hold the same value bytes. Usually both share one store buffer: equal
/// pointer and length then mean equal contents (the cache's clone keeps that buffer alive and
/// immutable), and the comparison is skipped.
fn same_bytes(a: &Entry, b: &Entry) -> bool {
    (a.value.as_ptr() == b.value.as_ptr() && a.value.len() == b.value.len()) || a.value == b.value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u64, value: &'static str) -> Entry {
        Entry {
            version,
            value: value.as_bytes().to_vec().into(),
        }
    }

    fn parse(raw: &[u8]) -> Option<String> {
        std::str::from_utf8(raw).ok().map(str::to_owned)
    }

    #[test]
    fn hit_only_for_the_same_version_and_bytes() {
        let c: Decoded<String> = Decoded::new();
        let mut decodes = 0;
        let mut get = |e: &Entry| {
            c.get(b"k", e, |raw| {
                decodes += 1;
                parse(raw)
            })
            .map(|s| (*s).clone())
        };
        assert_eq!(get(&entry(1, "a")).as_deref(), Some("a"));
        assert_eq!(get(&entry(1, "a")).as_deref(), Some("a"));
        // A newer version, or (defensively) other bytes under the same version, decode afresh.
        assert_eq!(get(&entry(2, "b")).as_deref(), Some("b"));
        assert_eq!(get(&entry(2, "c")).as_deref(), Some("c"));
        // An older entry (a reader that raced a writer) gets its own bytes decoded, not the newer,
        // and does not displace the newer decoding.
        assert_eq!(get(&entry(1, "a")).as_deref(), Some("a"));
        assert_eq!(get(&entry(2, "c")).as_deref(), Some("c"));
        assert_eq!(decodes, 4);
    }

    #[test]
    fn writers_use_hits_but_do_not_cache_misses() {
        let c: Decoded<String> = Decoded::new();
        assert!(c.get_uncached_miss(b"k", &entry(1, "a"), parse).is_some());
        assert_eq!(c.len(), 0);
        assert!(c.get(b"k", &entry(1, "a"), parse).is_some());
        let hit = c.get_uncached_miss(b"k", &entry(1, "a"), |_| panic!("must be a hit"));
        assert_eq!(hit.as_deref().map(String::as_str), Some("a"));
    }

    #[test]
    fn undecodable_entries_are_not_cached() {
        let c: Decoded<String> = Decoded::new();
        assert!(c.get(b"k", &entry(1, "x"), |_| None).is_none());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn bounded_in_entries() {
        let c: Decoded<String> = Decoded::new();
        for i in 0..(MAX_ENTRIES + 50) {
            let key = format!("k{i}");
            assert!(c.get(key.as_bytes(), &entry(1, "v"), parse).is_some());
        }
        assert!(c.len() <= MAX_ENTRIES);
        let inner = c.inner.read().unwrap();
        let bytes: usize = inner
            .map
            .iter()
            .map(|(k, s)| k.len() + s.entry.value.len())
            .sum();
        assert_eq!(inner.bytes, bytes);
    }
}
