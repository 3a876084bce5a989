//! JSON → [`Policy`], following the IAM JSON policy grammar. Structural errors are rejected here;
//! softer problems (unknown actions, value formats) are left to validation findings.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::{
    ActionBlock, Condition, ConditionOperator, Effect, JsonPath, Operator, Policy, PolicyError,
    PolicyKind, PolicyVersion, Principal, PrincipalBlock, PrincipalMap, ResourceBlock,
    SetQualifier, Statement,
};

/// `NonEmptyResourcePolicyType`'s maximum in the Secrets Manager model.
pub const MAX_SECRETS_MANAGER_POLICY_CHARS: usize = 20_480;

/// Parses any policy against the grammar alone (see [`PolicyKind::Any`]).
pub fn parse(doc: &str) -> Result<Policy, PolicyError> {
    parse_as(doc, PolicyKind::Any)
}

/// Parses a Secrets Manager resource policy: size limit, then the resource-policy rules.
pub fn parse_resource_policy(doc: &str) -> Result<Policy, PolicyError> {
    let len = doc.chars().count();
    if len > MAX_SECRETS_MANAGER_POLICY_CHARS {
        return Err(PolicyError::TooLarge {
            len,
            max: MAX_SECRETS_MANAGER_POLICY_CHARS,
        });
    }
    parse_as(doc, PolicyKind::Resource)
}

pub fn parse_as(doc: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
    let value: Value = serde_json::from_str(doc).map_err(|e| PolicyError::Json(e.to_string()))?;
    policy(&value, kind)
}

fn invalid(location: &JsonPath, code: &'static str, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        location: location.clone(),
        code,
        message: message.into(),
    }
}

fn object<'a>(v: &'a Value, at: &JsonPath) -> Result<&'a Map<String, Value>, PolicyError> {
    v.as_object()
        .ok_or_else(|| invalid(at, "INVALID_STRUCTURE", "must be a JSON object"))
}

fn reject_unknown(
    obj: &Map<String, Value>,
    known: &[&str],
    at: &JsonPath,
) -> Result<(), PolicyError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            &at.key(k),
            "UNKNOWN_ELEMENT",
            format!(
                "unknown policy element; expected one of {}",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn string<'a>(v: &'a Value, at: &JsonPath) -> Result<&'a str, PolicyError> {
    v.as_str()
        .ok_or_else(|| invalid(at, "INVALID_STRUCTURE", "must be a string"))
}

/// A string or a non-empty array of strings, the shape of Action, Resource and principal values.
fn string_list(v: &Value, at: &JsonPath) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(invalid(
                    at,
                    "INVALID_STRUCTURE",
                    "must not be an empty array",
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| string(item, &at.index(i)).map(str::to_string))
                .collect()
        }
        _ => Err(invalid(
            at,
            "INVALID_STRUCTURE",
            "must be a string or an array of strings",
        )),
    }
}

fn policy(v: &Value, kind: PolicyKind) -> Result<Policy, PolicyError> {
    let root = JsonPath::default();
    let obj = object(v, &root)?;
    reject_unknown(obj, &["Version", "Id", "Statement"], &root)?;

    let (version, version_explicit) = match obj.get("Version") {
        None => (PolicyVersion::V2008_10_17, false),
        Some(v) => {
            let at = root.key("Version");
            match string(v, &at)? {
                "2012-10-17" => (PolicyVersion::V2012_10_17, true),
                "2008-10-17" => (PolicyVersion::V2008_10_17, true),
                _ => {
                    return Err(invalid(
                        &at,
                        "INVALID_VERSION",
                        "must be \"2012-10-17\" or \"2008-10-17\"",
                    ));
                }
            }
        }
    };
    let id = match obj.get("Id") {
        None => None,
        Some(v) => Some(string(v, &root.key("Id"))?.to_string()),
    };

    let at = root.key("Statement");
    let statements = match obj.get("Statement") {
        None => return Err(invalid(&at, "MISSING_STATEMENT", "is required")),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(invalid(
                    &at,
                    "MISSING_STATEMENT",
                    "must contain at least one statement",
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, s)| statement(s, &at.index(i), kind))
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(single @ Value::Object(_)) => vec![statement(single, &at, kind)?],
        Some(_) => {
            return Err(invalid(
                &at,
                "INVALID_STRUCTURE",
                "must be an object or an array of objects",
            ));
        }
    };

    let mut sids = HashSet::new();
    for (i, s) in statements.iter().enumerate() {
        if let Some(sid) = &s.sid
            && !sids.insert(sid.as_str())
        {
            // Duplicates need two statements, so `Statement` is an array here.
            return Err(invalid(
                &at.index(i).key("Sid"),
                "DUPLICATE_SID",
                "statement IDs (SID) in a policy must be unique",
            ));
        }
    }

    Ok(Policy {
        version,
        version_explicit,
        id,
        statements,
    })
}

