//! The list of store records sealed directly under the root key, for `rotate-root`.
//!
//! Everything the root key seals (KMS key material, IAM secret access keys, the audit signing
//! key, ...) must be listed here with a rewrap function, or a root rotation would leave it
//! sealed under a key that no longer exists. To add one: seal with
//! `coffer_crypto::root_wrapped::seal` (bound to the record's store key), and add a
//! [`RootSealedRecords`] entry whose `rewrap` opens the record's sealed field(s) under `old` and
//! seals them under `new` (`coffer_crypto::root_wrapped::rewrap` does one field). `rewrap` gets
//! every record under `prefix` and returns `None` for records it does not own; `holds` says the
//! same from the store key alone.
//!
//! The list also tells [`crate::root_guard`] which writes seal under the root key: every batch
//! that puts such a record is checked against the seal record (so it cannot land under a root
//! key that another node has rotated away).

use coffer_crypto::{AeadKey, RootKey};
use coffer_store::{Store, WriteBatch};

use crate::seal::SealError;

/// Rewraps one record: `(store key, value, old root, new root)` → the new value, or `None` when
/// the record holds nothing root-sealed. An error aborts the whole rotation (nothing changes).
pub(crate) type Rewrap = fn(&[u8], &[u8], &AeadKey, &AeadKey) -> Result<Option<Vec<u8>>, String>;

pub(crate) struct RootSealedRecords {
    pub prefix: &'static str,
    pub rewrap: Rewrap,
    /// Whether the record at this key (under `prefix`) holds something root-sealed: exactly
    /// the records `rewrap` does not answer `None` for.
    pub holds: fn(&[u8]) -> bool,
}

/// Every prefix whose records hold values sealed under the root key.
pub(crate) const RECORDS: &[RootSealedRecords] = &[
    RootSealedRecords {
        prefix: "kms/key/",
        rewrap: kms_key,
        holds: |_| true,
    },
    RootSealedRecords {
        prefix: "iam/",
        rewrap: iam_access_key,
        holds: coffer_iam::is_access_key_record,
    },
    // The audit trail's Ed25519 digest signing key (one record; `audit/` itself holds the
    // trail, which is not sealed).
    RootSealedRecords {
        prefix: "audit/signing-key",
        rewrap: audit_signing_key,
        holds: |key| key == coffer_audit::keys::SIGNING_KEY,
    },
];

/// Whether the record at `key` holds a value sealed under the root key.
pub(crate) fn is_root_sealed(key: &[u8]) -> bool {
    RECORDS
        .iter()
        .any(|r| key.starts_with(r.prefix.as_bytes()) && (r.holds)(key))
}

/// `iam/{account}/accesskey/{id}` (root's and IAM users' keys), with IAM's own sealing helpers;
/// IAM's other records hold nothing root-sealed. STS session tokens are sealed under a key
/// derived from the root key and are not stored: a rotation ends every session.
fn iam_access_key(
    key: &[u8],
    value: &[u8],
    old: &AeadKey,
    new: &AeadKey,
) -> Result<Option<Vec<u8>>, String> {
    coffer_iam::rewrap_access_key_record(key, value, old, new).map_err(|e| format!("{e:?}"))
}

fn audit_signing_key(
    key: &[u8],
    value: &[u8],
    old: &AeadKey,
    new: &AeadKey,
) -> Result<Option<Vec<u8>>, String> {
    if key != coffer_audit::keys::SIGNING_KEY {
        return Ok(None);
    }
    coffer_audit::log::rewrap_signing_key(value, old, new).map(Some)
}

fn kms_key(
    _key: &[u8],
    value: &[u8],
    old: &AeadKey,
    new: &AeadKey,
) -> Result<Option<Vec<u8>>, String> {
    coffer_kms::rewrap_key_record(value, old, new)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Adds to `batch` every root-sealed record rewrapped from `old` to `new`, each checked at the
/// version read; returns how many.
pub(crate) async fn rewrap_all(
    store: &dyn Store,
    old: &RootKey,
    new: &RootKey,
    batch: &mut WriteBatch,
) -> Result<usize, SealError> {
    let (old, new) = (AeadKey::new(old.as_bytes()), AeadKey::new(new.as_bytes()));
    let mut n = 0;
    for records in RECORDS {
        let start = records.prefix.as_bytes();
        let end = coffer_store::prefix_end(start);
        for (key, entry) in store.scan(start, &end, usize::MAX).await? {
            let rewrapped = (records.rewrap)(&key, &entry.value, &old, &new).map_err(|e| {
                SealError::Internal(format!(
                    "cannot rewrap {}: {e}; nothing was changed",
                    String::from_utf8_lossy(&key)
                ))
            })?;
            if let Some(v) = rewrapped {
                batch.check(key.clone(), Some(&entry)).put(key, v);
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_sealed_records_are_recognised_by_key() {
        for key in [
            &b"kms/key/000000000000/us-east-1/1234abcd-12ab-34cd-56ef-1234567890ab"[..],
            b"iam/000000000000/accesskey/AKIAIOSFODNN7EXAMPLE",
            b"audit/signing-key",
        ] {
            assert!(is_root_sealed(key), "{}", String::from_utf8_lossy(key));
        }
        for key in [
            &b"kms/alias/000000000000/us-east-1/alias/x"[..],
            b"iam/000000000000/user/alice",
            b"iam/000000000000/generation",
            b"audit/head",
            b"audit/r/0000000000000001",
            b"meta/seal",
            b"secret/x",
        ] {
            assert!(!is_root_sealed(key), "{}", String::from_utf8_lossy(key));
        }
    }
}
