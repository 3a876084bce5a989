//! Exports for shipping to a SIEM, both verifiable offline with the digests they carry:
//!
//! - JSON Lines: a header line `{"cofferAuditExport": {...}}` (public key, anchor, head), one
//!   line per record `{"seq","prev","hash","record"}` oldest first, one `{"digest": {...}}` line
//!   per digest.
//! - CloudTrail's log file shape `{"Records": [...]}`: each record as CloudTrail writes it plus a
//!   `cofferChain` member (`seq`, `prev`, `hash`); digests under `cofferDigests`, the header under
//!   `cofferAuditExport`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chain::{ChainEntry, Head};
use crate::digest::PublicKeyInfo;
use crate::verify::{Anchor, Trail};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub version: u32,
    pub public_key: Option<PublicKeyInfo>,
    pub anchor: Option<Anchor>,
    pub head: Option<Head>,
}

fn header(trail: &Trail, key: Option<&PublicKeyInfo>) -> Header {
    Header {
        version: 1,
        public_key: key.cloned(),
        anchor: trail.anchor,
        head: trail.head,
    }
}

pub fn to_jsonl(trail: &Trail, key: Option<&PublicKeyInfo>) -> String {
    let mut out = String::new();
    let line = |v: &Value| serde_json::to_string(v).unwrap_or_default() + "\n";
    out += &line(&json!({"cofferAuditExport": header(trail, key)}));
    for (_, e) in &trail.entries {
        out += &line(&serde_json::to_value(e).unwrap_or_default());
    }
    for d in &trail.digests {
        out += &line(&json!({"digest": d}));
    }
    out
}

pub fn to_cloudtrail(trail: &Trail, key: Option<&PublicKeyInfo>) -> String {
    let records: Vec<Value> = trail
        .entries
        .iter()
        .map(|(_, e)| {
            let mut r = e.record.clone();
            if let Some(o) = r.as_object_mut() {
                o.insert(
                    "cofferChain".into(),
                    json!({"seq": e.seq, "prev": hex::encode(e.prev), "hash": hex::encode(e.hash)}),
                );
            }
            r
        })
        .collect();
    let doc = json!({
        "Records": records,
        "cofferDigests": trail.digests,
        "cofferAuditExport": header(trail, key),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

#[derive(Debug, thiserror::Error)]
#[error("not a Coffer audit export: {0}")]
pub struct ParseError(String);

/// Reads either export form back into a trail (records in file order) and the public key its
/// header names (which a careful verifier pins instead of trusting).
pub fn parse(text: &str) -> Result<(Trail, Option<PublicKeyInfo>), ParseError> {
    if let Ok(doc) = serde_json::from_str::<Value>(text)
        && doc.get("Records").is_some()
    {
        return parse_cloudtrail(doc);
    }
    let mut trail = Trail::default();
    let mut key = None;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |e: serde_json::Error| ParseError(format!("line {}: {e}", n + 1));
        let v: Value = serde_json::from_str(line).map_err(bad)?;
        if let Some(h) = v.get("cofferAuditExport") {
            let h: Header = serde_json::from_value(h.clone()).map_err(bad)?;
            trail.anchor = h.anchor;
            trail.head = h.head;
            key = h.public_key;
        } else if let Some(d) = v.get("digest") {
            trail
                .digests
                .push(serde_json::from_value(d.clone()).map_err(bad)?);
        } else {
            let e: ChainEntry = serde_json::from_value(v).map_err(bad)?;
            trail.entries.push((None, e));
        }
    }
    Ok((trail, key))
}

fn parse_cloudtrail(mut doc: Value) -> Result<(Trail, Option<PublicKeyInfo>), ParseError> {
    let mut trail = Trail::default();
    let mut key = None;
    if let Some(h) = doc.get("cofferAuditExport") {
        let h: Header = serde_json::from_value(h.clone()).map_err(|e| ParseError(e.to_string()))?;
        trail.anchor = h.anchor;
        trail.head = h.head;
        key = h.public_key;
    }
    if let Some(ds) = doc.get("cofferDigests") {
        trail.digests =
            serde_json::from_value(ds.clone()).map_err(|e| ParseError(e.to_string()))?;
    }
    let records = doc["Records"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    for (i, mut r) in records.into_iter().enumerate() {
        let chain = r
            .as_object_mut()
            .and_then(|o| o.remove("cofferChain"))
            .ok_or_else(|| ParseError(format!("record {} has no cofferChain", i + 1)))?;
        let mut entry = chain;
        entry["record"] = r;
        let e: ChainEntry = serde_json::from_value(entry)
            .map_err(|e| ParseError(format!("record {}: {e}", i + 1)))?;
        trail.entries.push((None, e));
    }
    Ok((trail, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical;
    use crate::chain::GENESIS;
    use crate::digest::Signer;
    use crate::verify::verify;

    #[test]
    fn both_forms_round_trip_and_verify() {
        let (s, _) = Signer::generate().unwrap();
        let mut t = Trail::default();
        let mut prev = GENESIS;
        for seq in 1..=3u64 {
            let rec = json!({"eventName": "GetSecretValue", "n": seq, "z": {"b": 1, "a": 2}});
            let (bytes, h) = ChainEntry::encode(seq, &prev, &canonical::to_vec(&rec));
            prev = h;
            t.entries
                .push((None, serde_json::from_slice(&bytes).unwrap()));
        }
        t.head = Some(Head { seq: 3, hash: prev });
        let key = PublicKeyInfo::of(s.public_key());
        for text in [to_jsonl(&t, Some(&key)), to_cloudtrail(&t, Some(&key))] {
            let (back, k) = parse(&text).unwrap();
            assert_eq!(k.as_ref(), Some(&key));
            assert_eq!(back.entries.len(), 3);
            assert!(verify(&back, s.public_key()).ok());
        }
        let ct: Value = serde_json::from_str(&to_cloudtrail(&t, Some(&key))).unwrap();
        assert_eq!(ct["Records"][0]["eventName"], "GetSecretValue");
    }
}
