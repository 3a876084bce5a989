//! Wiring of rotation: the function registry (built-ins, configured commands and endpoints), the
//! scheduler over the Secrets Manager service, and the callback credentials for functions that
//! run outside the server.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use coffer_rotation::builtin::PasswordRules;
use coffer_rotation::external::{Command, Http, Poster};
use coffer_rotation::{CallbackEnv, CallbackSource, Registry, Scheduler};
use coffer_secrets::{RotationHooks, RotationHost, SecretsService};
use coffer_service::lease::Leases;

use crate::dispatch::ServiceDeps;
use crate::{ServerConfig, StartError};

#[async_trait::async_trait]
impl Poster for crate::webhook::Webhook {
    async fn post(&self, body: &str) -> Result<(), String> {
        crate::webhook::Webhook::post(self, body).await
    }
}

/// `command:PROGRAM ARGS...` or an `http://` / `https://` URL.
fn function(spec: &str) -> Result<Arc<dyn coffer_rotation::RotationFunction>, String> {
    if let Some(line) = spec.strip_prefix("command:") {
        let c = Command::parse(line).ok_or("an empty command")?;
        return Ok(Arc::new(c));
    }
    if spec.starts_with("http://") || spec.starts_with("https://") {
        let poster = crate::webhook::Webhook::new(spec)?;
        return Ok(Arc::new(Http {
            url: spec.to_owned(),
            poster: Arc::new(poster),
        }));
    }
    Err("expected command:PROGRAM [ARGS] or an http(s):// URL".into())
}

/// The configured functions, the built-ins and the functions deployed through the Lambda API;
/// needs no root key, so it is built once at start (a bad spec fails the start) and outlives
/// sealing.
pub(crate) fn registry(
    config: &ServerConfig,
    deployed: Arc<crate::lambda::DeployedFunctions>,
) -> Result<Arc<Registry>, StartError> {
    let mut registry = Registry::new(PasswordRules::default()).with_deployed(deployed);
    for (name, spec) in &config.rotation_functions {
        let f = function(spec)
            .map_err(|e| StartError::Config(format!("rotation function {name}: {e}")))?;
        registry = registry.with_function(name, f);
    }
    Ok(Arc::new(registry))
}

/// What rotation keeps across seal/unseal.
pub(crate) struct RotationDeps {
    pub registry: Arc<Registry>,
    pub step_timeout: Duration,
    /// Shared by every scheduler so the rotation loop in `tasks` waits on one signal.
    pub kick: Arc<tokio::sync::Notify>,
    /// The server's own address, known once it listens.
    pub endpoint: Arc<OnceLock<String>>,
    /// Held for a whole pass: passes on one node do not overlap, so whoever runs one (the loop,
    /// or a test's `run_background_jobs`) returns only after every rotation due before it ended.
    pub pass: tokio::sync::Mutex<()>,
    /// How deployed Lambda functions run.
    pub lambda_runtime: coffer_lambda::Runtime,
    /// Deployed functions, as the registry sees them (filled while unsealed).
    pub deployed: Arc<crate::lambda::DeployedFunctions>,
}

/// The scheduler of an unsealed server, installed into `secrets` (RotateSecret checks functions
/// and kicks it).
pub(crate) fn scheduler(
    deps: &ServiceDeps,
    store: &Arc<dyn coffer_store::Store>,
    secrets: &Arc<SecretsService>,
    iam: &Arc<coffer_iam::Iam>,
) -> Arc<Scheduler> {
    let r = &deps.rotation;
    let scheduler = Scheduler::new(
        Arc::new(RotationHost(secrets.clone())),
        r.registry.clone(),
        Leases::new(store.clone(), deps.clock.clone()),
        r.step_timeout,
    )
    .with_kick(r.kick.clone())
    .with_callback(Arc::new(SessionCallback {
        iam: iam.clone(),
        endpoint: r.endpoint.clone(),
    }));
    secrets.set_rotation_hooks(RotationHooks {
        functions: r.registry.clone(),
        kick: r.kick.clone(),
    });
    Arc::new(scheduler)
}

/// Functions outside the server call back with STS session credentials of the account's root,
/// minted per rotation and expiring with it: nothing long-lived leaves the process, and every
/// node can verify them. (AWS runs the function under its own role; Coffer's functions act as
/// the account, like the built-ins.)
struct SessionCallback {
    iam: Arc<coffer_iam::Iam>,
    endpoint: Arc<OnceLock<String>>,
}

impl CallbackSource for SessionCallback {
    fn callback(&self, account: &str, valid_for: Duration) -> Option<CallbackEnv> {
        let endpoint = self.endpoint.get()?.clone();
        // AWS's bounds for a root session (15 minutes to an hour).
        let secs = (valid_for.as_secs() as i64).clamp(900, 3600);
        match self.iam.root_session(account, secs) {
            Ok((access_key_id, secret_access_key, token)) => Some(CallbackEnv {
                endpoint,
                access_key_id,
                secret_access_key,
                session_token: Some(token),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "minting rotation callback credentials failed");
                None
            }
        }
    }
}
