//! The KMS API (`X-Amz-Target: TrentService.<Operation>`, signing name `kms`) over the
//! [`Keyring`]'s records: customer keys and their lifecycle, aliases, cryptographic operations,
//! rotation, tags, key policies and grants.
//!
//! Authorization: an operation on a key decides its action on the key's ARN with the key policy
//! as resource policy, then the key's grants ([`Keyring::authorize_key`]), once the reference
//! (id, key ARN, alias name or ARN) is resolved and before anything of the key is returned or
//! changed; operations without a key (CreateKey, ListKeys, ListAliases, GenerateRandom) decide
//! on `*`.
//!
//! Every mutating operation reads the key record, changes it and commits one
//! [`WriteBatch`] guarded by a check on what it read (retried on conflict under the key's write
//! lock), then drops the keyring's cached state of the key. Background work (deleting keys whose
//! waiting period passed, automatic rotation) finds due keys through time-ordered index records.

use std::sync::Arc;

use coffer_core::{RequestContext, SharedClock};
use coffer_service::OperationSpec;
use coffer_service::opctx::OpCtx;
use coffer_store::{Entry, Store, WriteBatch};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{KeyRecord, Keyring, key_record_key};

mod aliases;
mod crypto;
mod error;
mod grants;
mod import;
mod keys;
mod validate;

pub use error::KmsError;
pub(crate) use grants::GrantUse;

pub(crate) type Obj = Map<String, Value>;

macro_rules! op {
    ($name:literal, $ro:literal) => {
        OperationSpec {
            name: $name,
            action: concat!("kms:", $name),
            read_only: $ro,
        }
    };
}

static OPERATIONS: &[OperationSpec] = &[
    op!("CancelKeyDeletion", false),
    op!("CreateAlias", false),
    op!("CreateGrant", false),
    op!("CreateKey", false),
    op!("Decrypt", false),
    op!("DeleteAlias", false),
    op!("DeleteImportedKeyMaterial", false),
    op!("DescribeKey", true),
    op!("DisableKey", false),
    op!("DisableKeyRotation", false),
    op!("EnableKey", false),
    op!("EnableKeyRotation", false),
    op!("Encrypt", false),
    op!("GenerateDataKey", false),
    op!("GenerateDataKeyWithoutPlaintext", false),
    op!("GenerateRandom", false),
    op!("GetParametersForImport", true),
    op!("GetKeyPolicy", true),
    op!("GetKeyRotationStatus", true),
    op!("ImportKeyMaterial", false),
    op!("ListAliases", true),
    op!("ListGrants", true),
    op!("ListKeyPolicies", true),
    op!("ListKeyRotations", true),
    op!("ListKeys", true),
    op!("ListResourceTags", true),
    op!("ListRetirableGrants", true),
    op!("PutKeyPolicy", false),
    // IAM authorizes ReEncrypt as ReEncryptFrom (source key) and ReEncryptTo (destination key);
    // the table names the first, the operation checks both keys itself.
    OperationSpec {
        name: "ReEncrypt",
        action: "kms:ReEncryptFrom",
        read_only: false,
    },
    op!("RetireGrant", false),
    op!("RevokeGrant", false),
    op!("RotateKeyOnDemand", false),
    op!("ScheduleKeyDeletion", false),
    op!("TagResource", false),
    op!("UntagResource", false),
    op!("UpdateAlias", false),
    op!("UpdateKeyDescription", false),
];

pub struct KmsService {
    keys: Arc<Keyring>,
    store: Arc<dyn Store>,
    clock: SharedClock,
    tokens: coffer_service::token::TokenKey,
    locks: coffer_service::locks::WriteLocks,
}

impl std::fmt::Debug for KmsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsService").finish_non_exhaustive()
    }
}

impl KmsService {
    pub fn new(keys: Arc<Keyring>, clock: SharedClock) -> Self {
        let tokens = coffer_service::token::TokenKey::new(&keys.derive_key("kms/marker"));
        Self {
            store: keys.store().clone(),
            keys,
            clock,
            tokens,
            locks: coffer_service::locks::WriteLocks::new(),
        }
    }

