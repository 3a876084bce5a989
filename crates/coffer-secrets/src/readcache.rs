//! The Secrets Manager read caches: decoded metadata, version and access records (see
//! [`coffer_service::readcache`] for when a cached decoding is used).

use coffer_service::opctx::OpCtx;
use std::sync::Arc;

use coffer_core::arn::Arn;
use coffer_core::authz::{ConditionKey, ResourcePolicy};
use coffer_service::readcache::Decoded;
use coffer_store::Entry;

use crate::error::SecretsError;
use crate::model::{AccessRecord, SecretMeta, ValueKind, VersionRecord, secret_key};
use crate::ops::Loaded;
use crate::{SecretsService, validate};

/// A version record with its ciphertext already base64-decoded.
pub(crate) struct VersionBlob {
    pub kind: ValueKind,
    pub blob: Vec<u8>,
}

/// The service's read caches.
pub(crate) struct ReadCaches {
    pub meta: Decoded<SecretMeta>,
    pub versions: Decoded<VersionBlob>,
    pub access: Decoded<AccessRecord>,
}

impl ReadCaches {
    pub fn new() -> Self {
        Self {
            meta: Decoded::new(),
            versions: Decoded::new(),
            access: Decoded::new(),
        }
    }
}

pub(crate) fn decode_version(raw: &[u8]) -> Option<VersionBlob> {
    use base64::Engine as _;
    let rec: VersionRecord = serde_json::from_slice(raw).ok()?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(rec.blob.as_bytes())
        .ok()?;
    Some(VersionBlob {
        kind: rec.kind,
        blob,
    })
}

/// Whether a loaded secret is only read, or copied to be changed.
#[derive(Clone, Copy)]
pub(crate) enum Use {
    Read,
    Write,
}

/// A secret as read from the store, its metadata shared with the cache (read-only paths).
pub(crate) struct SharedLoaded {
    pub key: Vec<u8>,
    pub entry: Entry,
    pub meta: Arc<SecretMeta>,
}

impl SharedLoaded {
    /// An owned copy for paths that modify the metadata.
    pub fn into_owned(self) -> Loaded {
        Loaded {
            key: self.key,
            entry: self.entry,
            meta: Arc::unwrap_or_clone(self.meta),
        }
    }
}

impl SecretsService {
    /// [`SecretsService::load`], the metadata shared with the cache. `Use::Write` leaves a miss
    /// out of the cache: the owned copy a writer takes is then the decoding itself rather than a
    /// clone of a cached one (a hit is still cloned, which is cheaper than parsing).
    pub(crate) async fn load_with(
        &self,
        account: &str,
        region: &str,
        name: &str,
        usage: Use,
    ) -> Result<Option<SharedLoaded>, SecretsError> {
        let key = secret_key(account, region, name);
        let Some(entry) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let decode = |raw: &[u8]| serde_json::from_slice(raw).ok();
        let meta = match usage {
            Use::Read => self.reads.meta.get(&key, &entry, decode),
            Use::Write => self.reads.meta.get_uncached_miss(&key, &entry, decode),
        };
        let meta = meta.ok_or_else(|| {
            tracing::error!("corrupt secret metadata record");
            SecretsError::InternalServiceError("An error occurred on the server side.".into())
        })?;
        Ok(Some(SharedLoaded { key, entry, meta }))
    }

    /// Finds a secret by name, full ARN, or partial ARN (the ARN without its `-XXXXXX` suffix);
    /// [`SecretsService::resolve`] without copying the metadata.
    pub(crate) async fn resolve_shared(
        &self,
        ctx: &OpCtx<'_>,
        id: &str,
    ) -> Result<SharedLoaded, SecretsError> {
        self.resolve_with(ctx, id, Use::Read).await
    }

    /// Finds the secret `id` names and authorizes the context's action on it (its ARN, tags
    /// and resource policy, with `secretsmanager:SecretId` and, when the secret has a rotation
    /// function, `secretsmanager:resource/AllowRotationLambdaArn`) before anything else reads
    /// it. A secret that does not exist is authorized against the ARN the caller named, so
    /// callers without access learn nothing about which secrets exist.
    pub(crate) async fn resolve_with(
        &self,
        ctx: &OpCtx<'_>,
        id: &str,
        usage: Use,
    ) -> Result<SharedLoaded, SecretsError> {
        let sid = ConditionKey::str("secretsmanager:SecretId", id);
        match self.find_with(ctx, id, usage).await {
            Ok(l) => {
                let policy = match &l.meta.policy {
                    Some(p) => ResourcePolicy::Combined(p),
                    None => ResourcePolicy::None,
                };
                // Every action on a secret resource carries the rotation function attached
                // to it, as AWS's Secret resource type documents.
                let lambda = l
                    .meta
                    .rotation
                    .as_ref()
                    .and_then(|r| r.lambda_arn.as_deref());
                let with_lambda;
                let keys: &[ConditionKey<'_>] = match lambda {
                    Some(arn) => {
                        with_lambda = [
                            sid,
                            ConditionKey::str(
                                "secretsmanager:resource/AllowRotationLambdaArn",
                                arn,
                            ),
                        ];
                        &with_lambda
                    }
                    None => std::slice::from_ref(&sid),
                };
                ctx.check(&l.meta.arn, Some(&l.meta.tags), policy, keys)?;
                Ok(l)
            }
            Err(e @ SecretsError::ResourceNotFound(_)) => {
                let named = if id.starts_with("arn:") {
                    id.to_owned()
                } else {
                    let (account, region) = (ctx.account_id(), ctx.region.as_str());
                    format!(
                        "arn:{}:secretsmanager:{region}:{account}:secret:{id}",
                        ctx.partition()
                    )
                };
                ctx.check(&named, None, ResourcePolicy::None, &[sid])?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn find_with(
        &self,
        ctx: &OpCtx<'_>,
        id: &str,
        usage: Use,
    ) -> Result<SharedLoaded, SecretsError> {
        validate::secret_id(id)?;
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        if !id.starts_with("arn:") {
            return self
                .load_with(account, region, id, usage)
                .await?
                .ok_or_else(SecretsError::secret_not_found);
        }
        let arn = Arn::parse(id).ok_or_else(SecretsError::secret_not_found)?;
        let res = arn.resource.strip_prefix("secret:");
        let (Some(res), true) = (
            res,
            arn.service == "secretsmanager"
                && arn.account == account
                && arn.region == region
                && arn.partition == ctx.partition(),
        ) else {
            return Err(SecretsError::secret_not_found());
        };
        if res.len() > 7
            && res.is_char_boundary(res.len() - 7)
            && res.as_bytes()[res.len() - 7] == b'-'
            && let Some(l) = self
                .load_with(account, region, &res[..res.len() - 7], usage)
                .await?
            && l.meta.arn == id
        {
            return Ok(l);
        }
        self.load_with(account, region, res, usage)
            .await?
            .ok_or_else(SecretsError::secret_not_found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_key_layout() {
        use crate::model::{access_key, version_key};
        assert_eq!(
            secret_key("123", "us-east-1", "a/b"),
            b"sm/123/us-east-1/secret/a/b"
        );
        assert_eq!(
            version_key("123", "eu-west-1", "n", "v/1"),
            b"sm/123/eu-west-1/version/n:v/1"
        );
        assert_eq!(access_key("1", "r", "n"), b"sm/1/r/access/n");
    }
}
