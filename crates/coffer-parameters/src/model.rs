//! Stored records and the key layout.
//!
//! ```text
//! ps/{account}/{region}/n/{canon}                 Param (JSON): metadata, labels, current value
//! ps/{account}/{region}/c/{parent}\0{leaf}        one-level index (empty value)
//! ps/{account}/{region}/v/{canon}\0{version:020}  Version (JSON): one history entry
//! ps/{account}/{region}/count/{tier}              Count (JSON): parameters per tier (quotas)
//! ps/{account}/{region}/setting/{setting id}      Setting (JSON): a customized service setting
//! ps/expire/{ms:020}/{account}/{region}/{canon}   Expiration policies due at ms (empty value)
//! ```
//!
//! `canon` is the name with a leading slash (`foo` and `/foo` are one parameter, as in AWS).
//! Names cannot contain `\0`, so a recursive listing of `/a` is the prefix scan of `n//a/` and a
//! one-level listing the prefix scan of `c//a\0`: both cost O(page), whatever the store holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ParamType {
    String,
    StringList,
    SecureString,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "String",
            ParamType::StringList => "StringList",
            ParamType::SecureString => "SecureString",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "String" => Some(ParamType::String),
            "StringList" => Some(ParamType::StringList),
            "SecureString" => Some(ParamType::SecureString),
            _ => None,
        }
    }
}

pub(crate) const TYPES: &[&str] = &["String", "StringList", "SecureString"];

/// The tier a parameter is stored in (Intelligent-Tiering resolves to one of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Tier {
    Standard,
    Advanced,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "Standard",
            Tier::Advanced => "Advanced",
        }
    }
    pub fn max_value_bytes(self) -> usize {
        match self {
            Tier::Standard => 4096,
            Tier::Advanced => 8192,
        }
    }
}

pub(crate) const TIERS: &[&str] = &["Standard", "Advanced", "Intelligent-Tiering"];

pub(crate) use coffer_service::tags::Tag;

/// A value as stored: plaintext for String/StringList, base64 of the keyring blob for
/// SecureString (which is also what GetParameter returns without WithDecryption).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum Stored {
    #[serde(rename = "p")]
    Plain(String),
    #[serde(rename = "c")]
    Cipher(String),
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stored(**redacted**)")
    }
}

/// A parameter policy as accepted (its text re-serialized, its type, its due time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InlinePolicy {
    pub text: String,
    pub kind: String,
    /// Expiration: when the parameter is deleted; notifications: when the event is due.
    pub due_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ResourcePolicy {
    pub id: String,
    pub hash: String,
    pub doc: String,
}

/// What every version records (the current one is also copied into [`Param`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Version {
    pub version: u64,
    pub ptype: ParamType,
    pub data_type: String,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    /// SecureString only: the key as the caller named it (`alias/aws/ssm` by default).
    pub key_id: Option<String>,
    pub tier: Tier,
    pub policies: Vec<InlinePolicy>,
    pub modified_ms: i64,
    pub modified_user: String,
    pub value: Stored,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Param {
    /// As first created (with or without the leading slash).
    pub name: String,
    pub current: Version,
    /// The oldest version still kept (history holds `oldest..=current.version`, max 100).
    pub oldest: u64,
    /// Labels per version.
    pub labels: BTreeMap<u64, Vec<String>>,
    pub tags: Vec<Tag>,
    pub resource_policies: Vec<ResourcePolicy>,
}

impl Param {
    pub fn version_of_label(&self, label: &str) -> Option<u64> {
        self.labels
            .iter()
            .find(|(_, ls)| ls.iter().any(|l| l == label))
            .map(|(v, _)| *v)
    }

