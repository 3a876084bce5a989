//! Findings for Secrets Manager's `ValidateResourcePolicy` and the public-policy test behind
//! `PutResourcePolicy`'s `BlockPublicPolicy`.
//!
//! The public test is syntactic, not Zelkova: an `Allow` to everyone counts as public unless one
//! of its conditions pins the caller to an account, organisation, ARN, VPC or narrow IP range.
//! A `Deny` elsewhere in the policy is not credited, so the test errs towards "public".

use std::net::IpAddr;

use serde::Serialize;

use crate::parse::parse_resource_policy;
use crate::{
    ActionBlock, Condition, Effect, JsonPath, Operator, OperatorType, Policy, PolicyError,
    PolicyVersion, Principal, PrincipalBlock, ResourceBlock, SetQualifier, Statement,
    wildcard_match,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingType {
    /// The policy is invalid or would not work.
    Error,
    /// The policy works but grants more than is likely meant.
    SecurityWarning,
    Warning,
    Suggestion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub finding_type: FindingType,
    /// Stable SCREAMING_SNAKE code, e.g. `INVALID_EFFECT`, `BROAD_ACCESS`.
    pub issue_code: String,
    /// What is wrong, without the location (see [`Finding::location`]).
    pub message: String,
    /// JSON path of the element: `["Statement", "1", "Effect"]`; empty for the whole document.
    pub location: Vec<String>,
}

impl Finding {
    fn new(
        finding_type: FindingType,
        code: &str,
        message: impl Into<String>,
        at: &JsonPath,
    ) -> Self {
        Self {
            finding_type,
            issue_code: code.to_string(),
            message: message.into(),
            location: at.to_strings(),
        }
    }

    /// Errors and security warnings make `PolicyValidationPassed` false.
    pub fn is_blocking(&self) -> bool {
        matches!(
            self.finding_type,
            FindingType::Error | FindingType::SecurityWarning
        )
    }

    /// `Statement[1].Effect`-style rendering of [`Finding::location`].
    pub fn location_display(&self) -> String {
        let mut out = String::new();
        for seg in &self.location {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) && !out.is_empty() {
                out.push('[');
                out.push_str(seg);
                out.push(']');
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(seg);
            }
        }
        out
    }
}

/// One `ValidationErrorsEntry` of the `ValidateResourcePolicy` response, serialised in the
/// model's member names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationErrorsEntry {
    #[serde(rename = "CheckName")]
    pub check_name: String,
    #[serde(rename = "ErrorMessage")]
    pub error_message: String,
}

/// `PolicyValidationPassed`: no error and no security warning.
pub fn validation_passed(findings: &[Finding]) -> bool {
    !findings.iter().any(Finding::is_blocking)
}

/// `ValidationErrors`: the blocking findings, each as `{CheckName, ErrorMessage}`.
pub fn validation_errors(findings: &[Finding]) -> Vec<ValidationErrorsEntry> {
    findings
        .iter()
        .filter(|f| f.is_blocking())
        .map(|f| {
            let at = f.location_display();
            ValidationErrorsEntry {
                check_name: f.issue_code.clone(),
                error_message: if at.is_empty() {
                    f.message.clone()
                } else {
                    format!("{at}: {}", f.message)
                },
            }
        })
        .collect()
}

/// Every IAM action Secrets Manager defines (one per API operation).
const SECRETS_MANAGER_ACTIONS: &[&str] = &[
    "AssociateCrossAccountReplica",
    "BatchGetSecretValue",
    "CancelRotateSecret",
    "CreateSecret",
    "DeleteResourcePolicy",
    "DeleteSecret",
    "DescribeSecret",
    "DisassociateCrossAccountReplica",
    "GetRandomPassword",
    "GetResourcePolicy",
    "GetSecretValue",
    "ListResourcePolicies",
    "ListSecretVersionIds",
    "ListSecrets",
    "PutResourcePolicy",
    "PutSecretValue",
    "RemoveRegionsFromReplication",
    "ReplicateSecretToRegions",
    "RestoreSecret",
    "RotateSecret",
    "StopReplicationToReplica",
    "TagResource",
    "UntagResource",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "ValidateResourcePolicy",
];