const STATEMENT_ELEMENTS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Looks up the element pair `(positive, negative)` and insists on at most one of them.
fn one_of<'a>(
    obj: &'a Map<String, Value>,
    pos: &'static str,
    neg: &'static str,
    at: &JsonPath,
) -> Result<Option<(bool, &'a Value, JsonPath)>, PolicyError> {
    match (obj.get(pos), obj.get(neg)) {
        (Some(_), Some(_)) => Err(invalid(
            &at.key(neg),
            "INVALID_STRUCTURE",
            format!("a statement cannot contain both {pos} and {neg}"),
        )),
        (Some(v), None) => Ok(Some((false, v, at.key(pos)))),
        (None, Some(v)) => Ok(Some((true, v, at.key(neg)))),
        (None, None) => Ok(None),
    }
}

fn statement(v: &Value, at: &JsonPath, kind: PolicyKind) -> Result<Statement, PolicyError> {
    let obj = object(v, at)?;
    reject_unknown(obj, STATEMENT_ELEMENTS, at)?;

    let sid = match obj.get("Sid") {
        None => None,
        Some(v) => Some(string(v, &at.key("Sid"))?.to_string()),
    };

    let effect_at = at.key("Effect");
    let effect = match obj.get("Effect") {
        None => return Err(invalid(&effect_at, "MISSING_EFFECT", "is required")),
        Some(v) => match v.as_str() {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => {
                return Err(invalid(
                    &effect_at,
                    "INVALID_EFFECT",
                    "must be Allow or Deny",
                ));
            }
        },
    };

    let principal = match one_of(obj, "Principal", "NotPrincipal", at)? {
        Some((negated, v, p_at)) => {
            if kind == PolicyKind::Identity {
                return Err(invalid(
                    &p_at,
                    "UNSUPPORTED_ELEMENT",
                    "identity-based policies cannot name a principal",
                ));
            }
            let p = principal_value(v, &p_at)?;
            Some(if negated {
                PrincipalBlock::NotPrincipal(p)
            } else {
                PrincipalBlock::Principal(p)
            })
        }
        None => {
            if matches!(kind, PolicyKind::Resource | PolicyKind::Trust) {
                return Err(invalid(
                    &at.key("Principal"),
                    "MISSING_PRINCIPAL",
                    "is required in a resource-based policy (Principal or NotPrincipal)",
                ));
            }
            None
        }
    };

    let action = match one_of(obj, "Action", "NotAction", at)? {
        Some((negated, v, a_at)) => {
            let list = string_list(v, &a_at)?;
            for (i, a) in list.iter().enumerate() {
                check_action(a, &item_path(&a_at, v, i))?;
            }
            if negated {
                ActionBlock::NotAction(list)
            } else {
                ActionBlock::Action(list)
            }
        }
        None => {
            return Err(invalid(
                &at.key("Action"),
                "MISSING_ACTION",
                "is required (Action or NotAction)",
            ));
        }
    };

    let resource = match one_of(obj, "Resource", "NotResource", at)? {
        Some((negated, v, r_at)) => {
            if kind == PolicyKind::Trust {
                return Err(invalid(
                    &r_at,
                    "UNSUPPORTED_ELEMENT",
                    "a trust policy cannot name a resource",
                ));
            }
            let list = string_list(v, &r_at)?;
            for (i, r) in list.iter().enumerate() {
                check_resource(r, &item_path(&r_at, v, i))?;
            }
            Some(if negated {
                ResourceBlock::NotResource(list)
            } else {
                ResourceBlock::Resource(list)
            })
        }
        None if kind == PolicyKind::Trust => None,
        None => {
            return Err(invalid(
                &at.key("Resource"),
                "MISSING_RESOURCE",
                "is required (Resource or NotResource)",
            ));
        }
    };

    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(v) => condition_block(v, &at.key("Condition"))?,
    };

    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// Where item `i` of a string-or-array element lives.
