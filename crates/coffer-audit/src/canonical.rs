//! Canonical JSON: object keys sorted (by bytes) at every level, no whitespace, strings and numbers
//! as serde_json writes them. Hashes and signatures are taken over this form, so a record can be
//! re-read and re-written by any JSON tool (a SIEM, `jq -S`, an export) and still verify, and the
//! result does not depend on whether some dependency turns on serde_json's `preserve_order`.

use serde_json::Value;

/// Appends the canonical form of `v` to `out`.
pub fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's default map is sorted already; sort only if it is not (with
            // `preserve_order` turned on by some dependency).
            if map.keys().is_sorted() {
                for (i, (k, v)) in map.iter().enumerate() {
                    member(i, k, v, out);
                }
            } else {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_unstable();
                for (i, k) in keys.into_iter().enumerate() {
                    member(i, k, &map[k], out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(s, out),
        // Null, booleans and numbers have one serde_json spelling.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn member(i: usize, k: &str, v: &Value, out: &mut Vec<u8>) {
    if i > 0 {
        out.push(b',');
    }
    write_str(k, out);
    out.push(b':');
    write(v, out);
}

/// serde_json's spelling of a string, through the one fast escaper (most record strings have
/// nothing to escape and are copied as they are).
fn write_str(s: &str, out: &mut Vec<u8>) {
    coffer_service::jsonout::write_str(out, &[s]);
}

/// Writes one canonical object member by member, for records built straight from typed fields
/// (no `Value` tree on the request path). Callers give members in ascending key order; debug
/// builds check it.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    #[cfg(debug_assertions)]
    last: String,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self {
            out,
            first: true,
            #[cfg(debug_assertions)]
            last: String::new(),
        }
    }

    /// Starts member `k`; its value is written next, into [`Object::out`].
    pub fn key(&mut self, k: &str) -> &mut Vec<u8> {
        #[cfg(debug_assertions)]
        {
            assert!(
                self.first || self.last.as_str() < k,
                "canonical members out of order: {k} after {}",
                self.last
            );
            self.last = k.to_string();
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        // Member names are identifiers written in this crate: nothing to escape.
        debug_assert!(k.bytes().all(|b| b.is_ascii_alphanumeric()), "{k}");
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let out = self.key(k);
        write_str(v, out);
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k)
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn value(&mut self, k: &str, v: &Value) -> &mut Self {
        let out = self.key(k);
        write(v, out);
        self
    }

    /// Member `k` holding the object `f` writes.
    pub fn object(&mut self, k: &str, f: impl FnOnce(&mut Object<'_>)) -> &mut Self {
        let out = self.key(k);
        let mut inner = Object::new(out);
        f(&mut inner);
        inner.end();
        self
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// The canonical form of `v`.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_at_every_level_and_round_trips() {
        let v = json!({"b": 1, "a": {"z": [true, null, "x\"y"], "c": -2}, "é": "ü\n"});
        let c = to_vec(&v);
        assert_eq!(
            String::from_utf8(c.clone()).unwrap(),
            r#"{"a":{"c":-2,"z":[true,null,"x\"y"]},"b":1,"é":"ü\n"}"#
        );
        // Re-reading and re-writing is the identity.
        let again: Value = serde_json::from_slice(&c).unwrap();
        assert_eq!(to_vec(&again), c);
    }
}