/// Validates a Secrets Manager resource policy: grammar (one finding, then stop), then semantic
/// checks: unknown actions, value types, broad access, lockout.
pub fn validate_resource_policy(doc: &str) -> Vec<Finding> {
    match parse_resource_policy(doc) {
        Ok(policy) => check(&policy),
        Err(e) => vec![parse_error_finding(&e)],
    }
}

fn parse_error_finding(e: &PolicyError) -> Finding {
    let message = match e {
        PolicyError::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    };
    Finding::new(FindingType::Error, e.issue_code(), message, &e.location())
}

fn check(policy: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();
    let root = JsonPath::default();
    if !policy.version_explicit {
        out.push(Finding::new(
            FindingType::Warning,
            "MISSING_VERSION",
            "add \"Version\": \"2012-10-17\"; without it policy variables are treated as literal text",
            &root.key("Version"),
        ));
    } else if policy.version == PolicyVersion::V2008_10_17 {
        out.push(Finding::new(
            FindingType::Suggestion,
            "OLD_VERSION",
            "use \"2012-10-17\", the current policy language version",
            &root.key("Version"),
        ));
    }
    for (i, s) in policy.statements.iter().enumerate() {
        check_statement(policy, s, &root.key("Statement").index(i), &mut out);
    }
    out
}

fn check_statement(policy: &Policy, s: &Statement, at: &JsonPath, out: &mut Vec<Finding>) {
    if s.effect == Effect::Allow {
        if let Some(PrincipalBlock::NotPrincipal(_)) = &s.principal {
            out.push(Finding::new(
                FindingType::SecurityWarning,
                "ALLOW_WITH_NOT_PRINCIPAL",
                "Allow with NotPrincipal grants access to every principal not listed, including anonymous callers",
                &at.key("NotPrincipal"),
            ));
        } else if statement_is_public(s) {
            out.push(Finding::new(
                FindingType::SecurityWarning,
                "BROAD_ACCESS",
                "this statement grants access to every principal; name specific principals or add a condition such as aws:PrincipalAccount or aws:PrincipalOrgID",
                &at.key("Principal"),
            ));
        }
        if let ActionBlock::NotAction(_) = s.action {
            out.push(Finding::new(
                FindingType::Warning,
                "ALLOW_WITH_NOT_ACTION",
                "Allow with NotAction grants every action not listed, including future ones",
                &at.key("NotAction"),
            ));
        }
    }

    let (action_key, is_array_hint) = match &s.action {
        ActionBlock::Action(p) => ("Action", p.len() > 1),
        ActionBlock::NotAction(p) => ("NotAction", p.len() > 1),
    };
    for (i, pattern) in s.action.patterns().iter().enumerate() {
        let a_at = if is_array_hint {
            at.key(action_key).index(i)
        } else {
            at.key(action_key)
        };
        check_action(pattern, &a_at, out);
    }

    if let Some(block) = &s.resource {
        let key = match block {
            ResourceBlock::Resource(_) => "Resource",
            ResourceBlock::NotResource(_) => "NotResource",
        };
        let many = block.patterns().len() > 1;
        for (i, r) in block.patterns().iter().enumerate() {
            let r_at = if many {
                at.key(key).index(i)
            } else {
                at.key(key)
            };
            check_resource(policy, r, &r_at, out);
        }
    }

    for c in &s.conditions {
        let c_at = at.key("Condition").key(&c.operator.to_string()).key(&c.key);
        check_condition(policy, c, &c_at, out);
    }

    if is_lockout(s) {
        out.push(Finding::new(
            FindingType::Error,
            "POLICY_LOCKOUT",
            "this statement denies every principal secretsmanager:PutResourcePolicy on the secret, so nobody could change the policy again",
            at,
        ));
    }
}

