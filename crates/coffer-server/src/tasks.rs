//! Background jobs: purging secrets whose recovery window has passed, firing parameter policies,
//! deleting KMS keys whose waiting period has passed and rotating KMS keys that are due.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::dispatch::AppState;

pub(crate) fn spawn(state: Arc<AppState>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_once(&state).await;
        }
    })
}

pub(crate) async fn run_once(state: &AppState) {
    // Sealed: nothing can be decrypted or written under the root key; jobs resume on unseal
    // and catch up from their time indexes. The audit trail needs no root key (a sealed
    // server has no signer and makes no digest), so its jobs run anyway.
    let Ok(services) = state.services() else {
        audit_jobs(state).await;
        return;
    };
    match services.secrets.purge_expired().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(purged = n, "purged secrets past their recovery window"),
        Err(e) => tracing::warn!(error = %e, "purging deleted secrets failed; will retry"),
    }
    match services.parameters.run_policies().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(fired = n, "parameter policies fired"),
        Err(e) => tracing::warn!(error = %e, "running parameter policies failed; will retry"),
    }
    match services.kms.run_due().await {
        Ok((0, 0)) => {}
        Ok((deleted, rotated)) => tracing::info!(deleted, rotated, "KMS keys deleted / rotated"),
        Err(e) => tracing::warn!(error = %e, "KMS key deletion or rotation failed; will retry"),
    }
    // Last, so the service events of this run's purges and policies are chained now.
    audit_jobs(state).await;
}

/// Chains pending service events and orphaned intents, seals the chain with a digest, prunes
/// past the retention period.
async fn audit_jobs(state: &AppState) {
    match state.audit.sweep().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(records = n, "audit: chained pending records"),
        Err(e) => tracing::warn!(error = %e, "audit sweep failed; will retry"),
    }
    if let Err(e) = state.audit.seal("interval").await {
        tracing::warn!(error = %e, "audit digest failed; will retry");
    }
    if let Some(keep) = state.audit_retention {
        match state.audit.prune(keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "audit: pruned records past retention"),
            Err(e) => tracing::warn!(error = %e, "audit pruning failed; will retry"),
        }
    }
}