    /// Every operation this service serves.
    pub fn operations() -> &'static [OperationSpec] {
        OPERATIONS
    }

    /// Runs `operation` (a name from [`KmsService::operations`]) on a JSON 1.1 body and returns
    /// the JSON response body.
    pub async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        let call = coffer_service::opctx::Dispatch::start::<KmsError>(OPERATIONS, operation)?;
        let out =
            call.finish::<_, KmsError>(self.dispatch(&call.ctx(ctx), call.name(), body).await?)?;
        Ok(serde_json::to_vec(&Value::Object(out)).unwrap_or_else(|_| b"{}".to_vec()))
    }

    async fn dispatch(
        &self,
        ctx: &OpCtx<'_>,
        operation: &str,
        body: &[u8],
    ) -> Result<serde_json::Map<String, Value>, KmsError> {
        match operation {
            "CreateKey" => self.create_key(ctx, body).await,
            "DescribeKey" => self.describe_key(ctx, body).await,
            "ListKeys" => self.list_keys(ctx, body).await,
            "UpdateKeyDescription" => self.update_key_description(ctx, body).await,
            "EnableKey" => self.enable_key(ctx, body).await,
            "DisableKey" => self.disable_key(ctx, body).await,
            "ScheduleKeyDeletion" => self.schedule_key_deletion(ctx, body).await,
            "CancelKeyDeletion" => self.cancel_key_deletion(ctx, body).await,
            "CreateAlias" => self.create_alias(ctx, body).await,
            "UpdateAlias" => self.update_alias(ctx, body).await,
            "DeleteAlias" => self.delete_alias(ctx, body).await,
            "ListAliases" => self.list_aliases(ctx, body).await,
            "Encrypt" => self.encrypt(ctx, body).await,
            "Decrypt" => self.decrypt(ctx, body).await,
            "ReEncrypt" => self.re_encrypt(ctx, body).await,
            "GenerateDataKey" => self.generate_data_key(ctx, body, true).await,
            "GenerateDataKeyWithoutPlaintext" => self.generate_data_key(ctx, body, false).await,
            "GenerateRandom" => self.generate_random(ctx, body),
            "EnableKeyRotation" => self.enable_key_rotation(ctx, body).await,
            "DisableKeyRotation" => self.disable_key_rotation(ctx, body).await,
            "GetKeyRotationStatus" => self.get_key_rotation_status(ctx, body).await,
            "RotateKeyOnDemand" => self.rotate_key_on_demand(ctx, body).await,
            "ListKeyRotations" => self.list_key_rotations(ctx, body).await,
            "TagResource" => self.tag_resource(ctx, body).await,
            "UntagResource" => self.untag_resource(ctx, body).await,
            "ListResourceTags" => self.list_resource_tags(ctx, body).await,
            "GetKeyPolicy" => self.get_key_policy(ctx, body).await,
            "PutKeyPolicy" => self.put_key_policy(ctx, body).await,
            "ListKeyPolicies" => self.list_key_policies(ctx, body).await,
            "CreateGrant" => self.create_grant(ctx, body).await,
            "ListGrants" => self.list_grants(ctx, body).await,
            "ListRetirableGrants" => self.list_retirable_grants(ctx, body).await,
            "GetParametersForImport" => self.get_parameters_for_import(ctx, body).await,
            "ImportKeyMaterial" => self.import_key_material(ctx, body).await,
            "DeleteImportedKeyMaterial" => self.delete_imported_key_material(ctx, body).await,
            "RetireGrant" => self.retire_grant(ctx, body).await,
            "RevokeGrant" => self.revoke_grant(ctx, body).await,
            _ => Err(<KmsError as coffer_service::opctx::RunError>::unknown_operation()),
        }
    }

    /// Background task: deletes keys whose waiting period has passed and rotates keys whose
    /// automatic rotation is due. Returns (deleted, rotated). Safe on every node and after
    /// downtime: whatever fell due meanwhile is done on the next run.
    pub async fn run_due(&self) -> Result<(usize, usize), KmsError> {
        let now = self.clock.now_millis();
        let deleted = self.purge_due(now).await?;
        let rotated = self.rotate_due(now).await?;
        Ok((deleted, rotated))
    }

    // ----- shared helpers ---------------------------------------------------------------------

    /// `key` (a key id, key ARN, alias name or alias ARN) as an ARN, for messages.
    pub(crate) fn display_arn(ctx: &RequestContext, key: &str) -> String {
        if key.starts_with("arn:") {
            return key.to_owned();
        }
        let kind = if key.starts_with("alias/") {
            ""
        } else {
            "key/"
        };
        format!(
            "arn:{}:kms:{}:{}:{kind}{key}",
            ctx.partition(),
            ctx.region,
            ctx.account_id()
        )
    }

    /// A keyring error about the reference `key`, with not-found naming it as KMS does.
    pub(crate) fn key_err(ctx: &RequestContext, key: &str, e: crate::KeyError) -> KmsError {
        match e {
            crate::KeyError::NotFound(_) => error::not_found(&Self::display_arn(ctx, key)),
            other => other.into(),
        }
    }

    /// The record `key` names, and the store entry it was read from, once the context's action
    /// is authorized on it.
    pub(crate) async fn load(
        &self,
        ctx: &OpCtx<'_>,
        key: &str,
    ) -> Result<(KeyRecord, Entry), KmsError> {
        self.load_for(ctx, key, GrantUse::Context(&[])).await
    }

    /// [`Self::load`], telling a grant what it is asked to allow.
    pub(crate) async fn load_for(
        &self,
        ctx: &OpCtx<'_>,
        key: &str,
        usage: GrantUse<'_>,
    ) -> Result<(KeyRecord, Entry), KmsError> {
        validate::key_id("keyId", key)?;
        let kref = self
            .keys
            .resolve(ctx.account_id(), &ctx.region, key)
            .await
            .map_err(|e| Self::key_err(ctx, key, e))?;
        let (rec, entry) = self
            .load_by_id(ctx, &kref.key_id)
            .await?
            .ok_or_else(|| error::not_found(&Self::display_arn(ctx, key)))?;
        let policy = rec.policy_text();
        let view = crate::policy::KeyView {
            key_id: &rec.key_id,
            arn: &rec.arn,
            policy: &policy,
            tags: &rec.tags,
        };
        self.keys.authorize_key(ctx, view, &[], usage).await?;
        Ok((rec, entry))
    }

    /// Authorizes the context's action on the key `key` names without reading its record when
    /// the keyring has its policy cached (the cryptographic operations' path); `context` is the
    /// request's encryption context, which a grant's constraint may require.
    pub(crate) async fn authorize_ref(
        &self,
        ctx: &OpCtx<'_>,
        key: &str,
        context: crate::EncryptionContext<'_>,
    ) -> Result<(), KmsError> {
        if ctx.root_fast_path() {
            return Ok(());
        }
        let a = self
            .keys
            .key_access(ctx.account_id(), &ctx.region, key)
            .await
            .map_err(|e| Self::key_err(ctx, key, e))?;
        // `kms:EncryptionContext:KEY` conditions see the request's context, as on AWS.
        let names = crate::policy::context_key_names(context);
        let keys: Vec<_> = crate::policy::context_keys(&names, context).collect();
        self.keys
            .authorize_key(ctx, a.view(), &keys, GrantUse::Context(context))
            .await?;
        Ok(())
    }

    pub(crate) async fn load_by_id(
        &self,
        ctx: &RequestContext,
        key_id: &str,
    ) -> Result<Option<(KeyRecord, Entry)>, KmsError> {
        let k = key_record_key(ctx.account_id(), &ctx.region, key_id);
        match self.store.get(&k).await? {
            Some(e) => Ok(Some((crate::parse(&e, "key record")?, e))),
            None => Ok(None),
        }
    }

    /// Reads the key `key` names (authorizing the context's action on it), lets `f` change the
    /// record (and add to the batch), and commits the record guarded by what was read; retried
    /// on conflict under the key's write lock.
    pub(crate) async fn mutate<T>(
        &self,
        ctx: &OpCtx<'_>,
        key: &str,
        mut f: impl FnMut(&mut KeyRecord, &mut WriteBatch) -> Result<T, KmsError>,
    ) -> Result<(KeyRecord, T), KmsError> {
        let (first, _) = self.load(ctx, key).await?;
        let key_id = first.key_id.clone();
        let record_key = key_record_key(ctx.account_id(), &ctx.region, &key_id);
        coffer_service::retry_on_conflict!(
            lock: self.locks.lock(ctx.account_id(), &ctx.region, &key_id),
            conflict: KmsError::Conflict,
            exhausted: KmsError::internal(),
            async {
                let (mut rec, entry) = self
                    .load_by_id(ctx, &key_id)
                    .await?
                    .ok_or_else(|| error::not_found(&Self::display_arn(ctx, key)))?;
                let mut batch = WriteBatch::new();
                let out = f(&mut rec, &mut batch)?;
                batch
                    .check(record_key.clone(), Some(&entry))
                    .put(record_key.clone(), crate::to_json(&rec)?);
                self.store.commit(batch).await?;
                self.keys.forget_key(&rec.arn);
                Ok((rec, out))
            }
            .await
        )
    }

    /// Refuses changes to AWS managed keys, as their key policies do.
    pub(crate) fn customer_only(
        ctx: &RequestContext,
        rec: &KeyRecord,
        action: &str,
    ) -> Result<(), KmsError> {
        if rec.key_manager == crate::KeyManager::Aws {
            return Err(KmsError::managed_key(
                &ctx.caller.principal_arn,
                action,
                &rec.arn,
            ));
        }
        Ok(())
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_millis()
    }
}

