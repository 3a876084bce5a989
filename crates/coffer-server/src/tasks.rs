//! Background jobs: purging secrets whose recovery window has passed, firing parameter policies,
//! deleting KMS keys whose waiting period has passed and rotating KMS keys that are due; and, in
//! a loop of their own, rotating secrets (also at once when RotateSecret kicks the scheduler);
//! and, every second, following a root key rotated through another node sharing the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::dispatch::AppState;

pub(crate) fn spawn(state: Arc<AppState>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let periodic = async {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                run_once(&state).await;
            }
        };
        // Rotations have their own loop so a long one does not hold up the other jobs.
        let rotations = async {
            let kick = &state.deps.rotation.kick;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = kick.notified() => {}
                }
                run_rotations(&state).await;
            }
        };
        // Following a root rotation made through another node: a cheap read of the seal
        // record every second (or at once when the services find their key stale).
        let seal_watch = async {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(crate::seal::WATCH_INTERVAL) => {}
                    _ = state.seal_kick.notified() => {}
                }
                crate::seal::follow_root_rotation(&state).await;
            }
        };
        tokio::join!(periodic, rotations, seal_watch);
    })
}

/// Runs the rotations due now, unless sealed. Sealing stops them midway (a rotation can take
/// minutes, and sealing waits for every holder of the services): the interrupted version stays
/// AWSPENDING and is resumed once the secret's lease expires after unseal.
pub(crate) async fn run_rotations(state: &AppState) {
    let _pass = state.deps.rotation.pass.lock().await;
    // Listening before looking, so a seal in between is not missed.
    let sealing = state.sealing.notified();
    tokio::pin!(sealing);
    sealing.as_mut().enable();
    let Ok(services) = state.services() else {
        return;
    };
    let now = state.deps.clock.now_millis();
    tokio::select! {
        r = services.rotation.run_due(now) => match r {
            Ok(0) => {}
            Ok(n) => tracing::info!(rotations = n, "rotations ran"),
            Err(e) => tracing::warn!(error = %e, "running due rotations failed; will retry"),
        },
        _ = sealing => tracing::info!("sealing: running rotations stopped; they resume after unseal"),
    }
}

pub(crate) async fn run_once(state: &AppState) {
    let _pass = state.jobs_pass.lock().await;
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
    if let Err(e) = state.audit.seal_periodic(state.digest_gap).await {
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