fn check_action(pattern: &str, at: &JsonPath, out: &mut Vec<Finding>) {
    if pattern == "*" {
        return;
    }
    let Some((service, name)) = pattern.split_once(':') else {
        return; // The parser already rejected this shape.
    };
    if !service.eq_ignore_ascii_case("secretsmanager") {
        out.push(Finding::new(
            FindingType::Warning,
            "UNSUPPORTED_ACTION_FOR_RESOURCE",
            format!("\"{pattern}\" is not a Secrets Manager action and has no effect in a secret's policy"),
            at,
        ));
        return;
    }
    if !SECRETS_MANAGER_ACTIONS
        .iter()
        .any(|a| wildcard_match(name, a, true))
    {
        out.push(Finding::new(
            FindingType::Error,
            "INVALID_ACTION",
            format!("\"{pattern}\" matches no Secrets Manager action"),
            at,
        ));
    }
}

fn check_resource(policy: &Policy, r: &str, at: &JsonPath, out: &mut Vec<Finding>) {
    if r == "*" {
        return;
    }
    let service = r.split(':').nth(2).unwrap_or("");
    if service != "secretsmanager" && !service.contains(['*', '?']) {
        out.push(Finding::new(
            FindingType::Warning,
            "RESOURCE_NOT_A_SECRET",
            format!(
                "\"{r}\" does not name a secret; a secret's policy applies only to that secret"
            ),
            at,
        ));
    }
    if r.contains("${") && !policy.version.supports_policy_variables() {
        out.push(variable_in_old_version(at));
    }
}

fn variable_in_old_version(at: &JsonPath) -> Finding {
    Finding::new(
        FindingType::Warning,
        "POLICY_VARIABLE_IN_OLD_VERSION",
        "policy variables are only substituted with \"Version\": \"2012-10-17\"; here ${...} is literal text",
        at,
    )
}

fn check_condition(policy: &Policy, c: &Condition, at: &JsonPath, out: &mut Vec<Finding>) {
    if !c.key.contains(':') {
        out.push(Finding::new(
            FindingType::Warning,
            "UNKNOWN_CONDITION_KEY",
            format!(
                "\"{}\" has no service prefix (such as aws: or secretsmanager:)",
                c.key
            ),
            at,
        ));
    }
    if c.values.is_empty() && c.operator.set != Some(SetQualifier::ForAllValues) {
        out.push(Finding::new(
            FindingType::Warning,
            "EMPTY_CONDITION_VALUES",
            "the condition lists no values, so it never matches",
            at,
        ));
    }
    let ty = c.operator.base.operator_type();
    for v in &c.values {
        if v.contains("${") {
            if !policy.version.supports_policy_variables() {
                out.push(variable_in_old_version(at));
            }
            continue; // Resolved at evaluation time; its type is unknown here.
        }
        if !value_fits(ty, v) {
            out.push(Finding::new(
                FindingType::Error,
                "DATA_TYPE_MISMATCH",
                format!(
                    "\"{v}\" is not a valid {} value for {}",
                    type_name(ty),
                    c.operator
                ),
                at,
            ));
        }
    }
}

fn type_name(ty: OperatorType) -> &'static str {
    match ty {
        OperatorType::String => "string",
        OperatorType::Numeric => "numeric",
        OperatorType::Date => "date (ISO 8601 or epoch seconds)",
        OperatorType::Bool | OperatorType::Null => "boolean (true or false)",
        OperatorType::Binary => "base64",
        OperatorType::Ip => "IP address or CIDR",
        OperatorType::Arn => "ARN",
    }
}

fn value_fits(ty: OperatorType, v: &str) -> bool {
    match ty {
        OperatorType::String => true,
        OperatorType::Numeric => is_number(v),
        OperatorType::Date => is_date(v),
        OperatorType::Bool | OperatorType::Null => {
            v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
        }
        OperatorType::Binary => is_base64(v),
        OperatorType::Ip => parse_cidr(v).is_some(),
        OperatorType::Arn => v == "*" || (v.starts_with("arn:") && v.splitn(6, ':').count() == 6),
    }
}

fn is_number(v: &str) -> bool {
    let starts_ok = v
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.'));
    starts_ok && v.parse::<f64>().is_ok_and(f64::is_finite)
}