fn item_path(at: &JsonPath, v: &Value, i: usize) -> JsonPath {
    if v.is_array() {
        at.index(i)
    } else {
        at.clone()
    }
}

fn principal_value(v: &Value, at: &JsonPath) -> Result<Principal, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principal::Any),
        Value::String(_) => Err(invalid(
            at,
            "INVALID_PRINCIPAL",
            "must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}",
        )),
        Value::Object(map) => {
            if map.is_empty() {
                return Err(invalid(
                    at,
                    "INVALID_PRINCIPAL",
                    "must name at least one principal type",
                ));
            }
            let mut out = PrincipalMap::default();
            for (kind, ids) in map {
                let k_at = at.key(kind);
                let list = string_list(ids, &k_at)?;
                for (i, id) in list.iter().enumerate() {
                    check_principal_id(kind, id, &item_path(&k_at, ids, i))?;
                }
                match kind.as_str() {
                    "AWS" => out.aws = list,
                    "Service" => out.service = list,
                    "Federated" => out.federated = list,
                    "CanonicalUser" => out.canonical_user = list,
                    _ => {
                        return Err(invalid(
                            &k_at,
                            "INVALID_PRINCIPAL",
                            "unknown principal type; expected AWS, Service, Federated or CanonicalUser",
                        ));
                    }
                }
            }
            Ok(Principal::Specific(out))
        }
        _ => Err(invalid(
            at,
            "INVALID_PRINCIPAL",
            "must be \"*\" or an object",
        )),
    }
}

fn check_principal_id(kind: &str, id: &str, at: &JsonPath) -> Result<(), PolicyError> {
    if id.is_empty() {
        return Err(invalid(at, "INVALID_PRINCIPAL", "must not be empty"));
    }
    if kind == "AWS" && id != "*" {
        let is_account = id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit());
        if !is_account && !id.starts_with("arn:") {
            return Err(invalid(
                at,
                "INVALID_PRINCIPAL",
                "must be \"*\", a 12-digit account ID or an ARN",
            ));
        }
        // IAM accepts "*" alone, never as part of an ARN or id.
        if id.contains('*') || id.contains('?') {
            return Err(invalid(
                at,
                "INVALID_PRINCIPAL",
                "wildcards are not allowed in a principal ARN; use a condition on aws:PrincipalArn",
            ));
        }
    }
    Ok(())
}

fn check_action(a: &str, at: &JsonPath) -> Result<(), PolicyError> {
    if a == "*" {
        return Ok(());
    }
    let valid = match a.split_once(':') {
        Some((service, name)) => {
            !service.is_empty()
                && !name.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'?' | b'-' | b'_'))
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(invalid(
            at,
            "INVALID_ACTION",
            format!("action \"{a}\" must be \"*\" or have the form service:ActionName"),
        ))
    }
}

fn check_resource(r: &str, at: &JsonPath) -> Result<(), PolicyError> {
    // arn:partition:service:region:account:resource — the resource part may contain colons.
    if r == "*" || (r.starts_with("arn:") && r.splitn(6, ':').count() == 6) {
        Ok(())
    } else {
        Err(invalid(
            at,
            "INVALID_ARN_RESOURCE",
            format!(
                "resource \"{r}\" must be \"*\" or an ARN (arn:partition:service:region:account:resource)"
            ),
        ))
    }
}

