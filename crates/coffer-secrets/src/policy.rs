//! Resource policies: Put/Get/Delete/Validate/ListResourcePolicies. Only the policy named
//! `default` exists, as in AWS.

use coffer_core::RequestContext;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::SecretsService;
use crate::error::SecretsError;
use crate::ops::{Obj, required};
use crate::validate;

const DEFAULT_POLICY: &str = "default";

/// One problem the policy checker reports.
pub(crate) struct PolicyFinding {
    pub check_name: String,
    pub message: String,
    /// The finding means the policy grants broad (public) access.
    pub public: bool,
}

/// THE single call site for resource-policy validation.
/// `Err(message)` = malformed (MalformedPolicyDocumentException); `Ok(findings)` otherwise.
// TODO(policy): replace the body with `coffer_policy::validate(doc)` and map its findings.
pub(crate) fn policy_check(doc: &str) -> Result<Vec<PolicyFinding>, String> {
    let v: Value = serde_json::from_str(doc)
        .map_err(|_| "This resource policy contains a syntax error.".to_owned())?;
    let obj = v
        .as_object()
        .ok_or_else(|| "The policy document must be a JSON object.".to_owned())?;
    let statements = match obj.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err("The policy document must contain a Statement.".into()),
    };
    let mut findings = Vec::new();
    for s in &statements {
        let allow = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        let principal = s.get("Principal");
        let wildcard = match principal {
            Some(Value::String(p)) => p == "*",
            Some(Value::Object(m)) => m.get("AWS").is_some_and(|a| match a {
                Value::String(p) => p == "*",
                Value::Array(ps) => ps.iter().any(|p| p.as_str() == Some("*")),
                _ => false,
            }),
            _ => false,
        };
        if allow && wildcard && s.get("Condition").is_none() {
            findings.push(PolicyFinding {
                check_name: "BROAD_ACCESS".into(),
                message: "This resource policy grants broad access to the secret.".into(),
                public: true,
            });
        }
    }
    Ok(findings)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutIn {
    secret_id: Option<String>,
    resource_policy: Option<String>,
    policy_name: Option<String>,
    block_public_policy: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NamedIn {
    secret_id: Option<String>,
    policy_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ValidateIn {
    secret_id: Option<String>,
    resource_policy: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    secret_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn policy_name(name: Option<&str>) -> Result<&str, SecretsError> {
    let name = name.unwrap_or(DEFAULT_POLICY);
    validate::length("policyName", name, 1, 64)?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SecretsError::validation(
            "policyName",
            "Member must satisfy regular expression pattern: [0-9A-Za-z\\-\\_]+",
        ));
    }
    Ok(name)
}

fn only_default(name: &str) -> Result<(), SecretsError> {
    if name != DEFAULT_POLICY {
        return Err(SecretsError::InvalidParameter(
            "You can only modify the resource policy named default.".into(),
        ));
    }
    Ok(())
}

fn check_doc(doc: &str, block_public: bool) -> Result<Vec<PolicyFinding>, SecretsError> {
    validate::length("resourcePolicy", doc, 1, 20480)?;
    let findings = policy_check(doc).map_err(SecretsError::MalformedPolicyDocument)?;
    if block_public && findings.iter().any(|f| f.public) {
        return Err(SecretsError::PublicPolicy(
            "This resource policy contains a statement that grants public access.".into(),
        ));
    }
    Ok(findings)
}

fn arn_name(meta: &crate::model::SecretMeta) -> Obj {
    let mut o = Obj::new();
    o.insert("ARN".into(), json!(meta.arn));
    o.insert("Name".into(), json!(meta.name));
    o
}

impl SecretsService {
    pub(crate) async fn put_resource_policy(
        &self,
        ctx: &RequestContext,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: PutIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let doc = required("resourcePolicy", input.resource_policy.as_deref())?;
        let name = policy_name(input.policy_name.as_deref())?;
        only_default(name)?;
        check_doc(doc, input.block_public_policy.unwrap_or(false))?;
        let meta = self
            .change_meta(ctx, id, |m| {
                m.policy = Some(doc.to_owned());
                Ok(())
            })
            .await?;
        let mut o = arn_name(&meta);
        o.insert("PolicyName".into(), json!(name));
        Ok(o)
    }

    pub(crate) async fn get_resource_policy(
        &self,
        ctx: &RequestContext,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: NamedIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        let name = policy_name(input.policy_name.as_deref())?;
        let l = self.resolve(ctx, id).await?;
        if l.meta.is_deleted() {
            return Err(SecretsError::marked_for_deletion());
        }
        if name != DEFAULT_POLICY {
            return Err(SecretsError::ResourceNotFound(
                "Secrets Manager can't find the specified resource policy.".into(),
            ));
        }
        let mut o = arn_name(&l.meta);
        if let Some(p) = &l.meta.policy {
            o.insert("ResourcePolicy".into(), json!(p));
        }
        o.insert("PolicyName".into(), json!(name));
        Ok(o)
    }

    pub(crate) async fn delete_resource_policy(
        &self,
        ctx: &RequestContext,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: NamedIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let name = policy_name(input.policy_name.as_deref())?;
        only_default(name)?;
        let meta = self
            .change_meta(ctx, id, |m| {
                m.policy = None;
                Ok(())
            })
            .await?;
        let mut o = arn_name(&meta);
        o.insert("PolicyName".into(), json!(name));
        Ok(o)
    }

    pub(crate) async fn validate_resource_policy(
        &self,
        ctx: &RequestContext,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: ValidateIn = validate::decode(body)?;
        let doc = required("resourcePolicy", input.resource_policy.as_deref())?;
        if let Some(id) = input.secret_id.as_deref() {
            let l = self.resolve(ctx, id).await?;
            if l.meta.is_deleted() {
                return Err(SecretsError::marked_for_deletion());
            }
        }
        let findings = check_doc(doc, false)?;
        let mut o = Obj::new();
        o.insert("PolicyValidationPassed".into(), json!(findings.is_empty()));
        o.insert(
            "ValidationErrors".into(),
            Value::Array(
                findings
                    .iter()
                    .map(|f| json!({"CheckName": f.check_name, "ErrorMessage": f.message}))
                    .collect(),
            ),
        );
        Ok(o)
    }

    pub(crate) async fn list_resource_policies(
        &self,
        ctx: &RequestContext,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: ListIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::range("maxResults", input.max_results, 1, 100)?;
        validate::opt_length("nextToken", input.next_token.as_deref(), 1, 4096)?;
        let l = self.resolve(ctx, id).await?;
        if l.meta.is_deleted() {
            return Err(SecretsError::marked_for_deletion());
        }
        // At most one policy exists, so no token is ever issued: any token is invalid.
        if input.next_token.is_some() {
            return Err(SecretsError::InvalidNextToken(
                "The NextToken value is invalid.".into(),
            ));
        }
        let list: Vec<Value> = l
            .meta
            .policy
            .iter()
            .map(|_| json!({"PolicyName": DEFAULT_POLICY}))
            .collect();
        let mut o = Obj::new();
        o.insert("ResourcePolicies".into(), Value::Array(list));
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_checks() {
        let private = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
        let public = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"secretsmanager:*","Resource":"*"}}"#;
        assert!(policy_check(private).unwrap().is_empty());
        assert!(policy_check(public).unwrap().iter().any(|f| f.public));
        assert!(policy_check("not json").is_err());
        assert!(policy_check("[]").is_err());
        assert!(policy_check("{}").is_err());
        assert!(matches!(
            check_doc(public, true),
            Err(SecretsError::PublicPolicy(_))
        ));
        assert!(check_doc(public, false).is_ok());
    }
}
