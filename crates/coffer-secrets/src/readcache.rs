//! Decoded forms of hot store records, so a read does not re-parse JSON it parsed before.
//!
//! Every lookup starts from the [`Entry`] just read from the store: a cached decoding is used only
//! when it was made from an entry with the same version *and* byte-identical value, so a hit is
//! exactly what decoding that entry again would give — it can never be staler than the store read
//! it accompanies. Bounded in entries and bytes; when full, arbitrary entries make room.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_core::RequestContext;
use coffer_core::arn::Arn;
use coffer_store::Entry;

use crate::error::SecretsError;
use crate::model::{AccessRecord, SecretMeta, ValueKind, VersionRecord, secret_key};
use crate::ops::Loaded;
use crate::{SecretsService, validate};

/// Records kept per cache.
const MAX_ENTRIES: usize = 4096;
/// Raw record bytes kept per cache (records of secrets with long version histories are large).
const MAX_BYTES: usize = 32 << 20;

struct Slot<T> {
    entry: Entry,
    decoded: Arc<T>,
}

struct Inner<T> {
    map: HashMap<Vec<u8>, Slot<T>>,
    bytes: usize,
}

/// Store key → the decoding of one version of its record.
pub(crate) struct Decoded<T> {
    inner: RwLock<Inner<T>>,
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

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.read().map(|i| i.map.len()).unwrap_or(0)
    }
}

/// Whether two entries hold the same value bytes. Usually both share one store buffer: equal
/// pointer and length then mean equal contents (the cache's clone keeps that buffer alive and
/// immutable), and the comparison is skipped.
fn same_bytes(a: &Entry, b: &Entry) -> bool {
    (a.value.as_ptr() == b.value.as_ptr() && a.value.len() == b.value.len()) || a.value == b.value
}

/// A version record with its ciphertext already base64-decoded.
pub(crate) struct VersionBlob {
    pub kind: ValueKind,
    pub blob: Vec<u8>,
}

/// The service's read caches.
pub(crate) struct ReadCaches {
    pub meta: Decoded<SecretMeta>,
    pub versions: Decoded<VersionBlob>,
    pub access: Decoded<AccessRecord>,
}

impl ReadCaches {
    pub fn new() -> Self {
        Self {
            meta: Decoded::new(),
            versions: Decoded::new(),
            access: Decoded::new(),
        }
    }
}

pub(crate) fn decode_version(raw: &[u8]) -> Option<VersionBlob> {
    use base64::Engine as _;
    let rec: VersionRecord = serde_json::from_slice(raw).ok()?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(rec.blob.as_bytes())
        .ok()?;
    Some(VersionBlob {
        kind: rec.kind,
        blob,
    })
}

/// Whether a loaded secret is only read, or copied to be changed.
#[derive(Clone, Copy)]
pub(crate) enum Use {
    Read,
    Write,
}

/// A secret as read from the store, its metadata shared with the cache (read-only paths).
pub(crate) struct SharedLoaded {
    pub key: Vec<u8>,
    pub entry: Entry,
    pub meta: Arc<SecretMeta>,
}

impl SharedLoaded {
    /// An owned copy for paths that modify the metadata.
    pub fn into_owned(self) -> Loaded {
        Loaded {
            key: self.key,
            entry: self.entry,
            meta: Arc::unwrap_or_clone(self.meta),
        }
    }
}

impl SecretsService {
    /// [`SecretsService::load`], the metadata shared with the cache. `Use::Write` leaves a miss
    /// out of the cache: the owned copy a writer takes is then the decoding itself rather than a
    /// clone of a cached one (a hit is still cloned, which is cheaper than parsing).
    pub(crate) async fn load_with(
        &self,
        account: &str,
        region: &str,
        name: &str,
        usage: Use,
    ) -> Result<Option<SharedLoaded>, SecretsError> {
        let key = secret_key(account, region, name);
        let Some(entry) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let decode = |raw: &[u8]| serde_json::from_slice(raw).ok();
        let meta = match usage {
            Use::Read => self.reads.meta.get(&key, &entry, decode),
            Use::Write => self.reads.meta.get_uncached_miss(&key, &entry, decode),
        };
        let meta = meta.ok_or_else(|| {
            tracing::error!("corrupt secret metadata record");
            SecretsError::InternalServiceError("An error occurred on the server side.".into())
        })?;
        Ok(Some(SharedLoaded { key, entry, meta }))
    }

    /// Finds a secret by name, full ARN, or partial ARN (the ARN without its `-XXXXXX` suffix);
    /// [`SecretsService::resolve`] without copying the metadata.
    pub(crate) async fn resolve_shared(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<SharedLoaded, SecretsError> {
        self.resolve_with(ctx, id, Use::Read).await
    }

    pub(crate) async fn resolve_with(
        &self,
        ctx: &RequestContext,
        id: &str,
        usage: Use,
    ) -> Result<SharedLoaded, SecretsError> {
        validate::secret_id(id)?;
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        if !id.starts_with("arn:") {
            return self
                .load_with(account, region, id, usage)
                .await?
                .ok_or_else(SecretsError::secret_not_found);
        }
        let arn = Arn::parse(id).ok_or_else(SecretsError::secret_not_found)?;
        let res = arn.resource.strip_prefix("secret:");
        let (Some(res), true) = (
            res,
            arn.service == "secretsmanager"
                && arn.account == account
                && arn.region == region
                && arn.partition == ctx.partition(),
        ) else {
            return Err(SecretsError::secret_not_found());
        };
        if res.len() > 7
            && res.is_char_boundary(res.len() - 7)
            && res.as_bytes()[res.len() - 7] == b'-'
            && let Some(l) = self
                .load_with(account, region, &res[..res.len() - 7], usage)
                .await?
            && l.meta.arn == id
        {
            return Ok(l);
        }
        self.load_with(account, region, res, usage)
            .await?
            .ok_or_else(SecretsError::secret_not_found)
    }
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
    fn store_key_layout() {
        use crate::model::{access_key, version_key};
        assert_eq!(
            secret_key("123", "us-east-1", "a/b"),
            b"sm/123/us-east-1/secret/a/b"
        );
        assert_eq!(
            version_key("123", "eu-west-1", "n", "v/1"),
            b"sm/123/eu-west-1/version/n:v/1"
        );
        assert_eq!(access_key("1", "r", "n"), b"sm/1/r/access/n");
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