fn condition_block(v: &Value, at: &JsonPath) -> Result<Vec<Condition>, PolicyError> {
    let ops = object(v, at)?;
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        let op_at = at.key(op_name);
        let operator = parse_operator(op_name).ok_or_else(|| {
            invalid(
                &op_at,
                "INVALID_CONDITION_OPERATOR",
                "unknown condition operator",
            )
        })?;
        if operator.base == Operator::Null && operator.if_exists {
            return Err(invalid(
                &op_at,
                "INVALID_CONDITION_OPERATOR",
                "Null cannot be combined with IfExists",
            ));
        }
        let keys = object(keys, &op_at)?;
        if keys.is_empty() {
            return Err(invalid(
                &op_at,
                "INVALID_STRUCTURE",
                "must contain at least one condition key",
            ));
        }
        for (key, values) in keys {
            let k_at = op_at.key(key);
            if key.is_empty() {
                return Err(invalid(
                    &k_at,
                    "INVALID_CONDITION_KEY",
                    "condition key must not be empty",
                ));
            }
            out.push(Condition {
                operator,
                key: key.clone(),
                values: condition_values(values, &k_at)?,
            });
        }
    }
    Ok(out)
}

/// Splits `ForAnyValue:StringLikeIfExists` into its qualifier, base operator and suffix.
pub(crate) fn parse_operator(name: &str) -> Option<ConditionOperator> {
    let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (Some(SetQualifier::ForAnyValue), r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (Some(SetQualifier::ForAllValues), r)
    } else {
        (None, name)
    };
    if let Some(base) = Operator::from_name(rest) {
        return Some(ConditionOperator {
            set,
            base,
            if_exists: false,
        });
    }
    let base = Operator::from_name(rest.strip_suffix("IfExists")?)?;
    Some(ConditionOperator {
        set,
        base,
        if_exists: true,
    })
}

fn scalar(v: &Value, at: &JsonPath) -> Result<String, PolicyError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(invalid(
            at,
            "INVALID_STRUCTURE",
            "condition values must be strings, numbers or booleans",
        )),
    }
}

