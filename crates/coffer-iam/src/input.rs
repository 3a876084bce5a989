//! Reading a Query request's parameters with the constraints botocore's models give them
//! (`models/iam.json`, `models/sts.json`), collecting every violation into one `ValidationError`
//! in AWS's wording.

use coffer_service::constraint;
use coffer_wire::json::{validation_message, violation};
use coffer_wire::query::QueryParams;

use crate::IamError;

/// A model pattern: how to check it, and its text for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    None,
    /// `[\w+=,.@-]+` (user, group, role, policy names), or `*` when `min` is 0.
    Name,
    /// `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`
    Path,
    /// `\u002F[\u0021-\u007F]*`
    PathPrefix,
    /// `((/[A-Za-z0-9\.,\+@=_-]+)*)/`
    PolicyPath,
    /// `[\u0009\u000A\u000D\u0020-\u00FF]+`
    PolicyDocument,
    /// `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`
    Description,
    /// `[\w]+`
    AccessKeyId,
    /// `v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`
    VersionId,
    /// `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`
    TagKey,
    /// `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`
    TagValue,
    /// `[\u0020-\u00FF]+`
    Marker,
}

impl Pattern {
    fn text(self) -> &'static str {
        match self {
            Pattern::None => "",
            Pattern::Name => r"[\w+=,.@-]+",
            Pattern::Path => r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
            Pattern::PathPrefix => r"\u002F[\u0021-\u007F]*",
            Pattern::PolicyPath => r"((/[A-Za-z0-9\.,\+@=_-]+)*)/",
            Pattern::PolicyDocument => r"[\u0009\u000A\u000D\u0020-\u00FF]+",
            Pattern::Description => r"[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*",
            Pattern::AccessKeyId => r"[\w]+",
            Pattern::VersionId => r"v[1-9][0-9]*(\.[A-Za-z0-9-]*)?",
            Pattern::TagKey => r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+",
            Pattern::TagValue => r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*",
            Pattern::Marker => r"[\u0020-\u00FF]+",
        }
    }

    fn matches(self, s: &str) -> bool {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let doc = |c: char| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{FF}');
        match self {
            Pattern::None => true,
            Pattern::Name => s.chars().all(|c| word(c) || "+=,.@-".contains(c)),
            Pattern::Path => {
                s == "/"
                    || (s.len() >= 3
                        && s.starts_with('/')
                        && s.ends_with('/')
                        && s.chars().all(|c| ('!'..='~').contains(&c)))
            }
            Pattern::PathPrefix => {
                s.starts_with('/') && s.chars().all(|c| ('!'..='\u{7F}').contains(&c))
            }
            Pattern::PolicyPath => {
                s.ends_with('/')
                    && s[..s.len() - 1].split('/').skip(1).all(|seg| {
                        !seg.is_empty()
                            && seg
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || ".,+@=_-".contains(c))
                    })
                    && (s == "/" || s.starts_with('/'))
            }
            Pattern::PolicyDocument => s.chars().all(doc),
            Pattern::Description => s
                .chars()
                .all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{A1}'..='\u{FF}')),
            Pattern::AccessKeyId => s.chars().all(word),
            Pattern::VersionId => {
                let Some(rest) = s.strip_prefix('v') else {
                    return false;
                };
                let (num, suffix) = rest.split_once('.').unwrap_or((rest, ""));
                num.starts_with(|c: char| ('1'..='9').contains(&c))
                    && num.chars().all(|c| c.is_ascii_digit())
                    && suffix
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
            }
            Pattern::TagKey | Pattern::TagValue => constraint::tag_chars_ok(s),
            Pattern::Marker => s.chars().all(|c| (' '..='\u{FF}').contains(&c)),
        }
    }

    /// Whether the value may be echoed in the message (documents are not: long, and private).
    fn echo(self) -> bool {
        !matches!(self, Pattern::PolicyDocument | Pattern::None)
    }
}

/// Length limits and pattern of one string member.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Str {
    pub min: usize,
    pub max: usize,
    pub pattern: Pattern,
}

pub(crate) const fn s(min: usize, max: usize, pattern: Pattern) -> Str {
    Str { min, max, pattern }
}

