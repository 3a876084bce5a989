//! Parameter Store's rules for names, paths, selectors, labels, values, data types, patterns,
//! tags and parameter policies. Model constraints answer `ValidationException`; the documented
//! rules answer the error the model names for them. No message quotes a value.

use coffer_service::constraint;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ParametersError as E;
use crate::model::{InlinePolicy, ParamType, Tag};

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, E> {
    Ok(coffer_wire::json::from_slice(body)?)
}

pub(crate) fn required<T>(member: &str, v: Option<T>) -> Result<T, E> {
    v.ok_or_else(|| E::not_null(member))
}

pub(crate) fn length(member: &str, value: &str, min: usize, max: usize) -> Result<(), E> {
    constraint::length(value, min, max).map_or(Ok(()), |c| Err(E::validation(member, &c)))
}

pub(crate) fn opt_length(member: &str, v: Option<&str>, min: usize, max: usize) -> Result<(), E> {
    v.map_or(Ok(()), |v| length(member, v, min, max))
}

pub(crate) fn range(member: &str, v: Option<i64>, min: i64, max: i64) -> Result<(), E> {
    match v.and_then(|v| constraint::range(v, min, max)) {
        Some(c) => Err(E::validation(member, &c)),
        None => Ok(()),
    }
}

pub(crate) fn one_of(member: &str, v: Option<&str>, allowed: &[&str]) -> Result<(), E> {
    match v.and_then(|v| constraint::one_of(v, allowed)) {
        Some(c) => Err(E::validation(member, &c)),
        None => Ok(()),
    }
}

/// The longest name a caller may create (AWS reserves the rest of the 2048 for its own use).
pub(crate) const MAX_NAME_CHARS: usize = 1011;
pub(crate) const MAX_LEVELS: usize = 15;

const NAME_RULES: &str = "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

const PATH_RULES: &str = "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.";

fn name_chars_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
}

fn reserved_prefix(canon: &str) -> bool {
    let head = canon.trim_start_matches('/').as_bytes();
    head.len() >= 3
        && (head[..3].eq_ignore_ascii_case(b"aws") || head[..3].eq_ignore_ascii_case(b"ssm"))
}

/// The shape of a name (characters, slashes, levels) without the reserved-prefix rule, which
/// only writes apply (reads reach `/aws/reference/...`).
fn name_shape(name: &str) -> Result<(), E> {
    length("name", name, 1, 2048)?;
    let hierarchical = name.chars().skip(1).any(|c| c == '/');
    let bad_slashes =
        (hierarchical && !name.starts_with('/')) || name.ends_with('/') || name.contains("//");
    if !name_chars_ok(name) || bad_slashes || name == "/" {
        return Err(E::Validation(NAME_RULES.into()));
    }
    if name.split('/').filter(|s| !s.is_empty()).count() > MAX_LEVELS {
        return Err(E::HierarchyLevelLimitExceeded(
            "A hierarchy can have a maximum of 15 levels. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html#sysman-parameter-name-constraints".into(),
        ));
    }
    Ok(())
}

/// A name a parameter may be created under.
pub(crate) fn new_name(name: &str) -> Result<(), E> {
    name_shape(name)?;
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(E::validation(
            "name",
            "Member must have length less than or equal to 1011",
        ));
    }
    if reserved_prefix(name) {
        return Err(E::Validation(NAME_RULES.into()));
    }
    Ok(())
}

/// A name as reads accept it (shape only).
pub(crate) fn existing_name(name: &str) -> Result<(), E> {
    name_shape(name)
}

/// A GetParametersByPath path or a Path filter value, normalized (`/a/` → `/a`).
pub(crate) fn path(p: &str) -> Result<String, E> {
    length("path", p, 1, 2048)?;
    if !p.starts_with('/') || !name_chars_ok(p) || p.contains("//") {
        return Err(E::Validation(PATH_RULES.into()));
    }
    let norm = if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    };
    if norm.split('/').filter(|s| !s.is_empty()).count() > MAX_LEVELS {
        return Err(E::HierarchyLevelLimitExceeded(
            "A hierarchy can have a maximum of 15 levels.".into(),
        ));
    }
    Ok(norm.to_owned())
}

/// What follows `name:` in a GetParameter name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    Version(u64),
    Label(String),
}

