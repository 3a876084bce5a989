//! Wiring of rotation: the function registry (built-ins, configured commands and endpoints), the
//! scheduler over the Secrets Manager service, and the callback credentials for functions that
//! run outside the server.

use std::sync::Arc;

use coffer_core::Caller;
use coffer_rotation::builtin::PasswordRules;
use coffer_rotation::external::{Command, Http, Poster};
use coffer_rotation::{CallbackEnv, Registry, Scheduler};
use coffer_secrets::{RotationHooks, RotationHost, SecretsService};
use coffer_service::lease::Leases;
use coffer_store::Store;

use crate::auth::Credentials;
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

pub(crate) fn scheduler(
    config: &ServerConfig,
    secrets: &Arc<SecretsService>,
    store: Arc<dyn Store>,
) -> Result<Arc<Scheduler>, StartError> {
    let mut registry = Registry::new(PasswordRules::default());
    for (name, spec) in &config.rotation_functions {
        let f = function(spec)
            .map_err(|e| StartError::Config(format!("rotation function {name}: {e}")))?;
        registry = registry.with_function(name, f);
    }
    let registry = Arc::new(registry);
    let scheduler = Arc::new(Scheduler::new(
        Arc::new(RotationHost(secrets.clone())),
        registry.clone(),
        Leases::new(store, config.clock.clone()),
        config.rotation_step_timeout,
    ));
    secrets.set_rotation_hooks(RotationHooks {
        functions: registry,
        kick: scheduler.kick(),
    });
    Ok(scheduler)
}

/// Gives functions outside the server an endpoint and credentials: a per-process access key of
/// the account's root, known only to this process and the functions it starts. (Scoped,
/// temporary session credentials replace it once STS exists.)
pub(crate) fn install_callback(
    scheduler: &Scheduler,
    credentials: &Credentials,
    account_id: &str,
    endpoint: String,
) {
    let key_id = format!(
        "AKIAROTATION{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
    );
    let secret = hex::encode(coffer_crypto::random_bytes::<20>());
    credentials.add(&key_id, &secret, Caller::root(account_id, &key_id));
    scheduler.set_callback(CallbackEnv {
        endpoint,
        access_key_id: key_id,
        secret_access_key: secret,
        session_token: None,
    });
}
