//! Multi-Region secrets: a replica is a read-only copy of a secret in another region of the same
//! account, with its own ARN (same name and suffix) and its own KMS key. The primary's record
//! lists its replicas; every write to the primary rewrites the replicas in the same batch
//! ([`SecretsService::write_secret`]).

use coffer_service::opctx::OpCtx;
use coffer_store::WriteBatch;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SecretsError;
use crate::model::*;
use crate::ops::{Obj, PlainVersion, ReplicaRegionIn, required};
use crate::{SecretsService, retry, validate};

const NAME_TAKEN: &str = "Replication failed: Secret with this name already exists in this region.";

/// Checks `AddReplicaRegions` and returns `(region, KmsKeyId)` pairs.
pub(crate) fn parse_regions(
    ctx: &OpCtx<'_>,
    input: Option<&[ReplicaRegionIn]>,
) -> Result<Vec<(String, Option<String>)>, SecretsError> {
    let Some(input) = input else {
        return Ok(Vec::new());
    };
    if input.is_empty() {
        return Err(SecretsError::validation(
            "addReplicaRegions",
            "Member must have length greater than or equal to 1",
        ));
    }
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for r in input {
        let region = required("addReplicaRegions.member.region", r.region.as_deref())?;
        validate::region("addReplicaRegions.member.region", region)?;
        validate::kms_key_id(r.kms_key_id.as_deref())?;
        if region == ctx.region {
            return Err(SecretsError::InvalidParameter(
                "Invalid replica region: a secret can't be replicated to its own region.".into(),
            ));
        }
        if coffer_core::arn::partition_for_region(region) != ctx.partition() {
            return Err(SecretsError::InvalidParameter(format!(
                "Invalid replica region {region}: it is in another partition."
            )));
        }
        if out.iter().any(|(o, _)| o == region) {
            return Err(SecretsError::InvalidParameter(format!(
                "Duplicate replica region {region}."
            )));
        }
        out.push((region.to_owned(), r.kms_key_id.clone()));
    }
    Ok(out)
}

