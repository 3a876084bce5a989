//! Digests: signed statements "the chain up to record N ends in hash H", made at intervals, on
//! shutdown and at every prune point. Each digest also carries the hash of the digest before it,
//! so digests form a chain of their own and one cannot be removed unnoticed. Signed with Ed25519
//! over the canonical JSON of the digest without its `signature`.

use aws_lc_rs::digest as sha;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::canonical;
use crate::chain::{Hash, hex32};

pub const ALGORITHM: &str = "Ed25519";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    /// 1, 2, 3, ... in the order digests were made.
    pub number: u64,
    /// First record this digest is the first to cover (the previous digest's end + 1).
    pub start_sequence: u64,
    /// Last record covered; 0 when the chain was still empty.
    pub end_sequence: u64,
    #[serde(with = "hex32")]
    pub end_hash: Hash,
    /// SHA-256 of the previous digest (its canonical JSON, signature included); zeros for the
    /// first.
    #[serde(with = "hex32")]
    pub previous_digest_hash: Hash,
    pub digest_time: String,
    /// `interval`, `shutdown` or `prune`.
    pub reason: String,
    pub signature_algorithm: String,
    /// Hex SHA-256 of the raw 32-byte public key.
    pub public_key_fingerprint: String,
    /// Base64 Ed25519 signature.
    #[serde(default)]
    pub signature: String,
}

impl Digest {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("signature");
        }
        canonical::to_vec(&v)
    }

    /// The hash the next digest chains to.
    pub fn hash(&self) -> Hash {
        let v = serde_json::to_value(self).unwrap_or_default();
        let mut out = [0u8; 32];
        out.copy_from_slice(sha::digest(&sha::SHA256, &canonical::to_vec(&v)).as_ref());
        out
    }

    /// Whether `public_key` (raw 32 bytes) made this digest's signature.
    pub fn verify(&self, public_key: &[u8]) -> bool {
        let Ok(sig) = B64.decode(&self.signature) else {
            return false;
        };
        self.signature_algorithm == ALGORITHM
            && UnparsedPublicKey::new(&ED25519, public_key)
                .verify(&self.signed_bytes(), &sig)
                .is_ok()
    }
}

/// Hex SHA-256 of a raw public key.
pub fn fingerprint(public_key: &[u8]) -> String {
    hex::encode(sha::digest(&sha::SHA256, public_key))
}

/// The digest signing key (the private half never leaves memory unsealed).
pub struct Signer {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", fingerprint(self.public_key()))
    }
}

impl Signer {
    /// A new key; returns it with its PKCS#8 encoding (to be sealed and stored).
    pub fn generate() -> Result<(Signer, zeroize::Zeroizing<Vec<u8>>), crate::AuditError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| crate::AuditError::Internal("Ed25519 key generation failed".into()))?;
        let pkcs8 = zeroize::Zeroizing::new(doc.as_ref().to_vec());
        Ok((Self::from_pkcs8(&pkcs8)?, pkcs8))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Signer, crate::AuditError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| crate::AuditError::Internal("unreadable audit signing key".into()))?;
        Ok(Signer { pair })
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// Fills in the algorithm, fingerprint and signature.
    pub fn sign(&self, mut d: Digest) -> Digest {
        d.signature_algorithm = ALGORITHM.into();
        d.public_key_fingerprint = fingerprint(self.public_key());
        d.signature.clear();
        let sig = self.pair.sign(&d.signed_bytes());
        d.signature = B64.encode(sig.as_ref());
        d
    }
}

/// The exportable public key (`coffer audit public-key`, export headers).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyInfo {
    pub algorithm: String,
    /// Base64 of the raw 32-byte key.
    pub public_key: String,
    pub fingerprint: String,
}

impl PublicKeyInfo {
    pub fn of(raw: &[u8]) -> Self {
        Self {
            algorithm: ALGORITHM.into(),
            public_key: B64.encode(raw),
            fingerprint: fingerprint(raw),
        }
    }
    pub fn raw(&self) -> Option<Vec<u8>> {
        B64.decode(&self.public_key).ok().filter(|k| k.len() == 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_tamper() {
        let (s, pkcs8) = Signer::generate().unwrap();
        let d = s.sign(Digest {
            number: 1,
            start_sequence: 1,
            end_sequence: 5,
            end_hash: [7; 32],
            previous_digest_hash: [0; 32],
            digest_time: "2026-01-01T00:00:00Z".into(),
            reason: "interval".into(),
            signature_algorithm: String::new(),
            public_key_fingerprint: String::new(),
            signature: String::new(),
        });
        assert!(d.verify(s.public_key()));
        let again = Signer::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(again.public_key(), s.public_key());
        let mut t = d.clone();
        t.end_sequence = 6;
        assert!(!t.verify(s.public_key()));
        let (other, _) = Signer::generate().unwrap();
        assert!(!d.verify(other.public_key()));
        let info = PublicKeyInfo::of(s.public_key());
        assert_eq!(info.raw().unwrap(), s.public_key());
        // Round trip through JSON keeps the signature valid.
        let back: Digest = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert!(back.verify(s.public_key()));
        assert_eq!(back.hash(), d.hash());
    }
}
