//! Grants: CreateGrant, ListGrants, RetireGrant, RevokeGrant, and what a grant allows.
//!
//! A grant lets its grantee principal (a user or role ARN, matched against the caller and a
//! role session's role) perform the grant's operations on its key where neither the key policy
//! nor IAM allows them; an explicit deny in either still wins (see [`Keyring::authorize_key`]).
//! Encryption-context constraints apply to the cryptographic operations only (keys compared
//! without case, values with), not to DescribeKey, CreateGrant or RetireGrant. A grant allowing
//! CreateGrant allows grants with no more operations and at least its constraint; one allowing
//! RetireGrant lets its grantee retire that grant. A grant's retiring principal may retire it.
//!
//! Record: `kms/grant/{account}/{region}/{key id}/{grant id}`. A grant token is a tamper-checked
//! token naming the key and the grant, so RetireGrant can find the grant from the token alone.
//! Grants are read from the store when a decision needs them (only after the policies did not
//! allow), so a revoked grant stops allowing at once.

use std::collections::BTreeMap;

use coffer_service::opctx::OpCtx;
use coffer_store::WriteBatch;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::validate;
use super::{KmsError, KmsService, Obj, input, required};
use crate::{EncryptionContext, KeyError, KeyState, Keyring};

const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];
/// The operations a grant for a symmetric encryption key may allow.
const SYMMETRIC_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];
const TOKEN_SCOPE: &str = "kms/grant-token";

pub(crate) fn grant_prefix(account: &str, region: &str, key_id: &str) -> Vec<u8> {
    format!("kms/grant/{account}/{region}/{key_id}/").into_bytes()
}

