//! AWS JSON 1.1 bodies: decoding with AWS-shaped errors that never echo input values, and serde
//! helpers for AWS's timestamp (epoch seconds) and blob (base64) encodings.

use std::fmt;

use serde::de::DeserializeOwned;

use crate::error::ErrorEnvelope;

/// Content type of AWS JSON 1.1 requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A request body that could not be read as the operation's input.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Malformed JSON or a member of the wrong type; the text never contains input values.
    #[error("{0}")]
    Serialization(String),
}

impl fmt::Debug for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Serialization(m) => write!(f, "Serialization({m:?})"),
        }
    }
}

impl WireError {
    /// The AWS error this maps to (`SerializationException`, HTTP 400).
    pub fn envelope(&self) -> ErrorEnvelope {
        match self {
            WireError::Serialization(m) => ErrorEnvelope::serialization(m.clone()),
        }
    }
}

/// Decodes an AWS JSON 1.1 request body. An empty body counts as `{}`.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => return Err(describe(e.inner(), Some(e.path()))),
    };
    de.end().map_err(|e| describe(&e, None))?;
    Ok(value)
}

/// Builds AWS's ValidationException message from already-rendered violations, e.g.
/// `Value 'x' at 'name' failed to satisfy constraint: ...` (see [`violation`]).
pub fn validation_message(violations: &[String]) -> String {
    match violations {
        [one] => format!("1 validation error detected: {one}"),
        many => format!(
            "{} validation errors detected: {}",
            many.len(),
            many.join("; ")
        ),
    }
}

/// One violation in AWS's wording. `rendered_value` is what AWS prints after `Value`:
/// `'text'` for an ordinary member, `null` for a missing one; pass `None` for sensitive members so
/// their value is never shown.
pub fn violation(rendered_value: Option<&str>, member_path: &str, constraint: &str) -> String {
    match rendered_value {
        Some(v) => {
            format!("Value {v} at '{member_path}' failed to satisfy constraint: {constraint}")
        }
        None => format!("Value at '{member_path}' failed to satisfy constraint: {constraint}"),
    }
}

// Messages of our own serde helpers; they carry no input and may be shown verbatim.
const BASE64_ERROR: &str = "Invalid base64 in blob member";
const TIMESTAMP_RANGE_ERROR: &str = "Timestamp out of range";
const OWN_MESSAGES: &[&str] = &[BASE64_ERROR, TIMESTAMP_RANGE_ERROR];

/// What serde's `Unexpected` prints first; everything after it may be input, so only the kind is kept.
const VALUE_KINDS: &[&str] = &[
    "boolean",
    "integer",
    "floating point",
    "string",
    "null",
    "sequence",
    "map",
    "unit value",
    "byte array",
    "character",
    "Option value",
    "newtype struct",
    "enum",
    "unit variant",
    "newtype variant",
    "tuple variant",
    "struct variant",
];

/// Maps a serde_json error to a message built only from its category, position and the
/// type-derived parts of serde's text (never the offending value).
fn describe(err: &serde_json::Error, path: Option<&serde_path_to_error::Path>) -> WireError {
    use serde_json::error::Category;
    let pos = format!("(line {}, column {})", err.line(), err.column());
    let msg = match err.classify() {
        Category::Eof => format!("Unexpected end of JSON input {pos}"),
        Category::Syntax => format!("Malformed JSON {pos}"),
        Category::Io => "Unable to read request body".to_owned(),
        Category::Data => {
            let (detail, unknown_member) = data_detail(&err.to_string());
            // For an unknown member the last path segment is the input's own key: leave it out.
            let at = path
                .map(|p| render_path(p, unknown_member))
                .filter(|p| !p.is_empty())
                .map(|p| format!(" at '{p}'"))
                .unwrap_or_default();
            format!("{detail}{at} {pos}")
        }
    };
    WireError::Serialization(msg)
}

/// The safe description of a data error, and whether it is about an unknown member.
fn data_detail(full: &str) -> (String, bool) {
    let unknown_member = full.starts_with("unknown field ");
    (data_text(full), unknown_member)
}