    pub fn labels_of(&self, version: u64) -> &[String] {
        self.labels.get(&version).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn expiration_ms(&self) -> Option<i64> {
        expiration_of(&self.current.policies)
    }
}

pub(crate) fn expiration_of(policies: &[InlinePolicy]) -> Option<i64> {
    policies
        .iter()
        .find(|p| p.kind == "Expiration")
        .and_then(|p| p.due_ms)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Count {
    pub n: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Setting {
    pub value: String,
    pub modified_ms: i64,
    pub modified_user: String,
}

/// The canonical form of a (validated) name: with a leading slash.
pub(crate) fn canon(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

/// `(parent path, leaf)` of a canonical name: `/a/b` → (`/a`, `b`), `/a` → (`/`, `a`).
pub(crate) fn split_parent(canon: &str) -> (&str, &str) {
    match canon.rfind('/') {
        Some(0) | None => ("/", canon.trim_start_matches('/')),
        Some(i) => (&canon[..i], &canon[i + 1..]),
    }
}

pub(crate) fn base(account: &str, region: &str) -> String {
    format!("ps/{account}/{region}/")
}

pub(crate) fn param_key(account: &str, region: &str, canon: &str) -> Vec<u8> {
    format!("ps/{account}/{region}/n/{canon}").into_bytes()
}

pub(crate) fn param_prefix(account: &str, region: &str) -> Vec<u8> {
    format!("ps/{account}/{region}/n/").into_bytes()
}

pub(crate) fn child_key(account: &str, region: &str, canon: &str) -> Vec<u8> {
    let (parent, leaf) = split_parent(canon);
    let mut k = format!("ps/{account}/{region}/c/{parent}").into_bytes();
    k.push(0);
    k.extend_from_slice(leaf.as_bytes());
    k
}

/// Prefix of the one-level index entries under `path` (normalized, no trailing slash but `/`).
pub(crate) fn children_prefix(account: &str, region: &str, path: &str) -> Vec<u8> {
    let mut k = format!("ps/{account}/{region}/c/{path}").into_bytes();
    k.push(0);
    k
}

/// The canonical name a one-level index key stands for (the listing uses
/// [`param_key_of_child`]; this spells the mapping out for the tests).
#[cfg(test)]
pub(crate) fn canon_of_child_key(prefix_len_of_c: usize, key: &[u8]) -> Option<String> {
    let rest = std::str::from_utf8(key.get(prefix_len_of_c..)?).ok()?;
    let (parent, leaf) = rest.split_once('\0')?;
    Some(if parent == "/" {
        format!("/{leaf}")
    } else {
        format!("{parent}/{leaf}")
    })
}

/// Sets `out` to the main-record key (`n_prefix` + canonical name) a one-level index key stands
/// for, without building the name on its own; false (and `out` unspecified) for a malformed key.
pub(crate) fn param_key_of_child(
    n_prefix: &[u8],
    prefix_len_of_c: usize,
    key: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let Some(rest) = key.get(prefix_len_of_c..) else {
        return false;
    };
    if std::str::from_utf8(rest).is_err() {
        return false;
    }
    let Some(nul) = rest.iter().position(|&b| b == 0) else {
        return false;
    };
    let (parent, leaf) = (&rest[..nul], &rest[nul + 1..]);
    out.clear();
    out.extend_from_slice(n_prefix);
    if parent != b"/" {
        out.extend_from_slice(parent);
    }
    out.push(b'/');
    out.extend_from_slice(leaf);
    true
}

pub(crate) fn version_prefix(account: &str, region: &str, canon: &str) -> Vec<u8> {
    let mut k = format!("ps/{account}/{region}/v/{canon}").into_bytes();
    k.push(0);
    k
}

pub(crate) fn version_key(account: &str, region: &str, canon: &str, version: u64) -> Vec<u8> {
    let mut k = version_prefix(account, region, canon);
    k.extend_from_slice(format!("{version:020}").as_bytes());
    k
}

pub(crate) fn count_key(account: &str, region: &str, tier: Tier) -> Vec<u8> {
    format!("ps/{account}/{region}/count/{}", tier.as_str()).into_bytes()
}

pub(crate) fn setting_key(account: &str, region: &str, id: &str) -> Vec<u8> {
    format!("ps/{account}/{region}/setting/{id}").into_bytes()
}

pub(crate) const EXPIRE_PREFIX: &str = "ps/expire/";

pub(crate) fn expire_key(due_ms: i64, account: &str, region: &str, canon: &str) -> Vec<u8> {
    format!(
        "{EXPIRE_PREFIX}{:020}/{account}/{region}/{canon}",
        due_ms.max(0)
    )
    .into_bytes()
}

/// `(account, region, canon)` of an expiration index key.
pub(crate) fn parse_expire_key(key: &[u8]) -> Option<(String, String, String)> {
    let s = std::str::from_utf8(key).ok()?;
    let mut it = s.strip_prefix(EXPIRE_PREFIX)?.splitn(4, '/');
    let _due = it.next()?;
    let account = it.next()?;
    let region = it.next()?;
    let canon = it.next()?;
    Some((account.to_owned(), region.to_owned(), canon.to_owned()))
}

pub(crate) fn param_arn(partition: &str, region: &str, account: &str, canon: &str) -> String {
    format!("arn:{partition}:ssm:{region}:{account}:parameter{canon}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(canon("foo"), "/foo");
        assert_eq!(canon("/a/b"), "/a/b");
        assert_eq!(split_parent("/a/b/c"), ("/a/b", "c"));
        assert_eq!(split_parent("/a"), ("/", "a"));
        let p = base("1", "r").len() + 2;
        assert_eq!(
            canon_of_child_key(p, &child_key("1", "r", "/a/b")).as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            canon_of_child_key(p, &child_key("1", "r", "/a")).as_deref(),
            Some("/a")
        );
        assert!(child_key("1", "r", "/a/b").starts_with(&children_prefix("1", "r", "/a")));
        let mut out = b"junk".to_vec();
        for c in ["/a/b", "/a", "/x/y/z", "/\u{e9}/\u{1}"] {
            assert!(param_key_of_child(
                &param_prefix("1", "r"),
                p,
                &child_key("1", "r", c),
                &mut out
            ));
            assert_eq!(out, param_key("1", "r", c));
        }
        assert!(!param_key_of_child(b"n/", p, b"ps/1/r/c/no-nul", &mut out));
        assert!(!param_key_of_child(b"n/", p, b"short", &mut out));
        assert!(!param_key_of_child(b"n/", p, b"ps/1/r/c/\xff\0a", &mut out));
        assert!(!child_key("1", "r", "/ab/c").starts_with(&children_prefix("1", "r", "/a")));
        assert_eq!(
            parse_expire_key(&expire_key(5, "1", "r", "/a/b")),
            Some(("1".into(), "r".into(), "/a/b".into()))
        );
        assert!(version_key("1", "r", "/a", 9) < version_key("1", "r", "/a", 10));
    }
}