fn grant_key(account: &str, region: &str, key_id: &str, grant_id: &str) -> Vec<u8> {
    let mut k = grant_prefix(account, region, key_id);
    k.extend_from_slice(grant_id.as_bytes());
    k
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Constraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encryption_context_equals: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encryption_context_subset: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GrantRecord {
    grant_id: String,
    key_id: String,
    name: Option<String>,
    /// Unix seconds.
    creation_date: i64,
    grantee_principal: String,
    retiring_principal: Option<String>,
    issuing_account: String,
    operations: Vec<String>,
    constraints: Option<Constraints>,
}

impl GrantRecord {
    fn to_json(&self, key_arn: &str) -> Value {
        let mut g = json!({
            "KeyId": key_arn,
            "GrantId": self.grant_id,
            "CreationDate": self.creation_date,
            "GranteePrincipal": self.grantee_principal,
            "IssuingAccount": self.issuing_account,
            "Operations": self.operations,
        });
        if let Some(n) = &self.name {
            g["Name"] = json!(n);
        }
        if let Some(r) = &self.retiring_principal {
            g["RetiringPrincipal"] = json!(r);
        }
        if let Some(c) = &self.constraints {
            let mut cj = json!({});
            if let Some(e) = &c.encryption_context_equals {
                cj["EncryptionContextEquals"] = json!(e);
            }
            if let Some(s) = &c.encryption_context_subset {
                cj["EncryptionContextSubset"] = json!(s);
            }
            g["Constraints"] = cj;
        }
        g
    }

    /// Same grant as far as CreateGrant's idempotency by name goes.
    fn same_as(&self, other: &GrantRecord) -> bool {
        self.name == other.name
            && self.grantee_principal == other.grantee_principal
            && self.retiring_principal == other.retiring_principal
            && self.operations == other.operations
            && self.constraints == other.constraints
    }
}

/// What a decision asks of a grant besides its grantee and operation.
#[derive(Clone, Copy)]
pub(crate) enum GrantUse<'a> {
    /// An operation with the request's encryption context (empty when it has none).
    Context(EncryptionContext<'a>),
    /// CreateGrant of a grant with these operations and constraints.
    Create(&'a [String], Option<&'a Constraints>),
    /// RetireGrant of the grant with this id.
    Retire(&'a str),
}

/// Operations a grant's encryption-context constraint does not apply to.
const UNCONSTRAINED: &[&str] = &["DescribeKey", "CreateGrant", "RetireGrant"];

/// `want`'s pairs all appear in `have` (names without case, values exactly).
fn pairs_within<'a>(
    want: impl IntoIterator<Item = (&'a str, &'a str)>,
    have: EncryptionContext<'_>,
) -> bool {
    want.into_iter().all(|(k, v)| {
        have.iter()
            .any(|(hk, hv)| hk.eq_ignore_ascii_case(k) && *hv == v)
    })
}

fn map_pairs(m: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Constraints {
    /// Whether a request with encryption context `context` meets the constraint.
    fn admits(&self, context: EncryptionContext<'_>) -> bool {
        if let Some(eq) = &self.encryption_context_equals {
            return eq.len() == context.len() && pairs_within(map_pairs(eq), context);
        }
        self.encryption_context_subset
            .as_ref()
            .is_none_or(|sub| pairs_within(map_pairs(sub), context))
    }

    /// Whether a grant constrained by `new` is at least as strict as this constraint.
    fn covered_by(&self, new: Option<&Constraints>) -> bool {
        let Some(new) = new else {
            return false;
        };
        match (
            &self.encryption_context_equals,
            &self.encryption_context_subset,
        ) {
            (Some(eq), _) => new
                .encryption_context_equals
                .as_ref()
                .is_some_and(|n| n.len() == eq.len() && pairs_within(map_pairs(eq), &map_pairs(n))),
            (None, Some(sub)) => new
                .encryption_context_equals
                .as_ref()
                .or(new.encryption_context_subset.as_ref())
                .is_some_and(|n| pairs_within(map_pairs(sub), &map_pairs(n))),
            (None, None) => true,
        }
    }
}

impl GrantRecord {
    /// Whether this grant lets `caller` perform `operation` (a grant operation name) as `usage`
    /// describes.
    fn allows(&self, caller: &coffer_core::Caller, operation: &str, usage: GrantUse<'_>) -> bool {
        let grantee = self.grantee_principal == caller.principal_arn
            || self.grantee_principal == caller.principal_arn_for_policy();
        if let GrantUse::Retire(id) = usage {
            let retiring = self.retiring_principal.as_deref().is_some_and(|r| {
                r == caller.principal_arn || r == caller.principal_arn_for_policy()
            });
            return id == self.grant_id
                && (retiring || (grantee && self.operations.iter().any(|o| o == "RetireGrant")));
        }
        if !grantee || !self.operations.iter().any(|o| o == operation) {
            return false;
        }
        if let GrantUse::Create(ops, _) = usage
            && !ops.iter().all(|o| self.operations.contains(o))
        {
            return false;
        }
        let Some(c) = &self.constraints else {
            return true;
        };
        match usage {
            GrantUse::Create(_, new) => c.covered_by(new),
            _ if UNCONSTRAINED.contains(&operation) => true,
            GrantUse::Context(context) => c.admits(context),
            GrantUse::Retire(_) => false,
        }
    }
}

impl Keyring {
    /// Whether a grant on the key `key_id` (in the caller's account and region) lets the caller
    /// perform `action` (`kms:Decrypt`, ...) as `usage` describes.
    pub(crate) async fn grant_allows(
        &self,
        ctx: &coffer_core::RequestContext,
        key_id: &str,
        action: &str,
        usage: GrantUse<'_>,
    ) -> Result<bool, KeyError> {
        let Some(operation) = action
            .strip_prefix("kms:")
            .filter(|o| GRANT_OPERATIONS.contains(o))
        else {
            return Ok(false);
        };
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        let entries = match usage {
            GrantUse::Retire(id) => self
                .store()
                .get(&grant_key(account, region, key_id, id))
                .await?
                .into_iter()
                .collect(),
            _ => {
                let prefix = grant_prefix(account, region, key_id);
                self.store()
                    .scan(&prefix, &coffer_store::prefix_end(&prefix), usize::MAX)
                    .await?
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect::<Vec<_>>()
            }
        };
        for e in entries {
            let g: GrantRecord = crate::parse(&e, "grant record")?;
            if g.allows(&ctx.caller, operation, usage) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConstraintsIn {
    encryption_context_equals: Option<BTreeMap<String, String>>,
    encryption_context_subset: Option<BTreeMap<String, String>>,
    source_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateIn {
    key_id: Option<String>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    operations: Option<Vec<String>>,
    constraints: Option<ConstraintsIn>,
    grant_tokens: Option<Vec<String>>,
    name: Option<String>,
    dry_run: Option<bool>,
    grantee_service_principal: Option<String>,
    retiring_service_principal: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
    grant_id: Option<String>,
    grantee_principal: Option<String>,
    grantee_service_principal: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetirableIn {
    retiring_principal: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetireIn {
    grant_token: Option<String>,
    key_id: Option<String>,
    grant_id: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RevokeIn {
    key_id: Option<String>,
    grant_id: Option<String>,
    dry_run: Option<bool>,
}

/// `PrincipalIdType`: 1–256 characters of `[\w+=,.@:/-]`.
fn principal(member: &str, v: &str) -> Result<(), KmsError> {
    validate::length(member, v, 1, 256)?;
    if !v
        .chars()
        .all(|c| c.is_alphanumeric() || "_+=,.@:/-".contains(c))
    {
        return Err(KmsError::validation(
            member,
            "Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$",
        ));
    }
    Ok(())
}

fn grant_id(member: &str, v: &str) -> Result<(), KmsError> {
    validate::length(member, v, 1, 128)
}

fn unsupported_service_principal(v: &Option<String>) -> Result<(), KmsError> {
    if v.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Service principals in grants are not supported by this key service.".into(),
        ));
    }
    Ok(())
}

impl KmsService {
    pub(crate) async fn create_grant(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: CreateIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        validate::key_id("keyId", key)?;
        let ops = required("operations", i.operations.as_ref())?;
        for op in ops {
            validate::one_of("operations.member", op, GRANT_OPERATIONS)?;
        }
        if let Some(g) = &i.grantee_principal {
            principal("granteePrincipal", g)?;
        }
        if let Some(r) = &i.retiring_principal {
            principal("retiringPrincipal", r)?;
        }
        if let Some(n) = &i.name {
            validate::length("name", n, 1, 256)?;
            if !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'))
            {
                return Err(KmsError::validation(
                    "name",
                    "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
                ));
            }
        }
        validate::grant_tokens(i.grant_tokens.as_ref())?;
        unsupported_service_principal(&i.grantee_service_principal)?;
        unsupported_service_principal(&i.retiring_service_principal)?;
        let grantee = i.grantee_principal.clone().ok_or_else(|| {
            KmsError::Validation(
                "Either GranteePrincipal or GranteeServicePrincipal is required.".into(),
            )
        })?;
        if ops.is_empty() {
            return Err(KmsError::validation(
                "operations",
                "Member must have length greater than or equal to 1",
            ));
        }
        if let Some(op) = ops
            .iter()
            .find(|o| !SYMMETRIC_OPERATIONS.contains(&o.as_str()))
        {
            return Err(KmsError::Validation(format!(
                "Grant operation {op} is not valid for a symmetric encryption key."
            )));
        }
        let constraints = match i.constraints {
            Some(c) => {
                if c.source_arn.is_some() {
                    return Err(KmsError::UnsupportedOperation(
                        "The SourceArn grant constraint is not supported by this key service."
                            .into(),
                    ));
                }
                if c.encryption_context_equals.is_some() && c.encryption_context_subset.is_some() {
                    return Err(KmsError::Validation(
                        "A grant constraint can have EncryptionContextEquals or \
                         EncryptionContextSubset, not both."
                            .into(),
                    ));
                }
                Some(Constraints {
                    encryption_context_equals: c.encryption_context_equals,
                    encryption_context_subset: c.encryption_context_subset,
                })
            }
            None => None,
        };
        let (rec, entry) = self
            .load_for(ctx, key, GrantUse::Create(ops, constraints.as_ref()))
            .await?;
        match rec.key_state {
            KeyState::Enabled => {}
            s => return Err(KmsError::state(&rec.arn, s)),
        }
        if i.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let account = ctx.account_id();
        let mut grant = GrantRecord {
            grant_id: hex::encode(coffer_crypto::random_bytes::<32>()),
            key_id: rec.key_id.clone(),
            name: i.name,
            creation_date: self.now_ms() / 1000,
            grantee_principal: grantee,
            retiring_principal: i.retiring_principal,
            issuing_account: format!("arn:{}:iam::{account}:root", ctx.partition()),
            operations: ops.clone(),
            constraints,
        };
        // CreateGrant is idempotent by name: the same grant again returns the existing id.
        if grant.name.is_some() {
            let prefix = grant_prefix(account, &ctx.region, &rec.key_id);
            for (_, e) in self
                .store
                .scan(&prefix, &coffer_store::prefix_end(&prefix), usize::MAX)
                .await?
            {
                let existing: GrantRecord = crate::parse(&e, "grant record")?;
                if existing.same_as(&grant) {
                    grant = existing;
                    return Ok(self.grant_out(&rec.arn, &grant));
                }
            }
        }
        let gk = grant_key(account, &ctx.region, &rec.key_id, &grant.grant_id);
        let mut batch = WriteBatch::new();
        batch
            .check(
                crate::key_record_key(account, &ctx.region, &rec.key_id),
                Some(&entry),
            )
            .check(gk.clone(), None)
            .put(gk, crate::to_json(&grant)?);
        self.store.commit(batch).await?;
        Ok(self.grant_out(&rec.arn, &grant))
    }

    fn grant_out(&self, key_arn: &str, g: &GrantRecord) -> Obj {
        let mut out = Obj::new();
        out.insert(
            "GrantToken".into(),
            json!(
                self.tokens
                    .issue(TOKEN_SCOPE, &(key_arn, g.grant_id.as_str()))
            ),
        );
        out.insert("GrantId".into(), json!(g.grant_id));
        out
    }

    pub(crate) async fn list_grants(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: ListIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let limit = validate::limit(i.limit, 50, 100)?;
        if let Some(g) = &i.grant_id {
            grant_id("grantId", g)?;
        }
        if let Some(p) = &i.grantee_principal {
            principal("granteePrincipal", p)?;
        }
        unsupported_service_principal(&i.grantee_service_principal)?;
        let (rec, _) = self.load(ctx, key).await?;
        let scope = coffer_service::token::scope(&[
            "ListGrants",
            &rec.arn,
            i.grant_id.as_deref().unwrap_or(""),
            i.grantee_principal.as_deref().unwrap_or(""),
        ]);
        let after = self.marker_position(&scope, i.marker.as_deref())?;
        let prefix = grant_prefix(ctx.account_id(), &ctx.region, &rec.key_id);
        let page = self
            .scan_page(&prefix, after.as_deref(), limit, |_, e| {
                let g: GrantRecord = crate::parse(e, "grant record")?;
                let keep = i.grant_id.as_ref().is_none_or(|id| *id == g.grant_id)
                    && i.grantee_principal
                        .as_ref()
                        .is_none_or(|p| *p == g.grantee_principal);
                Ok(keep.then(|| g.to_json(&rec.arn)))
            })
            .await?;
        Ok(self.page_out("Grants", &scope, &page))
    }

    /// ListRetirableGrants: the grants of every key in the account and Region that name
    /// `RetiringPrincipal` as their retiring principal.
    pub(crate) async fn list_retirable_grants(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: RetirableIn = input(body)?;
        let retiring = required("retiringPrincipal", i.retiring_principal.as_deref())?;
        principal("retiringPrincipal", retiring)?;
        let limit = validate::limit(i.limit, 50, 100)?;
        ctx.check_any()?;
        let (account, region) = (ctx.account_id(), &ctx.region);
        let scope =
            coffer_service::token::scope(&["ListRetirableGrants", account, region, retiring]);
        let after = self.marker_position(&scope, i.marker.as_deref())?;
        // Every key's grants: kms/grant/{account}/{region}/{key id}/{grant id}.
        let prefix = format!("kms/grant/{account}/{region}/").into_bytes();
        let page = self
            .scan_page(&prefix, after.as_deref(), limit, |pos, e| {
                let g: GrantRecord = crate::parse(e, "grant record")?;
                if g.retiring_principal.as_deref() != Some(retiring) {
                    return Ok(None);
                }
                let key_id = pos.split_once('/').map_or(pos, |(k, _)| k);
                Ok(Some(g.to_json(&crate::key_arn(
                    ctx.partition(),
                    region,
                    account,
                    key_id,
                ))))
            })
            .await?;
        Ok(self.page_out("Grants", &scope, &page))
    }

    pub(crate) async fn retire_grant(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: RetireIn = input(body)?;
        let (key, id) = match (&i.grant_token, &i.key_id, &i.grant_id) {
            (Some(t), _, _) => {
                validate::length("grantToken", t, 1, 8192)?;
                let (arn, id): (String, String) = self
                    .tokens
                    .open(TOKEN_SCOPE, t)
                    .map_err(|_| KmsError::InvalidGrantToken("Invalid grant token.".into()))?;
                (arn, id)
            }
            (None, Some(k), Some(g)) => {
                validate::key_id("keyId", k)?;
                grant_id("grantId", g)?;
                (k.clone(), g.clone())
            }
            _ => {
                return Err(KmsError::Validation(
                    "Either GrantToken, or both KeyId and GrantId must be specified.".into(),
                ));
            }
        };
        self.remove_grant(ctx, &key, &id, i.dry_run == Some(true))
            .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn revoke_grant(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: RevokeIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let id = required("grantId", i.grant_id.as_deref())?;
        grant_id("grantId", id)?;
        self.remove_grant(ctx, key, id, i.dry_run == Some(true))
            .await?;
        Ok(Obj::new())
    }

    async fn remove_grant(
        &self,
        ctx: &OpCtx<'_>,
        key: &str,
        id: &str,
        dry_run: bool,
    ) -> Result<(), KmsError> {
        let (rec, _) = self.load_for(ctx, key, GrantUse::Retire(id)).await?;
        let gk = grant_key(ctx.account_id(), &ctx.region, &rec.key_id, id);
        let Some(entry) = self.store.get(&gk).await? else {
            return Err(KmsError::NotFound(format!(
                "Grant ID {id} not found for key {}",
                rec.arn
            )));
        };
        if dry_run {
            return Err(KmsError::dry_run());
        }
        let mut batch = WriteBatch::new();
        batch.check(gk.clone(), Some(&entry)).delete(gk);
        self.store.commit(batch).await?;
        Ok(())
    }
}
