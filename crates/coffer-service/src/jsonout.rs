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

#[cfg(test)]
mod tests {
    use super::*;

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