fn data_text(full: &str) -> String {
    // serde_json appends " at line L column C"; drop it before matching.
    let text = match full.rfind(" at line ") {
        Some(i) => &full[..i],
        None => full,
    };
    if let Some(own) = OWN_MESSAGES.iter().find(|m| text == **m) {
        return (*own).to_owned();
    }
    let expected = text
        .rfind(", expected ")
        .map(|i| &text[i + ", expected ".len()..]);
    for (prefix, label) in [
        ("invalid type: ", "Unexpected"),
        ("invalid value: ", "Invalid"),
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let kind = VALUE_KINDS
                .iter()
                .find(|k| rest.starts_with(**k))
                .copied()
                .unwrap_or("value");
            return match expected {
                Some(exp) => format!("{label} {kind}, expected {exp}"),
                None => format!("{label} {kind}"),
            };
        }
    }
    // In these two, the field name comes from the Rust type, not from the input.
    if let Some(rest) = text.strip_prefix("missing field `")
        && let Some(name) = rest.split('`').next()
    {
        return format!("Missing required member '{name}'");
    }
    if let Some(rest) = text.strip_prefix("duplicate field `")
        && let Some(name) = rest.split('`').next()
    {
        return format!("Duplicate member '{name}'");
    }
    if text.starts_with("unknown variant ") {
        return match expected {
            Some(exp) => format!("Unknown enum value, expected {exp}"),
            None => "Unknown enum value".to_owned(),
        };
    }
    if text.starts_with("unknown field ") {
        return "Unknown member".to_owned();
    }
    if text.starts_with("invalid length ") {
        return match expected {
            Some(exp) => format!("Invalid length, expected {exp}"),
            None => "Invalid length".to_owned(),
        };
    }
    "Unexpected value".to_owned()
}

/// Renders the member path, masking map keys that don't look like member names (map keys are
/// input and could be anything).
fn render_path(path: &serde_path_to_error::Path, drop_last: bool) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let segments: Vec<&Segment> = path.iter().collect();
    let keep = if drop_last {
        segments.len().saturating_sub(1)
    } else {
        segments.len()
    };
    for seg in &segments[..keep] {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                if looks_like_member(key.as_str()) {
                    out.push_str(key);
                } else {
                    out.push('*');
                }
            }
            Segment::Enum { .. } | Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

fn looks_like_member(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Milliseconds since the Unix epoch ↔ AWS JSON epoch-seconds number (fractional allowed).
///
/// Use as `#[serde(with = "coffer_wire::json::epoch_seconds")]` on an `i64`.
pub mod epoch_seconds {
    use serde::{Deserializer, Serializer};

    /// Serialises as seconds with millisecond fraction, e.g. `1700000000.123`.
    pub fn serialize<S: Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*millis as f64 / 1000.0)
    }

    /// Accepts any JSON number of seconds, e.g. `1.700000000123E9` or `1700000000`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(super::EpochVisitor)
    }
}

/// Like [`epoch_seconds`] for `Option<i64>`; add `#[serde(default)]` so a missing member is `None`.
pub mod option_epoch_seconds {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `Some` as seconds; `None` as `null` (pair with `skip_serializing_if`).
    pub fn serialize<S: Serializer>(millis: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match millis {
            Some(m) => super::epoch_seconds::serialize(m, s),
            None => s.serialize_none(),
        }
    }

    /// `null` → `None`, a number → `Some(millis)`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::epoch_seconds")] i64);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

struct EpochVisitor;

// Millisecond values beyond 2^53 lose integer precision as f64; AWS timestamps are far smaller.
const MAX_MILLIS: f64 = 9_007_199_254_740_992.0;

impl serde::de::Visitor<'_> for EpochVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a timestamp in epoch seconds")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        v.checked_mul(1000)
            .ok_or_else(|| E::custom(TIMESTAMP_RANGE_ERROR))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| v.checked_mul(1000))
            .ok_or_else(|| E::custom(TIMESTAMP_RANGE_ERROR))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        let ms = (v * 1000.0).round();
        if ms.is_finite() && ms.abs() <= MAX_MILLIS {
            Ok(ms as i64)
        } else {
            Err(E::custom(TIMESTAMP_RANGE_ERROR))
        }
    }
}

/// `Vec<u8>` ↔ base64 string (AWS blob members). Use as `#[serde(with = "coffer_wire::json::base64_blob")]`.
pub mod base64_blob {
    use serde::{Deserializer, Serializer};

    /// Standard alphabet with padding, as AWS sends.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Accepts the standard alphabet with or without padding; errors never echo the input.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_str(super::Base64Visitor)
    }
}

/// Like [`base64_blob`] for `Option<Vec<u8>>`; add `#[serde(default)]`.
pub mod option_base64_blob {
    use serde::{Deserialize, Deserializer, Serializer};

