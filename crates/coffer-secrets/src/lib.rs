//! AWS Secrets Manager (`X-Amz-Target: secretsmanager.<Operation>`).
//!
//! Every operation decodes its JSON input, checks it as AWS does, reads what it needs and
//! commits one [`coffer_store::WriteBatch`] guarded by checks on everything it read (retried a few
//! times on conflict). Values are encrypted by the keyring with the secret's ARN and version id
//! as encryption context; plaintext is never stored. Replicas (read-only copies in other regions
//! of the same account) are rewritten in the same batch as their primary.

use std::sync::Arc;

use coffer_core::{RequestContext, SharedClock};
use coffer_kms::Keyring;
use coffer_service::opctx::OpCtx;
use coffer_store::Store;

mod error;
mod list;
mod locks;
mod model;
mod ops;
pub mod password;
mod policy;
mod readcache;
mod replica;
mod rotation;
mod validate;
mod value_out;

pub use error::SecretsError;
pub use rotation::{InProcessApi, RotationHooks, RotationHost};

pub use coffer_service::OperationSpec;

macro_rules! op {
    ($name:literal, $ro:literal) => {
        OperationSpec {
            name: $name,
            action: concat!("secretsmanager:", $name),
            read_only: $ro,
        }
    };
}

static OPERATIONS: &[OperationSpec] = &[
    op!("BatchGetSecretValue", true),
    op!("CancelRotateSecret", false),
    op!("CreateSecret", false),
    op!("DeleteResourcePolicy", false),
    op!("DeleteSecret", false),
    op!("DescribeSecret", true),
    op!("GetRandomPassword", true),
    op!("GetResourcePolicy", true),
    op!("GetSecretValue", true),
    op!("ListResourcePolicies", true),
    op!("ListSecretVersionIds", true),
    op!("ListSecrets", true),
    op!("PutResourcePolicy", false),
    op!("PutSecretValue", false),
    op!("RemoveRegionsFromReplication", false),
    op!("ReplicateSecretToRegions", false),
    op!("RestoreSecret", false),
    op!("RotateSecret", false),
    op!("StopReplicationToReplica", false),
    op!("TagResource", false),
    op!("UntagResource", false),
    op!("UpdateSecret", false),
    op!("UpdateSecretVersionStage", false),
    op!("ValidateResourcePolicy", true),
];

pub struct SecretsService {
    store: Arc<dyn Store>,
    keys: Arc<Keyring>,
    clock: SharedClock,
    tokens: coffer_service::token::TokenKey,
    locks: coffer_service::locks::WriteLocks,
    /// Decoded records for the read path; always checked against the entry just read.
    reads: readcache::ReadCaches,
    /// Records purges as service events in the purging batch (see `with_service_events`).
    service_events: Option<Arc<dyn coffer_service::audit::ServiceEventLog>>,
    /// Installed by the server once the rotation scheduler exists.
    rotation: rotation::Hooks,
}

/// Re-runs `$e` (an async attempt) while it fails with [`SecretsError::Conflict`], holding the
/// secret's write lock (`$svc.locks`, for `$account`/`$region`/`$id`, or the caller's account and
/// region in `$ctx`) throughout.
macro_rules! retry {
    ($svc:expr, $ctx:expr, $id:expr, $e:expr) => {
        $crate::retry!($svc, $ctx.account_id(), &$ctx.region, $id, $e)
    };
    ($svc:expr, $account:expr, $region:expr, $id:expr, $e:expr) => {
        coffer_service::retry_on_conflict!(
            lock: $svc.locks.lock($account, $region, $crate::locks::name_of($id)),
            conflict: $crate::SecretsError::Conflict,
            exhausted: $crate::SecretsError::InternalServiceError(
                "The secret was modified concurrently; try again.".into(),
            ),
            $e
        )
    };
}
pub(crate) use retry;

impl SecretsService {
    pub fn new(store: Arc<dyn Store>, keys: Arc<Keyring>, clock: SharedClock) -> Self {
        let tokens =
            coffer_service::token::TokenKey::new(&keys.derive_key("secretsmanager/next-token"));
        Self {
            store,
            keys,
            clock,
            tokens,
            locks: coffer_service::locks::WriteLocks::new(),
            reads: readcache::ReadCaches::new(),
            service_events: None,
            rotation: rotation::Hooks::new(),
        }
    }

