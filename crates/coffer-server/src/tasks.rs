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
    // and catch up from their time indexes.
    let Ok(services) = state.services() else {
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
}