/// Splits `name[:selector]`; the name part may also be a parameter ARN (whose own colons are
/// not selectors). Returns the name and the parsed selector with its text (`:3`, `:prod`).
pub(crate) fn split_selector(full: &str) -> Result<(String, Option<(Selector, String)>), E> {
    // Spaces around a name are not part of it (AWS strips them when the parameter is written).
    let full = full.trim_matches(' ');
    let body = if full.starts_with("arn:") {
        // arn:partition:ssm:region:account:parameter/NAME[:selector]
        let parts: Vec<&str> = full.splitn(6, ':').collect();
        match parts.as_slice() {
            [_, _, "ssm", _, _, res] if res.starts_with("parameter/") => &res["parameter".len()..],
            _ => return Err(E::Validation(NAME_RULES.into())),
        }
    } else {
        full
    };
    let Some((name, sel)) = body.split_once(':') else {
        return Ok((body.to_owned(), None));
    };
    if sel.is_empty() || sel.contains(':') {
        return Err(E::Validation(NAME_RULES.into()));
    }
    let parsed = if sel.bytes().all(|b| b.is_ascii_digit()) {
        Selector::Version(sel.parse().map_err(|_| E::Validation(NAME_RULES.into()))?)
    } else {
        Selector::Label(sel.to_owned())
    };
    Ok((name.to_owned(), Some((parsed, format!(":{sel}")))))
}

/// AWS's label rules: 1–100 characters from letters, digits, `.-_`; no leading digit; no
/// `aws`/`ssm` prefix. Labels breaking them are reported back, not refused.
pub(crate) fn label_ok(l: &str) -> bool {
    let n = l.chars().count();
    (1..=100).contains(&n)
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !l.as_bytes()[0].is_ascii_digit()
        && !reserved_prefix(l)
}