fn condition_values(v: &Value, at: &JsonPath) -> Result<Vec<String>, PolicyError> {
    match v {
        // An empty list is legal: with ForAllValues it is how "no values at all" is written.
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| scalar(item, &at.index(i)))
            .collect(),
        other => Ok(vec![scalar(other, at)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(doc: &str) -> String {
        match parse(doc) {
            Ok(p) => panic!("expected an error, parsed {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn ok(doc: &str) -> Policy {
        match parse(doc) {
            Ok(p) => p,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    const SM_EXAMPLE: &str = r#"{
      "Version": "2012-10-17",
      "Statement": [
        {
          "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::123456789012:role/MyRole"},
          "Action": "secretsmanager:GetSecretValue",
          "Resource": "*"
        }
      ]
    }"#;

    #[test]
    fn parses_the_secrets_manager_example() {
        let p = ok(SM_EXAMPLE);
        assert_eq!(p.version, PolicyVersion::V2012_10_17);
        assert!(p.version_explicit);
        assert_eq!(p.id, None);
        assert_eq!(p.statements.len(), 1);
        let s = &p.statements[0];
        assert_eq!(s.effect, Effect::Allow);
        assert_eq!(
            s.principal,
            Some(PrincipalBlock::Principal(Principal::Specific(
                PrincipalMap {
                    aws: vec!["arn:aws:iam::123456789012:role/MyRole".into()],
                    ..Default::default()
                }
            )))
        );
        assert_eq!(
            s.action,
            ActionBlock::Action(vec!["secretsmanager:GetSecretValue".into()])
        );
        assert_eq!(s.resource, Some(ResourceBlock::Resource(vec!["*".into()])));
        assert!(s.conditions.is_empty());
    }

    #[test]
    fn single_statement_object_and_default_version() {
        let p = ok(
            r#"{"Id":"x","Statement":{"Sid":"1","Effect":"Deny","NotAction":["s3:*","iam:*"],"NotResource":"arn:aws:s3:::b/*"}}"#,
        );
        assert_eq!(p.version, PolicyVersion::V2008_10_17);
        assert!(!p.version_explicit);
        assert!(!p.version.supports_policy_variables());
        assert_eq!(p.id.as_deref(), Some("x"));
        let s = &p.statements[0];
        assert_eq!(s.sid.as_deref(), Some("1"));
        assert_eq!(s.effect, Effect::Deny);
        assert_eq!(s.principal, None);
        assert_eq!(
            s.action,
            ActionBlock::NotAction(vec!["s3:*".into(), "iam:*".into()])
        );
        assert_eq!(
            s.resource,
            Some(ResourceBlock::NotResource(vec!["arn:aws:s3:::b/*".into()]))
        );
    }

    #[test]
    fn effect_errors_name_the_statement() {
        let doc = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"allow","Action":"*","Resource":"*"}]}"#;
        assert_eq!(err(doc), "Statement[1].Effect: must be Allow or Deny");
        assert_eq!(
            err(r#"{"Statement":{"Action":"*","Resource":"*"}}"#),
            "Statement.Effect: is required"
        );
        assert_eq!(
            err(r#"{"Statement":[{"Effect":true,"Action":"*","Resource":"*"}]}"#),
            "Statement[0].Effect: must be Allow or Deny"
        );
    }

    #[test]
    fn top_level_errors() {
        assert!(err("").starts_with("Policy: the document is not valid JSON"));
        assert!(err("{").starts_with("Policy: the document is not valid JSON"));
        assert_eq!(err("[]"), "Policy: must be a JSON object");
        assert_eq!(err(r#"{"Version":"2012-10-17"}"#), "Statement: is required");
        assert_eq!(
            err(r#"{"Statement":[]}"#),
            "Statement: must contain at least one statement"
        );
        assert_eq!(
            err(r#"{"Statement":"x"}"#),
            "Statement: must be an object or an array of objects"
        );
        assert_eq!(
            err(r#"{"Version":"2012-10-18","Statement":[]}"#),
            "Version: must be \"2012-10-17\" or \"2008-10-17\""
        );
        assert_eq!(
            err(r#"{"Version":20121017,"Statement":[]}"#),
            "Version: must be a string"
        );
        assert!(err(r#"{"Statement":[],"Extra":1}"#).starts_with("Extra: unknown policy element"));
        assert_eq!(err(r#"{"Id":5,"Statement":[]}"#), "Id: must be a string");
        assert_eq!(
            err(r#"{"Statement":[5]}"#),
            "Statement[0]: must be a JSON object"
        );
    }

    #[test]
    fn statement_element_errors() {
        let cases = [
            (
                r#"{"Effect":"Allow","Resource":"*"}"#,
                "Statement[0].Action: is required (Action or NotAction)",
            ),
            (
                r#"{"Effect":"Allow","Action":"*"}"#,
                "Statement[0].Resource: is required (Resource or NotResource)",
            ),
            (
                r#"{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}"#,
                "Statement[0].NotAction: a statement cannot contain both Action and NotAction",
            ),
            (
                r#"{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}"#,
                "Statement[0].NotResource: a statement cannot contain both Resource and NotResource",
            ),
            (
                r#"{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*","NotPrincipal":"*"}"#,
                "Statement[0].NotPrincipal: a statement cannot contain both Principal and NotPrincipal",
            ),
            (
                r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#,
                "Statement[0].Action: must not be an empty array",
            ),
            (
                r#"{"Effect":"Allow","Action":["s3:Get",1],"Resource":"*"}"#,
                "Statement[0].Action[1]: must be a string",
            ),
            (
                r#"{"Effect":"Allow","Action":{},"Resource":"*"}"#,
                "Statement[0].Action: must be a string or an array of strings",
            ),
            (
                r#"{"Sid":1,"Effect":"Allow","Action":"*","Resource":"*"}"#,
                "Statement[0].Sid: must be a string",
            ),
        ];
        for (stmt, want) in cases {
            assert_eq!(err(&format!(r#"{{"Statement":[{stmt}]}}"#)), want, "{stmt}");
        }
        assert!(
            err(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Actions":"x"}]}"#)
                .starts_with("Statement[0].Actions: unknown policy element")
        );
    }

    #[test]
    fn action_format() {
        for good in [
            "*",
            "s3:*",
            "secretsmanager:Get*",
            "ec2:Describe?nstances",
            "execute-api:Invoke",
            "SecretsManager:getsecretvalue",
        ] {
            ok(&format!(
                r#"{{"Statement":{{"Effect":"Allow","Action":"{good}","Resource":"*"}}}}"#
            ));
        }
        for bad in [
            "",
            "s3",
            ":Get",
            "s3:",
            "s3:Get Object",
            "s 3:Get",
            "s3:Get:Object",
        ] {
            let e = err(&format!(
                r#"{{"Statement":{{"Effect":"Allow","Action":["*","{bad}"],"Resource":"*"}}}}"#
            ));
            assert!(e.starts_with("Statement.Action[1]: action"), "{bad}: {e}");
        }
    }

    #[test]
    fn resource_format() {
        for good in [
            "*",
            "arn:aws:s3:::bucket",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
            "arn:*:iam::*:role/a:b",
            "arn:aws:s3:::${aws:username}/*",
        ] {
            ok(&format!(
                r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"{good}"}}}}"#
            ));
        }
        for bad in [
            "",
            "bucket",
            "arn:aws:s3",
            "arn:aws:s3:::",
            "ARN:aws:s3:::b",
        ] {
            let doc =
                format!(r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"{bad}"}}}}"#);
            if bad == "arn:aws:s3:::" {
                // Six parts, empty resource: syntactically an ARN; left to validation.
                ok(&doc);
                continue;
            }
            assert!(
                err(&doc).starts_with("Statement.Resource: resource"),
                "{bad}"
            );
        }
    }

    #[test]
    fn principals() {
        let p =
            ok(r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#);
        assert_eq!(
            p.statements[0].principal,
            Some(PrincipalBlock::Principal(Principal::Any))
        );

        let p = ok(
            r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["123456789012","arn:aws:iam::123456789012:user/Bob"],"Service":"ec2.amazonaws.com","Federated":"cognito-identity.amazonaws.com","CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},"Action":"*","Resource":"*"}}"#,
        );
        let Some(PrincipalBlock::NotPrincipal(Principal::Specific(m))) = &p.statements[0].principal
        else {
            panic!("expected NotPrincipal map");
        };
        assert_eq!(m.aws.len(), 2);
        assert_eq!(m.service, vec!["ec2.amazonaws.com".to_string()]);
        assert_eq!(m.federated.len(), 1);
        assert_eq!(m.canonical_user.len(), 1);
        assert!(!m.is_empty());

        let bad = [
            (
                r#""arn:aws:iam::123456789012:root""#,
                "Statement.Principal: must be \"*\" or an object",
            ),
            (
                r#"{}"#,
                "Statement.Principal: must name at least one principal type",
            ),
            (
                r#"{"User":"x"}"#,
                "Statement.Principal.User: unknown principal type",
            ),
            (
                r#"{"AWS":"bob"}"#,
                "Statement.Principal.AWS: must be \"*\", a 12-digit account ID or an ARN",
            ),
            (
                r#"{"AWS":["*","arn:aws:iam::*:root"]}"#,
                "Statement.Principal.AWS[1]: wildcards are not allowed",
            ),
            (
                r#"{"AWS":[]}"#,
                "Statement.Principal.AWS: must not be an empty array",
            ),
            (
                r#"{"Service":""}"#,
                "Statement.Principal.Service: must not be empty",
            ),
            ("5", "Statement.Principal: must be \"*\" or an object"),
        ];
        for (principal, want) in bad {
            let e = err(&format!(
                r#"{{"Statement":{{"Effect":"Allow","Principal":{principal},"Action":"*","Resource":"*"}}}}"#
            ));
            assert!(e.starts_with(want), "{principal}: {e}");
        }
    }

    #[test]
    fn kinds() {
        let identity = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
        let with_principal = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"*","Resource":"*"}}"#;
        let trust = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;

        assert!(parse_as(identity, PolicyKind::Identity).is_ok());
        assert_eq!(
            parse_as(with_principal, PolicyKind::Identity)
                .unwrap_err()
                .to_string(),
            "Statement.Principal: identity-based policies cannot name a principal"
        );
        let e = parse_as(identity, PolicyKind::Resource).unwrap_err();
        assert_eq!(e.issue_code(), "MISSING_PRINCIPAL");
        assert!(
            e.to_string()
                .starts_with("Statement.Principal: is required")
        );
        assert!(parse_as(with_principal, PolicyKind::Resource).is_ok());

        let t = parse_as(trust, PolicyKind::Trust).unwrap();
        assert_eq!(t.statements[0].resource, None);
        assert!(
            parse_as(with_principal, PolicyKind::Trust)
                .unwrap_err()
                .to_string()
                .contains("cannot name a resource")
        );
        assert!(
            parse_as(trust, PolicyKind::Resource)
                .unwrap_err()
                .to_string()
                .starts_with("Statement.Resource: is required")
        );
    }

    #[test]
    fn size_limit_for_secrets_manager() {
        let pad = " ".repeat(MAX_SECRETS_MANAGER_POLICY_CHARS - SM_EXAMPLE.len());
        let at_limit = format!("{SM_EXAMPLE}{pad}");
        assert_eq!(at_limit.chars().count(), MAX_SECRETS_MANAGER_POLICY_CHARS);
        assert!(parse_resource_policy(&at_limit).is_ok());
        let over = format!("{at_limit} ");
        let e = parse_resource_policy(&over).unwrap_err();
        assert_eq!(
            e,
            PolicyError::TooLarge {
                len: 20_481,
                max: 20_480
            }
        );
        assert_eq!(e.issue_code(), "POLICY_SIZE_EXCEEDS_RESOURCE_POLICY_QUOTA");
    }

    #[test]
    fn duplicate_sids() {
        let e = err(r#"{"Statement":[
            {"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},
            {"Sid":"B","Effect":"Allow","Action":"*","Resource":"*"},
            {"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}"#);
        assert_eq!(
            e,
            "Statement[2].Sid: statement IDs (SID) in a policy must be unique"
        );
    }

    #[test]
    fn condition_operators_parse_with_qualifiers() {
        let cases = [
            ("StringEquals", None, Operator::StringEquals, false),
            ("StringLikeIfExists", None, Operator::StringLike, true),
            (
                "ForAnyValue:StringLike",
                Some(SetQualifier::ForAnyValue),
                Operator::StringLike,
                false,
            ),
            (
                "ForAllValues:StringEqualsIgnoreCaseIfExists",
                Some(SetQualifier::ForAllValues),
                Operator::StringEqualsIgnoreCase,
                true,
            ),
            (
                "NumericLessThanEquals",
                None,
                Operator::NumericLessThanEquals,
                false,
            ),
            (
                "DateGreaterThanIfExists",
                None,
                Operator::DateGreaterThan,
                true,
            ),
            ("Bool", None, Operator::Bool, false),
            ("BinaryEquals", None, Operator::BinaryEquals, false),
            ("NotIpAddress", None, Operator::NotIpAddress, false),
            ("ArnNotLikeIfExists", None, Operator::ArnNotLike, true),
            ("Null", None, Operator::Null, false),
        ];
        for (name, set, base, if_exists) in cases {
            let op = parse_operator(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(
                op,
                ConditionOperator {
                    set,
                    base,
                    if_exists
                },
                "{name}"
            );
            assert_eq!(op.to_string(), name);
        }
        for bad in [
            "stringequals",
            "StringEqual",
            "IfExists",
            "ForAnyValue:",
            "ForSomeValues:StringLike",
            "StringEqualsIfExistsIfExists",
            "ForAnyValue:ForAllValues:StringLike",
            "",
        ] {
            assert_eq!(parse_operator(bad), None, "{bad}");
        }
        // Every operator round-trips through its name.
        for op in Operator::ALL {
            assert_eq!(Operator::from_name(op.as_str()), Some(*op));
        }
        assert_eq!(Operator::ALL.len(), 27);
    }

    #[test]
    fn condition_block() {
        let p = ok(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
            "StringEquals":{"aws:PrincipalOrgID":"o-123","secretsmanager:ResourceTag/env":["prod","stage"]},
            "Bool":{"aws:SecureTransport":false},
            "NumericLessThan":{"aws:MultiFactorAuthAge":3600},
            "ForAllValues:StringLike":{"aws:TagKeys":[]}}}}"#,
        );
        let c = &p.statements[0].conditions;
        assert_eq!(c.len(), 5);
        let find = |k: &str| {
            c.iter()
                .find(|x| x.key == k)
                .unwrap_or_else(|| panic!("{k}"))
        };
        assert_eq!(
            find("secretsmanager:ResourceTag/env").values,
            vec!["prod", "stage"]
        );
        assert_eq!(find("aws:SecureTransport").values, vec!["false"]);
        assert_eq!(find("aws:SecureTransport").operator.base, Operator::Bool);
        assert_eq!(find("aws:MultiFactorAuthAge").values, vec!["3600"]);
        assert!(find("aws:TagKeys").values.is_empty());
        assert_eq!(
            find("aws:TagKeys").operator.set,
            Some(SetQualifier::ForAllValues)
        );

        let bad = [
            (
                r#"{"StringEquals":"x"}"#,
                "Statement.Condition.StringEquals: must be a JSON object",
            ),
            (
                r#"{"StringEqualz":{"a:b":"x"}}"#,
                "Statement.Condition.StringEqualz: unknown condition operator",
            ),
            (
                r#"{"NullIfExists":{"a:b":"true"}}"#,
                "Statement.Condition.NullIfExists: Null cannot be combined with IfExists",
            ),
            (
                r#"{"StringEquals":{}}"#,
                "Statement.Condition.StringEquals: must contain at least one condition key",
            ),
            (
                r#"{"StringEquals":{"":"x"}}"#,
                "Statement.Condition.StringEquals.: condition key must not be empty",
            ),
            (
                r#"{"StringEquals":{"a:b":null}}"#,
                "Statement.Condition.StringEquals.a:b: condition values must be",
            ),
            (
                r#"{"StringEquals":{"a:b":["x",["y"]]}}"#,
                "Statement.Condition.StringEquals.a:b[1]: condition values must be",
            ),
            (
                r#"{"StringEquals":{"a:b":{"c":"d"}}}"#,
                "Statement.Condition.StringEquals.a:b: condition values must be",
            ),
            ("[]", "Statement.Condition: must be a JSON object"),
        ];
        for (cond, want) in bad {
            let e = err(&format!(
                r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{cond}}}}}"#
            ));
            assert!(e.starts_with(want), "{cond}: {e}");
        }
    }

    /// Examples from the IAM User Guide's policy reference and the Secrets Manager guide.
    #[test]
    fn documented_examples_parse() {
        let docs = [
            // Secrets Manager: cross-account access to one role.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::AccountId:role/EC2RoleToAccessSecrets"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#,
            // Secrets Manager: deny access unless from a VPC endpoint.
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"RestrictGetSecretValueoperation","Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringNotEquals":{"aws:sourceVpce":"vpce-1234a5678b9012c"}}}]}"#,
            // Secrets Manager: attribute-based access with tags.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/AccessProject":"${aws:PrincipalTag/AccessProject}"}}}]}"#,
            // IAM: NotPrincipal with Deny.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/Bob","arn:aws:iam::444455556666:root"]},"Action":"s3:*","Resource":["arn:aws:s3:::BUCKETNAME","arn:aws:s3:::BUCKETNAME/*"]}]}"#,
            // IAM: MFA, dates and IP ranges.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]},"Bool":{"aws:ViaAWSService":"false"}}},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}]}"#,
            // IAM: multivalued keys.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:PutItem","Resource":"arn:aws:dynamodb:*:*:table/Thread","Condition":{"ForAllValues:StringEquals":{"dynamodb:Attributes":["ID","Message","Tags"]}}},{"Effect":"Deny","Action":"ec2:CreateTags","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["webserver"]},"Null":{"aws:RequestTag/owner":"true"}}}]}"#,
            // IAM: NotAction with NotResource and policy variables.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","NotResource":"arn:aws:iam::*:user/${aws:username}"},{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bucket","Condition":{"StringLike":{"s3:prefix":["${aws:username}/*"]}}}]}"#,
            // Old-style 2008 policy.
            r#"{"Version":"2008-10-17","Id":"Policy1","Statement":[{"Sid":"Stmt1","Effect":"Allow","Principal":{"AWS":"*"},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-2:444455556666:queue1","Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-2:444455556666:topic"}}}]}"#,
        ];
        for doc in docs {
            let p = ok(doc);
            assert!(!p.statements.is_empty());
        }
    }

    #[test]
    fn error_location_and_code_are_structured() {
        let e = parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#).unwrap_err();
        assert_eq!(e.issue_code(), "INVALID_EFFECT");
        assert_eq!(e.location().to_strings(), vec!["Statement", "1", "Effect"]);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).is_err());
        for doc in [
            "null",
            "1",
            "\"x\"",
            "{\"Statement\":null}",
            "{\"Statement\":[null]}",
            "{\"Statement\":[{\"Effect\":null}]}",
        ] {
            assert!(parse(doc).is_err(), "{doc}");
        }
    }
}
