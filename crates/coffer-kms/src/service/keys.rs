//! Keys: create, describe, list, describe-update, enable/disable, deletion with a waiting period,
//! rotation (automatic and on demand), tags and key policies; and the background work.

use coffer_core::authz::ResourcePolicy;
use coffer_service::opctx::OpCtx;
use coffer_service::tags::Tag;
use coffer_store::WriteBatch;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::validate::{self, TagIn};
use super::{KmsError, KmsService, Obj, input, required, ts};
use crate::{KeyManager, KeyRecord, KeyState, key_arn, key_record_key};

const DAY_MS: i64 = 86_400_000;
/// Tags per key (KMS quota).
const MAX_TAGS: usize = 50;
/// On-demand rotations per key (KMS quota).
const MAX_ON_DEMAND_ROTATIONS: usize = 10;
/// What AWS managed keys report: rotated automatically every year.
const MANAGED_ROTATION_DAYS: u32 = 365;

const KEY_USAGES: &[&str] = &[
    "SIGN_VERIFY",
    "ENCRYPT_DECRYPT",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
    "ENCAPSULATE_DECAPSULATE",
];
const KEY_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
];
const ORIGINS: &[&str] = &["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];

/// Store key of the deletion index: due time first, so due keys are one range scan.
fn deletion_index(ms: i64, account: &str, region: &str, key_id: &str) -> Vec<u8> {
    format!("kms/deletion/{ms:020}/{account}/{region}/{key_id}").into_bytes()
}

/// Store key of the automatic-rotation index.
fn rotation_index(ms: i64, account: &str, region: &str, key_id: &str) -> Vec<u8> {
    format!("kms/rotation/{ms:020}/{account}/{region}/{key_id}").into_bytes()
}

/// `(due ms, account, region, key id)` of an index key under `prefix`.
fn parse_index<'a>(prefix: &str, key: &'a [u8]) -> Option<(i64, &'a str, &'a str, &'a str)> {
    let s = std::str::from_utf8(key).ok()?.strip_prefix(prefix)?;
    let mut parts = s.splitn(4, '/');
    let ms = parts.next()?.parse().ok()?;
    Some((ms, parts.next()?, parts.next()?, parts.next()?))
}

/// The single place key policies are checked: the model's text constraints, then the policy
/// room's grammar for resource policies (a malformed document names the offending element).
fn check_policy(doc: &str) -> Result<(), KmsError> {
    validate::policy_text(doc)?;
    coffer_policy::parse_as(doc, coffer_policy::PolicyKind::Resource)
        .map_err(|e| KmsError::MalformedPolicyDocument(e.to_string()))?;
    Ok(())
}

/// KMS's key policy lockout safety check: unless bypassed, a new key policy must let the caller
/// make a subsequent PutKeyPolicy on the key, decided as that request would be (the policy as
/// the key policy, with the caller's IAM policies where it delegates to the account).
fn check_lockout(
    ctx: &OpCtx<'_>,
    arn: &str,
    tags: &Vec<Tag>,
    doc: &str,
    bypass: Option<bool>,
) -> Result<(), KmsError> {
    if bypass == Some(true) {
        return Ok(());
    }
    ctx.with_action("kms:PutKeyPolicy")
        .check(arn, Some(tags), ResourcePolicy::KeyPolicy(doc), &[])
        .map_err(|_| {
            KmsError::MalformedPolicyDocument(
                "The new key policy will not allow you to update the key policy in the future."
                    .into(),
            )
        })
}

/// `KeyMetadata` of a record.
pub(crate) fn key_metadata(rec: &KeyRecord) -> Value {
    let mut m = json!({
        "AWSAccountId": rec.account,
        "KeyId": rec.key_id,
        "Arn": rec.arn,
        "CreationDate": rec.creation_date,
        "Enabled": rec.key_state == KeyState::Enabled,
        "Description": rec.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": rec.key_state.as_str(),
        "Origin": rec.origin.as_deref().unwrap_or("AWS_KMS"),
        "KeyManager": match rec.key_manager {
            KeyManager::Aws => "AWS",
            KeyManager::Customer => "CUSTOMER",
        },
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": false,
        "CurrentKeyMaterialId": crate::material_id(&rec.arn, rec.current_version),
    });
    if rec.origin.is_some() && rec.key_state != KeyState::PendingImport {
        m["ExpirationModel"] = json!("KEY_MATERIAL_DOES_NOT_EXPIRE");
    }
    if rec.key_state == KeyState::PendingDeletion
        && let Some(d) = rec.deletion_ms
    {
        m["DeletionDate"] = ts(d);
        if let Some(w) = rec.pending_window_days {
            m["PendingDeletionWindowInDays"] = json!(w);
        }
    }
    m
}

