//! Pieces for writing JSON answers straight from borrowed record fields (no `serde_json::Value`
//! tree, no per-field `String`s), giving the same bytes as the map form.
//!
//! serde_json's `Map` keeps keys sorted, so a `#[derive(Serialize)]` struct whose fields are
//! declared in that order, built from these pieces, serialises exactly as the map did.

use std::fmt;

use serde::{Serialize, Serializer};

/// AWS's JSON timestamp (epoch seconds with millisecond precision) from epoch milliseconds; it
/// serialises as `serde_json::json!(ms as f64 / 1000.0)` does.
pub fn epoch_secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Serialises a [`fmt::Display`] value as a JSON string, escaped while it is written: lets an ARN
/// be formatted straight into the response instead of into a `String` first.
pub struct DisplayStr<T>(pub T);

impl<T: fmt::Display> Serialize for DisplayStr<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Appends the concatenation of `parts` as one JSON string literal, byte for byte what
/// serde_json writes for it. Parts with nothing to escape (names, ARNs, most values) are copied
/// as they are: serde_json's escaper looks every byte up one at a time, which made it the largest
/// cost of writing a listing page.
pub fn write_str(buf: &mut Vec<u8>, parts: &[&str]) {
    if parts.iter().all(|p| !needs_escape(p.as_bytes())) {
        buf.reserve(parts.iter().map(|p| p.len()).sum::<usize>() + 2);
        buf.push(b'"');
        for p in parts {
            buf.extend_from_slice(p.as_bytes());
        }
        buf.push(b'"');
    } else if let [one] = parts {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, one);
    } else {
        let _ = serde_json::to_writer(&mut *buf, &parts.concat());
    }
}

/// Whether JSON needs an escape anywhere in `bytes` (a quote, a backslash or a control
/// character). Checked 16 bytes at a time without a branch per byte, so the loop vectorises;
/// the tail (most names and ids are shorter than 16 bytes) is padded to a whole chunk with a
/// byte that needs no escape rather than checked a byte at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    let chunk_flags = |chunk: &[u8; 16]| {
        chunk.iter().fold(false, |acc, &b| {
            acc | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    };
    let (chunks, tail) = bytes.as_chunks::<16>();
    if chunks.iter().any(chunk_flags) {
        return true;
    }
    let mut last = [b'a'; 16];
    last[..tail.len()].copy_from_slice(tail);
    chunk_flags(&last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_str_matches_serde_json() {
        let samples = [
            "",
            "plain",
            "arn:aws:ssm:us-east-1:000000000000:parameter/a/b",
            "sixteen bytes ok",
            "a \"quoted\" word and a longer tail past sixteen bytes",
            "back\\slash",
            "ctl \u{1} \n \t \u{1f}",
            "unicode \u{e9} \u{2603} \u{10ffff} passes as is",
            "0123456789abcdef0123456789abcde\"",
        ];
        for a in samples {
            for b in ["", "x", "\"", "/tail"] {
                let mut out = Vec::new();
                write_str(&mut out, &[a, b]);
                let want = serde_json::to_vec(&format!("{a}{b}")).unwrap();
                assert_eq!(out, want, "{a:?} + {b:?}");
            }
        }
    }

    #[test]
    fn same_bytes_as_value_forms() {
        for ms in [0i64, 999, 1_700_000_000_100, 1_700_000_000_123, -5] {
            assert_eq!(
                serde_json::to_vec(&epoch_secs(ms)).unwrap(),
                serde_json::to_vec(&serde_json::json!(ms as f64 / 1000.0)).unwrap()
            );
        }
        let text = "arn:aws:ssm:r:1:parameter/a \"q\" \\ \u{e9}\n\u{1}";
        assert_eq!(
            serde_json::to_vec(&DisplayStr(format_args!("{text}"))).unwrap(),
            serde_json::to_vec(&serde_json::Value::String(text.to_owned())).unwrap()
        );
    }
}
