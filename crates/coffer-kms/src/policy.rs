//! Key policies in force: a key's stored document, else the one AWS would have given it (the
//! default policy for customer keys, the service's policy for AWS managed keys). Used both to
//! answer GetKeyPolicy and as the resource policy of every authorization on the key.

use std::borrow::Cow;

use coffer_core::arn::partition_for_region;

use crate::{KeyManager, KeyRecord, MANAGED_ALIASES};

/// AWS's default key policy: the account (and so IAM policies in it) may do everything.
pub(crate) fn default_policy(partition: &str, account: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:{partition}:iam::{account}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// The shape of AWS's policies for AWS managed keys: principals in the account may use the key
/// through the owning service only, and may read its metadata.
fn managed_policy(partition: &str, account: &str, region: &str, service: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "auto-{service}-2",
  "Statement" : [ {{
    "Sid" : "Allow access through {service} for all principals in the account that are authorized to use {service}",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "*"
    }},
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {{
      "StringEquals" : {{
        "kms:CallerAccount" : "{account}",
        "kms:ViaService" : "{service}.{region}.amazonaws.com"
      }}
    }}
  }}, {{
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:{partition}:iam::{account}:root"
    }},
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],
    "Resource" : "*"
  }} ]
}}"#
    )
}

impl KeyRecord {
    /// The key policy in force. AWS managed keys keep no document: their owning service is
    /// known from the description the keyring gave them (which nobody can change), so no alias
    /// lookup is needed on the authorization path.
    pub fn policy_text(&self) -> Cow<'_, str> {
        if let Some(p) = &self.policy {
            return Cow::Borrowed(p);
        }
        let partition = partition_for_region(&self.region);
        Cow::Owned(match self.key_manager {
            KeyManager::Customer => default_policy(partition, &self.account),
            KeyManager::Aws => {
                let service = MANAGED_ALIASES
                    .iter()
                    .find(|(_, d)| *d == self.description)
                    .and_then(|(a, _)| a.strip_prefix("alias/aws/"))
                    .unwrap_or("kms");
                managed_policy(partition, &self.account, &self.region, service)
            }
        })
    }
}

/// Why a service may not use a key on the caller's behalf.
#[derive(Debug)]
pub enum KeyUseError {
    Key(crate::KeyError),
    Denied(coffer_core::authz::AccessDenied),
}

/// A key as an authorization sees it.
pub(crate) struct KeyView<'a> {
    pub key_id: &'a str,
    pub arn: &'a str,
    pub policy: &'a str,
    pub tags: &'a Vec<coffer_service::tags::Tag>,
}

impl crate::KeyAccess {
    pub(crate) fn view(&self) -> KeyView<'_> {
        KeyView {
            key_id: &self.key_id,
            arn: &self.arn,
            policy: &self.policy,
            tags: &self.tags,
        }
    }
}

impl crate::Keyring {
    /// KMS's rule for the action of `ctx` on a key: decided on the key's ARN with the key policy
    /// as the resource policy, so IAM policies count only where the key policy delegates to the
    /// account, a statement naming the caller allows by itself, and an explicit deny in either
    /// denies. The key's tags are behind `aws:ResourceTag/*`, `keys` are the request's own
    /// condition keys. Where the policies do not allow (and nothing denies explicitly), a grant
    /// for the caller may ([`crate::service::GrantUse`] says what it is asked to allow).
    pub(crate) async fn authorize_key(
        &self,
        ctx: &coffer_service::opctx::OpCtx<'_>,
        key: KeyView<'_>,
        keys: &[coffer_core::authz::ConditionKey<'_>],
        usage: crate::service::GrantUse<'_>,
    ) -> Result<(), KeyUseError> {
        let denied = match ctx.check(
            key.arn,
            Some(key.tags),
            coffer_core::authz::ResourcePolicy::KeyPolicy(key.policy),
            keys,
        ) {
            Ok(()) => return Ok(()),
            Err(d) if d.is_explicit() => return Err(KeyUseError::Denied(d)),
            Err(d) => d,
        };
        if self
            .grant_allows(ctx, key.key_id, ctx.action, usage)
            .await
            .map_err(KeyUseError::Key)?
        {
            return Ok(());
        }
        Err(KeyUseError::Denied(denied))
    }

    /// Authorizes `action` (e.g. `kms:Decrypt`) on `key` for a service (`service`, e.g. `ssm`)
    /// acting for the caller, as KMS does when that service calls it: on the key's ARN, with
    /// the key policy and the key's grants taking part, `kms:ViaService` and the encryption
    /// context as condition keys. AWS managed keys allow this to everyone in the account;
    /// customer keys follow their policy (by default: whatever IAM allows) and grants.
    pub async fn authorize_use(
        &self,
        ctx: &coffer_service::opctx::OpCtx<'_>,
        action: &'static str,
        key: &str,
        service: &str,
        context: crate::EncryptionContext<'_>,
    ) -> Result<(), KeyUseError> {
        if ctx.root_fast_path() {
            return Ok(());
        }
        let access = self
            .key_access(ctx.account_id(), &ctx.region, key)
            .await
            .map_err(KeyUseError::Key)?;
        let via = format!("{service}.{}.amazonaws.com", ctx.region);
        let names = context_key_names(context);
        let mut keys = vec![coffer_core::authz::ConditionKey::str(
            "kms:ViaService",
            &via,
        )];
        keys.extend(context_keys(&names, context));
        self.authorize_key(
            &ctx.with_action(action),
            access.view(),
            &keys,
            crate::service::GrantUse::Context(context),
        )
        .await
    }
}

/// The `kms:EncryptionContext:KEY` condition key names of an encryption context, for
/// [`context_keys`] to borrow.
pub(crate) fn context_key_names(context: crate::EncryptionContext<'_>) -> Vec<String> {
    context
        .iter()
        .map(|(k, _)| format!("kms:EncryptionContext:{k}"))
        .collect()
}

/// The encryption context as condition keys (`names` from [`context_key_names`]).
pub(crate) fn context_keys<'a>(
    names: &'a [String],
    context: crate::EncryptionContext<'a>,
) -> impl Iterator<Item = coffer_core::authz::ConditionKey<'a>> {
    names
        .iter()
        .zip(context)
        .map(|(n, (_, v))| coffer_core::authz::ConditionKey::str(n, v))
}
