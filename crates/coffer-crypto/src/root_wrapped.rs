//! Values sealed directly under the root key, and how they are rewrapped when the root key
//! rotates.
//!
//! Anything stored sealed under the root key (rather than under a KMS key) must be found by
//! `coffer operator rotate-root`, which rewraps all of them and the sealed root key itself in
//! one atomic store batch. Two rules make that work:
//! 1. Seal with [`seal`] (or your own format, as KMS key material does) and open with [`open`];
//!    the AAD binds the value to its store key, so a sealed value moved to another record fails.
//! 2. Register the store prefix and a rewrap function in the server's list
//!    (`coffer_server::root_wrapped::RECORDS`); the function gets each record's key and value
//!    under that prefix and returns the rewrapped value (or `None` for records it does not own).
//!    [`rewrap`] is that function's core for values sealed with [`seal`].
//!
//! Sealed text: URL-safe base64 (no padding) of `nonce || ciphertext || tag` (see the crate doc),
//! AAD `coffer-root-sealed-v1\0` + store key + `\0` + purpose.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::{AeadKey, CryptoError};

fn aad(store_key: &[u8], purpose: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + store_key.len() + purpose.len());
    aad.extend_from_slice(b"coffer-root-sealed-v1\0");
    aad.extend_from_slice(store_key);
    aad.push(0);
    aad.extend_from_slice(purpose.as_bytes());
    aad
}

/// Seals `plaintext` under the root key for the record at `store_key`; `purpose` tells values
/// of one record apart (e.g. `"secret-access-key"`).
pub fn seal(
    root: &AeadKey,
    store_key: &[u8],
    purpose: &str,
    plaintext: &[u8],
) -> Result<String, CryptoError> {
    let sealed = root.seal(plaintext, &aad(store_key, purpose))?;
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// Opens what [`seal`] produced for the same store key and purpose.
pub fn open(
    root: &AeadKey,
    store_key: &[u8],
    purpose: &str,
    sealed: &str,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| CryptoError::Open)?;
    root.open(&bytes, &aad(store_key, purpose))
}

/// Opens `sealed` under `old` and seals it again under `new` (same store key and purpose).
pub fn rewrap(
    old: &AeadKey,
    new: &AeadKey,
    store_key: &[u8],
    purpose: &str,
    sealed: &str,
) -> Result<String, CryptoError> {
    let plain = open(old, store_key, purpose, sealed)?;
    seal(new, store_key, purpose, &plain)
}

/// The root key sealed under an unseal key (the Shamir-shared key, or an auto-unseal
/// key-encryption key): what the seal record stores.
pub fn wrap_root(unseal_key: &[u8; 32], root: &crate::RootKey) -> Result<Vec<u8>, CryptoError> {
    crate::seal(unseal_key, root.as_bytes(), ROOT_AAD)
}

/// Opens [`wrap_root`]'s output; failure means the unseal key is not the right one (wrong
/// shares, wrong auto-unseal key) or the record was altered.
pub fn unwrap_root(unseal_key: &[u8; 32], wrapped: &[u8]) -> Result<crate::RootKey, CryptoError> {
    let raw = crate::open(unseal_key, wrapped, ROOT_AAD)?;
    let bytes: [u8; 32] = raw.as_slice().try_into().map_err(|_| CryptoError::Open)?;
    Ok(crate::RootKey::from_bytes(bytes))
}

const ROOT_AAD: &[u8] = b"coffer-root-key-v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_store_key_and_purpose_and_rewrappable() {
        let (a, b) = (AeadKey::new(&[1; 32]), AeadKey::new(&[2; 32]));
        let s = seal(&a, b"iam/1/accesskey/X", "secret", b"v").unwrap();
        assert_eq!(
            &*open(&a, b"iam/1/accesskey/X", "secret", &s).unwrap(),
            b"v"
        );
        assert!(open(&a, b"iam/1/accesskey/Y", "secret", &s).is_err());
        assert!(open(&a, b"iam/1/accesskey/X", "other", &s).is_err());
        assert!(open(&b, b"iam/1/accesskey/X", "secret", &s).is_err());
        let r = rewrap(&a, &b, b"iam/1/accesskey/X", "secret", &s).unwrap();
        assert_eq!(
            &*open(&b, b"iam/1/accesskey/X", "secret", &r).unwrap(),
            b"v"
        );
        assert!(open(&a, b"iam/1/accesskey/X", "secret", &r).is_err());
    }

    #[test]
    fn root_wraps_under_the_unseal_key_only() {
        let root = crate::RootKey::generate();
        let w = wrap_root(&[3; 32], &root).unwrap();
        assert_eq!(
            unwrap_root(&[3; 32], &w).unwrap().as_bytes(),
            root.as_bytes()
        );
        assert!(unwrap_root(&[4; 32], &w).is_err());
    }
}
