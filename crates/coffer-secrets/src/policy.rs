//! Resource policies: Put/Get/Delete/Validate/ListResourcePolicies. Only the policy named
//! `default` exists, as in AWS.

use coffer_core::authz::ConditionKey;
use coffer_service::opctx::OpCtx;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::SecretsService;
use crate::error::SecretsError;
use crate::ops::{Obj, arn_name, required};
use crate::validate;

const DEFAULT_POLICY: &str = "default";

/// What checking a resource policy found.
pub(crate) struct PolicyCheck {
    /// The policy grants access to anyone (BlockPublicPolicy refuses it).
    pub public: bool,
    /// The blocking findings, as ValidateResourcePolicy reports them.
    pub errors: Vec<coffer_policy::ValidationErrorsEntry>,
}

/// The single place resource policies are checked: the grammar (a malformed document is
/// `Err(message)`, naming the offending element), then the policy room's findings.
pub(crate) fn policy_check(doc: &str) -> Result<PolicyCheck, String> {
    let policy = coffer_policy::parse_resource_policy(doc).map_err(|e| e.to_string())?;
    let findings = coffer_policy::validate_resource_policy(doc);
    Ok(PolicyCheck {
        public: coffer_policy::is_public(&policy),
        errors: coffer_policy::validation_errors(&findings),
    })
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

fn check_doc(doc: &str, block_public: bool) -> Result<PolicyCheck, SecretsError> {
    validate::length("resourcePolicy", doc, 1, 20480)?;
    let checked = policy_check(doc).map_err(SecretsError::MalformedPolicyDocument)?;
    if block_public && checked.public {
        return Err(SecretsError::PublicPolicy(
            "This resource policy contains a statement that grants public access.".into(),
        ));
    }
    Ok(checked)
}

impl SecretsService {
    pub(crate) async fn put_resource_policy(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: PutIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let doc = required("resourcePolicy", input.resource_policy.as_deref())?;
        let name = policy_name(input.policy_name.as_deref())?;
        only_default(name)?;
        let block = input.block_public_policy.unwrap_or(false);
        check_doc(doc, block)?;
        let keys = [ConditionKey::bool(
            "secretsmanager:BlockPublicPolicy",
            block,
        )];
        let meta = self
            .change_meta(&ctx.with_keys(&keys), id, |m| {
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
        ctx: &OpCtx<'_>,
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
        ctx: &OpCtx<'_>,
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
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: ValidateIn = validate::decode(body)?;
        let doc = required("resourcePolicy", input.resource_policy.as_deref())?;
        if let Some(id) = input.secret_id.as_deref() {
            let l = self.resolve(ctx, id).await?;
            if l.meta.is_deleted() {
                return Err(SecretsError::marked_for_deletion());
            }
        } else {
            ctx.check_any()?;
        }
        let checked = check_doc(doc, false)?;
        let mut o = Obj::new();
        o.insert(
            "PolicyValidationPassed".into(),
            json!(checked.errors.is_empty()),
        );
        o.insert("ValidationErrors".into(), json!(checked.errors));
        Ok(o)
    }

    pub(crate) async fn list_resource_policies(
        &self,
        ctx: &OpCtx<'_>,
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
        let private = policy_check(private).unwrap();
        assert!(private.errors.is_empty() && !private.public);
        assert!(policy_check(public).unwrap().public);
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