/// ISO 8601 (`2020-04-01`, `2020-04-01T00:00:00Z`, fractions, offsets) or epoch seconds.
fn is_date(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(v.strip_prefix('-').unwrap_or(v)) {
        return true;
    }
    let (date, time) = match v.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let in_range = |s: &str, len: usize, lo: u32, hi: u32| {
        s.len() == len && digits(s) && s.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n))
    };
    if !(in_range(y, 4, 0, 9999) && in_range(m, 2, 1, 12) && in_range(d, 2, 1, 31)) {
        return false;
    }
    let Some(time) = time else { return true };
    // Split off the zone: `Z`, `+hh:mm` or `-hh:mm`.
    let (clock, zone_ok) = if let Some(c) = time.strip_suffix('Z') {
        (c, true)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        let zone = &time[pos + 1..];
        let ok = match zone.split_once(':') {
            Some((h, m)) => in_range(h, 2, 0, 23) && in_range(m, 2, 0, 59),
            None => in_range(zone, 4, 0, 2359) || in_range(zone, 2, 0, 23),
        };
        (&time[..pos], ok)
    } else {
        (time, true)
    };
    if !zone_ok {
        return false;
    }
    let (hms, frac_ok) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, digits(frac)),
        None => (clock, true),
    };
    let mut f = hms.split(':');
    let (Some(h), Some(mi)) = (f.next(), f.next()) else {
        return false;
    };
    let s_ok = match f.next() {
        Some(s) => in_range(s, 2, 0, 60),
        None => true,
    };
    frac_ok && s_ok && f.next().is_none() && in_range(h, 2, 0, 23) && in_range(mi, 2, 0, 59)
}

fn is_base64(v: &str) -> bool {
    let body = v.trim_end_matches('=');
    !v.is_empty()
        && v.len().is_multiple_of(4)
        && v.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// An address with an optional `/prefix`, returning the address and prefix length.
fn parse_cidr(v: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok()?
        }
        Some(_) => return None,
        None => max,
    };
    (prefix <= max).then_some((ip, prefix))
}

/// Whether the policy grants access to everyone: an `Allow` whose principal is `"*"`,
/// `{"AWS": "*"}` (alone or among others) or a `NotPrincipal`, with no condition that pins the
/// caller down. This is the test behind `BlockPublicPolicy`.
pub fn is_public(policy: &Policy) -> bool {
    policy
        .statements
        .iter()
        .any(|s| s.effect == Effect::Allow && statement_is_public(s))
}

fn statement_is_public(s: &Statement) -> bool {
    let everyone = match &s.principal {
        Some(PrincipalBlock::Principal(Principal::Any)) => true,
        Some(PrincipalBlock::Principal(Principal::Specific(m))) => m.aws.iter().any(|a| a == "*"),
        Some(PrincipalBlock::NotPrincipal(_)) => true,
        None => false,
    };
    everyone && !s.conditions.iter().any(restricts_caller)
}

/// Keys whose fixed value identifies a bounded set of callers or request origins.
const RESTRICTING_KEYS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:userid",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceip",
];

fn restricts_caller(c: &Condition) -> bool {
    let key = c.key.to_ascii_lowercase();
    if !RESTRICTING_KEYS.contains(&key.as_str()) {
        return false;
    }
    // IfExists and ForAllValues are true when the key is absent, so they restrict nothing.
    if c.operator.if_exists
        || c.operator.set == Some(SetQualifier::ForAllValues)
        || c.values.is_empty()
    {
        return false;
    }
    let like = match c.operator.base {
        Operator::StringEquals | Operator::StringEqualsIgnoreCase | Operator::ArnEquals => false,
        Operator::StringLike | Operator::ArnLike => true,
        Operator::IpAddress => {
            return key == "aws:sourceip"
                && c.values.iter().all(|v| {
                    parse_cidr(v).is_some_and(|(ip, p)| p >= if ip.is_ipv4() { 8 } else { 32 })
                });
        }
        _ => return false,
    };
    if key == "aws:sourceip" {
        return false;
    }
    c.values.iter().all(|v| {
        if !like || !v.contains(['*', '?']) {
            return !v.is_empty();
        }
        // An organisation path may end in a wildcard below a fixed organisation id.
        key.ends_with("orgpaths")
            && v.split_once('/')
                .is_some_and(|(org, _)| org.starts_with("o-") && !org.contains(['*', '?']))
    })
}

