//! The Coffer server: HTTP listener, authentication, the operation table and background tasks.
//! Thin by design: decoding and semantics live in the wire room and the services.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use coffer_core::SharedClock;

mod auth;
mod bootstrap;
mod dispatch;
mod listener;
#[cfg(test)]
mod operation_access;
mod rotation;
mod secret_reader;
mod tasks;
mod tls;
mod webhook;

pub use bootstrap::{DEV_ACCESS_KEY_ID, DEV_ACCOUNT_ID, DEV_SECRET_ACCESS_KEY, RootCredentials};
pub use coffer_parameters::{EVENT_LOG_FILE, Limits as ParameterLimits};

/// Default listen address (documented in README).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4700";
/// Largest request body accepted; Secrets Manager's own limits are far below this.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `None` keeps everything in memory (`--dev`); otherwise the embedded store's directory.
    pub data_dir: Option<PathBuf>,
    pub dev: bool,
    /// 12 digits; `None` = what the data directory recorded, else [`DEV_ACCOUNT_ID`].
    pub account_id: Option<String>,
    /// Root credentials to use instead of generated (or dev) ones.
    pub root_credentials: Option<RootCredentials>,
    pub tls: TlsMode,
    /// Allows a non-loopback listen address without TLS (or, with `--dev`, at all).
    pub allow_insecure_remote: bool,
    pub clock: SharedClock,
    /// How often background jobs (deletion windows, parameter policies, event delivery) run.
    pub task_interval: std::time::Duration,
    /// `http(s)://` URL receiving every parameter-policy event as a JSON `POST` (retried with
    /// backoff; undelivered events stay queued in the store).
    pub parameter_events_webhook: Option<String>,
    /// The parameter-policy event log (JSON Lines). `None`: `EVENT_LOG_FILE` in the data
    /// directory, or in memory without one (`--dev`).
    pub parameter_events_log: Option<PathBuf>,
    /// Parameter Store quotas per account and region.
    pub parameter_limits: ParameterLimits,
    /// Rotation functions by name, addressable as `arn:aws:lambda:REGION:ACCOUNT:function:NAME`
    /// in every account and region: `command:PROGRAM [ARGS]` (the event JSON on stdin) or an
    /// `http(s)://` URL (the event JSON as a POST).
    pub rotation_functions: Vec<(String, String)>,
    /// How long one rotation step may run before it counts as failed.
    pub rotation_step_timeout: std::time::Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Off,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Generate a self-signed pair in the data directory on first start; reuse it after.
    SelfSigned,
}

impl ServerConfig {
    pub fn dev() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid constant"),
            data_dir: None,
            dev: true,
            account_id: None,
            root_credentials: None,
            tls: TlsMode::Off,
            allow_insecure_remote: false,
            clock: Arc::new(coffer_core::SystemClock),
            task_interval: std::time::Duration::from_secs(60),
            parameter_events_webhook: None,
            parameter_events_log: None,
            parameter_limits: ParameterLimits::default(),
            rotation_functions: Vec::new(),
            rotation_step_timeout: std::time::Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("storage: {0}")]
    Store(#[from] coffer_store::StoreError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
}

pub use listener::RunningServer;

/// Opens the store, bootstraps keys and credentials, binds the listener and starts serving.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    check_listen_policy(&config)?;
    let webhook = match config.parameter_events_webhook.as_deref() {
        Some(url) => Some(webhook::Webhook::new(url).map_err(StartError::Config)?),
        None => None,
    };
    let boot = bootstrap::Bootstrap::open(&config).await?;
    let mut report = boot.report.clone();
    let tls = tls::acceptor(&config)?;
    report.tls_fingerprint = tls.generated_fingerprint;
    let state = Arc::new(dispatch::AppState::new(&config, boot, webhook)?);
    let tasks = tasks::spawn(state.clone(), config.task_interval);
    let server = listener::serve(config.listen, state.clone(), tls.acceptor, report, tasks).await?;
    rotation::install_callback(
        &state.rotation,
        &state.credentials,
        &state.account_id,
        server.endpoint(),
    );
    Ok(server)
}

fn check_listen_policy(config: &ServerConfig) -> Result<(), StartError> {
    let loopback = config.listen.ip().is_loopback();
    if loopback {
        return Ok(());
    }
    if config.allow_insecure_remote {
        if config.dev || config.tls == TlsMode::Off {
            tracing::warn!(
                listen = %config.listen,
                dev = config.dev,
                tls = config.tls != TlsMode::Off,
                "INSECURE: serving a non-loopback address without TLS or with public dev credentials \
                 (--insecure-allow-remote)"
            );
        }
        return Ok(());
    }
    if config.dev {
        return Err(StartError::Config(format!(
            "refusing to serve --dev on non-loopback address {}: dev credentials are public; \
             pass --insecure-allow-remote to do it anyway",
            config.listen
        )));
    }
    if config.tls == TlsMode::Off {
        return Err(StartError::Config(format!(
            "refusing to listen on non-loopback address {} without TLS: use --tls-cert/--tls-key \
             or --tls-self-signed, or pass --insecure-allow-remote",
            config.listen
        )));
    }
    Ok(())
}

/// What the first start has to tell its operator once.
#[derive(Debug, Clone, Default)]
pub struct StartReport {
    /// Set when the root credentials were created now (or are the dev ones): print them.
    pub new_root_credentials: Option<RootCredentials>,
    /// SHA-256 fingerprint of a generated self-signed certificate.
    pub tls_fingerprint: Option<String>,
}

/// `SocketAddr` helper for tests: loopback, ephemeral port.
pub fn ephemeral() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