pub(crate) fn labels(member: &str, ls: &[String]) -> Result<(), E> {
    if ls.is_empty() {
        return Err(E::validation(
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    if ls.len() > 10 {
        return Err(E::validation(
            member,
            "Member must have length less than or equal to 10",
        ));
    }
    for l in ls {
        length(&format!("{member}.member"), l, 1, 100)?;
    }
    Ok(())
}

pub(crate) const DATA_TYPES: &[&str] = &["text", "aws:ec2:image", "aws:ssm:integration"];

/// Checks `DataType` and the value's format for it.
pub(crate) fn data_type(dt: &str, ptype: ParamType, value: &str) -> Result<(), E> {
    length("dataType", dt, 0, 128)?;
    if !DATA_TYPES.contains(&dt) {
        return Err(E::Validation(format!(
            "The following data type is not supported: {dt} (Data type names are all lowercase.)"
        )));
    }
    if dt != "text" && ptype != ParamType::String {
        return Err(E::Validation(format!(
            "The data type {dt} is only supported for String parameters."
        )));
    }
    if dt == "aws:ec2:image" && !ami_id(value) {
        return Err(E::Validation(
            "Parameter value is not a valid AMI ID: it must have the format ami-[0-9a-f]{8} or ami-[0-9a-f]{17}."
                .into(),
        ));
    }
    Ok(())
}

fn ami_id(v: &str) -> bool {
    v.strip_prefix("ami-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// StringList: comma-separated items, none empty.
pub(crate) fn string_list(value: &str) -> Result<(), E> {
    if value.split(',').any(str::is_empty) {
        return Err(E::Validation(
            "StringList values are comma-separated and can't contain empty items.".into(),
        ));
    }
    Ok(())
}

/// Compiles an AllowedPattern. Matching is against the whole value, as AWS (Java `matches`).
pub(crate) fn allowed_pattern(p: &str) -> Result<regex::Regex, E> {
    length("allowedPattern", p, 0, 1024)?;
    regex::RegexBuilder::new(&format!("^(?:{p})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|_| {
            E::InvalidAllowedPattern(
                "The allowed pattern is not a valid regular expression.".into(),
            )
        })
}

pub(crate) fn check_pattern(p: &str, value: &str) -> Result<(), E> {
    if !allowed_pattern(p)?.is_match(value) {
        return Err(E::ParameterPatternMismatch(format!(
            "Parameter value, cannot be validated against allowedPattern: {p}"
        )));
    }
    Ok(())
}

/// `ParameterKeyId`: 1–256 of `[a-zA-Z0-9:/_-]`.
pub(crate) fn key_id(k: &str) -> Result<(), E> {
    length("keyId", k, 1, 256)?;
    if !k
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b))
    {
        return Err(E::validation(
            "keyId",
            "Member must satisfy regular expression pattern: ^([a-zA-Z0-9:/_-]+)$",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagIn {
    pub key: Option<String>,
    pub value: Option<String>,
}

pub(crate) const MAX_TAGS: usize = 50;

/// Checks tags from a request (both members required; AWS's character class; no `aws:`).
pub(crate) fn tags(input: &[TagIn]) -> Result<Vec<Tag>, E> {
    if input.len() > 1000 {
        return Err(E::validation(
            "tags",
            "Member must have length less than or equal to 1000",
        ));
    }
    let mut out: Vec<Tag> = Vec::with_capacity(input.len());
    for t in input {
        let key = required("tags.member.key", t.key.as_deref())?;
        let value = required("tags.member.value", t.value.as_deref())?;
        length("tags.member.key", key, 1, 128)?;
        length("tags.member.value", value, 0, 256)?;
        let pattern =
            "Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$";
        if !constraint::tag_chars_ok(key) {
            return Err(E::validation("tags.member.key", pattern));
        }
        if !constraint::tag_chars_ok(value) {
            return Err(E::validation("tags.member.value", pattern));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(E::Validation(
                "Tag keys can't start with the reserved prefix aws:.".into(),
            ));
        }
        match out.iter_mut().find(|o| o.key == key) {
            Some(o) => o.value = value.to_owned(),
            None => out.push(Tag {
                key: key.to_owned(),
                value: value.to_owned(),
            }),
        }
    }
    Ok(out)
}

/// Merges `new` into `existing` (same key = new value) and enforces the 50-tag quota.
pub(crate) fn merge_tags(existing: &mut Vec<Tag>, new: Vec<Tag>) -> Result<(), E> {
    coffer_service::tags::merge(existing, new, MAX_TAGS).map_err(|_| {
        E::TooManyTagsError(format!(
            "The Tags array can't have more than {MAX_TAGS} tags."
        ))
    })
}

pub(crate) const MAX_POLICIES: usize = 10;

/// Parses the `Policies` member: a JSON array of `{Type, Version, Attributes}`. Returns the
/// policies with their due times (relative to `now_ms` where AWS counts from the write).
pub(crate) fn parameter_policies(text: &str, now_ms: i64) -> Result<Vec<InlinePolicy>, E> {
    length("policies", text, 1, 4096)?;
    let bad_attr = |m: &str| E::InvalidPolicyAttribute(m.to_owned());
    let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| {
        E::InvalidPolicyType("The policies must be a JSON array of parameter policies.".into())
    })?;
    if list.len() > MAX_POLICIES {
        return Err(E::PoliciesLimitExceeded(format!(
            "You specified more than the maximum number of allowed policies ({MAX_POLICIES}) for the parameter."
        )));
    }
    let mut out: Vec<InlinePolicy> = Vec::with_capacity(list.len());
    for p in list {
        let kind = p.get("Type").and_then(|t| t.as_str()).unwrap_or("");
        if ![
            "Expiration",
            "ExpirationNotification",
            "NoChangeNotification",
        ]
        .contains(&kind)
        {
            return Err(E::InvalidPolicyType(
                "A policy type is not supported. Supported types: Expiration, ExpirationNotification, NoChangeNotification.".into(),
            ));
        }
        if out.iter().any(|o| o.kind == kind) {
            return Err(E::IncompatiblePolicy(format!(
                "A parameter can have only one {kind} policy."
            )));
        }
        if p.get("Version").and_then(|v| v.as_str()) != Some("1.0") {
            return Err(bad_attr("The policy Version must be 1.0."));
        }
        let attrs = p
            .get("Attributes")
            .and_then(|a| a.as_object())
            .ok_or_else(|| bad_attr("The policy has no Attributes."))?;
        let due_ms = match kind {
            "Expiration" => {
                let ts = attrs
                    .get("Timestamp")
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| bad_attr("An Expiration policy needs a Timestamp attribute."))?;
                let t = time::OffsetDateTime::parse(
                    ts,
                    &time::format_description::well_known::Iso8601::DEFAULT,
                )
                .map_err(|_| bad_attr("The Timestamp attribute is not an ISO 8601 time."))?;
                let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
                if ms <= now_ms {
                    return Err(bad_attr("The Expiration Timestamp must be in the future."));
                }
                Some(ms)
            }
            "ExpirationNotification" => Some(amount(attrs, "Before").map_err(|m| bad_attr(&m))?),
            _ => Some(now_ms + amount(attrs, "After").map_err(|m| bad_attr(&m))?),
        };
        out.push(InlinePolicy {
            text: p.to_string(),
            kind: kind.to_owned(),
            due_ms,
        });
    }
    // ExpirationNotification counts back from the Expiration.
    let expiration = crate::model::expiration_of(&out);
    for p in &mut out {
        if p.kind == "ExpirationNotification" {
            let Some(exp) = expiration else {
                return Err(E::IncompatiblePolicy(
                    "An ExpirationNotification policy requires an Expiration policy.".into(),
                ));
            };
            p.due_ms = p.due_ms.map(|before| exp - before);
        }
    }
    Ok(out)
}

/// `{"<member>": "N", "Unit": "Days"|"Hours"}` → milliseconds.
pub(crate) fn amount(
    attrs: &serde_json::Map<String, serde_json::Value>,
    member: &str,
) -> Result<i64, String> {
    let n: i64 = match attrs.get(member) {
        Some(serde_json::Value::String(s)) => s
            .parse()
            .map_err(|_| format!("{member} must be a whole number."))?,
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("{member} must be a whole number."))?,
        _ => return Err(format!("The policy needs a {member} attribute.")),
    };
    if !(1..=36_500).contains(&n) {
        return Err(format!("{member} is out of range."));
    }
    let unit = match attrs.get("Unit").and_then(|u| u.as_str()) {
        Some("Days") => 86_400_000,
        Some("Hours") => 3_600_000,
        _ => return Err("Unit must be Days or Hours.".into()),
    };
    Ok(n * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["foo", "/foo", "/prod/db/password", "/a-b_c.d/e", "awfoo"] {
            assert!(new_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/", "a/b", "/a/", "/a//b", "/a b", "/a:b", "aws-x", "/AWS/x", "ssm", "/Ssmx/y",
            "é",
        ] {
            assert!(new_name(bad).is_err(), "{bad}");
        }
        assert!(existing_name("/aws/reference/secretsmanager/x").is_ok());
        let deep = "/l".repeat(15);
        assert!(new_name(&deep).is_ok());
        assert!(matches!(
            new_name(&"/l".repeat(16)),
            Err(E::HierarchyLevelLimitExceeded(_))
        ));
        assert!(new_name(&format!("/{}", "a".repeat(1011))).is_err());
    }

    #[test]
    fn paths_and_selectors() {
        assert_eq!(path("/a/").unwrap(), "/a");
        assert_eq!(path("/").unwrap(), "/");
        assert!(path("a").is_err());
        assert_eq!(
            split_selector("/a/b:3").unwrap(),
            ("/a/b".into(), Some((Selector::Version(3), ":3".into())))
        );
        assert_eq!(
            split_selector("/a/b:prod").unwrap().1.unwrap().0,
            Selector::Label("prod".into())
        );
        assert_eq!(
            split_selector("arn:aws:ssm:us-east-1:1:parameter/a/b").unwrap(),
            ("/a/b".into(), None)
        );
        assert!(split_selector("/a:").is_err());
    }

    #[test]
    fn labels_values_patterns() {
        assert!(label_ok("prod") && label_ok("Release_1.0-x"));
        for bad in ["1abc", "aws-x", "SSMx", "a b", "", &"a".repeat(101)] {
            assert!(!label_ok(bad), "{bad}");
        }
        assert!(string_list("a,b,c").is_ok());
        assert!(string_list("a,,c").is_err());
        assert!(data_type("aws:ec2:image", ParamType::String, "ami-12345678").is_ok());
        assert!(data_type("aws:ec2:image", ParamType::String, "ami-1234").is_err());
        assert!(data_type("Text", ParamType::String, "x").is_err());
        assert!(check_pattern("\\d+", "123").is_ok());
        assert!(matches!(
            check_pattern("\\d+", "12a"),
            Err(E::ParameterPatternMismatch(m)) if !m.contains("12a")
        ));
        assert!(matches!(
            allowed_pattern("("),
            Err(E::InvalidAllowedPattern(_))
        ));
    }

    #[test]
    fn policies() {
        let now = 1_700_000_000_000;
        let p = parameter_policies(
            r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2099-01-01T00:00:00.000Z"}},
                {"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"2","Unit":"Days"}},
                {"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"3","Unit":"Hours"}}]"#,
            now,
        )
        .unwrap();
        let exp = p[0].due_ms.unwrap();
        assert_eq!(p[1].due_ms, Some(exp - 2 * 86_400_000));
        assert_eq!(p[2].due_ms, Some(now + 3 * 3_600_000));
        assert!(matches!(
            parameter_policies(r#"[{"Type":"Nope","Version":"1.0","Attributes":{}}]"#, now),
            Err(E::InvalidPolicyType(_))
        ));
        assert!(matches!(
            parameter_policies(
                r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2000-01-01T00:00:00Z"}}]"#,
                now
            ),
            Err(E::InvalidPolicyAttribute(_))
        ));
        let two = r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"1","Unit":"Days"}},{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"2","Unit":"Days"}}]"#;
        assert!(matches!(
            parameter_policies(two, now),
            Err(E::IncompatiblePolicy(_))
        ));
    }
}
