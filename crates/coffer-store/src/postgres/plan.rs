//! What one [`WriteBatch`] asks of PostgreSQL, computed without I/O: which advisory locks to
//! take (sorted, so concurrent commits never wait on each other in a cycle), the checks as two
//! parallel arrays, and the final state of every written key (an `INSERT ... ON CONFLICT` may
//! not touch one row twice, so later ops on a key replace earlier ones here).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::{Result, StoreError, WriteBatch};

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CommitPlan {
    /// Advisory lock ids of every checked or written key, ascending, without duplicates.
    pub locks: Vec<i64>,
    pub check_keys: Vec<Vec<u8>>,
    /// `None`: the key must be absent.
    pub check_versions: Vec<Option<i64>>,
    pub put_keys: Vec<Vec<u8>>,
    pub put_values: Vec<Vec<u8>>,
    pub delete_keys: Vec<Vec<u8>>,
}

impl CommitPlan {
    pub fn new(batch: &WriteBatch) -> Result<Self> {
        let mut locks = BTreeSet::new();
        let mut plan = CommitPlan::default();
        for (key, want) in &batch.checks {
            locks.insert(lock_id(key));
            plan.check_keys.push(key.clone());
            plan.check_versions.push(match want {
                Some(v) => Some(to_i64(*v)?),
                None => None,
            });
        }
        let mut last: BTreeMap<&[u8], Option<&Bytes>> = BTreeMap::new();
        for (key, value) in &batch.ops {
            locks.insert(lock_id(key));
            last.insert(key, value.as_ref());
        }
        for (key, value) in last {
            match value {
                Some(v) => {
                    plan.put_keys.push(key.to_vec());
                    plan.put_values.push(v.to_vec());
                }
                None => plan.delete_keys.push(key.to_vec()),
            }
        }
        plan.locks = locks.into_iter().collect();
        Ok(plan)
    }
}

/// The advisory lock guarding `key` on every node: FNV-1a (64 bit), a fixed function so nodes of
/// different builds agree. Two keys sharing an id only serialise their commits, never corrupt.
pub(crate) fn lock_id(key: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

pub(crate) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Internal("version out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_ops_on_a_key_win_and_locks_are_sorted_and_unique() {
        let mut b = WriteBatch::new();
        b.check(b"c".to_vec(), None);
        b.put(b"a".to_vec(), b"1".to_vec())
            .delete(b"b".to_vec())
            .put(b"b".to_vec(), b"2".to_vec())
            .put(b"c".to_vec(), b"3".to_vec())
            .delete(b"a".to_vec());
        b.checks.push((b"a".to_vec(), Some(7)));
        let p = CommitPlan::new(&b).unwrap();
        assert_eq!(p.put_keys, vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(p.put_values, vec![b"2".to_vec(), b"3".to_vec()]);
        assert_eq!(p.delete_keys, vec![b"a".to_vec()]);
        assert_eq!(p.check_keys, vec![b"c".to_vec(), b"a".to_vec()]);
        assert_eq!(p.check_versions, vec![None, Some(7)]);
        let mut want = vec![lock_id(b"a"), lock_id(b"b"), lock_id(b"c")];
        want.sort_unstable();
        assert_eq!(p.locks, want);
    }

    #[test]
    fn a_check_only_batch_writes_nothing_and_huge_versions_are_refused() {
        let mut b = WriteBatch::new();
        b.checks.push((b"k".to_vec(), Some(3)));
        let p = CommitPlan::new(&b).unwrap();
        assert!(p.put_keys.is_empty() && p.delete_keys.is_empty());
        assert_eq!(p.locks, vec![lock_id(b"k")]);
        b.checks.push((b"k".to_vec(), Some(u64::MAX)));
        assert!(matches!(CommitPlan::new(&b), Err(StoreError::Internal(_))));
    }

    #[test]
    fn lock_ids_are_the_published_fnv1a_values() {
        // FNV-1a test vectors: the ids must never change between builds.
        assert_eq!(lock_id(b"") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(lock_id(b"a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(lock_id(b"foobar") as u64, 0x8594_4171_f739_67e8);
    }
}