    /// Records each purge at the end of a recovery window through `log`, in the purge's batch.
    pub fn with_service_events(
        mut self,
        log: Arc<dyn coffer_service::audit::ServiceEventLog>,
    ) -> Self {
        self.service_events = Some(log);
        self
    }

    /// Puts the record of an action the service took by itself on `meta` (a purge, a rotation
    /// step) into `batch`, the one carrying the action out, so both commit or neither does.
    /// `details` must hold no secret value.
    pub(crate) fn service_event(
        &self,
        batch: &mut coffer_store::WriteBatch,
        account: &str,
        meta: &model::SecretMeta,
        event_name: &'static str,
        time_ms: i64,
        details: serde_json::Value,
    ) {
        if let Some(log) = &self.service_events {
            let (k, v) = log.record(&coffer_service::audit::ServiceAction {
                service: "secretsmanager",
                event_name,
                account_id: account,
                region: &meta.region,
                time_ms,
                resource_arn: meta.arn.clone(),
                resource_type: "AWS::SecretsManager::Secret",
                details,
            });
            batch.put(k, v);
        }
    }

    /// Every operation this service serves.
    pub fn operations() -> &'static [OperationSpec] {
        OPERATIONS
    }

    /// Runs `operation` (a name from [`SecretsService::operations`]) on a JSON 1.1 body and returns
    /// the JSON response body.
    pub async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, SecretsError> {
        let call = coffer_service::opctx::Dispatch::start::<SecretsError>(OPERATIONS, operation)?;
        let out = self.dispatch(&call.ctx(ctx), call.name(), body).await?;
        call.finish(out)
    }

    async fn dispatch(
        &self,
        ctx: &OpCtx<'_>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, SecretsError> {
        let out = match operation {
            "CreateSecret" => self.create_secret(ctx, body).await,
            // Serialised by the operation itself (the hot read path skips the `Value` tree).
            "GetSecretValue" => return self.get_secret_value(ctx, body).await,
            "PutSecretValue" => self.put_secret_value(ctx, body).await,
            "UpdateSecret" => self.update_secret(ctx, body).await,
            "DescribeSecret" => self.describe_secret(ctx, body).await,
            "DeleteSecret" => self.delete_secret(ctx, body).await,
            "RestoreSecret" => self.restore_secret(ctx, body).await,
            "UpdateSecretVersionStage" => self.update_secret_version_stage(ctx, body).await,
            "TagResource" => self.tag_resource(ctx, body).await,
            "UntagResource" => self.untag_resource(ctx, body).await,
            "GetRandomPassword" => {
                ctx.check_any()?;
                self.get_random_password(body)
            }
            "ListSecrets" => self.list_secrets(ctx, body).await,
            "ListSecretVersionIds" => self.list_secret_version_ids(ctx, body).await,
            "BatchGetSecretValue" => self.batch_get_secret_value(ctx, body).await,
            "PutResourcePolicy" => self.put_resource_policy(ctx, body).await,
            "GetResourcePolicy" => self.get_resource_policy(ctx, body).await,
            "DeleteResourcePolicy" => self.delete_resource_policy(ctx, body).await,
            "ValidateResourcePolicy" => self.validate_resource_policy(ctx, body).await,
            "ListResourcePolicies" => self.list_resource_policies(ctx, body).await,
            "ReplicateSecretToRegions" => self.replicate_secret_to_regions(ctx, body).await,
            "RemoveRegionsFromReplication" => self.remove_regions_from_replication(ctx, body).await,
            "StopReplicationToReplica" => self.stop_replication_to_replica(ctx, body).await,
            "RotateSecret" => self.rotate_secret(ctx, body).await,
            "CancelRotateSecret" => self.cancel_rotate_secret(ctx, body).await,
            _ => Err(<SecretsError as coffer_service::opctx::RunError>::unknown_operation()),
        }?;
        Ok(serde_json::to_vec(&serde_json::Value::Object(out)).unwrap_or_else(|_| b"{}".to_vec()))
    }

    /// Background task: purges secrets whose recovery window has passed. Returns how many.
    pub async fn purge_expired(&self) -> Result<usize, SecretsError> {
        self.purge(self.clock.now_millis()).await
    }
}