// The model's string shapes this crate reads.
pub(crate) const USER_NAME: Str = s(1, 64, Pattern::Name);
pub(crate) const EXISTING_USER_NAME: Str = s(1, 128, Pattern::Name);
pub(crate) const GROUP_NAME: Str = s(1, 128, Pattern::Name);
pub(crate) const ROLE_NAME: Str = s(1, 64, Pattern::Name);
pub(crate) const POLICY_NAME: Str = s(1, 128, Pattern::Name);
pub(crate) const PATH: Str = s(1, 512, Pattern::Path);
pub(crate) const PATH_PREFIX: Str = s(1, 512, Pattern::PathPrefix);
pub(crate) const POLICY_PATH: Str = s(1, 512, Pattern::PolicyPath);
pub(crate) const POLICY_DOCUMENT: Str = s(1, 131_072, Pattern::PolicyDocument);
pub(crate) const ARN: Str = s(20, 2048, Pattern::None);
pub(crate) const ACCESS_KEY_ID: Str = s(16, 128, Pattern::AccessKeyId);
pub(crate) const VERSION_ID: Str = s(0, usize::MAX, Pattern::VersionId);
pub(crate) const ROLE_DESCRIPTION: Str = s(0, 1000, Pattern::Description);
pub(crate) const POLICY_DESCRIPTION: Str = s(0, 1000, Pattern::None);
pub(crate) const MARKER: Str = s(1, 320, Pattern::Marker);
pub(crate) const TAG_KEY: Str = s(1, 128, Pattern::TagKey);
pub(crate) const TAG_VALUE: Str = s(0, 256, Pattern::TagValue);

/// The request's parameters plus the violations found so far.
pub(crate) struct Input<'a> {
    q: &'a QueryParams,
    violations: Vec<String>,
}

