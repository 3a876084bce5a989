//! Request decoding and the checks AWS applies to members: model constraints answer
//! `ValidationException`, Secrets Manager's own rules answer `InvalidParameterException`.

use base64::Engine as _;
use coffer_service::constraint::{self, tag_chars_ok};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::error::SecretsError;
use crate::model::Tag;

/// Decodes a JSON 1.1 request body. An empty body counts as `{}`. Errors never quote the
/// body, only where decoding stopped.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, SecretsError> {
    coffer_wire::json::from_slice(body).map_err(|e| SecretsError::Wire {
        code: "SerializationException",
        message: e.to_string(),
    })
}

/// A secret value from a request: zeroized on drop, never printed.
#[derive(Default)]
pub(crate) struct SecretBytes(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(**redacted**)")
    }
}

/// `SecretString`: the UTF-8 bytes of the JSON string.
pub(crate) fn secret_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SecretBytes>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(|s| SecretBytes(Zeroizing::new(s.into_bytes()))))
}

/// `SecretBinary`: base64 in JSON.
pub(crate) fn secret_binary<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SecretBytes>, D::Error> {
    let s: Option<Zeroizing<String>> = Option::<String>::deserialize(d)?.map(Zeroizing::new);
    match s {
        None => Ok(None),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(|v| Some(SecretBytes(Zeroizing::new(v))))
            .map_err(|_| serde::de::Error::custom("SecretBinary is not valid base64")),
    }
}

pub(crate) fn length(
    member: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), SecretsError> {
    constraint::length(value, min, max)
        .map_or(Ok(()), |c| Err(SecretsError::validation(member, &c)))
}

pub(crate) fn opt_length(
    member: &str,
    value: Option<&str>,
    min: usize,
    max: usize,
) -> Result<(), SecretsError> {
    value.map_or(Ok(()), |v| length(member, v, min, max))
}

pub(crate) fn range(
    member: &str,
    value: Option<i64>,
    min: i64,
    max: i64,
) -> Result<(), SecretsError> {
    match value.and_then(|v| constraint::range(v, min, max)) {
        Some(c) => Err(SecretsError::validation(member, &c)),
        None => Ok(()),
    }
}

pub(crate) fn one_of(
    member: &str,
    value: Option<&str>,
    allowed: &[&str],
) -> Result<(), SecretsError> {
    match value.and_then(|v| constraint::one_of(v, allowed)) {
        Some(c) => Err(SecretsError::validation(member, &c)),
        None => Ok(()),
    }
}

pub(crate) fn secret_id(id: &str) -> Result<(), SecretsError> {
    length("secretId", id, 1, 2048)
}

pub(crate) fn version_id(member: &str, id: Option<&str>) -> Result<(), SecretsError> {
    opt_length(member, id, 32, 64)
}

pub(crate) fn client_request_token(token: Option<&str>) -> Result<(), SecretsError> {
    opt_length("clientRequestToken", token, 32, 64)
}

pub(crate) fn version_stage(member: &str, stage: &str) -> Result<(), SecretsError> {
    length(member, stage, 1, 256)
}

pub(crate) fn description(d: Option<&str>) -> Result<(), SecretsError> {
    opt_length("description", d, 0, 2048)
}

pub(crate) fn kms_key_id(k: Option<&str>) -> Result<(), SecretsError> {
    opt_length("kmsKeyId", k, 0, 2048)
}

/// Name rules: 1–512 characters from `A-Za-z0-9/_+=.@-`.
pub(crate) fn secret_name(name: &str) -> Result<(), SecretsError> {
    length("name", name, 1, 512)?;
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
    if !ok {
        return Err(SecretsError::InvalidParameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
                .into(),
        ));
    }
    Ok(())
}

pub(crate) const MAX_SECRET_BYTES: usize = 65_536;

/// Exactly one of SecretString / SecretBinary when `required`; at most one otherwise. Both are
/// limited to 65,536 bytes.
pub(crate) fn secret_value<'a>(
    string: Option<&'a SecretBytes>,
    binary: Option<&'a SecretBytes>,
    required: bool,
) -> Result<Option<(crate::model::ValueKind, &'a [u8])>, SecretsError> {
    use crate::model::ValueKind;
    let v = match (string, binary) {
        (Some(_), Some(_)) => {
            return Err(SecretsError::InvalidParameter(
                "You can't specify both a binary secret value and a string secret value in the same secret."
                    .into(),
            ));
        }
        (Some(s), None) => Some((ValueKind::String, "secretString", s.0.as_slice())),
        (None, Some(b)) => Some((ValueKind::Binary, "secretBinary", b.0.as_slice())),
        (None, None) if required => {
            return Err(SecretsError::InvalidParameter(
                "You must provide either SecretString or SecretBinary.".into(),
            ));
        }
        (None, None) => None,
    };
    match v {
        None => Ok(None),
        Some((_, member, [])) => Err(SecretsError::validation(
            member,
            "Member must have length greater than or equal to 1",
        )),
        Some((_, member, bytes)) if bytes.len() > MAX_SECRET_BYTES => {
            Err(SecretsError::validation(
                member,
                "Member must have length less than or equal to 65536",
            ))
        }
        Some((kind, _, bytes)) => Ok(Some((kind, bytes))),
    }
}

