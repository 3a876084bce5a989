//! Moving a deployment between engines (`coffer migrate`): copy every key into an empty store,
//! then compare both key by key.
//!
//! Versions are not copied: they are each store's own commit numbers, and nothing stored refers
//! to one (leases do, which is why callers skip `lease/`: they belong to the source's nodes).

use std::collections::BTreeMap;

use crate::{Entry, Result, Store, StoreError, WriteBatch};

/// Keys per scan page and per commit into the target.
const PAGE: usize = 500;
/// Above every key Coffer writes (all start with an ASCII prefix).
const END: &[u8] = &[0xff; 8];

/// What was copied (or compared): keys and value bytes, keys by their first path segment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub keys: u64,
    pub bytes: u64,
    pub by_prefix: BTreeMap<String, u64>,
}

impl CopyReport {
    fn add(&mut self, key: &[u8], value_len: usize) {
        self.keys += 1;
        self.bytes += value_len as u64;
        let end = key.iter().position(|b| *b == b'/').unwrap_or(key.len());
        *self
            .by_prefix
            .entry(String::from_utf8_lossy(&key[..end]).into_owned())
            .or_default() += 1;
    }
}

/// Reads a store in key order, a page at a time, leaving out the keys `skip` names.
struct Cursor<'a> {
    store: &'a dyn Store,
    page: std::vec::IntoIter<(Vec<u8>, Entry)>,
    from: Option<Vec<u8>>,
    skip: &'a dyn Fn(&[u8]) -> bool,
}

impl<'a> Cursor<'a> {
    fn new(store: &'a dyn Store, skip: &'a dyn Fn(&[u8]) -> bool) -> Self {
        Self {
            store,
            page: Vec::new().into_iter(),
            from: Some(Vec::new()),
            skip,
        }
    }

    async fn next(&mut self) -> Result<Option<(Vec<u8>, Entry)>> {
        loop {
            if let Some((k, e)) = self.page.next() {
                if (self.skip)(&k) {
                    continue;
                }
                return Ok(Some((k, e)));
            }
            let Some(from) = self.from.take() else {
                return Ok(None);
            };
            let page = self.store.scan(&from, END, PAGE).await?;
            if page.len() == PAGE
                && let Some((last, _)) = page.last()
            {
                let mut next = last.clone();
                next.push(0);
                self.from = Some(next);
            }
            self.page = page.into_iter();
        }
    }
}

/// Copies every key of `from` not `skip`ped into `to`, which must hold no such key yet (each
/// is written with an "absent" check, so nothing in `to` is overwritten). `from` must not
/// change meanwhile: stop its servers first ([`compare`] afterwards catches a change).
pub async fn copy_all(
    from: &dyn Store,
    to: &dyn Store,
    skip: &dyn Fn(&[u8]) -> bool,
) -> Result<CopyReport> {
    if Cursor::new(to, skip).next().await?.is_some() {
        return Err(StoreError::Internal(
            "the target store is not empty; migrate only into a new store".into(),
        ));
    }
    let mut report = CopyReport::default();
    let mut cursor = Cursor::new(from, skip);
    let mut batch = WriteBatch::new();
    while let Some((k, e)) = cursor.next().await? {
        report.add(&k, e.value.len());
        batch.check(k.clone(), None).put(k, e.value);
        if batch.ops.len() >= PAGE {
            commit_copy(to, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        commit_copy(to, batch).await?;
    }
    Ok(report)
}

async fn commit_copy(to: &dyn Store, batch: WriteBatch) -> Result<()> {
    to.commit(batch).await.map(drop).map_err(|e| match e {
        StoreError::Conflict => {
            StoreError::Internal("the target store changed during the copy".into())
        }
        e => e,
    })
}

/// Whether both stores hold the same keys (not `skip`ped) with byte-identical values; names
/// the first difference. Returns what was compared.
pub async fn compare(
    a: &dyn Store,
    b: &dyn Store,
    skip: &dyn Fn(&[u8]) -> bool,
) -> Result<CopyReport> {
    let (mut ca, mut cb) = (Cursor::new(a, skip), Cursor::new(b, skip));
    let mut report = CopyReport::default();
    loop {
        match (ca.next().await?, cb.next().await?) {
            (None, None) => return Ok(report),
            (Some((ka, ea)), Some((kb, eb))) if ka == kb && ea.value == eb.value => {
                report.add(&ka, ea.value.len());
            }
            (x, y) => {
                let show = |e: Option<(Vec<u8>, Entry)>| {
                    e.map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
                        .unwrap_or_else(|| "<end>".into())
                };
                return Err(StoreError::Internal(format!(
                    "the stores differ at key {} / {}",
                    show(x),
                    show(y)
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn no_lease(k: &[u8]) -> bool {
        k.starts_with(b"lease/")
    }

    #[tokio::test]
    async fn copies_everything_but_skipped_keys_across_pages_and_compares() {
        let (a, b) = (MemoryStore::new(), MemoryStore::new());
        let mut batch = WriteBatch::new();
        for i in 0..1234u32 {
            batch.put(
                format!("sm/{i:05}").into_bytes(),
                vec![b'v'; (i % 7) as usize],
            );
        }
        batch.put(b"lease/job".to_vec(), b"node-1".to_vec());
        batch.put(b"meta/account-id".to_vec(), b"000000000000".to_vec());
        a.commit(batch).await.unwrap();

        let copied = copy_all(&a, &b, &no_lease).await.unwrap();
        assert_eq!(copied.keys, 1235);
        assert_eq!(copied.by_prefix["sm"], 1234);
        assert!(b.get(b"lease/job").await.unwrap().is_none());
        assert_eq!(compare(&a, &b, &no_lease).await.unwrap(), copied);

        // A second copy into the now full store is refused; a changed value is named.
        assert!(copy_all(&a, &b, &no_lease).await.is_err());
        let mut change = WriteBatch::new();
        change.put(b"sm/00100".to_vec(), b"other".to_vec());
        b.commit(change).await.unwrap();
        let err = compare(&a, &b, &no_lease).await.unwrap_err().to_string();
        assert!(err.contains("sm/00100"), "{err}");
        let mut extra = WriteBatch::new();
        extra.put(b"zz".to_vec(), b"x".to_vec());
        a.commit(extra).await.unwrap();
        assert!(compare(&a, &b, &no_lease).await.is_err());
    }
}