/// `UserName` → `userName`, as AWS names members in Query validation messages.
fn member(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

impl<'a> Input<'a> {
    pub fn new(q: &'a QueryParams) -> Self {
        Self {
            q,
            violations: Vec::new(),
        }
    }

    fn check(&mut self, path: &str, v: &str, c: Str) {
        let shown = format!("'{v}'");
        let echo = c.pattern.echo().then_some(shown.as_str());
        if let Some(why) = constraint::length(v, c.min, c.max) {
            self.violations.push(violation(echo, path, &why));
        } else if !c.pattern.matches(v) {
            let why = format!(
                "Member must satisfy regular expression pattern: {}",
                c.pattern.text()
            );
            self.violations.push(violation(echo, path, &why));
        }
    }

    /// A required string member; `""` (with a violation recorded) when absent.
    pub fn req(&mut self, name: &str, c: Str) -> String {
        match self.q.get(name) {
            Some(v) => {
                self.check(&member(name), v, c);
                v.to_string()
            }
            None => {
                self.violations.push(violation(
                    Some("null"),
                    &member(name),
                    "Member must not be null",
                ));
                String::new()
            }
        }
    }

    pub fn opt(&mut self, name: &str, c: Str) -> Option<String> {
        let v = self.q.get(name)?;
        self.check(&member(name), v, c);
        Some(v.to_string())
    }

    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let raw = self.q.get(name)?;
        let Ok(v) = raw.trim().parse::<i64>() else {
            self.violations.push(format!(
                "Value '{raw}' at '{}' failed to satisfy constraint: Member must be a number",
                member(name)
            ));
            return None;
        };
        if let Some(why) = constraint::range(v, min, max) {
            self.violations
                .push(violation(Some(&format!("'{v}'")), &member(name), &why));
        }
        Some(v)
    }

    pub fn bool(&mut self, name: &str) -> Option<bool> {
        match self.q.get(name)? {
            v if v.eq_ignore_ascii_case("true") => Some(true),
            v if v.eq_ignore_ascii_case("false") => Some(false),
            v => {
                let v = v.to_string();
                self.violations.push(format!(
                    "Value '{v}' at '{}' failed to satisfy constraint: Member must be a boolean",
                    member(name)
                ));
                None
            }
        }
    }

    pub fn enumerated(&mut self, name: &str, allowed: &[&str]) -> Option<String> {
        let v = self.q.get(name)?;
        if let Some(why) = constraint::one_of(v, allowed) {
            self.violations
                .push(violation(Some(&format!("'{v}'")), &member(name), &why));
        }
        Some(v.to_string())
    }

    /// `NAME.member.N`, each one of `allowed`.
    pub fn enumerated_list(&mut self, name: &str, allowed: &[&str]) -> Vec<String> {
        let items: Vec<String> = self.q.list(name).into_iter().map(String::from).collect();
        for v in &items {
            if let Some(why) = constraint::one_of(v, allowed) {
                self.violations
                    .push(violation(Some(&format!("'{v}'")), &member(name), &why));
            }
        }
        items
    }

    /// `Tags.member.N.Key/Value`, each checked; at most `max` of them.
    pub fn tags(&mut self, name: &str, max: usize) -> Vec<(String, String)> {
        let raw = self.q.structs(name);
        let mut out = Vec::with_capacity(raw.len());
        for (i, t) in raw.iter().enumerate() {
            let base = format!("{}.{}", member(name), i + 1);
            let key = t.get("Key").copied();
            let value = t.get("Value").copied();
            match key {
                Some(k) => self.check(&format!("{base}.member.key"), k, TAG_KEY),
                None => self.violations.push(violation(
                    Some("null"),
                    &format!("{base}.member.key"),
                    "Member must not be null",
                )),
            }
            match value {
                Some(v) => self.check(&format!("{base}.member.value"), v, TAG_VALUE),
                None => self.violations.push(violation(
                    Some("null"),
                    &format!("{base}.member.value"),
                    "Member must not be null",
                )),
            }
            out.push((
                key.unwrap_or_default().to_string(),
                value.unwrap_or_default().to_string(),
            ));
        }
        if out.len() > max {
            self.violations.push(violation(
                None,
                &member(name),
                &format!("Member must have length less than or equal to {max}"),
            ));
        }
        out
    }

    /// A required flattened list of strings, each checked against `c`.
    pub fn list(&mut self, name: &str, c: Str, max: usize) -> Vec<String> {
        let items: Vec<String> = self.q.list(name).into_iter().map(String::from).collect();
        for v in &items {
            self.check(&member(name), v, c);
        }
        if items.len() > max {
            self.violations.push(violation(
                None,
                &member(name),
                &format!("Member must have length less than or equal to {max}"),
            ));
        }
        items
    }

    /// `Err(ValidationError)` naming every violation, in AWS's format.
    pub fn finish(self) -> Result<(), IamError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(IamError::Validation(validation_message(&self.violations)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_the_model() {
        assert!(Pattern::Name.matches("alice+bob=,.@-_9"));
        assert!(!Pattern::Name.matches("no spaces"));
        assert!(Pattern::Path.matches("/"));
        assert!(Pattern::Path.matches("/engineering/team/"));
        assert!(!Pattern::Path.matches("engineering/"));
        assert!(!Pattern::Path.matches("/x"));
        assert!(Pattern::PolicyPath.matches("/"));
        assert!(Pattern::PolicyPath.matches("/a/b-c/"));
        assert!(!Pattern::PolicyPath.matches("/a//"));
        assert!(Pattern::VersionId.matches("v12"));
        assert!(Pattern::VersionId.matches("v1.x-2"));
        assert!(!Pattern::VersionId.matches("v0"));
        assert!(!Pattern::VersionId.matches("1"));
        assert!(Pattern::PathPrefix.matches("/prod"));
        assert!(!Pattern::PathPrefix.matches("prod"));
    }

    #[test]
    fn violations_read_like_aws() {
        let q = QueryParams::parse(b"UserName=bad%20name&MaxItems=0").unwrap();
        let mut i = Input::new(&q);
        i.req("UserName", USER_NAME);
        i.int("MaxItems", 1, 1000);
        i.req("PolicyArn", ARN);
        let Err(IamError::Validation(m)) = i.finish() else {
            panic!("expected a validation error")
        };
        assert_eq!(
            m,
            "3 validation errors detected: Value 'bad name' at 'userName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+; \
             Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater \
             than or equal to 1; Value null at 'policyArn' failed to satisfy constraint: Member \
             must not be null"
        );
    }
}
