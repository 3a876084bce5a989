//! The rotation scheduler. The host (the Secrets Manager service) keeps each secret's rotation
//! state in its record and a time index of due rotations in the store, so finding work is a range
//! scan up to "now" whatever the number of secrets, and a server that was down finds everything
//! that fell due meanwhile on its first run (catch-up). Each rotation runs under a per-secret lease
//! in the store, so two rotations of one secret never overlap, on one node or several; the host
//! fences its bookkeeping with that lease. A failed rotation is recorded and retried at the next
//! scheduled window.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use coffer_service::lease::{Lease, Leases};
use tokio::sync::Notify;

use crate::api::SecretsApi;
use crate::driver::{self, Failure};
use crate::function::{CallbackSource, InvokeContext};
use crate::registry::{CANNOT_INVOKE, Registry};

/// One entry of the host's due index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub account: String,
    pub region: String,
    pub name: String,
    pub due_ms: i64,
}

/// A rotation the host has started: the version being rotated in and the function to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begun {
    pub arn: String,
    pub token: String,
    pub function_arn: String,
}

#[async_trait]
pub trait Host: Send + Sync {
    /// Index entries due at `now`, earliest first, at most `limit`.
    async fn due(&self, now: i64, limit: usize) -> Result<Vec<Due>, String>;
    /// Marks the rotation started and returns what to run, or `None` when the entry no longer
    /// stands (rotation cancelled or rescheduled, secret deleted; the host drops stale entries).
    /// The AWSPENDING version (new, or the one a failed attempt left) exists afterwards.
    async fn begin(&self, due: &Due, lease: &Lease) -> Result<Option<Begun>, String>;
    /// Records the outcome and schedules the next rotation.
    async fn finish(
        &self,
        due: &Due,
        begun: &Begun,
        outcome: &Result<(), Failure>,
        lease: &Lease,
    ) -> Result<(), String>;
    /// Secrets Manager for functions of secrets in `account`/`region`.
    fn api(&self, account: &str, region: &str) -> Arc<dyn SecretsApi>;
}

pub struct Scheduler {
    host: Arc<dyn Host>,
    registry: Arc<Registry>,
    leases: Leases,
    /// This node's name in lease records.
    owner: String,
    step_timeout: Duration,
    /// Endpoint and credentials for functions in other processes.
    callback: Option<Arc<dyn CallbackSource>>,
    kick: Arc<Notify>,
    /// Rotations run at once per pass.
    parallel: usize,
}

/// Due entries looked at per pass.
const PAGE: usize = 64;

impl Scheduler {
    pub fn new(
        host: Arc<dyn Host>,
        registry: Arc<Registry>,
        leases: Leases,
        step_timeout: Duration,
    ) -> Self {
        Self {
            host,
            registry,
            leases,
            owner: format!("rotation-{}", uuid::Uuid::new_v4()),
            step_timeout,
            callback: None,
            kick: Arc::new(Notify::new()),
            parallel: 4,
        }
    }

    /// Where and as whom functions outside the server call back.
    pub fn with_callback(mut self, source: Arc<dyn CallbackSource>) -> Self {
        self.callback = Some(source);
        self
    }

    /// Shares `kick` (the server keeps one across seal/unseal; schedulers come and go with it).
    pub fn with_kick(mut self, kick: Arc<Notify>) -> Self {
        self.kick = kick;
        self
    }

    /// Notified when a rotation should start now (RotateSecret with RotateImmediately).
    pub fn kick(&self) -> Arc<Notify> {
        self.kick.clone()
    }

    /// Long enough for all four steps and the bookkeeping around them.
    fn lease_ttl(&self) -> Duration {
        self.step_timeout * 4 + Duration::from_secs(60)
    }

    /// Runs every rotation due at the host's "now" (one page of them) and returns how many ran.
    pub async fn run_due(self: &Arc<Self>, now: i64) -> Result<usize, String> {
        let due = self.host.due(now, PAGE).await?;
        let mut ran = 0;
        for chunk in due.chunks(self.parallel.max(1)) {
            let mut set = tokio::task::JoinSet::new();
            for d in chunk {
                let me = self.clone();
                let d = d.clone();
                set.spawn(async move { me.rotate(&d).await });
            }
            while let Some(r) = set.join_next().await {
                match r {
                    Ok(Ok(true)) => ran += 1,
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "rotation bookkeeping failed; will retry")
                    }
                    Err(e) => tracing::error!(error = %e, "rotation task panicked"),
                }
            }
        }
        Ok(ran)
    }

    /// One due secret: lease, begin, four steps, finish, release. `Ok(false)`: not run (another
    /// node holds the secret, or the entry was stale).
    async fn rotate(&self, due: &Due) -> Result<bool, String> {
        let lease_name = format!("rotation/{}/{}/{}", due.account, due.region, due.name);
        let Some(lease) = self
            .leases
            .acquire(&lease_name, &self.owner, self.lease_ttl())
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(false);
        };
        let result = self.rotate_leased(due, &lease).await;
        if let Err(e) = self.leases.release(lease).await {
            tracing::warn!(error = %e, "releasing a rotation lease failed; it expires by itself");
        }
        result
    }

    async fn rotate_leased(&self, due: &Due, lease: &Lease) -> Result<bool, String> {
        let Some(begun) = self.host.begin(due, lease).await? else {
            return Ok(false);
        };
        let api = self.host.api(&due.account, &due.region);
        let outcome = match self
            .registry
            .resolve(&due.account, &due.region, &begun.function_arn)
            .await
        {
            None => Err(Failure::new("start", CANNOT_INVOKE)),
            Some(function) => {
                let ctx = InvokeContext {
                    api,
                    region: due.region.clone(),
                    callback: self
                        .callback
                        .as_ref()
                        .and_then(|c| c.callback(&due.account, self.lease_ttl())),
                };
                driver::rotate(
                    function.as_ref(),
                    &ctx,
                    &begun.arn,
                    &begun.token,
                    self.step_timeout,
                )
                .await
            }
        };
        match &outcome {
            Ok(()) => {
                tracing::info!(secret = %begun.arn, version = %begun.token, "rotation succeeded")
            }
            Err(f) => {
                tracing::warn!(secret = %begun.arn, version = %begun.token, step = %f.step, error = %f.message, "rotation failed")
            }
        }
        self.host.finish(due, &begun, &outcome, lease).await?;
        Ok(true)
    }
}
