//! Background jobs: purging secrets whose recovery window has passed, firing parameter policies,
//! and rotating secrets (also started at once when RotateSecret kicks the scheduler).

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
            let kick = state.rotation.kick();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = kick.notified() => {}
                }
                run_rotations(&state).await;
            }
        };
        tokio::join!(periodic, rotations);
    })
}

pub(crate) async fn run_rotations(state: &AppState) {
    match state.rotation.run_due(state.clock.now_millis()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rotations = n, "rotations ran"),
        Err(e) => tracing::warn!(error = %e, "running due rotations failed; will retry"),
    }
}

pub(crate) async fn run_once(state: &AppState) {
    run_rotations(state).await;
    match state.secrets.purge_expired().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(purged = n, "purged secrets past their recovery window"),
        Err(e) => tracing::warn!(error = %e, "purging deleted secrets failed; will retry"),
    }
    match state.parameters.run_policies().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(fired = n, "parameter policies fired"),
        Err(e) => tracing::warn!(error = %e, "running parameter policies failed; will retry"),
    }
}
