//! Input checks from the KMS model (lengths, ranges, patterns, enums) in AWS's wording.

use std::collections::BTreeMap;

use coffer_service::constraint;

use super::KmsError;

fn check(member: &str, violated: Option<String>) -> Result<(), KmsError> {
    match violated {
        Some(c) => Err(KmsError::validation(member, &c)),
        None => Ok(()),
    }
}

pub(crate) fn length(member: &str, v: &str, min: usize, max: usize) -> Result<(), KmsError> {
    check(member, constraint::length(v, min, max))
}

pub(crate) fn range(member: &str, v: i64, min: i64, max: i64) -> Result<(), KmsError> {
    check(member, constraint::range(v, min, max))
}

pub(crate) fn one_of(member: &str, v: &str, allowed: &[&str]) -> Result<(), KmsError> {
    check(member, constraint::one_of(v, allowed))
}

/// `KeyIdType`: 1 to 2048 characters.
pub(crate) fn key_id(member: &str, v: &str) -> Result<(), KmsError> {
    length(member, v, 1, 2048)
}

/// Blobs (`PlaintextType` 1–4096 bytes, `CiphertextType` 1–6144 bytes) are measured in bytes.
pub(crate) fn blob(member: &str, v: &[u8], max: usize) -> Result<(), KmsError> {
    if v.is_empty() {
        return Err(KmsError::validation(
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    if v.len() > max {
        return Err(KmsError::validation(
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// `GrantTokens`: at most 10 (their contents are not checked, as KMS only uses them to skip
/// grant propagation delays, which Coffer does not have).
pub(crate) fn grant_tokens(v: Option<&Vec<String>>) -> Result<(), KmsError> {
    if let Some(t) = v {
        range("grantTokens", t.len() as i64, 0, 10).map_err(|_| {
            KmsError::validation(
                "grantTokens",
                "Member must have length less than or equal to 10",
            )
        })?;
    }
    Ok(())
}

pub(crate) const ALGORITHMS: &[&str] = &[
    "SYMMETRIC_DEFAULT",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "SM2PKE",
];

/// Only `SYMMETRIC_DEFAULT` applies to symmetric keys; the others are valid enum values that
/// such a key cannot use.
pub(crate) fn algorithm(member: &str, v: Option<&str>) -> Result<(), KmsError> {
    if let Some(a) = v {
        one_of(member, a, ALGORITHMS)?;
        if a != "SYMMETRIC_DEFAULT" {
            return Err(KmsError::InvalidKeyUsage(format!(
                "The encryption algorithm {a} is not supported for symmetric keys."
            )));
        }
    }
    Ok(())
}

/// `AliasNameType`: 1–256 characters of `^[a-zA-Z0-9:/_-]+$`, starting `alias/`; `alias/aws/`
/// is reserved for AWS managed keys unless `allow_reserved` (DeleteAlias checks existence).
pub(crate) fn alias_name(v: &str, allow_reserved: bool) -> Result<(), KmsError> {
    length("aliasName", v, 1, 256)?;
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'))
    {
        return Err(KmsError::validation(
            "aliasName",
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ));
    }
    let Some(rest) = v.strip_prefix("alias/") else {
        return Err(KmsError::InvalidAliasName(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
        ));
    };
    if rest.is_empty() || rest.contains(':') {
        return Err(KmsError::InvalidAliasName(format!(
            "{v} contains invalid characters for an alias"
        )));
    }
    if !allow_reserved && (v.starts_with("alias/aws/") || v == "alias/aws") {
        return Err(KmsError::InvalidAliasName(
            "Alias names beginning with \"alias/aws/\" are reserved for AWS managed keys.".into(),
        ));
    }
    Ok(())
}

/// `DescriptionType`: 0–8192 characters.
pub(crate) fn description(v: &str) -> Result<(), KmsError> {
    length("description", v, 0, 8192)
}

/// `PolicyType`: 1–131072 characters of tab, newline, carriage return and U+0020–U+00FF.
pub(crate) fn policy_text(v: &str) -> Result<(), KmsError> {
    length("policy", v, 1, 131_072)?;
    if !v
        .chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r') || ('\u{20}'..='\u{ff}').contains(&c))
    {
        return Err(KmsError::validation(
            "policy",
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        ));
    }
    Ok(())
}

/// `PolicyNameType`: only `default` exists for KMS keys.
pub(crate) fn policy_name(v: Option<&str>) -> Result<(), KmsError> {
    if let Some(n) = v {
        length("policyName", n, 1, 128)?;
        if !n.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(KmsError::validation(
                "policyName",
                "Member must satisfy regular expression pattern: [\\w]+",
            ));
        }
        if n != "default" {
            return Err(KmsError::NotFound("No such policy exists".into()));
        }
    }
    Ok(())
}

/// `LimitType` (1–1000) with the page size each listing actually returns at most.
pub(crate) fn limit(v: Option<i64>, default: usize, cap: usize) -> Result<usize, KmsError> {
    match v {
        None => Ok(default),
        Some(n) => {
            range("limit", n, 1, 1000)?;
            Ok((n as usize).min(cap))
        }
    }
}

/// `MarkerType`: 1–1024 characters.
pub(crate) fn marker(v: Option<&str>) -> Result<(), KmsError> {
    if let Some(m) = v {
        length("marker", m, 1, 1024)?;
    }
    Ok(())
}

/// Tags as KMS checks them: keys 1–128, values 0–256 characters; `aws:` keys are reserved.
pub(crate) fn tags(tags: &[TagIn]) -> Result<(), KmsError> {
    for t in tags {
        let key = t
            .tag_key
            .as_deref()
            .ok_or_else(|| KmsError::not_null("tags.member.tagKey"))?;
        let value = t
            .tag_value
            .as_deref()
            .ok_or_else(|| KmsError::not_null("tags.member.tagValue"))?;
        length("tags.member.tagKey", key, 1, 128)?;
        length("tags.member.tagValue", value, 0, 256)?;
        if key.starts_with("aws:") {
            return Err(KmsError::Tag(
                "Tags beginning with aws: are reserved.".into(),
            ));
        }
    }
    Ok(())
}

/// One `Tag` of a request.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagIn {
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
}

/// Encryption context as ordered pairs for the keyring (which sorts them itself).
pub(crate) fn context(map: &Option<BTreeMap<String, String>>) -> Vec<(&str, &str)> {
    map.iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}
