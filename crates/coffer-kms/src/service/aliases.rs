//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases. `alias/aws/...` names belong to
//! AWS managed keys, which the keyring creates on first use; ListAliases shows them before that
//! too (without a target), as KMS does.

use coffer_core::authz::ResourcePolicy;
use coffer_service::opctx::OpCtx;
use coffer_store::WriteBatch;
use serde::Deserialize;
use serde_json::{Value, json};

use super::validate;
use super::{KmsError, KmsService, Obj, input, required};
use crate::{AliasRecord, KeyRecord, KeyState, alias_arn, alias_record_key, key_record_key};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasIn {
    alias_name: Option<String>,
    target_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

fn alias_json(a: &AliasRecord) -> Value {
    json!({
        "AliasName": a.alias_name,
        "AliasArn": a.alias_arn,
        "TargetKeyId": a.target_key_id,
        "CreationDate": a.creation_date,
        "LastUpdatedDate": a.last_updated_date.unwrap_or(a.creation_date),
    })
}

impl KmsService {
    /// The key an alias may point at: named by key id or key ARN (not by another alias), a
    /// customer managed key, not pending deletion.
    async fn alias_target(
        &self,
        ctx: &OpCtx<'_>,
        target: &str,
        action: &str,
    ) -> Result<(KeyRecord, coffer_store::Entry), KmsError> {
        validate::key_id("targetKeyId", target)?;
        if target.starts_with("alias/") || target.contains(":alias/") {
            return Err(KmsError::Validation(
                "Aliases must refer to keys. Not aliases".into(),
            ));
        }
        let (rec, entry) = self.load(ctx, target).await?;
        Self::customer_only(ctx, &rec, action)?;
        if rec.key_state == KeyState::PendingDeletion {
            return Err(KmsError::state(&rec.arn, rec.key_state));
        }
        Ok((rec, entry))
    }

    /// AWS authorizes alias changes twice: the action on the alias ARN, in IAM policies only
    /// (aliases have no policy of their own), and on each key involved, with its key policy
    /// (done where the key is loaded). This is the first half.
    fn authorize_alias(ctx: &OpCtx<'_>, name: &str) -> Result<(), KmsError> {
        let arn = alias_arn(ctx.partition(), &ctx.region, ctx.account_id(), name);
        ctx.check(&arn, None, ResourcePolicy::None, &[])?;
        Ok(())
    }

    fn reserved(ctx: &OpCtx<'_>, name: &str, action: &str) -> Result<(), KmsError> {
        if name.starts_with("alias/aws/") {
            return Err(KmsError::managed_key(
                &ctx.caller.principal_arn,
                action,
                &alias_arn(ctx.partition(), &ctx.region, ctx.account_id(), name),
            ));
        }
        Ok(())
    }

    pub(crate) async fn create_alias(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: AliasIn = input(body)?;
        let name = required("aliasName", i.alias_name.as_deref())?;
        let target = required("targetKeyId", i.target_key_id.as_deref())?;
        validate::alias_name(name, false)?;
        Self::authorize_alias(ctx, name)?;
        let (rec, entry) = self.alias_target(ctx, target, "kms:CreateAlias").await?;
        let account = ctx.account_id();
        let ak = alias_record_key(account, &ctx.region, name);
        let arn = alias_arn(ctx.partition(), &ctx.region, account, name);
        if self.store.get(&ak).await?.is_some() {
            return Err(KmsError::AlreadyExists(format!(
                "An alias with the name {arn} already exists"
            )));
        }
        let alias = AliasRecord {
            alias_name: name.to_owned(),
            alias_arn: arn.clone(),
            target_key_id: rec.key_id.clone(),
            creation_date: self.now_ms() / 1000,
            last_updated_date: None,
        };
        let mut batch = WriteBatch::new();
        batch
            .check(ak.clone(), None)
            .check(
                key_record_key(account, &ctx.region, &rec.key_id),
                Some(&entry),
            )
            .put(ak, crate::to_json(&alias)?);
        match self.store.commit(batch).await {
            Ok(_) => Ok(Obj::new()),
            // Someone created the alias (or changed the key) meanwhile.
            Err(coffer_store::StoreError::Conflict) => Err(KmsError::AlreadyExists(format!(
                "An alias with the name {arn} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn update_alias(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: AliasIn = input(body)?;
        let name = required("aliasName", i.alias_name.as_deref())?;
        let target = required("targetKeyId", i.target_key_id.as_deref())?;
        validate::alias_name(name, true)?;
        Self::reserved(ctx, name, "kms:UpdateAlias")?;
        Self::authorize_alias(ctx, name)?;
        let (rec, entry) = self.alias_target(ctx, target, "kms:UpdateAlias").await?;
        let account = ctx.account_id();
        let ak = alias_record_key(account, &ctx.region, name);
        let Some(old) = self.store.get(&ak).await? else {
            return Err(super::error::not_found(&alias_arn(
                ctx.partition(),
                &ctx.region,
                account,
                name,
            )));
        };
        let mut alias: AliasRecord = crate::parse(&old, "alias record")?;
        // The key the alias leaves is authorized too.
        self.authorize_ref(ctx, &alias.target_key_id, &[]).await?;
        alias.target_key_id = rec.key_id.clone();
        alias.last_updated_date = Some(self.now_ms() / 1000);
        let mut batch = WriteBatch::new();
        batch
            .check(ak.clone(), Some(&old))
            .check(
                key_record_key(account, &ctx.region, &rec.key_id),
                Some(&entry),
            )
            .put(ak, crate::to_json(&alias)?);
        match self.store.commit(batch).await {
            Ok(_) => Ok(Obj::new()),
            Err(coffer_store::StoreError::Conflict) => Err(KmsError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn delete_alias(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: AliasIn = input(body)?;
        let name = required("aliasName", i.alias_name.as_deref())?;
        validate::alias_name(name, true)?;
        Self::reserved(ctx, name, "kms:DeleteAlias")?;
        Self::authorize_alias(ctx, name)?;
        let account = ctx.account_id();
        let ak = alias_record_key(account, &ctx.region, name);
        let Some(old) = self.store.get(&ak).await? else {
            return Err(super::error::not_found(&alias_arn(
                ctx.partition(),
                &ctx.region,
                account,
                name,
            )));
        };
        let alias: AliasRecord = crate::parse(&old, "alias record")?;
        self.authorize_ref(ctx, &alias.target_key_id, &[]).await?;
        let mut batch = WriteBatch::new();
        batch.check(ak.clone(), Some(&old)).delete(ak);
        self.store.commit(batch).await?;
        Ok(Obj::new())
    }

    pub(crate) async fn list_aliases(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: ListIn = input(body)?;
        let limit = validate::limit(i.limit, 50, 100)?;
        // ListAliases is authorized on `*` even when it filters by key, as in AWS.
        ctx.check_any()?;
        let target = match i.key_id.as_deref() {
            Some(k) => {
                if k.starts_with("alias/") || k.contains(":alias/") {
                    return Err(KmsError::InvalidArn(
                        "KeyId must be a key id or key ARN, not an alias.".into(),
                    ));
                }
                validate::key_id("keyId", k)?;
                let kref = self
                    .keys
                    .resolve(ctx.account_id(), &ctx.region, k)
                    .await
                    .map_err(|e| Self::key_err(ctx, k, e))?;
                Some(kref.key_id)
            }
            None => None,
        };
        let account = ctx.account_id();
        let scope = coffer_service::token::scope(&[
            "ListAliases",
            account,
            &ctx.region,
            target.as_deref().unwrap_or(""),
        ]);
        let after = self.marker_position(&scope, i.marker.as_deref())?;
        let prefix = format!("kms/alias/{account}/{}/", ctx.region).into_bytes();
        let mut page = self
            .scan_page(&prefix, after.as_deref(), limit, |_, e| {
                let a: AliasRecord = crate::parse(e, "alias record")?;
                Ok(
                    (target.is_none() || target.as_deref() == Some(a.target_key_id.as_str()))
                        .then(|| alias_json(&a)),
                )
            })
            .await?;
        if target.is_none() {
            // AWS managed aliases not created yet are listed without a target, in name order.
            for (name, _) in crate::MANAGED_ALIASES {
                let beyond_page =
                    page.truncated && page.items.last().is_some_and(|(p, _)| p.as_str() < *name);
                if after.as_deref().is_some_and(|a| a >= *name)
                    || beyond_page
                    || page.items.iter().any(|(p, _)| p == name)
                    || self
                        .store
                        .get(&alias_record_key(account, &ctx.region, name))
                        .await?
                        .is_some()
                {
                    continue;
                }
                let entry = json!({
                    "AliasName": name,
                    "AliasArn": alias_arn(ctx.partition(), &ctx.region, account, name),
                });
                page.items.push(((*name).to_owned(), entry));
            }
            page.items.sort_by(|a, b| a.0.cmp(&b.0));
            if page.items.len() > limit {
                page.items.truncate(limit);
                page.truncated = true;
            }
        }
        Ok(self.page_out("Aliases", &scope, &page))
    }
}