/// An unconditional `Deny` of `PutResourcePolicy` to everyone on every resource.
fn is_lockout(s: &Statement) -> bool {
    let everyone = match &s.principal {
        Some(PrincipalBlock::Principal(Principal::Any)) => true,
        Some(PrincipalBlock::Principal(Principal::Specific(m))) => m.aws.iter().any(|a| a == "*"),
        _ => false,
    };
    let all_resources =
        matches!(&s.resource, Some(ResourceBlock::Resource(r)) if r.iter().any(|x| x == "*"));
    s.effect == Effect::Deny
        && everyone
        && all_resources
        && s.conditions.is_empty()
        && s.action.matches("secretsmanager:PutResourcePolicy")
}

impl ActionBlock {
    /// Whether this block covers `action` (`service:Name`), case-insensitively, as IAM matches.
    pub fn matches(&self, action: &str) -> bool {
        match self {
            Self::Action(p) => p.iter().any(|p| wildcard_match(p, action, true)),
            Self::NotAction(p) => !p.iter().any(|p| wildcard_match(p, action, true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn codes(doc: &str) -> Vec<(FindingType, String)> {
        validate_resource_policy(doc)
            .into_iter()
            .map(|f| (f.finding_type, f.issue_code))
            .collect()
    }

    fn stmt(s: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{s}]}}"#)
    }

    fn public(doc: &str) -> bool {
        is_public(&parse(doc).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn clean_policy_has_no_findings() {
        let doc = stmt(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/R"},"Action":["secretsmanager:GetSecretValue","secretsmanager:Describe*"],"Resource":"*"}"#,
        );
        let f = validate_resource_policy(&doc);
        assert!(f.is_empty(), "{f:?}");
        assert!(validation_passed(&f));
        assert!(validation_errors(&f).is_empty());
    }

    #[test]
    fn parse_errors_become_one_error_finding() {
        let doc = stmt(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
        let f = validate_resource_policy(&doc);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].finding_type, FindingType::Error);
        assert_eq!(f[0].issue_code, "MISSING_PRINCIPAL");
        assert_eq!(f[0].location, vec!["Statement", "0", "Principal"]);
        assert!(!validation_passed(&f));
        let e = validation_errors(&f);
        assert_eq!(e[0].check_name, "MISSING_PRINCIPAL");
        assert!(
            e[0].error_message
                .starts_with("Statement[0].Principal: is required"),
            "{}",
            e[0].error_message
        );

        let f = validate_resource_policy("{not json");
        assert_eq!(f[0].issue_code, "JSON_SYNTAX_ERROR");
        assert!(f[0].location.is_empty());
        assert!(
            validation_errors(&f)[0]
                .error_message
                .starts_with("Policy: the document is not valid JSON")
        );

        let big = format!(
            "{}{}",
            stmt(
                r#"{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}"#
            ),
            " ".repeat(20_480)
        );
        assert_eq!(
            codes(&big),
            vec![(
                FindingType::Error,
                "POLICY_SIZE_EXCEEDS_RESOURCE_POLICY_QUOTA".to_string()
            )]
        );
    }

    #[test]
    fn entries_serialise_in_model_shape() {
        let e = ValidationErrorsEntry {
            check_name: "BROAD_ACCESS".into(),
            error_message: "m".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"CheckName": "BROAD_ACCESS", "ErrorMessage": "m"})
        );
    }

    #[test]
    fn public_principal_is_a_security_warning() {
        let doc = stmt(
            r#"{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#,
        );
        assert_eq!(
            codes(&doc),
            vec![(FindingType::SecurityWarning, "BROAD_ACCESS".to_string())]
        );
        let f = validate_resource_policy(&doc);
        assert!(!validation_passed(&f));
        assert_eq!(validation_errors(&f)[0].check_name, "BROAD_ACCESS");
        assert!(
            validation_errors(&f)[0]
                .error_message
                .starts_with("Statement[0].Principal: ")
        );
    }

