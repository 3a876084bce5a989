//! The hash chain: every record carries its sequence number, the SHA-256 of the record before it
//! and its own hash, so editing, deleting, reordering or inserting a record breaks the chain at
//! that record.
//!
//! hash(n) = SHA-256("coffer-audit-chain-v1" || n as 8 bytes big-endian || hash(n-1) ||
//! canonical(record n)); hash(0), the predecessor of the first record, is 32 zero bytes.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical;

pub type Hash = [u8; 32];
pub const GENESIS: Hash = [0u8; 32];
const DOMAIN: &[u8] = b"coffer-audit-chain-v1";

/// The hash of record `seq` whose canonical bytes are `canonical_record`.
pub fn link_hash(seq: u64, prev: &Hash, canonical_record: &[u8]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(DOMAIN);
    ctx.update(&seq.to_be_bytes());
    ctx.update(prev);
    ctx.update(canonical_record);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// One chained record as stored (`audit/r/...`) and as one line of a JSON Lines export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChainEntry {
    pub seq: u64,
    #[serde(with = "hex32")]
    pub prev: Hash,
    #[serde(with = "hex32")]
    pub hash: Hash,
    /// The CloudTrail record.
    pub record: Value,
}

impl ChainEntry {
    /// Chains `record` (given in canonical form) after `prev` as number `seq`, and returns the
    /// stored bytes (the record embedded verbatim) and the new hash.
    pub fn encode(seq: u64, prev: &Hash, canonical_record: &[u8]) -> (Vec<u8>, Hash) {
        let mut out = Vec::with_capacity(canonical_record.len() + 180);
        let hash = Self::encode_into(seq, prev, canonical_record, &mut out);
        (out, hash)
    }

    /// [`ChainEntry::encode`], appending to `out`.
    pub fn encode_into(seq: u64, prev: &Hash, canonical_record: &[u8], out: &mut Vec<u8>) -> Hash {
        let hash = link_hash(seq, prev, canonical_record);
        out.extend_from_slice(b"{\"seq\":");
        // The writer thread runs this per record: no allocation.
        let mut hex = [0u8; 64];
        std::io::Write::write_fmt(out, format_args!("{seq}")).expect("writing to a Vec");
        out.extend_from_slice(b",\"prev\":\"");
        out.extend_from_slice(hex32::encode(prev, &mut hex));
        out.extend_from_slice(b"\",\"hash\":\"");
        out.extend_from_slice(hex32::encode(&hash, &mut hex));
        out.extend_from_slice(b"\",\"record\":");
        out.extend_from_slice(canonical_record);
        out.push(b'}');
        hash
    }

    /// The hash this entry's content gives (equal to `hash` unless it was tampered with).
    pub fn computed_hash(&self) -> Hash {
        link_hash(self.seq, &self.prev, &canonical::to_vec(&self.record))
    }
}

/// The chain head: the last record's number and hash (`audit/head`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    #[serde(with = "hex32")]
    pub hash: Hash,
}

impl Head {
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS,
    };
}

/// Serde for 32-byte hashes as lowercase hex.
pub mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Lowercase hex of `h` in `buf`.
    pub fn encode<'a>(h: &[u8; 32], buf: &'a mut [u8; 64]) -> &'a [u8] {
        hex::encode_to_slice(h, buf).expect("64 bytes hold 32 in hex");
        buf
    }

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        s.serialize_str(std::str::from_utf8(encode(h, &mut buf)).expect("hex is ASCII"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encoded_entry_parses_back_and_verifies() {
        let rec = json!({"eventName": "GetSecretValue", "readOnly": true});
        let c = canonical::to_vec(&rec);
        let (bytes, hash) = ChainEntry::encode(7, &GENESIS, &c);
        let e: ChainEntry = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(e.seq, 7);
        assert_eq!(e.hash, hash);
        assert_eq!(e.computed_hash(), hash);
        let mut edited = e.clone();
        edited.record["readOnly"] = json!(false);
        assert_ne!(edited.computed_hash(), hash);
        // The number and the predecessor are bound too.
        assert_ne!(link_hash(8, &GENESIS, &c), hash);
        assert_ne!(link_hash(7, &[1u8; 32], &c), hash);
    }
}