fn metadata_out(rec: &KeyRecord) -> Obj {
    let mut out = Obj::new();
    out.insert("KeyMetadata".into(), key_metadata(rec));
    out
}

/// Management operations other than cancelling deletion are refused while a key waits for
/// deletion, as in KMS's key-state table.
pub(super) fn not_pending(rec: &KeyRecord) -> Result<(), KmsError> {
    if rec.key_state == KeyState::PendingDeletion {
        return Err(KmsError::state(&rec.arn, rec.key_state));
    }
    Ok(())
}

/// Rotation makes new material; a key whose material is imported has none but its own.
fn not_imported(rec: &KeyRecord) -> Result<(), KmsError> {
    if rec.origin.is_some() {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} has imported key material: Coffer does not rotate it.",
            rec.arn
        )));
    }
    Ok(())
}

/// Operations that also need the key enabled (rotation): DisabledException when disabled.
fn enabled(rec: &KeyRecord) -> Result<(), KmsError> {
    match rec.key_state {
        KeyState::Enabled => Ok(()),
        s => Err(KmsError::state(&rec.arn, s)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyIn {
    policy: Option<String>,
    description: Option<String>,
    key_usage: Option<String>,
    customer_master_key_spec: Option<String>,
    key_spec: Option<String>,
    origin: Option<String>,
    custom_key_store_id: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
    tags: Option<Vec<TagIn>>,
    multi_region: Option<bool>,
    xks_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIn {
    key_id: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    limit: Option<i64>,
    marker: Option<String>,
    #[allow(dead_code)]
    resource_owners: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescriptionIn {
    key_id: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleIn {
    key_id: Option<String>,
    pending_window_in_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationIn {
    key_id: Option<String>,
    rotation_period_in_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRotationsIn {
    key_id: Option<String>,
    include_key_material: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagIn2 {
    key_id: Option<String>,
    tags: Option<Vec<TagIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagIn {
    key_id: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyListIn {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetPolicyIn {
    key_id: Option<String>,
    policy_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutPolicyIn {
    key_id: Option<String>,
    policy_name: Option<String>,
    policy: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
}

fn to_tags(tags: Vec<TagIn>) -> Vec<Tag> {
    tags.into_iter()
        .map(|t| Tag {
            key: t.tag_key.unwrap_or_default(),
            value: t.tag_value.unwrap_or_default(),
        })
        .collect()
}

impl KmsService {
    pub(crate) async fn create_key(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: CreateKeyIn = input(body)?;
        // No key exists yet: IAM decides on `*` (a policy given here applies from now on).
        ctx.check_any()?;
        if let Some(d) = &i.description {
            validate::description(d)?;
        }
        if let Some(u) = &i.key_usage {
            validate::one_of("keyUsage", u, KEY_USAGES)?;
        }
        if let Some(s) = &i.customer_master_key_spec {
            validate::one_of("customerMasterKeySpec", s, &KEY_SPECS[..13])?;
        }
        if let Some(s) = &i.key_spec {
            validate::one_of("keySpec", s, KEY_SPECS)?;
        }
        if let Some(o) = &i.origin {
            validate::one_of("origin", o, ORIGINS)?;
        }
        if let Some(c) = &i.custom_key_store_id {
            validate::length("customKeyStoreId", c, 1, 64)?;
        }
        if let Some(x) = &i.xks_key_id {
            validate::length("xksKeyId", x, 1, 128)?;
        }
        if let Some(t) = &i.tags {
            validate::tags(t)?;
        }
        if i.key_spec.is_some() && i.customer_master_key_spec.is_some() {
            return Err(KmsError::Validation(
                "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. \
                 CustomerMasterKeySpec is deprecated."
                    .into(),
            ));
        }
        let spec = i
            .key_spec
            .as_deref()
            .or(i.customer_master_key_spec.as_deref());
        let unsupported = |what: &str| {
            Err(KmsError::UnsupportedOperation(format!(
                "{what} is not supported by this key service: it creates symmetric encryption \
                 keys (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT, Origin AWS_KMS)."
            )))
        };
        if spec.is_some_and(|s| s != "SYMMETRIC_DEFAULT") {
            return unsupported("This KeySpec");
        }
        if i.key_usage
            .as_deref()
            .is_some_and(|u| u != "ENCRYPT_DECRYPT")
        {
            return unsupported("This KeyUsage");
        }
        // EXTERNAL: created without material, which ImportKeyMaterial brings (see `import`).
        let external = i.origin.as_deref() == Some("EXTERNAL");
        if i.origin
            .as_deref()
            .is_some_and(|o| o != "AWS_KMS" && o != "EXTERNAL")
            || i.custom_key_store_id.is_some()
            || i.xks_key_id.is_some()
        {
            return unsupported("A key origin other than AWS_KMS or EXTERNAL");
        }
        if i.multi_region == Some(true) {
            return unsupported("A multi-Region key");
        }
        if let Some(p) = &i.policy {
            check_policy(p)?;
        }
        let tags = to_tags(i.tags.unwrap_or_default());
        let mut deduped: Vec<Tag> = Vec::new();
        if coffer_service::tags::merge(&mut deduped, tags, MAX_TAGS).is_err() {
            return Err(KmsError::LimitExceeded(
                "The request was rejected because it would exceed the quota of 50 tags per key."
                    .into(),
            ));
        }
        let account = ctx.account_id();
        let key_id = Uuid::new_v4().hyphenated().to_string();
        let arn = key_arn(ctx.partition(), &ctx.region, account, &key_id);
        let policy = match i.policy {
            Some(p) => {
                check_lockout(
                    ctx,
                    &arn,
                    &deduped,
                    &p,
                    i.bypass_policy_lockout_safety_check,
                )?;
                p
            }
            None => crate::policy::default_policy(ctx.partition(), ctx.account_id()),
        };
        let materials = if external {
            Vec::new()
        } else {
            vec![self.keys.new_material(&arn, 1)?]
        };
        let rec = KeyRecord {
            key_id: key_id.clone(),
            arn,
            account: account.to_owned(),
            region: ctx.region.clone(),
            creation_date: self.now_ms() / 1000,
            description: i.description.unwrap_or_default(),
            key_manager: KeyManager::Customer,
            key_state: if external {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            },
            current_version: 1,
            materials,
            policy: Some(policy),
            tags: deduped,
            deletion_ms: None,
            pending_window_days: None,
            rotation_period_days: None,
            next_rotation_ms: None,
            origin: external.then(|| "EXTERNAL".to_string()),
            import_fingerprint: None,
        };
        let k = key_record_key(account, &ctx.region, &key_id);
        let mut batch = WriteBatch::new();
        batch.check(k.clone(), None).put(k, crate::to_json(&rec)?);
        self.store.commit(batch).await?;
        Ok(metadata_out(&rec))
    }

    pub(crate) async fn describe_key(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: KeyIn = input(body)?;
        validate::grant_tokens(i.grant_tokens.as_ref())?;
        let key = required("keyId", i.key_id.as_deref())?;
        let (rec, _) = self.load(ctx, key).await?;
        Ok(metadata_out(&rec))
    }

    pub(crate) async fn list_keys(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: ListIn = input(body)?;
        let limit = validate::limit(i.limit, 100, 1000)?;
        ctx.check_any()?;
        let scope = coffer_service::token::scope(&["ListKeys", ctx.account_id(), &ctx.region]);
        let after = self.marker_position(&scope, i.marker.as_deref())?;
        let prefix = format!("kms/key/{}/{}/", ctx.account_id(), ctx.region).into_bytes();
        let page = self
            .scan_page(&prefix, after.as_deref(), limit, |pos, _| {
                Ok(Some(json!({
                    "KeyId": pos,
                    "KeyArn": key_arn(ctx.partition(), &ctx.region, ctx.account_id(), pos),
                })))
            })
            .await?;
        Ok(self.page_out("Keys", &scope, &page))
    }

    pub(crate) async fn update_key_description(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: DescriptionIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let description = required("description", i.description.as_deref())?;
        validate::description(description)?;
        self.mutate(ctx, key, |rec, _| {
            Self::customer_only(ctx, rec, "kms:UpdateKeyDescription")?;
            not_pending(rec)?;
            rec.description = description.to_owned();
            Ok(())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn enable_key(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        self.set_enabled(ctx, body, true).await
    }

    pub(crate) async fn disable_key(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        self.set_enabled(ctx, body, false).await
    }

    async fn set_enabled(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
        enable: bool,
    ) -> Result<Obj, KmsError> {
        let i: KeyIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let action = if enable {
            "kms:EnableKey"
        } else {
            "kms:DisableKey"
        };
        self.mutate(ctx, key, |rec, _| {
            Self::customer_only(ctx, rec, action)?;
            not_pending(rec)?;
            if rec.key_state == KeyState::PendingImport {
                return Err(KmsError::state(&rec.arn, rec.key_state));
            }
            rec.key_state = if enable {
                KeyState::Enabled
            } else {
                KeyState::Disabled
            };
            Ok(())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn schedule_key_deletion(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: ScheduleIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        validate::key_id("keyId", key)?;
        let days = i.pending_window_in_days.unwrap_or(30);
        validate::range("pendingWindowInDays", days, 7, 30)?;
        let deletion_ms = self.now_ms() + days * DAY_MS;
        let (rec, _) = self
            .mutate(ctx, key, |rec, batch| {
                Self::customer_only(ctx, rec, "kms:ScheduleKeyDeletion")?;
                not_pending(rec)?;
                rec.key_state = KeyState::PendingDeletion;
                rec.deletion_ms = Some(deletion_ms);
                rec.pending_window_days = Some(days as u32);
                batch.put(
                    deletion_index(deletion_ms, &rec.account, &rec.region, &rec.key_id),
                    Vec::new(),
                );
                Ok(())
            })
            .await?;
        let mut out = Obj::new();
        out.insert("KeyId".into(), json!(rec.arn));
        out.insert("DeletionDate".into(), ts(deletion_ms));
        out.insert("KeyState".into(), json!(rec.key_state.as_str()));
        out.insert("PendingWindowInDays".into(), json!(days));
        Ok(out)
    }

    pub(crate) async fn cancel_key_deletion(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: KeyIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let (rec, _) = self
            .mutate(ctx, key, |rec, batch| {
                Self::customer_only(ctx, rec, "kms:CancelKeyDeletion")?;
                if rec.key_state != KeyState::PendingDeletion {
                    return Err(KmsError::InvalidState(format!(
                        "{} is not pending deletion (current state: {}).",
                        rec.arn,
                        rec.key_state.as_str()
                    )));
                }
                if let Some(d) = rec.deletion_ms.take() {
                    batch.delete(deletion_index(d, &rec.account, &rec.region, &rec.key_id));
                }
                rec.pending_window_days = None;
                // As in KMS: a key whose deletion is cancelled comes back disabled.
                rec.key_state = KeyState::Disabled;
                Ok(())
            })
            .await?;
        let mut out = Obj::new();
        out.insert("KeyId".into(), json!(rec.arn));
        Ok(out)
    }

    // ----- rotation ---------------------------------------------------------------------------

    pub(crate) async fn enable_key_rotation(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: RotationIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let days = i.rotation_period_in_days.unwrap_or(365);
        validate::range("rotationPeriodInDays", days, 90, 2560)?;
        let now = self.now_ms();
        self.mutate(ctx, key, |rec, batch| {
            Self::customer_only(ctx, rec, "kms:EnableKeyRotation")?;
            not_imported(rec)?;
            enabled(rec)?;
            if let Some(old) = rec.next_rotation_ms {
                batch.delete(rotation_index(old, &rec.account, &rec.region, &rec.key_id));
            }
            // The period counts from the last rotation (or creation) when rotation was already
            // on, and from now when it is being turned on.
            let base = if rec.rotation_period_days.is_some() {
                rec.materials
                    .iter()
                    .filter_map(|m| m.rotated_ms)
                    .max()
                    .unwrap_or(rec.creation_date * 1000)
            } else {
                now
            };
            let next = (base + days * DAY_MS).max(now);
            rec.rotation_period_days = Some(days as u32);
            rec.next_rotation_ms = Some(next);
            batch.put(
                rotation_index(next, &rec.account, &rec.region, &rec.key_id),
                Vec::new(),
            );
            Ok(())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn disable_key_rotation(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: KeyIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        self.mutate(ctx, key, |rec, batch| {
            Self::customer_only(ctx, rec, "kms:DisableKeyRotation")?;
            enabled(rec)?;
            if let Some(old) = rec.next_rotation_ms.take() {
                batch.delete(rotation_index(old, &rec.account, &rec.region, &rec.key_id));
            }
            rec.rotation_period_days = None;
            Ok(())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn get_key_rotation_status(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: KeyIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let (rec, _) = self.load(ctx, key).await?;
        not_pending(&rec)?;
        let mut out = Obj::new();
        out.insert("KeyId".into(), json!(rec.arn));
        let period = match rec.key_manager {
            KeyManager::Aws => Some(MANAGED_ROTATION_DAYS),
            KeyManager::Customer => rec.rotation_period_days,
        };
        out.insert("KeyRotationEnabled".into(), json!(period.is_some()));
        if let Some(p) = period {
            out.insert("RotationPeriodInDays".into(), json!(p));
        }
        if let Some(n) = rec.next_rotation_ms {
            out.insert("NextRotationDate".into(), ts(n));
        }
        Ok(out)
    }

    pub(crate) async fn rotate_key_on_demand(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: KeyIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let now = self.now_ms();
        let (rec, _) = self
            .mutate(ctx, key, |rec, _| {
                Self::customer_only(ctx, rec, "kms:RotateKeyOnDemand")?;
                not_imported(rec)?;
                enabled(rec)?;
                let on_demand = rec
                    .materials
                    .iter()
                    .filter(|m| m.rotation_type.as_deref() == Some("ON_DEMAND"))
                    .count();
                if on_demand >= MAX_ON_DEMAND_ROTATIONS {
                    return Err(KmsError::LimitExceeded(format!(
                        "The on-demand rotations quota of {MAX_ON_DEMAND_ROTATIONS} for {} has \
                         been reached.",
                        rec.arn
                    )));
                }
                self.add_material(rec, now, "ON_DEMAND")
            })
            .await?;
        let mut out = Obj::new();
        out.insert("KeyId".into(), json!(rec.arn));
        Ok(out)
    }

    /// Adds a material version to `rec` and makes it the one new encryptions use; older
    /// versions stay, so everything encrypted before still decrypts.
    fn add_material(&self, rec: &mut KeyRecord, now: i64, kind: &str) -> Result<(), KmsError> {
        let version = rec.materials.iter().map(|m| m.version).max().unwrap_or(0) + 1;
        let mut m = self.keys.new_material(&rec.arn, version)?;
        m.rotated_ms = Some(now);
        m.rotation_type = Some(kind.to_owned());
        rec.materials.push(m);
        rec.current_version = version;
        Ok(())
    }

    pub(crate) async fn list_key_rotations(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: ListRotationsIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        if let Some(m) = &i.include_key_material {
            validate::one_of(
                "includeKeyMaterial",
                m,
                &["ALL_KEY_MATERIAL", "ROTATIONS_ONLY"],
            )?;
        }
        let limit = validate::limit(i.limit, 100, 1000)?;
        let (rec, _) = self.load(ctx, key).await?;
        if rec.key_manager == KeyManager::Aws {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} is an AWS managed key; its rotations are not listed.",
                rec.arn
            )));
        }
        not_pending(&rec)?;
        // ALL_KEY_MATERIAL adds the key's first material to the rotations.
        let all = i.include_key_material.as_deref() == Some("ALL_KEY_MATERIAL");
        let scope = coffer_service::token::scope(&[
            "ListKeyRotations",
            &rec.arn,
            if all { "all" } else { "rotations" },
        ]);
        let after = self.marker_position(&scope, i.marker.as_deref())?;
        let after: u32 = after.and_then(|a| a.parse().ok()).unwrap_or(0);
        let rotations: Vec<_> = rec
            .materials
            .iter()
            .filter(|m| m.version > after && (all || m.rotated_ms.is_some()))
            .collect();
        let truncated = rotations.len() > limit;
        let page = &rotations[..rotations.len().min(limit)];
        let mut out = Obj::new();
        out.insert(
            "Rotations".into(),
            Value::Array(
                page.iter()
                    .map(|m| {
                        let mut e = json!({
                            "KeyId": rec.key_id,
                            "KeyMaterialId": crate::material_id(&rec.arn, m.version),
                            "KeyMaterialState": if m.version == rec.current_version {
                                "CURRENT"
                            } else {
                                "NON_CURRENT"
                            },
                        });
                        // The first material has no rotation date or type.
                        if let Some(at) = m.rotated_ms {
                            e["RotationDate"] = ts(at);
                            e["RotationType"] =
                                json!(m.rotation_type.as_deref().unwrap_or("AUTOMATIC"));
                        }
                        e
                    })
                    .collect(),
            ),
        );
        out.insert("Truncated".into(), json!(truncated));
        if truncated && let Some(last) = page.last() {
            out.insert(
                "NextMarker".into(),
                json!(self.issue_marker(&scope, &last.version.to_string())),
            );
        }
        Ok(out)
    }

    // ----- tags -------------------------------------------------------------------------------

    pub(crate) async fn tag_resource(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: TagIn2 = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let tags = required("tags", i.tags.as_ref())?;
        validate::tags(tags)?;
        let new = to_tags(i.tags.unwrap_or_default());
        self.mutate(ctx, key, |rec, _| {
            Self::customer_only(ctx, rec, "kms:TagResource")?;
            not_pending(rec)?;
            coffer_service::tags::merge(&mut rec.tags, new.clone(), MAX_TAGS).map_err(|_| {
                KmsError::LimitExceeded(
                    "The request was rejected because it would exceed the quota of 50 tags per \
                     key."
                        .into(),
                )
            })
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: UntagIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let keys = required("tagKeys", i.tag_keys.as_ref())?;
        for k in keys {
            validate::length("tagKeys.member", k, 1, 128)?;
        }
        self.mutate(ctx, key, |rec, _| {
            Self::customer_only(ctx, rec, "kms:UntagResource")?;
            not_pending(rec)?;
            rec.tags.retain(|t| !keys.contains(&t.key));
            Ok(())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn list_resource_tags(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: KeyListIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let limit = validate::limit(i.limit, 50, 50)?;
        let (rec, _) = self.load(ctx, key).await?;
        let scope = coffer_service::token::scope(&["ListResourceTags", &rec.arn]);
        let start: usize = self
            .marker_position(&scope, i.marker.as_deref())?
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let rest = rec.tags.get(start..).unwrap_or(&[]);
        let page = &rest[..rest.len().min(limit)];
        let truncated = rest.len() > limit;
        let mut out = Obj::new();
        out.insert(
            "Tags".into(),
            Value::Array(
                page.iter()
                    .map(|t| json!({"TagKey": t.key, "TagValue": t.value}))
                    .collect(),
            ),
        );
        out.insert("Truncated".into(), json!(truncated));
        if truncated {
            out.insert(
                "NextMarker".into(),
                json!(self.issue_marker(&scope, &(start + limit).to_string())),
            );
        }
        Ok(out)
    }

    // ----- key policies -----------------------------------------------------------------------

    pub(crate) async fn get_key_policy(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: GetPolicyIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        validate::policy_name(i.policy_name.as_deref())?;
        let (rec, _) = self.load(ctx, key).await?;
        let policy = rec.policy_text();
        let mut out = Obj::new();
        out.insert("Policy".into(), json!(policy));
        out.insert("PolicyName".into(), json!("default"));
        Ok(out)
    }

    pub(crate) async fn put_key_policy(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: PutPolicyIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let policy = required("policy", i.policy.as_deref())?;
        validate::policy_name(i.policy_name.as_deref())?;
        check_policy(policy)?;
        self.mutate(ctx, key, |rec, _| {
            Self::customer_only(ctx, rec, "kms:PutKeyPolicy")?;
            not_pending(rec)?;
            check_lockout(
                ctx,
                &rec.arn,
                &rec.tags,
                policy,
                i.bypass_policy_lockout_safety_check,
            )?;
            rec.policy = Some(policy.to_owned());
            Ok(())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn list_key_policies(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: KeyListIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        validate::limit(i.limit, 100, 1000)?;
        validate::marker(i.marker.as_deref())?;
        self.load(ctx, key).await?;
        let mut out = Obj::new();
        out.insert("PolicyNames".into(), json!(["default"]));
        out.insert("Truncated".into(), json!(false));
        Ok(out)
    }

    // ----- background -------------------------------------------------------------------------

    /// Deletes every key whose waiting period ended by `now`, with its aliases and grants.
    pub(crate) async fn purge_due(&self, now: i64) -> Result<usize, KmsError> {
        const PREFIX: &str = "kms/deletion/";
        let end = format!("{PREFIX}{:020}", now.saturating_add(1)).into_bytes();
        let due = self.store.scan(PREFIX.as_bytes(), &end, 1000).await?;
        let mut deleted = 0;
        for (ik, _) in due {
            let Some((_, account, region, key_id)) = parse_index(PREFIX, &ik) else {
                continue;
            };
            let rk = key_record_key(account, region, key_id);
            let mut batch = WriteBatch::new();
            batch.delete(ik.clone());
            match self.store.get(&rk).await? {
                Some(entry) => {
                    let rec: KeyRecord = crate::parse(&entry, "key record")?;
                    let due = rec.key_state == KeyState::PendingDeletion
                        && rec.deletion_ms.is_some_and(|d| d <= now);
                    if due {
                        batch.check(rk.clone(), Some(&entry)).delete(rk);
                        if let Some(n) = rec.next_rotation_ms {
                            batch.delete(rotation_index(n, account, region, key_id));
                        }
                        self.delete_dependents(&mut batch, account, region, key_id)
                            .await?;
                    }
                    // Otherwise the entry is stale (deletion cancelled meanwhile): drop it alone.
                    match self.store.commit(batch).await {
                        Ok(_) => {
                            self.keys.forget_key(&rec.arn);
                            deleted += usize::from(due);
                        }
                        // Changed meanwhile (cancelled, or deleted by another node sharing the
                        // store: the check on the record is what makes it happen once).
                        Err(coffer_store::StoreError::Conflict) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    self.store.commit(batch).await?;
                }
            }
        }
        Ok(deleted)
    }

    /// Adds the deletion of a key's aliases and grants to `batch`.
    async fn delete_dependents(
        &self,
        batch: &mut WriteBatch,
        account: &str,
        region: &str,
        key_id: &str,
    ) -> Result<(), KmsError> {
        let aliases = format!("kms/alias/{account}/{region}/").into_bytes();
        for (k, e) in self
            .store
            .scan(&aliases, &coffer_store::prefix_end(&aliases), usize::MAX)
            .await?
        {
            let a: crate::AliasRecord = crate::parse(&e, "alias record")?;
            if a.target_key_id == key_id {
                batch.delete(k);
            }
        }
        let grants = super::grants::grant_prefix(account, region, key_id);
        for (k, _) in self
            .store
            .scan(&grants, &coffer_store::prefix_end(&grants), usize::MAX)
            .await?
        {
            batch.delete(k);
        }
        Ok(())
    }

    /// Adds a material version to every enabled key whose automatic rotation is due by `now`.
    pub(crate) async fn rotate_due(&self, now: i64) -> Result<usize, KmsError> {
        const PREFIX: &str = "kms/rotation/";
        let end = format!("{PREFIX}{:020}", now.saturating_add(1)).into_bytes();
        let due = self.store.scan(PREFIX.as_bytes(), &end, 1000).await?;
        let mut rotated = 0;
        for (ik, _) in due {
            let Some((due_ms, account, region, key_id)) = parse_index(PREFIX, &ik) else {
                continue;
            };
            let rk = key_record_key(account, region, key_id);
            let Some(entry) = self.store.get(&rk).await? else {
                self.store.commit(stale(ik)).await?;
                continue;
            };
            let mut rec: KeyRecord = crate::parse(&entry, "key record")?;
            if rec.next_rotation_ms != Some(due_ms) {
                self.store.commit(stale(ik)).await?;
                continue;
            }
            // A disabled key (or one pending deletion) is not rotated; its rotation happens
            // once it is enabled again.
            let Some(period) = rec.rotation_period_days else {
                continue;
            };
            if rec.key_state != KeyState::Enabled {
                continue;
            }
            self.add_material(&mut rec, now, "AUTOMATIC")?;
            let next = now + i64::from(period) * DAY_MS;
            rec.next_rotation_ms = Some(next);
            let mut batch = WriteBatch::new();
            batch
                .check(rk.clone(), Some(&entry))
                .put(rk, crate::to_json(&rec)?)
                .delete(ik.clone())
                .put(rotation_index(next, account, region, key_id), Vec::new());
            match self.store.commit(batch).await {
                Ok(_) => {
                    self.keys.forget_key(&rec.arn);
                    rotated += 1;
                }
                Err(coffer_store::StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(rotated)
    }
}

fn stale(index_key: Vec<u8>) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.delete(index_key);
    b
}
