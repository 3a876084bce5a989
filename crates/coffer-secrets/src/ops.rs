//! The secret lifecycle: create, read, write, describe, delete/restore, staging labels, tags,
//! random passwords; plus the helpers every operation shares (resolution, encryption, batches).

use coffer_core::authz::{ConditionKey, ResourcePolicy};
use coffer_service::opctx::OpCtx;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use coffer_store::{Entry, WriteBatch, prefix_end};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::error::{SecretsError, decryption_error, encryption_error};
use crate::model::*;
use crate::readcache::{self, SharedLoaded, Use};
use crate::validate::{self, SecretBytes, TagIn};
use crate::value_out::SecretValueOut;
use crate::{SecretsService, password, retry};

pub(crate) type Obj = Map<String, Value>;

/// The `{ARN, Name}` most answers start with.
pub(crate) fn arn_name(meta: &SecretMeta) -> Obj {
    let mut o = Obj::new();
    o.insert("ARN".into(), json!(meta.arn));
    o.insert("Name".into(), json!(meta.name));
    o
}

/// Epoch seconds with millisecond precision, as AWS's JSON timestamps.
pub(crate) fn ts(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// A secret as read from the store.
pub(crate) struct Loaded {
    pub key: Vec<u8>,
    pub entry: Entry,
    pub meta: SecretMeta,
}

/// A value to be (re-)encrypted under a secret's key.
pub(crate) struct PlainVersion {
    pub vid: String,
    pub kind: ValueKind,
    pub plaintext: Zeroizing<Vec<u8>>,
}

pub(crate) fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"Key": t.key, "Value": t.value}))
            .collect(),
    )
}

fn not_null(member: &str) -> SecretsError {
    SecretsError::validation(member, "Member must not be null")
}