/// The replica record mirroring `primary` in `r.region`.
pub(crate) fn replica_meta(
    primary: &SecretMeta,
    r: &Replica,
    created_ms: Option<i64>,
) -> SecretMeta {
    let mut m = primary.clone();
    m.arn = arn_in_region(&primary.arn, &r.region);
    m.region = r.region.clone();
    m.kms_key_id = r.kms_key_id.clone();
    m.primary_region = Some(primary.region.clone());
    m.replicas = Vec::new();
    m.created_ms = created_ms.unwrap_or(primary.changed_ms);
    for v in m.versions.values_mut() {
        v.kms_key_id = r.kms_key_id.clone();
    }
    m
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplicateIn {
    secret_id: Option<String>,
    add_replica_regions: Option<Vec<ReplicaRegionIn>>,
    force_overwrite_replica_secret: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveIn {
    secret_id: Option<String>,
    remove_replica_regions: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StopIn {
    secret_id: Option<String>,
}

impl SecretsService {
    /// Adds replicas of `meta` in `regions` to `batch` (records, every value in `values`) and
    /// their status to `meta.replicas`. A region where another secret has the name fails
    /// unless `force` and that secret takes no part in replication. Returns the regions
    /// written.
    pub(crate) async fn install_replicas(
        &self,
        batch: &mut WriteBatch,
        account: &str,
        meta: &mut SecretMeta,
        regions: &[(String, Option<String>)],
        force: bool,
        values: &[PlainVersion],
    ) -> Result<Vec<String>, SecretsError> {
        let mut installed = Vec::new();
        for (region, kms) in regions {
            meta.replicas.retain(|r| &r.region != region);
            let existing = self.load(account, region, &meta.name).await?;
            batch.check(
                secret_key(account, region, &meta.name),
                existing.as_ref().map(|l| &l.entry),
            );
            if let Some(l) = &existing {
                if !force || l.meta.is_replicated() {
                    meta.replicas.push(Replica {
                        region: region.clone(),
                        kms_key_id: kms.clone(),
                        status: ReplicaStatus::Failed,
                        status_message: Some(NAME_TAKEN.into()),
                    });
                    continue;
                }
                self.erase(batch, account, &l.meta);
            }
            let r = Replica {
                region: region.clone(),
                kms_key_id: kms.clone(),
                status: ReplicaStatus::InSync,
                status_message: None,
            };
            let rmeta = replica_meta(meta, &r, Some(self.now()));
            meta.replicas.push(r);
            let bytes = serde_json::to_vec(&rmeta)
                .map_err(|_| SecretsError::InternalServiceError("encoding failed".into()))?;
            batch.put(secret_key(account, region, &meta.name), bytes);
            for v in values {
                let rec = self
                    .encrypt_record(account, region, kms.as_deref(), &rmeta.arn, v)
                    .await?;
                batch.put(version_key(account, region, &meta.name, &v.vid), rec);
            }
            installed.push(region.clone());
        }
        Ok(installed)
    }

    pub(crate) async fn replication_status_json(&self, account: &str, meta: &SecretMeta) -> Value {
        let mut out = Vec::with_capacity(meta.replicas.len());
        for r in &meta.replicas {
            let mut o = Obj::new();
            o.insert("Region".into(), json!(r.region));
            o.insert(
                "KmsKeyId".into(),
                json!(r.kms_key_id.as_deref().unwrap_or(DEFAULT_KMS_ALIAS)),
            );
            o.insert("Status".into(), json!(r.status.as_str()));
            if let Some(m) = &r.status_message {
                o.insert("StatusMessage".into(), json!(m));
            }
            if r.status == ReplicaStatus::InSync {
                let mut rm = meta.clone();
                rm.region = r.region.clone();
                rm.arn = arn_in_region(&meta.arn, &r.region);
                if let Some(d) = self.access_record(account, &rm).await.secret_day {
                    o.insert("LastAccessedDate".into(), json!(d));
                }
            }
            out.push(Value::Object(o));
        }
        Value::Array(out)
    }

    pub(crate) async fn replicate_secret_to_regions(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: ReplicateIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let add = required("addReplicaRegions", input.add_replica_regions.as_deref())?;
        let regions = parse_regions(ctx, Some(add))?;
        let account = ctx.account_id();
        let mut normalized = Vec::with_capacity(regions.len());
        for (r, k) in &regions {
            normalized.push((
                r.clone(),
                self.normalize_kms(account, r, k.as_deref()).await?,
            ));
        }
        let force = input.force_overwrite_replica_secret.unwrap_or(false);
        retry!(
            self,
            ctx,
            id,
            async {
                let mut l = self.resolve_writable(ctx, id).await?;
                for (r, _) in &normalized {
                    if l.meta
                        .replicas
                        .iter()
                        .any(|x| &x.region == r && x.status == ReplicaStatus::InSync)
                    {
                        return Err(SecretsError::InvalidParameter(format!(
                            "The secret is already replicated to region {r}."
                        )));
                    }
                }
                let mut values = Vec::with_capacity(l.meta.versions.len());
                let vids: Vec<String> = l.meta.versions.keys().cloned().collect();
                for vid in vids {
                    let (kind, plaintext) = self.decrypt_version(account, &l.meta, &vid).await?;
                    values.push(PlainVersion {
                        vid,
                        kind,
                        plaintext,
                    });
                }
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                l.meta.changed_ms = self.now();
                let installed = self
                    .install_replicas(
                        &mut batch,
                        account,
                        &mut l.meta,
                        &normalized,
                        force,
                        &values,
                    )
                    .await?;
                // Existing replicas only need the primary's new status list: no values.
                self.write_secret(&mut batch, account, &l.meta, &[], &[], &installed)
                    .await?;
                self.store.commit(batch).await?;
                let mut o = Obj::new();
                o.insert("ARN".into(), json!(l.meta.arn));
                o.insert(
                    "ReplicationStatus".into(),
                    self.replication_status_json(account, &l.meta).await,
                );
                Ok(o)
            }
            .await
        )
    }

    pub(crate) async fn remove_regions_from_replication(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: RemoveIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let remove = required(
            "removeReplicaRegions",
            input.remove_replica_regions.as_ref(),
        )?;
        if remove.is_empty() {
            return Err(SecretsError::validation(
                "removeReplicaRegions",
                "Member must have length greater than or equal to 1",
            ));
        }
        for r in remove {
            validate::region("removeReplicaRegions.member", r)?;
        }
        let account = ctx.account_id();
        retry!(
            self,
            ctx,
            id,
            async {
                let mut l = self.resolve_writable(ctx, id).await?;
                for r in remove {
                    if !l.meta.replicas.iter().any(|x| &x.region == r) {
                        return Err(SecretsError::InvalidParameter(format!(
                            "The secret isn't replicated to region {r}."
                        )));
                    }
                }
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                for r in remove {
                    if let Some(rl) = self.load(account, r, &l.meta.name).await? {
                        // Only erase our own replica, never a secret that merely shares the name.
                        if rl.meta.primary_region.as_deref() == Some(l.meta.region.as_str()) {
                            batch.check(rl.key.clone(), Some(&rl.entry));
                            self.erase(&mut batch, account, &rl.meta);
                        }
                    }
                }
                l.meta.replicas.retain(|x| !remove.contains(&x.region));
                l.meta.changed_ms = self.now();
                self.write_secret(&mut batch, account, &l.meta, &[], &[], &[])
                    .await?;
                self.store.commit(batch).await?;
                let mut o = Obj::new();
                o.insert("ARN".into(), json!(l.meta.arn));
                o.insert(
                    "ReplicationStatus".into(),
                    self.replication_status_json(account, &l.meta).await,
                );
                Ok(o)
            }
            .await
        )
    }

    pub(crate) async fn stop_replication_to_replica(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: StopIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        let account = ctx.account_id();
        retry!(
            self, ctx.account_id(), &ctx.region, id,
            async {
                let mut l = self.resolve(ctx, id).await?;
                let Some(primary_region) = l.meta.primary_region.clone() else {
                    return Err(SecretsError::InvalidRequest(
                        "The secret is not a replica; StopReplicationToReplica applies to replica secrets only."
                            .into(),
                    ));
                };
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                if let Some(mut p) = self.load(account, &primary_region, &l.meta.name).await? {
                    batch.check(p.key.clone(), Some(&p.entry));
                    p.meta.replicas.retain(|r| r.region != l.meta.region);
                    p.meta.changed_ms = self.now();
                    self.write_secret(&mut batch, account, &p.meta, &[], &[], &[]).await?;
                }
                l.meta.primary_region = None;
                l.meta.changed_ms = self.now();
                self.write_secret(&mut batch, account, &l.meta, &[], &[], &[]).await?;
                self.store.commit(batch).await?;
                let mut o = Obj::new();
                o.insert("ARN".into(), json!(l.meta.arn));
                Ok(o)
            }
            .await
        )
    }
}