    #[test]
    fn allow_not_principal_and_not_action() {
        let doc = stmt(
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/Bob"},"NotAction":"secretsmanager:DeleteSecret","Resource":"*"}"#,
        );
        let c = codes(&doc);
        assert!(
            c.contains(&(
                FindingType::SecurityWarning,
                "ALLOW_WITH_NOT_PRINCIPAL".to_string()
            )),
            "{c:?}"
        );
        assert!(
            c.contains(&(FindingType::Warning, "ALLOW_WITH_NOT_ACTION".to_string())),
            "{c:?}"
        );
    }

    #[test]
    fn actions_checked_against_secrets_manager() {
        let doc = stmt(
            r#"{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":["secretsmanager:GetSecretValue","secretsmanager:GetSecretValues","secretsmanager:Frob*","s3:GetObject","SecretsManager:getsecretvalue","secretsmanager:*"],"Resource":"*"}"#,
        );
        let f = validate_resource_policy(&doc);
        let errors: Vec<_> = f
            .iter()
            .filter(|f| f.issue_code == "INVALID_ACTION")
            .map(|f| f.location.clone())
            .collect();
        assert_eq!(
            errors,
            vec![
                vec!["Statement", "0", "Action", "1"],
                vec!["Statement", "0", "Action", "2"]
            ]
        );
        let warnings: Vec<_> = f
            .iter()
            .filter(|f| f.issue_code == "UNSUPPORTED_ACTION_FOR_RESOURCE")
            .collect();
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].finding_type, FindingType::Warning);
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn resources_and_versions() {
        let doc = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:GetSecretValue","Resource":["arn:aws:s3:::bucket","arn:aws:secretsmanager:us-east-1:123456789012:secret:${aws:username}-*"]}}"#;
        let c = codes(doc);
        assert!(c.contains(&(FindingType::Suggestion, "OLD_VERSION".to_string())));
        assert!(c.contains(&(FindingType::Warning, "RESOURCE_NOT_A_SECRET".to_string())));
        assert!(c.contains(&(
            FindingType::Warning,
            "POLICY_VARIABLE_IN_OLD_VERSION".to_string()
        )));
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(validation_passed(&validate_resource_policy(doc)));

        let no_version = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#;
        assert_eq!(
            codes(no_version),
            vec![(FindingType::Warning, "MISSING_VERSION".to_string())]
        );
    }

    #[test]
    fn condition_value_types() {
        let good = r#"{
            "NumericLessThan":{"aws:MultiFactorAuthAge":["3600", 1.5, "-2"]},
            "DateGreaterThan":{"aws:CurrentTime":["2020-04-01T00:00:00Z","2020-04-01","1585699200","2020-04-01T00:00:00.123+02:00","2020-04-01T00:00"]},
            "Bool":{"aws:SecureTransport":["true", false, "FALSE"]},
            "Null":{"aws:TokenIssueTime":"true"},
            "BinaryEquals":{"k:bin":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="},
            "IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234:5678::/64","192.0.2.7"]},
            "ArnLike":{"aws:SourceArn":["arn:aws:sns:*:123456789012:topic","*"]},
            "StringEquals":{"aws:ResourceTag/p":"${aws:PrincipalTag/p}"}
        }"#;
        let doc = stmt(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"123456789012"}},"Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{good}}}"#
        ));
        let f = validate_resource_policy(&doc);
        assert!(f.is_empty(), "{f:?}");

        let bad = [
            r#"{"NumericEquals":{"k:n":"ten"}}"#,
            r#"{"NumericEquals":{"k:n":"NaN"}}"#,
            r#"{"NumericEquals":{"k:n":"inf"}}"#,
            r#"{"DateLessThan":{"aws:CurrentTime":"yesterday"}}"#,
            r#"{"DateLessThan":{"aws:CurrentTime":"2020-13-01"}}"#,
            r#"{"DateLessThan":{"aws:CurrentTime":"2020-01-01T25:00:00Z"}}"#,
            r#"{"Bool":{"aws:SecureTransport":"yes"}}"#,
            r#"{"Null":{"k:n":1}}"#,
            r#"{"BinaryEquals":{"k:b":"abc"}}"#,
            r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}"#,
            r#"{"NotIpAddress":{"aws:SourceIp":"example.com"}}"#,
            r#"{"ArnEquals":{"aws:SourceArn":"topic"}}"#,
        ];
        for cond in bad {
            let doc = stmt(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"123456789012"}},"Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{cond}}}"#
            ));
            let f = validate_resource_policy(&doc);
            assert_eq!(f.len(), 1, "{cond}: {f:?}");
            assert_eq!(f[0].issue_code, "DATA_TYPE_MISMATCH", "{cond}");
            assert_eq!(f[0].location[..3], ["Statement", "0", "Condition"]);
        }
    }

    #[test]
    fn condition_key_and_empty_values() {
        let doc = stmt(
            r#"{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringEquals":{"nokey":"x","a:b":[]},"ForAllValues:StringEquals":{"aws:TagKeys":[]}}}"#,
        );
        let c = codes(&doc);
        assert_eq!(
            c,
            vec![
                (FindingType::Warning, "EMPTY_CONDITION_VALUES".to_string()),
                (FindingType::Warning, "UNKNOWN_CONDITION_KEY".to_string()),
            ]
        );
    }

    #[test]
    fn lockout_is_an_error() {
        let doc =
            stmt(r#"{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*"}"#);
        assert_eq!(
            codes(&doc),
            vec![(FindingType::Error, "POLICY_LOCKOUT".to_string())]
        );
        // Conditional, or not covering PutResourcePolicy: no lockout.
        let doc = stmt(
            r#"{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"123456789012"}}}"#,
        );
        assert!(codes(&doc).is_empty());
        let doc = stmt(
            r#"{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}"#,
        );
        assert!(codes(&doc).is_empty());
        let doc = stmt(
            r#"{"Effect":"Deny","Principal":{"AWS":"*"},"NotAction":"secretsmanager:GetSecretValue","Resource":"*"}"#,
        );
        assert_eq!(
            codes(&doc),
            vec![(FindingType::Error, "POLICY_LOCKOUT".to_string())]
        );
    }

    #[test]
    fn is_public_cases() {
        let s = |principal: &str, cond: &str| {
            stmt(&format!(
                r#"{{"Effect":"Allow","Principal":{principal},"Action":"secretsmanager:GetSecretValue","Resource":"*"{cond}}}"#
            ))
        };
        assert!(public(&s(r#""*""#, "")));
        assert!(public(&s(r#"{"AWS":"*"}"#, "")));
        assert!(public(&s(
            r#"{"AWS":["arn:aws:iam::123456789012:root","*"]}"#,
            ""
        )));
        assert!(!public(&s(r#"{"AWS":"123456789012"}"#, "")));
        assert!(!public(&s(r#"{"Service":"lambda.amazonaws.com"}"#, "")));

        let restricting = [
            r#"{"StringEquals":{"aws:PrincipalAccount":"123456789012"}}"#,
            r#"{"StringEquals":{"AWS:PrincipalOrgID":"o-abc123"}}"#,
            r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/R"}}"#,
            r#"{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}"#,
            r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
            r#"{"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*"}}"#,
        ];
        for cond in restricting {
            assert!(
                !public(&s(r#""*""#, &format!(r#","Condition":{cond}"#))),
                "{cond}"
            );
        }
        let not_restricting = [
            r#"{"StringEqualsIfExists":{"aws:PrincipalAccount":"123456789012"}}"#,
            r#"{"ForAllValues:StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}"#,
            r#"{"StringNotEquals":{"aws:PrincipalAccount":"123456789012"}}"#,
            r#"{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/R"}}"#,
            r#"{"ArnLike":{"aws:PrincipalArn":"*"}}"#,
            r#"{"StringEquals":{"aws:PrincipalTag/team":"blue"}}"#,
            r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
            r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
            r#"{"StringLike":{"aws:PrincipalOrgPaths":"o-*/*"}}"#,
            r#"{"StringEquals":{"aws:PrincipalAccount":[]}}"#,
        ];
        for cond in not_restricting {
            assert!(
                public(&s(r#""*""#, &format!(r#","Condition":{cond}"#))),
                "{cond}"
            );
        }
        // One restricting condition among others is enough (conditions are ANDed).
        assert!(!public(&s(
            r#""*""#,
            r#","Condition":{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"aws:SourceAccount":"123456789012"}}"#
        )));

        // Allow with NotPrincipal is public; Deny statements never are.
        assert!(public(&stmt(
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}"#
        )));
        assert!(!public(&stmt(
            r#"{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}"#
        )));
        // Identity-style statement without a principal is not public.
        assert!(!public(&stmt(
            r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#
        )));
    }

    #[test]
    fn action_block_matching() {
        let a = ActionBlock::Action(vec!["secretsmanager:Get*".into(), "kms:Decrypt".into()]);
        assert!(a.matches("secretsmanager:GetSecretValue"));
        assert!(a.matches("SECRETSMANAGER:getsecretvalue"));
        assert!(a.matches("kms:Decrypt"));
        assert!(!a.matches("secretsmanager:PutSecretValue"));
        let n = ActionBlock::NotAction(vec!["secretsmanager:Get*".into()]);
        assert!(!n.matches("secretsmanager:GetSecretValue"));
        assert!(n.matches("secretsmanager:PutSecretValue"));
    }

    #[test]
    fn helpers() {
        for d in [
            "2020-04-01",
            "2020-04-01T00:00:00Z",
            "2020-04-01T00:00:00+0100",
            "-5",
            "0",
        ] {
            assert!(is_date(d), "{d}");
        }
        for d in [
            "",
            "2020-4-1",
            "2020-04-01T",
            "2020-04-01T00",
            "2020-04-01T00:00:00+25:00",
            "2020-04-01-01",
        ] {
            assert!(!is_date(d), "{d}");
        }
        assert!(
            is_base64("AAAA")
                && is_base64("AA==")
                && !is_base64("A===")
                && !is_base64("")
                && !is_base64("AA A")
        );
        assert_eq!(parse_cidr("10.0.0.0/8").map(|x| x.1), Some(8));
        assert_eq!(parse_cidr("::1").map(|x| x.1), Some(128));
        assert!(
            parse_cidr("10.0.0.0/").is_none()
                && parse_cidr("10.0.0.0/x").is_none()
                && parse_cidr("::/129").is_none()
        );
        let f = Finding::new(
            FindingType::Error,
            "X",
            "m",
            &JsonPath::default()
                .key("Statement")
                .index(2)
                .key("Condition")
                .key("Bool"),
        );
        assert_eq!(f.location_display(), "Statement[2].Condition.Bool");
    }

    #[test]
    fn every_prefix_of_a_policy_is_handled_without_panic() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"s","Effect":"Allow","Principal":{"AWS":["*"]},"NotAction":"secretsmanager:Get?","Resource":"arn:aws:secretsmanager:*:1:secret:x","Condition":{"ForAnyValue:DateLessThanIfExists":{"aws:CurrentTime":["2020-01-01T00:00:00.5-01:30"]},"IpAddress":{"aws:SourceIp":"::/0"}}}]}"#;
        assert!(!validation_passed(&validate_resource_policy(doc)));
        for (i, _) in doc.char_indices() {
            let f = validate_resource_policy(&doc[..i]);
            assert!(!validation_passed(&f), "prefix {i} passed");
        }
    }

    #[test]
    fn documented_secrets_manager_examples_pass() {
        // From the Secrets Manager user guide's resource-policy examples.
        let docs = [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/EC2RoleToAccessSecrets"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringNotEquals":{"aws:sourceVpce":"vpce-1234a5678b9012c"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"},"ArnLike":{"aws:SourceArn":"arn:aws:lambda:us-east-1:123456789012:function:MyFunction"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-exampleorgid"}}}]}"#,
        ];
        for doc in docs {
            let f = validate_resource_policy(doc);
            assert!(validation_passed(&f), "{doc}: {f:?}");
        }
    }
}
