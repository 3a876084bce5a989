//! AWS Systems Manager Parameter Store (`X-Amz-Target: AmazonSSM.<Operation>`).
//!
//! Every operation decodes its JSON input, checks it as AWS does, reads what it needs and commits
//! one [`coffer_store::WriteBatch`] guarded by checks on everything it read (retried a few times
//! on conflict, under a per-parameter write lock). SecureString values are encrypted by the
//! keyring with `PARAMETER_ARN` as encryption context; plaintext is never stored. The key layout
//! (see `model`) makes path listings range scans whose cost grows with the page only.

use std::sync::Arc;

use coffer_core::{RequestContext, SharedClock};
use coffer_kms::Keyring;
use coffer_service::opctx::OpCtx;
use coffer_store::Store;

mod error;
mod events;
mod list;
mod model;
mod ops;
mod out;
mod policies;
mod reference;
mod resources;
mod settings;
mod validate;

pub use coffer_service::OperationSpec;
pub use error::ParametersError;
pub use events::{DETAIL_TYPE, EVENT_LOG_FILE, EventLog, EventSink};
pub use reference::{ReferencedSecret, SecretReadError, SecretReader};

macro_rules! op {
    ($name:literal, $ro:literal) => {
        OperationSpec {
            name: $name,
            action: concat!("ssm:", $name),
            read_only: $ro,
        }
    };
}

static OPERATIONS: &[OperationSpec] = &[
    op!("AddTagsToResource", false),
    op!("DeleteParameter", false),
    op!("DeleteParameters", false),
    op!("DeleteResourcePolicy", false),
    op!("DescribeParameters", true),
    op!("GetParameter", true),
    op!("GetParameterHistory", true),
    op!("GetParameters", true),
    op!("GetParametersByPath", true),
    op!("GetResourcePolicies", true),
    op!("GetServiceSetting", true),
    op!("LabelParameterVersion", false),
    op!("ListTagsForResource", true),
    op!("PutParameter", false),
    op!("PutResourcePolicy", false),
    op!("RemoveTagsFromResource", false),
    op!("ResetServiceSetting", false),
    op!("UnlabelParameterVersion", false),
    op!("UpdateServiceSetting", false),
];

/// Parameter quotas per account and region (AWS's defaults; configurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub standard_parameters: u64,
    pub advanced_parameters: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            standard_parameters: 10_000,
            advanced_parameters: 100_000,
        }
    }
}

pub struct ParametersService {
    store: Arc<dyn Store>,
    keys: Arc<Keyring>,
    clock: SharedClock,
    tokens: coffer_service::token::TokenKey,
    locks: coffer_service::locks::WriteLocks,
    /// Serializes changes of the per-tier parameter counts on this node (taken after a
    /// parameter's stripe lock, never before), so creates of different parameters queue
    /// instead of conflicting on the count records.
    count_lock: tokio::sync::Mutex<()>,
    limits: Limits,
    secrets: Option<Arc<dyn SecretReader>>,
    /// Where parameter-policy events go (see `events`).
    sinks: Vec<Arc<dyn EventSink>>,
    /// One policy run at a time on this node.
    run_lock: tokio::sync::Mutex<()>,
    /// Decoded parameter records for the read paths (GetParameter(s), GetParametersByPath,
    /// DescribeParameters), reused only for the exact store entry they were decoded from.
    reads: coffer_service::readcache::Decoded<model::Param>,
    /// Records fired policies as service events in the firing batch.
    service_events: Option<Arc<dyn coffer_service::audit::ServiceEventLog>>,
}

impl std::fmt::Debug for ParametersService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParametersService")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Re-runs `$e` (an async attempt) while it fails with [`ParametersError::Conflict`], holding the
/// parameter's write lock throughout; a conflict that persists is AWS's `TooManyUpdates`.
macro_rules! retry {
    ($svc:expr, $ctx:expr, $canon:expr, $e:expr) => {
        coffer_service::retry_on_conflict!(
            lock: $svc.locks.lock($ctx.account_id(), &$ctx.region, $canon),
            conflict: $crate::ParametersError::Conflict,
            exhausted: $crate::ParametersError::TooManyUpdates(
                "There are concurrent updates for a resource that supports one update at a time."
                    .into(),
            ),
            $e
        )
    };
}
pub(crate) use retry;