/// Decodes an operation's input.
pub(crate) fn input<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, KmsError> {
    Ok(coffer_wire::json::from_slice(body)?)
}

/// A required member, or AWS's null-member validation error.
pub(crate) fn required<'a, T: ?Sized>(member: &str, v: Option<&'a T>) -> Result<&'a T, KmsError> {
    v.ok_or_else(|| KmsError::not_null(member))
}

/// Epoch seconds (with millisecond fraction) as AWS JSON writes timestamps.
pub(crate) fn ts(ms: i64) -> Value {
    serde_json::json!(ms as f64 / 1000.0)
}

/// One page of a listing: the kept items with their position (the store key after the
/// listing's prefix), and whether more follow.
pub(crate) struct Page<T> {
    pub items: Vec<(String, T)>,
    pub truncated: bool,
}

impl KmsService {
    /// Where a marker says the previous page ended (`None` without a marker).
    pub(crate) fn marker_position(
        &self,
        scope: &str,
        marker: Option<&str>,
    ) -> Result<Option<String>, KmsError> {
        validate::marker(marker)?;
        match marker {
            Some(m) => Ok(Some(self.tokens.open(scope, m)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn issue_marker(&self, scope: &str, position: &str) -> String {
        self.tokens.issue(scope, &position)
    }

    /// Up to `limit` records under `prefix` after `after` (a position), keeping those `keep`
    /// maps to `Some`; a range scan that reads on only while filtered-out records fill pages.
    pub(crate) async fn scan_page<T>(
        &self,
        prefix: &[u8],
        after: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&str, &Entry) -> Result<Option<T>, KmsError>,
    ) -> Result<Page<T>, KmsError> {
        let mut start = prefix.to_vec();
        if let Some(a) = after {
            start.extend_from_slice(a.as_bytes());
            start.push(0);
        }
        let end = coffer_store::prefix_end(prefix);
        let mut items = Vec::new();
        'scan: loop {
            let rows = self.store.scan(&start, &end, limit + 1).await?;
            let full = rows.len() == limit + 1;
            for (k, e) in rows {
                let pos = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                if let Some(t) = keep(&pos, &e)? {
                    items.push((pos, t));
                    if items.len() > limit {
                        break 'scan;
                    }
                }
                start = k;
                start.push(0);
            }
            if !full {
                break;
            }
        }
        let truncated = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, truncated })
    }

    /// Adds `Truncated` and, when truncated, `NextMarker` (naming the last item) to `out`.
    /// A listing's answer: the page's items under `member`, then `Truncated` and `NextMarker`.
    pub(crate) fn page_out(&self, member: &str, scope: &str, page: &Page<Value>) -> Obj {
        let mut out = Obj::new();
        out.insert(
            member.into(),
            Value::Array(page.items.iter().map(|(_, v)| v.clone()).collect()),
        );
        self.finish_page(&mut out, scope, page);
        out
    }

    pub(crate) fn finish_page<T>(&self, out: &mut Obj, scope: &str, page: &Page<T>) {
        out.insert("Truncated".into(), Value::Bool(page.truncated));
        if page.truncated
            && let Some((pos, _)) = page.items.last()
        {
            out.insert(
                "NextMarker".into(),
                Value::String(self.issue_marker(scope, pos)),
            );
        }
    }
}