    /// `Some` as base64, `None` as `null` (pair with `skip_serializing_if`).
    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => super::base64_blob::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    /// `null` → `None`, a base64 string → `Some(bytes)`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::base64_blob")] Vec<u8>);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

struct Base64Visitor;

const BASE64_LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

impl serde::de::Visitor<'_> for Base64Visitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64-encoded string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        use base64::Engine as _;
        BASE64_LENIENT
            .decode(v)
            .map_err(|_| E::custom(BASE64_ERROR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    const MARKER: &str = "S3cr3tMarkerValue";

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Input {
        #[serde(rename = "Name")]
        name: Option<String>,
        #[serde(rename = "Count", default)]
        count: Option<u32>,
        #[serde(rename = "Tags", default)]
        tags: Option<Vec<Tag>>,
        #[serde(
            rename = "When",
            default,
            with = "option_epoch_seconds",
            skip_serializing_if = "Option::is_none"
        )]
        when: Option<i64>,
        #[serde(
            rename = "Blob",
            default,
            with = "option_base64_blob",
            skip_serializing_if = "Option::is_none"
        )]
        blob: Option<Vec<u8>>,
        #[serde(rename = "Kind", default)]
        kind: Option<Kind>,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Tag {
        #[serde(rename = "Key")]
        key: String,
        #[serde(rename = "Value")]
        value: String,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    enum Kind {
        A,
        B,
    }

    #[derive(Debug, Deserialize)]
    struct Required {
        #[serde(rename = "SecretId")]
        #[allow(dead_code)]
        secret_id: String,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Stamp {
        #[serde(with = "epoch_seconds")]
        t: i64,
        #[serde(with = "base64_blob")]
        b: Vec<u8>,
    }

    fn err_msg(body: &str) -> String {
        match from_slice::<Input>(body.as_bytes()) {
            Ok(v) => panic!("expected error, got {v:?}"),
            Err(e) => {
                let env = e.envelope();
                assert_eq!(env.code, "SerializationException");
                assert_eq!(env.status, 400);
                assert_eq!(env.message, e.to_string());
                assert!(!format!("{e:?}").contains("S3cr3t"), "{e:?}");
                env.message
            }
        }
    }

    #[test]
    fn empty_body_is_empty_object() {
        let v: Input = from_slice(b"").expect("empty ok");
        assert_eq!(v.name, None);
        assert!(from_slice::<Required>(b"").is_err());
    }

    #[test]
    fn wrong_type_never_echoes_value() {
        for body in [
            format!(r#"{{"Count":"{MARKER}"}}"#),
            format!(r#"{{"Name":["{MARKER}"]}}"#),
            format!(r#"{{"Tags":[{{"Key":"k","Value":{{"{MARKER}":1}}}}]}}"#),
            format!(r#"{{"Kind":"{MARKER}"}}"#),
            format!(r#"{{"{MARKER}":1}}"#),
            format!(r#"{{"Blob":"{MARKER}!!"}}"#),
            format!(r#"{{"When":"{MARKER}"}}"#),
            format!(r#"{{"Name":"{MARKER}" "#),
            format!(r#"{{"Name":"{MARKER}"}} trailing{MARKER}"#),
            format!(r#"{{"Name":{MARKER}}}"#),
            format!(r#"{{"Count":-1, "Name":"{MARKER}"}}"#),
            format!(r#"{{"Name":"{MARKER}", "Count":1e400}}"#),
        ] {
            let m = err_msg(&body);
            assert!(!m.contains(MARKER), "message {m:?} echoes input of {body}");
            assert!(
                !m.contains("S3cr3t"),
                "message {m:?} echoes input of {body}"
            );
        }
    }

    #[test]
    fn messages_are_useful() {
        let m = err_msg(r#"{"Count":"x"}"#);
        assert!(
            m.starts_with("Unexpected string, expected u32 at 'Count'"),
            "{m}"
        );
        let m = err_msg(r#"{"Tags":[{"Key":"k","Value":5}]}"#);
        assert!(m.contains("at 'Tags[0].Value'"), "{m}");
        assert!(m.contains("expected a string"), "{m}");
        let m = err_msg(r#"{"Name": "#);
        assert!(m.starts_with("Unexpected end of JSON input"), "{m}");
        let m = err_msg(r#"{"Name" 1}"#);
        assert!(m.starts_with("Malformed JSON (line 1, column"), "{m}");
        let m = err_msg(r#"{"Blob":"***"}"#);
        assert!(
            m.starts_with("Invalid base64 in blob member at 'Blob'"),
            "{m}"
        );
        let m = err_msg(r#"{"Kind":"C"}"#);
        assert!(
            m.starts_with("Unknown enum value, expected `A` or `B`"),
            "{m}"
        );
        let e = from_slice::<Required>(b"{}").expect_err("missing");
        assert!(
            e.to_string()
                .starts_with("Missing required member 'SecretId'"),
            "{e}"
        );
    }

    #[test]
    fn map_keys_that_are_not_names_are_masked() {
        #[derive(Debug, Deserialize)]
        struct M {
            #[allow(dead_code)]
            m: std::collections::HashMap<String, u8>,
        }
        let e = from_slice::<M>(br#"{"m":{"pass word!":"x"}}"#).expect_err("bad");
        assert!(e.to_string().contains("at 'm.*'"), "{e}");
        assert!(!e.to_string().contains("pass word"), "{e}");
    }

    #[test]
    fn epoch_seconds_roundtrip_and_forms() {
        for (text, ms) in [
            ("1.700000000123E9", 1_700_000_000_123_i64),
            ("1700000000.123", 1_700_000_000_123),
            ("1700000000", 1_700_000_000_000),
            ("-1.5", -1_500),
            ("0", 0),
        ] {
            let v: Stamp = from_slice(format!(r#"{{"t":{text},"b":""}}"#).as_bytes()).expect(text);
            assert_eq!(v.t, ms, "{text}");
        }
        let s = serde_json::to_string(&Stamp {
            t: 1_700_000_000_123,
            b: vec![1, 2, 3],
        })
        .expect("ser");
        assert_eq!(s, r#"{"t":1700000000.123,"b":"AQID"}"#);
        let back: Stamp = from_slice(s.as_bytes()).expect("de");
        assert_eq!(back.t, 1_700_000_000_123);
        assert_eq!(back.b, vec![1, 2, 3]);
        assert!(from_slice::<Stamp>(br#"{"t":1e300,"b":""}"#).is_err());
        assert!(from_slice::<Stamp>(br#"{"t":18446744073709551615,"b":""}"#).is_err());
    }

    #[test]
    fn option_helpers() {
        let v: Input = from_slice(br#"{"When":null,"Blob":null}"#).expect("nulls");
        assert_eq!((v.when, v.blob), (None, None));
        let v: Input = from_slice(br#"{"When":1.5,"Blob":"AQI"}"#).expect("values");
        assert_eq!(v.when, Some(1500));
        assert_eq!(v.blob, Some(vec![1, 2]));
        let s = serde_json::to_string(&v).expect("ser");
        assert!(
            s.contains(r#""When":1.5"#) && s.contains(r#""Blob":"AQI=""#),
            "{s}"
        );
    }

    #[test]
    fn validation_messages() {
        let one = violation(
            Some("'x'"),
            "name",
            "Member must have length greater than or equal to 2",
        );
        assert_eq!(
            validation_message(std::slice::from_ref(&one)),
            "1 validation error detected: Value 'x' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 2"
        );
        let two = violation(
            None,
            "secretString",
            "Member must have length less than or equal to 65536",
        );
        assert_eq!(
            validation_message(&[one.clone(), two]),
            format!(
                "2 validation errors detected: {one}; Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536"
            )
        );
        assert_eq!(
            violation(Some("null"), "secretId", "Member must not be null"),
            "Value null at 'secretId' failed to satisfy constraint: Member must not be null"
        );
    }

    proptest::proptest! {
        #[test]
        fn no_echo_property(
            marker in "[A-Za-z]{10,16}",
            field in 0usize..8,
            shape in 0usize..8,
            nested in proptest::bool::ANY,
        ) {
            let fields = ["Name", "Count", "Tags", "When", "Blob", "Kind", "Other", "Tags"];
            let m = &marker;
            let value = match shape {
                0 => format!(r#""{m}""#),
                1 => format!(r#"["{m}"]"#),
                2 => format!(r#"{{"{m}":"{m}"}}"#),
                3 => m.clone(),
                4 => format!("1{m}"),
                5 => format!(r#""{m}"#),
                6 => format!(r#"[{{"Key":"{m}","Value":{{"{m}":1}}}}]"#),
                _ => format!(r#"{{"Key":"{m}"}}"#),
            };
            let name = if field == 6 { marker.as_str() } else { fields[field] };
            let body = if nested {
                format!(r#"{{"Tags":[{{"Key":"k","Value":"v"}}],"{name}":{value}}}"#)
            } else {
                format!(r#"{{"{name}":{value}}}"#)
            };
            if let Err(e) = from_slice::<Input>(body.as_bytes()) {
                proptest::prop_assert!(!e.to_string().contains(m.as_str()), "{} echoes {}", e, body);
                let debug = format!("{:?}", e);
                proptest::prop_assert!(!debug.contains(m.as_str()), "{}", debug);
            }
        }
    }
}