/// The `Tag` shape as it arrives: both members are optional in the model.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagIn {
    pub key: Option<String>,
    pub value: Option<String>,
}

pub(crate) const MAX_TAGS: usize = 50;

/// Checks a list of tags from a request and returns them in request order.
pub(crate) fn tags(input: &[TagIn]) -> Result<Vec<Tag>, SecretsError> {
    let mut out: Vec<Tag> = Vec::with_capacity(input.len());
    for t in input {
        let Some(key) = t.key.as_deref() else {
            return Err(SecretsError::InvalidParameter(
                "A tag must have a Key.".into(),
            ));
        };
        let value = t.value.as_deref().unwrap_or("");
        length("tags.member.key", key, 1, 128)?;
        length("tags.member.value", value, 0, 256)?;
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(SecretsError::InvalidParameter(
                "Invalid tag key. The aws: prefix is reserved for AWS use.".into(),
            ));
        }
        if !tag_chars_ok(key) || !tag_chars_ok(value) {
            return Err(SecretsError::InvalidParameter(
                "Invalid tag. Tag keys and values may contain only letters, numbers, spaces and _.:/=+-@"
                    .into(),
            ));
        }
        if out.iter().any(|o| o.key == key) {
            return Err(SecretsError::InvalidParameter(
                "Duplicate tag keys aren't allowed.".into(),
            ));
        }
        out.push(Tag {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(out)
}

/// Merges `new` into `existing` (same key = new value) and enforces the 50-tag quota.
pub(crate) fn merge_tags(existing: &mut Vec<Tag>, new: Vec<Tag>) -> Result<(), SecretsError> {
    coffer_service::tags::merge(existing, new, MAX_TAGS).map_err(|_| {
        SecretsError::InvalidParameter(format!("A secret can have at most {MAX_TAGS} tags."))
    })
}

/// `RegionType`: `^([a-z]+-)+\d+$`, 1–128 characters.
pub(crate) fn region(member: &str, r: &str) -> Result<(), SecretsError> {
    length(member, r, 1, 128)?;
    let bytes = r.as_bytes();
    let digits = bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let head = &r[..r.len() - digits];
    let head_ok = !head.is_empty()
        && head.ends_with('-')
        && head[..head.len() - 1]
            .split('-')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
    if digits == 0 || !head_ok {
        return Err(SecretsError::validation(
            member,
            "Member must satisfy regular expression pattern: ^([a-z]+-)+\\d+$",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(secret_name("prod/db_password+x=y.z@w-1").is_ok());
        for bad in ["", "has space", "colon:x", "ünïcode", &"a".repeat(513)] {
            assert!(secret_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn regions() {
        assert!(region("r", "us-east-1").is_ok());
        assert!(region("r", "us-gov-west-1").is_ok());
        for bad in ["", "us", "US-east-1", "us-east-", "-1", "us--east-1"] {
            assert!(region("r", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tag_rules() {
        let t = |k: &str, v: &str| TagIn {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        assert!(tags(&[t("env", "prod"), t("a b", "")]).is_ok());
        assert!(tags(&[t("aws:x", "1")]).is_err());
        assert!(tags(&[t("a", "1"), t("a", "2")]).is_err());
        assert!(tags(&[t("a", "semi;colon")]).is_err());
        assert!(
            tags(&[TagIn {
                key: None,
                value: Some("v".into())
            }])
            .is_err()
        );
        let mut existing = vec![];
        let many: Vec<Tag> = (0..51)
            .map(|i| Tag {
                key: format!("k{i}"),
                value: String::new(),
            })
            .collect();
        assert!(merge_tags(&mut existing, many).is_err());
    }

    #[test]
    fn decode_errors_do_not_echo_values() {
        #[derive(Deserialize, Debug)]
        struct X {
            #[allow(dead_code)]
            n: u32,
        }
        let e = decode::<X>(br#"{"n": "hunter2"}"#).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        assert!(matches!(
            e,
            SecretsError::Wire {
                code: "SerializationException",
                ..
            }
        ));
    }
}