impl ParametersService {
    pub fn new(store: Arc<dyn Store>, keys: Arc<Keyring>, clock: SharedClock) -> Self {
        let tokens = coffer_service::token::TokenKey::new(&keys.derive_key("ssm/next-token"));
        Self {
            store,
            keys,
            clock,
            tokens,
            locks: coffer_service::locks::WriteLocks::new(),
            count_lock: tokio::sync::Mutex::new(()),
            limits: Limits::default(),
            secrets: None,
            sinks: Vec::new(),
            service_events: None,
            run_lock: tokio::sync::Mutex::new(()),
            reads: coffer_service::readcache::Decoded::new(),
        }
    }

    /// Replaces AWS's default quotas.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves `/aws/reference/secretsmanager/<secret-id>` through `reader`; without one such
    /// names are not found.
    pub fn with_secret_reader(mut self, reader: Arc<dyn SecretReader>) -> Self {
        self.secrets = Some(reader);
        self
    }

    /// Delivers parameter-policy events to `sinks` (each gets its own durable queue, keyed by
    /// [`EventSink::name`]). Without sinks, policies still fire but emit nothing.
    pub fn with_event_sinks(mut self, sinks: Vec<Arc<dyn EventSink>>) -> Self {
        self.sinks = sinks;
        self
    }

    /// Records every policy that fires through `log`, in the batch that carries it out.
    pub fn with_service_events(
        mut self,
        log: Arc<dyn coffer_service::audit::ServiceEventLog>,
    ) -> Self {
        self.service_events = Some(log);
        self
    }

    /// Every operation this service serves.
    pub fn operations() -> &'static [OperationSpec] {
        OPERATIONS
    }

    /// Runs `operation` (a name from [`ParametersService::operations`]) on a JSON 1.1 body and
    /// returns the JSON response body.
    pub async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ParametersError> {
        let call =
            coffer_service::opctx::Dispatch::start::<ParametersError>(OPERATIONS, operation)?;
        let out = self.dispatch(&call.ctx(ctx), call.name(), body).await?;
        call.finish(out)
    }

    async fn dispatch(
        &self,
        ctx: &OpCtx<'_>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ParametersError> {
        let out = match operation {
            "PutParameter" => self.put_parameter(ctx, body).await,
            // Written straight into the body (see `out`).
            "GetParameter" => return self.get_parameter(ctx, body).await,
            "GetParameters" => self.get_parameters(ctx, body).await,
            "GetParametersByPath" => return self.get_parameters_by_path(ctx, body).await,
            "DescribeParameters" => self.describe_parameters(ctx, body).await,
            "GetParameterHistory" => self.get_parameter_history(ctx, body).await,
            "LabelParameterVersion" => self.label_parameter_version(ctx, body).await,
            "UnlabelParameterVersion" => self.unlabel_parameter_version(ctx, body).await,
            "DeleteParameter" => self.delete_parameter(ctx, body).await,
            "DeleteParameters" => self.delete_parameters(ctx, body).await,
            "AddTagsToResource" => self.add_tags_to_resource(ctx, body).await,
            "ListTagsForResource" => self.list_tags_for_resource(ctx, body).await,
            "RemoveTagsFromResource" => self.remove_tags_from_resource(ctx, body).await,
            "PutResourcePolicy" => self.put_resource_policy(ctx, body).await,
            "GetResourcePolicies" => self.get_resource_policies(ctx, body).await,
            "DeleteResourcePolicy" => self.delete_resource_policy(ctx, body).await,
            "GetServiceSetting" => self.get_service_setting(ctx, body).await,
            "UpdateServiceSetting" => self.update_service_setting(ctx, body).await,
            "ResetServiceSetting" => self.reset_service_setting(ctx, body).await,
            _ => Err(<ParametersError as coffer_service::opctx::RunError>::unknown_operation()),
        }?;
        Ok(serde_json::to_vec(&serde_json::Value::Object(out)).unwrap_or_else(|_| b"{}".to_vec()))
    }

    /// Background task: carries out parameter policies that are due (`Expiration` deletes the
    /// parameter; `ExpirationNotification` and `NoChangeNotification` emit their events), then
    /// delivers queued events to the sinks. Returns how many policies fired. Safe to run on
    /// every node and after downtime: whatever fell due meanwhile fires on the next run.
    pub async fn run_policies(&self) -> Result<usize, ParametersError> {
        self.run_due_policies(self.clock.now_millis()).await
    }
}
