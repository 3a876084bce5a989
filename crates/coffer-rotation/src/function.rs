//! A rotation function: something that carries out one step of AWS's rotation protocol.

use std::sync::Arc;

use async_trait::async_trait;

use crate::api::SecretsApi;
use crate::event::Event;

/// What a function that runs outside the server needs to call back into it: the endpoint and
/// credentials to put in its environment (`AWS_ENDPOINT_URL`, `SECRETS_MANAGER_ENDPOINT`, ...).
#[derive(Clone)]
pub struct CallbackEnv {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for CallbackEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackEnv")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl CallbackEnv {
    /// The environment variables an AWS SDK or CLI picks up, for `region`.
    pub fn vars(&self, region: &str) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("SECRETS_MANAGER_ENDPOINT", self.endpoint.clone()),
            ("AWS_REGION", region.to_owned()),
            ("AWS_DEFAULT_REGION", region.to_owned()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ];
        if let Some(t) = &self.session_token {
            v.push(("AWS_SESSION_TOKEN", t.clone()));
        }
        v
    }
}

/// Hands out what a function outside the server needs to call back, once per rotation, so the
/// credentials can be short-lived: valid for `valid_for` (about as long as the rotation may run).
/// `None`: no callback (the server's address is not known yet, or minting failed).
pub trait CallbackSource: Send + Sync {
    fn callback(&self, account: &str, valid_for: std::time::Duration) -> Option<CallbackEnv>;
}

/// Everything one invocation gets besides the event.
#[derive(Clone)]
pub struct InvokeContext {
    /// Secrets Manager in the secret's account and region (used in process by built-ins).
    pub api: Arc<dyn SecretsApi>,
    pub region: String,
    /// For functions in other processes; `None` when the server has no callback configured.
    pub callback: Option<CallbackEnv>,
}

#[async_trait]
pub trait RotationFunction: Send + Sync {
    /// Runs one step. `Err` carries a message for the rotation record; the driver scrubs secret
    /// values from it before it is stored.
    async fn invoke(&self, event: &Event, ctx: &InvokeContext) -> Result<(), String>;
}