pub(crate) fn required<T>(member: &str, v: Option<T>) -> Result<T, SecretsError> {
    v.ok_or_else(|| not_null(member))
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(6);
    let mut buf = [0u8; 16];
    while out.len() < 6 {
        if aws_lc_rs::rand::fill(&mut buf).is_err() {
            // Fall back to uuid's generator; the suffix is not a security boundary.
            buf.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        for b in buf {
            // Rejection sampling keeps the distribution uniform (248 = 4 * 62).
            if b < 248 && out.len() < 6 {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// `RestoreSecret`-style input: just the secret.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretIdIn {
    secret_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReplicaRegionIn {
    pub region: Option<String>,
    pub kms_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSecretIn {
    name: Option<String>,
    client_request_token: Option<String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    #[serde(default, deserialize_with = "validate::secret_binary")]
    secret_binary: Option<SecretBytes>,
    #[serde(default, deserialize_with = "validate::secret_string")]
    secret_string: Option<SecretBytes>,
    tags: Option<Vec<TagIn>>,
    add_replica_regions: Option<Vec<ReplicaRegionIn>>,
    force_overwrite_replica_secret: Option<bool>,
    #[serde(rename = "Type")]
    secret_type: Option<String>,
    #[serde(rename = "CrossAccountPrimaryARN")]
    cross_account_primary_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValueIn {
    secret_id: Option<String>,
    version_id: Option<String>,
    version_stage: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutSecretValueIn {
    secret_id: Option<String>,
    client_request_token: Option<String>,
    #[serde(default, deserialize_with = "validate::secret_binary")]
    secret_binary: Option<SecretBytes>,
    #[serde(default, deserialize_with = "validate::secret_string")]
    secret_string: Option<SecretBytes>,
    version_stages: Option<Vec<String>>,
    rotation_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateSecretIn {
    secret_id: Option<String>,
    client_request_token: Option<String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    #[serde(default, deserialize_with = "validate::secret_binary")]
    secret_binary: Option<SecretBytes>,
    #[serde(default, deserialize_with = "validate::secret_string")]
    secret_string: Option<SecretBytes>,
    #[serde(rename = "Type")]
    secret_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteSecretIn {
    secret_id: Option<String>,
    recovery_window_in_days: Option<i64>,
    force_delete_without_recovery: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateStageIn {
    secret_id: Option<String>,
    version_stage: Option<String>,
    remove_from_version_id: Option<String>,
    move_to_version_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceIn {
    secret_id: Option<String>,
    tags: Option<Vec<TagIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagResourceIn {
    secret_id: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRandomPasswordIn {
    password_length: Option<i64>,
    exclude_characters: Option<String>,
    exclude_numbers: Option<bool>,
    exclude_punctuation: Option<bool>,
    exclude_uppercase: Option<bool>,
    exclude_lowercase: Option<bool>,
    include_space: Option<bool>,
    require_each_included_type: Option<bool>,
}

impl SecretsService {
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    // ----- reading -------------------------------------------------------------------------

    pub(crate) async fn load(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<Loaded>, SecretsError> {
        Ok(self
            .load_with(account, region, name, Use::Write)
            .await?
            .map(SharedLoaded::into_owned))
    }

    /// Finds a secret by name, full ARN, or partial ARN (the ARN without its `-XXXXXX` suffix).
    pub(crate) async fn resolve(&self, ctx: &OpCtx<'_>, id: &str) -> Result<Loaded, SecretsError> {
        Ok(self.resolve_with(ctx, id, Use::Write).await?.into_owned())
    }

    /// [`Self::resolve`] for operations that change a secret: it must be neither scheduled for
    /// deletion nor a replica.
    pub(crate) async fn resolve_writable(
        &self,
        ctx: &OpCtx<'_>,
        id: &str,
    ) -> Result<Loaded, SecretsError> {
        let l = self.resolve(ctx, id).await?;
        if l.meta.is_deleted() {
            return Err(SecretsError::marked_for_deletion());
        }
        if l.meta.primary_region.is_some() {
            return Err(SecretsError::replica_read_only());
        }
        Ok(l)
    }

    pub(crate) async fn decrypt_version(
        &self,
        account: &str,
        meta: &SecretMeta,
        vid: &str,
    ) -> Result<(ValueKind, Zeroizing<Vec<u8>>), SecretsError> {
        let key = version_key(account, &meta.region, &meta.name, vid);
        let entry = self.store.get(&key).await?.ok_or_else(|| {
            SecretsError::ResourceNotFound(format!(
                "Secrets Manager can't find the specified secret value for VersionId: {vid}"
            ))
        })?;
        let rec = self
            .reads
            .versions
            .get(&key, &entry, readcache::decode_version)
            .ok_or_else(|| {
                SecretsError::DecryptionFailure("The stored secret value is corrupt.".into())
            })?;
        let plain = self
            .keys
            .decrypt(
                account,
                &meta.region,
                &rec.blob,
                &[("SecretARN", meta.arn.as_str()), ("SecretVersionId", vid)],
            )
            .await
            .map_err(decryption_error)?;
        Ok((rec.kind, plain))
    }

    /// Whether an existing version holds exactly this value (idempotent retries).
    async fn same_value(
        &self,
        account: &str,
        meta: &SecretMeta,
        vid: &str,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<bool, SecretsError> {
        match self.decrypt_version(account, meta, vid).await {
            Ok((k, plain)) => Ok(k == kind && plain.as_slice() == value),
            Err(SecretsError::ResourceNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Secrets Manager calls KMS as the caller (kms:Decrypt to read a version,
    /// kms:GenerateDataKey to write one), so the key and its key policy take part;
    /// aws/secretsmanager allows every caller of the account through the service.
    async fn authorize_key(
        &self,
        ctx: &OpCtx<'_>,
        action: &'static str,
        meta: &SecretMeta,
        key: Option<&str>,
        vid: &str,
    ) -> Result<(), coffer_kms::KeyUseError> {
        self.keys
            .authorize_use(
                ctx,
                action,
                key.unwrap_or(DEFAULT_KMS_ALIAS),
                "secretsmanager",
                &[("SecretARN", meta.arn.as_str()), ("SecretVersionId", vid)],
            )
            .await
    }

    // ----- writing -------------------------------------------------------------------------

    /// The caller may have the secret's key encrypt each of `values` (before anything is
    /// written).
    async fn authorize_new_values(
        &self,
        ctx: &OpCtx<'_>,
        meta: &SecretMeta,
        values: &[PlainVersion],
    ) -> Result<(), SecretsError> {
        for v in values {
            self.authorize_key(
                ctx,
                "kms:GenerateDataKey",
                meta,
                meta.kms_key_id.as_deref(),
                &v.vid,
            )
            .await
            .map_err(|e| match e {
                coffer_kms::KeyUseError::Key(e) => encryption_error(e),
                coffer_kms::KeyUseError::Denied(d) => d.into(),
            })?;
        }
        Ok(())
    }

    pub(crate) async fn encrypt_record(
        &self,
        account: &str,
        region: &str,
        kms: Option<&str>,
        arn: &str,
        v: &PlainVersion,
    ) -> Result<Vec<u8>, SecretsError> {
        let blob = self
            .keys
            .encrypt(
                account,
                region,
                kms.unwrap_or(DEFAULT_KMS_ALIAS),
                &v.plaintext,
                &[("SecretARN", arn), ("SecretVersionId", v.vid.as_str())],
            )
            .await
            .map_err(encryption_error)?;
        let rec = VersionRecord {
            kind: v.kind,
            blob: base64::engine::general_purpose::STANDARD.encode(blob),
        };
        serde_json::to_vec(&rec)
            .map_err(|_| SecretsError::InternalServiceError("encoding failed".into()))
    }

    /// Adds to `batch`: the secret's metadata, its new/re-encrypted versions, deletion of
    /// `dropped` versions, and the same change on every in-sync replica (except `skip` regions,
    /// which the caller writes itself).
    pub(crate) async fn write_secret(
        &self,
        batch: &mut WriteBatch,
        account: &str,
        meta: &SecretMeta,
        values: &[PlainVersion],
        dropped: &[String],
        skip: &[String],
    ) -> Result<(), SecretsError> {
        let meta_bytes = serde_json::to_vec(meta)
            .map_err(|_| SecretsError::InternalServiceError("encoding failed".into()))?;
        batch.put(secret_key(account, &meta.region, &meta.name), meta_bytes);
        for v in values {
            let rec = self
                .encrypt_record(
                    account,
                    &meta.region,
                    meta.kms_key_id.as_deref(),
                    &meta.arn,
                    v,
                )
                .await?;
            batch.put(version_key(account, &meta.region, &meta.name, &v.vid), rec);
        }
        for vid in dropped {
            batch.delete(version_key(account, &meta.region, &meta.name, vid));
        }
        for r in &meta.replicas {
            if r.status != ReplicaStatus::InSync || skip.contains(&r.region) {
                continue;
            }
            let existing = self.load(account, &r.region, &meta.name).await?;
            batch.check(
                secret_key(account, &r.region, &meta.name),
                existing.as_ref().map(|l| &l.entry),
            );
            let created = existing.as_ref().map(|l| l.meta.created_ms);
            let rmeta = crate::replica::replica_meta(meta, r, created);
            let bytes = serde_json::to_vec(&rmeta)
                .map_err(|_| SecretsError::InternalServiceError("encoding failed".into()))?;
            batch.put(secret_key(account, &r.region, &meta.name), bytes);
            for v in values {
                let rec = self
                    .encrypt_record(account, &r.region, r.kms_key_id.as_deref(), &rmeta.arn, v)
                    .await?;
                batch.put(version_key(account, &r.region, &meta.name, &v.vid), rec);
            }
            for vid in dropped {
                batch.delete(version_key(account, &r.region, &meta.name, vid));
            }
        }
        Ok(())
    }

    /// Removes a secret and everything under it (versions, access record, deletion index).
    pub(crate) fn erase(&self, batch: &mut WriteBatch, account: &str, meta: &SecretMeta) {
        batch.delete(secret_key(account, &meta.region, &meta.name));
        for vid in meta.versions.keys() {
            batch.delete(version_key(account, &meta.region, &meta.name, vid));
        }
        batch.delete(access_key(account, &meta.region, &meta.name));
        if let Some(d) = meta.deletion_ms {
            batch.delete(deletion_key(d, account, &meta.region, &meta.name));
        }
        if let Some(d) = meta.rotation.as_ref().and_then(|r| r.due_ms) {
            batch.delete(rotation_key(d, account, &meta.region, &meta.name));
        }
    }

    /// Normalizes a KmsKeyId from a request: `None` for the AWS-managed key, otherwise the key's
    /// ARN (or the alias ARN for an alias), after checking the key exists.
    pub(crate) async fn normalize_kms(
        &self,
        account: &str,
        region: &str,
        kms: Option<&str>,
    ) -> Result<Option<String>, SecretsError> {
        let default_arn_suffix = format!(":{account}:{DEFAULT_KMS_ALIAS}");
        let k = match kms {
            None | Some("") | Some(DEFAULT_KMS_ALIAS) => return Ok(None),
            Some(k) if k.starts_with("arn:") && k.ends_with(&default_arn_suffix) => {
                return Ok(None);
            }
            Some(k) => k,
        };
        let key_ref = self
            .keys
            .resolve(account, region, k)
            .await
            .map_err(|e| match e {
                coffer_kms::KeyError::NotFound(_) => SecretsError::ResourceNotFound(
                    "Secrets Manager can't find the specified KMS key.".into(),
                ),
                other => encryption_error(other),
            })?;
        let partition = coffer_core::arn::partition_for_region(region);
        Ok(Some(if let Some(alias) = k.strip_prefix("alias/") {
            format!("arn:{partition}:kms:{region}:{account}:alias/{alias}")
        } else if k.starts_with("arn:") {
            k.to_owned()
        } else {
            key_ref.arn
        }))
    }

    /// Adds version `vid` (new) carrying `stages` and returns versions pruned to stay within
    /// AWS's limits.
    fn add_version(
        meta: &mut SecretMeta,
        vid: &str,
        stages: &[String],
        now: i64,
    ) -> Result<Vec<String>, SecretsError> {
        meta.insert_version(vid, now, false);
        meta.attach_stages(vid, stages);
        check_stage_limit(meta)?;
        let dropped = meta.versions_to_prune(now);
        for d in &dropped {
            meta.versions.remove(d);
        }
        if meta.versions.len() > HARD_MAX_VERSIONS {
            return Err(SecretsError::LimitExceeded(
                "You have exceeded the maximum number of versions of this secret.".into(),
            ));
        }
        Ok(dropped)
    }

    // ----- operations ----------------------------------------------------------------------

    pub(crate) async fn create_secret(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: CreateSecretIn = validate::decode(body)?;
        let name = required("name", input.name.as_deref())?;
        validate::secret_name(name)?;
        validate::client_request_token(input.client_request_token.as_deref())?;
        validate::description(input.description.as_deref())?;
        validate::kms_key_id(input.kms_key_id.as_deref())?;
        validate::opt_length("type", input.secret_type.as_deref(), 0, 256)?;
        if input.cross_account_primary_arn.is_some() {
            return Err(SecretsError::InvalidRequest(
                "Cross-account replication is not supported by this server.".into(),
            ));
        }
        let value = validate::secret_value(
            input.secret_string.as_ref(),
            input.secret_binary.as_ref(),
            false,
        )?;
        let tags = validate::tags(input.tags.as_deref().unwrap_or_default())?;
        validate::merge_tags(&mut Vec::new(), tags.clone())?;
        let replicas = crate::replica::parse_regions(ctx, input.add_replica_regions.as_deref())?;
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        // The new secret's ARN is fixed before the decision, which is made on it.
        let new_arn = secret_arn(ctx.partition(), region, account, name, &random_suffix());
        let mut keys = vec![ConditionKey::str("secretsmanager:Name", name)];
        if !tags.is_empty() {
            let tag_keys = tags.iter().map(|t| t.key.as_str()).collect();
            keys.push(ConditionKey::list("aws:TagKeys", tag_keys));
        }
        ctx.with_request_tags(&tags)
            .check(&new_arn, None, ResourcePolicy::None, &keys)?;
        let kms = self
            .normalize_kms(account, region, input.kms_key_id.as_deref())
            .await?;
        let mut replica_kms = Vec::with_capacity(replicas.len());
        for (r, k) in &replicas {
            replica_kms.push((
                r.clone(),
                self.normalize_kms(account, r, k.as_deref()).await?,
            ));
        }
        let vid = input
            .client_request_token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let force = input.force_overwrite_replica_secret.unwrap_or(false);

        retry!(
            self, account, region, name,
            async {
                let existing = self.load(account, region, name).await?;
                if let Some(l) = &existing {
                    if l.meta.is_deleted() {
                        return Err(SecretsError::InvalidRequest(
                            "You can't create this secret because a secret with this name is already scheduled for deletion."
                                .into(),
                        ));
                    }
                    // A retried CreateSecret with the same token and value succeeds unchanged.
                    if let (Some(_), Some((kind, bytes))) = (&input.client_request_token, value)
                        && l.meta.versions.contains_key(&vid)
                            && self.same_value(account, &l.meta, &vid, kind, bytes).await?
                        {
                            let mut o = arn_name(&l.meta);
                            o.insert("VersionId".into(), json!(vid));
                            return Ok(o);
                        }
                    return Err(SecretsError::ResourceExists(format!(
                        "The operation failed because the secret {name} already exists."
                    )));
                }
                let now = self.now();
                let mut meta = SecretMeta {
                    arn: new_arn.clone(),
                    name: name.to_owned(),
                    region: region.to_owned(),
                    description: input.description.clone(),
                    kms_key_id: kms.clone(),
                    tags: tags.clone(),
                    created_ms: now,
                    changed_ms: now,
                    deleted_ms: None,
                    deletion_ms: None,
                    versions: BTreeMap::new(),
                    next_seq: 0,
                    policy: None,
                    primary_region: None,
                    replicas: Vec::new(),
                    owning_service: None,
                    secret_type: input.secret_type.clone(),
                    rotation: None,
                };
                let mut values = Vec::new();
                if let Some((kind, bytes)) = value {
                    Self::add_version(&mut meta, &vid, &[AWSCURRENT.to_owned()], now)?;
                    values.push(PlainVersion {
                        vid: vid.clone(),
                        kind,
                        plaintext: Zeroizing::new(bytes.to_vec()),
                    });
                }
                self.authorize_new_values(ctx, &meta, &values).await?;
                let mut batch = WriteBatch::new();
                batch.check(secret_key(account, region, name), None);
                let installed = self
                    .install_replicas(&mut batch, account, &mut meta, &replica_kms, force, &values)
                    .await?;
                self.write_secret(&mut batch, account, &meta, &values, &[], &installed)
                    .await?;
                self.store.commit(batch).await?;
                let mut o = Obj::new();
                o.insert("ARN".into(), json!(meta.arn));
                o.insert("Name".into(), json!(meta.name));
                if value.is_some() {
                    o.insert("VersionId".into(), json!(vid));
                }
                if !meta.replicas.is_empty() {
                    o.insert(
                        "ReplicationStatus".into(),
                        self.replication_status_json(account, &meta).await,
                    );
                }
                Ok(o)
            }
            .await
        )
    }

    /// Answers with the JSON body itself: the answer is serialised straight from the metadata
    /// and plaintext it borrows.
    pub(crate) async fn get_secret_value(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Vec<u8>, SecretsError> {
        let input: GetSecretValueIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::version_id("versionId", input.version_id.as_deref())?;
        if let Some(s) = &input.version_stage {
            validate::version_stage("versionStage", s)?;
        }
        self.get_value_with(
            ctx,
            id,
            input.version_id.as_deref(),
            input.version_stage.as_deref(),
            |o: &SecretValueOut<'_>| o.to_json(),
        )
        .await?
    }

    /// GetSecretValue's answer as a map, for BatchGetSecretValue.
    pub(crate) async fn get_value(
        &self,
        ctx: &OpCtx<'_>,
        id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<Obj, SecretsError> {
        self.get_value_with(
            ctx,
            id,
            version_id,
            version_stage,
            |o: &SecretValueOut<'_>| o.to_obj(),
        )
        .await
    }

    /// GetSecretValue's core: finds and decrypts the version, records the access, and hands the
    /// answer (borrowing the metadata and plaintext) to `answer`.
    async fn get_value_with<R>(
        &self,
        ctx: &OpCtx<'_>,
        id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
        answer: impl FnOnce(&SecretValueOut<'_>) -> R,
    ) -> Result<R, SecretsError> {
        // secretsmanager:VersionStage: the stage asked for (AWSCURRENT when nothing is).
        let stage = match version_id {
            None => Some(version_stage.unwrap_or(AWSCURRENT)),
            Some(_) => version_stage,
        };
        let stage_key = stage.map(|s| [ConditionKey::str("secretsmanager:VersionStage", s)]);
        let staged;
        let ctx = match &stage_key {
            Some(k) => {
                staged = ctx.with_keys(k);
                &staged
            }
            None => ctx,
        };
        let l = self.resolve_shared(ctx, id).await?;
        if l.meta.is_deleted() {
            return Err(SecretsError::marked_for_deletion());
        }
        let meta = &*l.meta;
        let vid = match (version_id, version_stage) {
            (Some(v), stage) => {
                let vm = meta.versions.get(v).ok_or_else(|| {
                    SecretsError::ResourceNotFound(format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {v}"
                    ))
                })?;
                if let Some(s) = stage
                    && !vm.stages.iter().any(|x| x == s)
                {
                    return Err(SecretsError::ResourceNotFound(
                            "You provided a VersionStage that is not associated to the provided VersionId."
                                .into(),
                        ));
                }
                v.to_owned()
            }
            (None, stage) => {
                let stage = stage.unwrap_or(AWSCURRENT);
                meta.version_with_stage(stage)
                    .ok_or_else(|| {
                        SecretsError::ResourceNotFound(format!(
                            "Secrets Manager can't find the specified secret value for staging label: {stage}"
                        ))
                    })?
                    .to_owned()
            }
        };
        let account = ctx.account_id();
        let kms = meta.versions[&vid].kms_key_id.as_deref();
        self.authorize_key(ctx, "kms:Decrypt", meta, kms, &vid)
            .await
            .map_err(|e| match e {
                coffer_kms::KeyUseError::Key(e) => decryption_error(e),
                coffer_kms::KeyUseError::Denied(d) => d.into(),
            })?;
        let (kind, plain) = self.decrypt_version(account, meta, &vid).await?;
        self.record_access(account, &l, &vid).await;
        let vm = &meta.versions[&vid];
        let (secret_string, secret_binary) = match kind {
            ValueKind::String => (Some(String::from_utf8_lossy(&plain)), None),
            ValueKind::Binary => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(plain.as_slice())),
            ),
        };
        Ok(answer(&SecretValueOut {
            arn: &meta.arn,
            created_date: vm.created_ms as f64 / 1000.0,
            name: &meta.name,
            secret_binary,
            secret_string,
            version_id: &vid,
            version_stages: &vm.stages,
        }))
    }

    /// Records the day of access for the secret and the version, writing only when the day
    /// changes. Best effort: a lost race or a store hiccup never fails the read.
    async fn record_access(&self, account: &str, l: &SharedLoaded, vid: &str) {
        let today = day_of(self.now());
        let key = access_key(account, &l.meta.region, &l.meta.name);
        let current = match self.store.get(&key).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not read access record");
                return;
            }
        };
        // The common case, a second read on the same day, only compares the cached decoding.
        let decoded = current.as_ref().and_then(|e| {
            self.reads
                .access
                .get(&key, e, |raw| serde_json::from_slice(raw).ok())
                .filter(|r: &Arc<AccessRecord>| r.arn == l.meta.arn)
        });
        if let Some(r) = &decoded
            && r.secret_day == Some(today)
            && r.versions.get(vid) == Some(&today)
        {
            return;
        }
        let mut rec = match decoded {
            Some(r) => Arc::unwrap_or_clone(r),
            None => AccessRecord {
                arn: l.meta.arn.clone(),
                ..Default::default()
            },
        };
        rec.secret_day = Some(today);
        rec.versions.insert(vid.to_owned(), today);
        rec.versions.retain(|v, _| l.meta.versions.contains_key(v));
        let Ok(bytes) = serde_json::to_vec(&rec) else {
            return;
        };
        let mut batch = WriteBatch::new();
        batch.check(l.key.clone(), Some(&l.entry));
        batch.check(key.clone(), current.as_ref());
        batch.put(key, bytes);
        if let Err(e) = self.store.commit(batch).await {
            tracing::debug!(error = %e, "access record not written");
        }
    }

    pub(crate) async fn access_record(&self, account: &str, meta: &SecretMeta) -> AccessRecord {
        let key = access_key(account, &meta.region, &meta.name);
        match self.store.get(&key).await {
            Ok(Some(e)) => self
                .reads
                .access
                .get(&key, &e, |raw| serde_json::from_slice(raw).ok())
                .filter(|r| r.arn == meta.arn)
                .map(Arc::unwrap_or_clone)
                .unwrap_or_default(),
            _ => AccessRecord::default(),
        }
    }

    pub(crate) async fn put_secret_value(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: PutSecretValueIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        validate::client_request_token(input.client_request_token.as_deref())?;
        validate::opt_length("rotationToken", input.rotation_token.as_deref(), 36, 256)?;
        let (kind, bytes) = validate::secret_value(
            input.secret_string.as_ref(),
            input.secret_binary.as_ref(),
            true,
        )?
        .ok_or_else(|| {
            SecretsError::InvalidParameter(
                "You must provide either SecretString or SecretBinary.".into(),
            )
        })?;
        if let Some(stages) = &input.version_stages {
            check_stage_list("versionStages", stages)?;
        }
        let account = ctx.account_id();
        let vid = input
            .client_request_token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        retry!(
            self,
            ctx,
            id,
            async {
                let mut l = self.resolve_writable(ctx, id).await?;
                if l.meta.versions.get(&vid).is_some_and(|v| v.awaiting_value) {
                    return self
                        .fill_awaiting(
                            ctx,
                            &mut l,
                            &vid,
                            kind,
                            bytes,
                            input.version_stages.as_deref(),
                        )
                        .await;
                }
                if let Some(existing) = l.meta.versions.get(&vid) {
                    if !self.same_value(account, &l.meta, &vid, kind, bytes).await? {
                        return Err(existing_version_error());
                    }
                    let stages = existing.stages.clone();
                    return Ok(put_response(&l.meta, &vid, &stages));
                }
                let first = l.meta.versions.is_empty();
                let mut stages = input
                    .version_stages
                    .clone()
                    .unwrap_or_else(|| vec![AWSCURRENT.to_owned()]);
                if first && !stages.iter().any(|s| s == AWSCURRENT) {
                    stages.push(AWSCURRENT.to_owned());
                }
                let now = self.now();
                let dropped = Self::add_version(&mut l.meta, &vid, &stages, now)?;
                l.meta.changed_ms = now;
                let values = [PlainVersion {
                    vid: vid.clone(),
                    kind,
                    plaintext: Zeroizing::new(bytes.to_vec()),
                }];
                self.authorize_new_values(ctx, &l.meta, &values).await?;
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                self.write_secret(&mut batch, account, &l.meta, &values, &dropped, &[])
                    .await?;
                self.store.commit(batch).await?;
                let stages = l.meta.versions[&vid].stages.clone();
                Ok(put_response(&l.meta, &vid, &stages))
            }
            .await
        )
    }

    /// PutSecretValue on the version RotateSecret staged without a value: the value is written
    /// and the version keeps (or gets) the requested stages.
    async fn fill_awaiting(
        &self,
        ctx: &OpCtx<'_>,
        l: &mut Loaded,
        vid: &str,
        kind: ValueKind,
        bytes: &[u8],
        stages: Option<&[String]>,
    ) -> Result<Obj, SecretsError> {
        let account = ctx.account_id();
        let now = self.now();
        if let Some(v) = l.meta.versions.get_mut(vid) {
            v.awaiting_value = false;
            v.created_ms = now;
        }
        if let Some(stages) = stages {
            l.meta.attach_stages(vid, stages);
            check_stage_limit(&l.meta)?;
        }
        l.meta.changed_ms = now;
        let values = [PlainVersion {
            vid: vid.to_owned(),
            kind,
            plaintext: Zeroizing::new(bytes.to_vec()),
        }];
        self.authorize_new_values(ctx, &l.meta, &values).await?;
        let mut batch = WriteBatch::new();
        batch.check(l.key.clone(), Some(&l.entry));
        self.write_secret(&mut batch, account, &l.meta, &values, &[], &[])
            .await?;
        self.store.commit(batch).await?;
        let stages = l.meta.versions[vid].stages.clone();
        Ok(put_response(&l.meta, vid, &stages))
    }

    pub(crate) async fn update_secret(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: UpdateSecretIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        validate::client_request_token(input.client_request_token.as_deref())?;
        validate::description(input.description.as_deref())?;
        validate::kms_key_id(input.kms_key_id.as_deref())?;
        validate::opt_length("type", input.secret_type.as_deref(), 0, 256)?;
        let value = validate::secret_value(
            input.secret_string.as_ref(),
            input.secret_binary.as_ref(),
            false,
        )?;
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        let new_kms = match input.kms_key_id.as_deref() {
            Some(k) => Some(self.normalize_kms(account, region, Some(k)).await?),
            None => None,
        };
        let vid = input
            .client_request_token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        retry!(
            self,
            ctx,
            id,
            async {
                let mut l = self.resolve_writable(ctx, id).await?;
                let mut out = arn_name(&l.meta);
                if let Some((kind, bytes)) = value
                    && l.meta.versions.contains_key(&vid)
                {
                    if !self.same_value(account, &l.meta, &vid, kind, bytes).await? {
                        return Err(existing_version_error());
                    }
                    out.insert("VersionId".into(), json!(vid));
                    return Ok(out);
                }
                let now = self.now();
                let mut values = Vec::new();
                if let Some(d) = &input.description {
                    l.meta.description = Some(d.clone());
                }
                if let Some(t) = &input.secret_type {
                    l.meta.secret_type = Some(t.clone());
                }
                if let Some(k) = &new_kms
                    && *k != l.meta.kms_key_id
                {
                    l.meta.kms_key_id = k.clone();
                    // AWS re-encrypts the versions rotation may still use.
                    let labeled: Vec<String> = l
                        .meta
                        .versions
                        .iter()
                        .filter(|(_, v)| {
                            !v.awaiting_value
                                && v.stages
                                    .iter()
                                    .any(|s| s == AWSCURRENT || s == AWSPREVIOUS || s == AWSPENDING)
                        })
                        .map(|(id, _)| id.clone())
                        .collect();
                    for v in labeled {
                        let (kind, plaintext) = self.decrypt_version(account, &l.meta, &v).await?;
                        if let Some(vm) = l.meta.versions.get_mut(&v) {
                            vm.kms_key_id = k.clone();
                        }
                        values.push(PlainVersion {
                            vid: v,
                            kind,
                            plaintext,
                        });
                    }
                }
                let mut dropped = Vec::new();
                if let Some((kind, bytes)) = value {
                    dropped = Self::add_version(&mut l.meta, &vid, &[AWSCURRENT.to_owned()], now)?;
                    values.push(PlainVersion {
                        vid: vid.clone(),
                        kind,
                        plaintext: Zeroizing::new(bytes.to_vec()),
                    });
                    out.insert("VersionId".into(), json!(vid));
                }
                l.meta.changed_ms = now;
                self.authorize_new_values(ctx, &l.meta, &values).await?;
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                self.write_secret(&mut batch, account, &l.meta, &values, &dropped, &[])
                    .await?;
                self.store.commit(batch).await?;
                Ok(out)
            }
            .await
        )
    }

    pub(crate) async fn describe_secret(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: SecretIdIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        let l = self.resolve(ctx, id).await?;
        let access = self.access_record(ctx.account_id(), &l.meta).await;
        let mut o = self.summary(&l.meta, &access, "VersionIdsToStages");
        crate::rotation::rotation_status_json(&mut o, &l.meta);
        if !l.meta.replicas.is_empty() {
            o.insert(
                "ReplicationStatus".into(),
                self.replication_status_json(ctx.account_id(), &l.meta)
                    .await,
            );
        }
        Ok(o)
    }

    /// The members DescribeSecret and ListSecrets share. `stages_member` differs between them.
    pub(crate) fn summary(
        &self,
        meta: &SecretMeta,
        access: &AccessRecord,
        stages_member: &str,
    ) -> Obj {
        let mut o = Obj::new();
        o.insert("ARN".into(), json!(meta.arn));
        o.insert("Name".into(), json!(meta.name));
        if let Some(t) = &meta.secret_type {
            o.insert("Type".into(), json!(t));
        }
        if let Some(d) = &meta.description {
            o.insert("Description".into(), json!(d));
        }
        if let Some(k) = meta.kms_display() {
            o.insert("KmsKeyId".into(), json!(k));
        }
        o.insert("LastChangedDate".into(), ts(meta.changed_ms));
        if let Some(d) = access.secret_day {
            o.insert("LastAccessedDate".into(), json!(d));
        }
        if let Some(d) = meta.deleted_ms {
            o.insert("DeletedDate".into(), ts(d));
        }
        if !meta.tags.is_empty() {
            o.insert("Tags".into(), tags_json(&meta.tags));
        }
        let stages: Map<String, Value> = meta
            .versions
            .iter()
            .filter(|(_, v)| !v.stages.is_empty())
            .map(|(id, v)| (id.clone(), json!(v.stages)))
            .collect();
        if !stages.is_empty() {
            o.insert(stages_member.into(), Value::Object(stages));
        }
        if let Some(s) = &meta.owning_service {
            o.insert("OwningService".into(), json!(s));
        }
        o.insert("CreatedDate".into(), ts(meta.created_ms));
        if meta.is_replicated() {
            o.insert("PrimaryRegion".into(), json!(meta.primary_region()));
        }
        crate::rotation::rotation_json(&mut o, meta);
        o
    }

    pub(crate) async fn delete_secret(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: DeleteSecretIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let force = input.force_delete_without_recovery.unwrap_or(false);
        if force && input.recovery_window_in_days.is_some() {
            return Err(SecretsError::InvalidParameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
                    .into(),
            ));
        }
        let days = input.recovery_window_in_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(SecretsError::InvalidParameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).".into(),
            ));
        }
        let account = ctx.account_id();
        retry!(
            self,
            ctx,
            id,
            async {
                let now = self.now();
                let mut l = match self.resolve(ctx, id).await {
                    Ok(l) => l,
                    // AWS: a forced delete of a missing secret is not an error.
                    Err(SecretsError::ResourceNotFound(_)) if force => {
                        let mut o = Obj::new();
                        let member = if id.starts_with("arn:") {
                            "ARN"
                        } else {
                            "Name"
                        };
                        o.insert(member.into(), json!(id));
                        o.insert("DeletionDate".into(), ts(now));
                        return Ok(o);
                    }
                    Err(e) => return Err(e),
                };
                if l.meta.primary_region.is_some() {
                    return Err(SecretsError::replica_read_only());
                }
                if !l.meta.replicas.is_empty() {
                    let regions: Vec<&str> =
                        l.meta.replicas.iter().map(|r| r.region.as_str()).collect();
                    return Err(SecretsError::InvalidRequest(format!(
                        "You can't delete secret {} that still has replica regions [{}]",
                        l.meta.name,
                        regions.join(", ")
                    )));
                }
                if l.meta.is_deleted() && !force {
                    return Err(SecretsError::marked_for_deletion());
                }
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                let deletion = if force {
                    self.erase(&mut batch, account, &l.meta);
                    now
                } else {
                    let deletion = now + days * 86_400_000;
                    l.meta.deleted_ms = Some(now);
                    l.meta.deletion_ms = Some(deletion);
                    l.meta.changed_ms = now;
                    batch.put(
                        deletion_key(deletion, account, &l.meta.region, &l.meta.name),
                        Vec::new(),
                    );
                    self.write_secret(&mut batch, account, &l.meta, &[], &[], &[])
                        .await?;
                    deletion
                };
                self.store.commit(batch).await?;
                let mut o = arn_name(&l.meta);
                o.insert("DeletionDate".into(), ts(deletion));
                Ok(o)
            }
            .await
        )
    }

    pub(crate) async fn restore_secret(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: SecretIdIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        let account = ctx.account_id();
        retry!(
            self,
            ctx,
            id,
            async {
                let mut l = self.resolve(ctx, id).await?;
                if l.meta.primary_region.is_some() {
                    return Err(SecretsError::replica_read_only());
                }
                if let Some(d) = l.meta.deletion_ms.take() {
                    l.meta.deleted_ms = None;
                    l.meta.changed_ms = self.now();
                    let mut batch = WriteBatch::new();
                    batch.check(l.key.clone(), Some(&l.entry));
                    batch.delete(deletion_key(d, account, &l.meta.region, &l.meta.name));
                    self.write_secret(&mut batch, account, &l.meta, &[], &[], &[])
                        .await?;
                    self.store.commit(batch).await?;
                }
                Ok(arn_name(&l.meta))
            }
            .await
        )
    }

    pub(crate) async fn purge(&self, now: i64) -> Result<usize, SecretsError> {
        let start = DELETION_PREFIX.as_bytes().to_vec();
        let end = format!("{DELETION_PREFIX}{:020}", now.saturating_add(1).max(0)).into_bytes();
        let mut purged = 0;
        let mut from = start;
        loop {
            let page = self.store.scan(&from, &end, 256).await?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (key, entry) in &page {
                let Some((account, region, name)) = parse_deletion_key(key) else {
                    continue;
                };
                let done = retry!(
                    self,
                    &account,
                    &region,
                    &name,
                    async {
                        let mut batch = WriteBatch::new();
                        let l = self.load(&account, &region, &name).await?;
                        let due = l.as_ref().is_some_and(|l| {
                            l.meta.deletion_ms.is_some_and(|d| d <= now)
                                && deletion_key(
                                    l.meta.deletion_ms.unwrap_or(0),
                                    &account,
                                    &region,
                                    &name,
                                ) == *key
                        });
                        batch.check(key.clone(), Some(entry));
                        match l {
                            Some(l) if due => {
                                batch.check(l.key.clone(), Some(&l.entry));
                                self.erase(&mut batch, &account, &l.meta);
                                self.service_event(
                                    &mut batch,
                                    &account,
                                    &l.meta,
                                    "DeleteSecret",
                                    now,
                                    serde_json::json!({
                                        "reason": "The secret's recovery window ended."
                                    }),
                                );
                            }
                            // A stale index entry (restored, or purged already).
                            _ => {
                                batch.delete(key.clone());
                            }
                        }
                        self.store.commit(batch).await?;
                        Ok::<bool, SecretsError>(due)
                    }
                    .await
                );
                match done {
                    Ok(true) => purged += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "purge of an expired secret failed"),
                }
            }
        }
        Ok(purged)
    }

    pub(crate) async fn update_secret_version_stage(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: UpdateStageIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        let stage = required("versionStage", input.version_stage.as_deref())?;
        validate::secret_id(id)?;
        validate::version_stage("versionStage", stage)?;
        validate::version_id(
            "removeFromVersionId",
            input.remove_from_version_id.as_deref(),
        )?;
        validate::version_id("moveToVersionId", input.move_to_version_id.as_deref())?;
        let account = ctx.account_id();
        retry!(
            self, ctx.account_id(), &ctx.region, id,
            async {
                let mut l = self.resolve_writable(ctx, id).await?;
                let holder = l.meta.version_with_stage(stage).map(str::to_owned);
                let remove = input.remove_from_version_id.as_deref();
                for v in [remove, input.move_to_version_id.as_deref()].into_iter().flatten() {
                    if !l.meta.versions.contains_key(v) {
                        return Err(SecretsError::ResourceNotFound(format!(
                            "Secrets Manager can't find the specified secret value for VersionId: {v}"
                        )));
                    }
                }
                match input.move_to_version_id.as_deref() {
                    Some(to) if holder.as_deref() == Some(to) => {}
                    Some(to) => {
                        if let Some(h) = &holder {
                            if remove != Some(h.as_str()) {
                                return Err(SecretsError::InvalidParameter(format!(
                                    "The staging label {stage} is currently attached to version {h}, so you must explicitly reference that version in RemoveFromVersionId."
                                )));
                            }
                        } else if remove.is_some() {
                            return Err(not_attached(stage, remove));
                        }
                        l.meta.attach_stages(to, &[stage.to_owned()]);
                    }
                    None => {
                        let Some(from) = remove else {
                            return Err(SecretsError::InvalidParameter(
                                "You must specify MoveToVersionId, RemoveFromVersionId, or both.".into(),
                            ));
                        };
                        if holder.as_deref() != Some(from) {
                            return Err(not_attached(stage, Some(from)));
                        }
                        if stage == AWSCURRENT {
                            return Err(SecretsError::InvalidParameter(
                                "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed."
                                    .into(),
                            ));
                        }
                        l.meta.detach_stage(from, stage);
                    }
                }
                check_stage_limit(&l.meta)?;
                let now = self.now();
                let dropped = l.meta.versions_to_prune(now);
                for d in &dropped {
                    l.meta.versions.remove(d);
                }
                l.meta.changed_ms = now;
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                self.write_secret(&mut batch, account, &l.meta, &[], &dropped, &[]).await?;
                self.store.commit(batch).await?;
                Ok(arn_name(&l.meta))
            }
            .await
        )
    }

    pub(crate) async fn tag_resource(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: TagResourceIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let tags = validate::tags(required("tags", input.tags.as_deref())?)?;
        let keys = [ConditionKey::list(
            "aws:TagKeys",
            tags.iter().map(|t| t.key.as_str()).collect(),
        )];
        let ctx = &ctx.with_request_tags(&tags);
        let ctx = &ctx.with_keys(&keys);
        self.change_meta(ctx, id, |meta| {
            validate::merge_tags(&mut meta.tags, tags.clone())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: UntagResourceIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let keys = required("tagKeys", input.tag_keys.as_ref())?;
        for k in keys {
            validate::length("tagKeys.member", k, 1, 128)?;
        }
        let tag_keys = [ConditionKey::list(
            "aws:TagKeys",
            keys.iter().map(String::as_str).collect(),
        )];
        let ctx = &ctx.with_keys(&tag_keys);
        self.change_meta(ctx, id, |meta| {
            meta.tags.retain(|t| !keys.contains(&t.key));
            Ok(())
        })
        .await?;
        Ok(Obj::new())
    }

    /// Applies a metadata-only change to a writable secret (and its replicas) in one batch.
    pub(crate) async fn change_meta(
        &self,
        ctx: &OpCtx<'_>,
        id: &str,
        f: impl Fn(&mut SecretMeta) -> Result<(), SecretsError>,
    ) -> Result<SecretMeta, SecretsError> {
        let account = ctx.account_id();
        retry!(
            self,
            ctx,
            id,
            async {
                let mut l = self.resolve_writable(ctx, id).await?;
                f(&mut l.meta)?;
                l.meta.changed_ms = self.now();
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                self.write_secret(&mut batch, account, &l.meta, &[], &[], &[])
                    .await?;
                self.store.commit(batch).await?;
                Ok(l.meta)
            }
            .await
        )
    }

    pub(crate) fn get_random_password(&self, body: &[u8]) -> Result<Obj, SecretsError> {
        let input: GetRandomPasswordIn = validate::decode(body)?;
        let opts = password::PasswordOptions {
            length: input.password_length,
            exclude_characters: input.exclude_characters,
            exclude_numbers: input.exclude_numbers.unwrap_or(false),
            exclude_punctuation: input.exclude_punctuation.unwrap_or(false),
            exclude_uppercase: input.exclude_uppercase.unwrap_or(false),
            exclude_lowercase: input.exclude_lowercase.unwrap_or(false),
            include_space: input.include_space.unwrap_or(false),
            require_each_included_type: input.require_each_included_type,
        };
        let pw = password::generate(&opts).map_err(|e| match e.aws_code() {
            "ValidationException" => SecretsError::Validation(e.to_string()),
            "InvalidParameterException" => SecretsError::InvalidParameter(e.to_string()),
            _ => SecretsError::InternalServiceError(e.to_string()),
        })?;
        let mut o = Obj::new();
        o.insert(
            "RandomPassword".into(),
            Value::String(pw.as_str().to_owned()),
        );
        Ok(o)
    }
}

fn existing_version_error() -> SecretsError {
    SecretsError::ResourceExists(
        "You can't modify an existing version, you can only create a new version.".into(),
    )
}

fn not_attached(stage: &str, from: Option<&str>) -> SecretsError {
    SecretsError::InvalidParameter(format!(
        "The staging label {stage} is not attached to version {}.",
        from.unwrap_or("")
    ))
}

fn put_response(meta: &SecretMeta, vid: &str, stages: &[String]) -> Obj {
    let mut o = Obj::new();
    o.insert("ARN".into(), json!(meta.arn));
    o.insert("Name".into(), json!(meta.name));
    o.insert("VersionId".into(), json!(vid));
    o.insert("VersionStages".into(), json!(stages));
    o
}

fn check_stage_list(member: &str, stages: &[String]) -> Result<(), SecretsError> {
    if stages.is_empty() {
        return Err(SecretsError::validation(
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    if stages.len() > MAX_STAGES_PER_VERSION {
        return Err(SecretsError::validation(
            member,
            "Member must have length less than or equal to 20",
        ));
    }
    for s in stages {
        validate::version_stage(&format!("{member}.member"), s)?;
    }
    Ok(())
}

fn check_stage_limit(meta: &SecretMeta) -> Result<(), SecretsError> {
    if meta
        .versions
        .values()
        .any(|v| v.stages.len() > MAX_STAGES_PER_VERSION)
    {
        return Err(SecretsError::LimitExceeded(format!(
            "A secret version can have at most {MAX_STAGES_PER_VERSION} staging labels."
        )));
    }
    Ok(())
}

/// Keys of all secrets of an account and region: `[start, end)` for a scan.
pub(crate) fn secret_range(account: &str, region: &str) -> (Vec<u8>, Vec<u8>) {
    let p = secret_prefix(account, region);
    let e = prefix_end(&p);
    (p, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_six_alphanumerics() {
        for _ in 0..50 {
            let s = random_suffix();
            assert_eq!(s.len(), 6);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }
}
