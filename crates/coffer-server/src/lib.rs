//! The Coffer server: HTTP listener, authentication, the operation table and background tasks.
//! Thin by design: decoding and semantics live in the wire room and the services.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use coffer_core::SharedClock;

mod audit;
mod auth;
mod bootstrap;
mod dispatch;
mod lambda;
mod listener;
pub mod migrate;
mod oidc_keys;
#[cfg(test)]
mod operation_access;
mod operator_api;
mod outbound;
mod root_guard;
mod root_wrapped;
mod rotation;
mod seal;
mod secret_reader;
mod tasks;
mod tls;
mod webhook;

pub use bootstrap::{DEV_ACCESS_KEY_ID, DEV_ACCOUNT_ID, DEV_SECRET_ACCESS_KEY, RootCredentials};
pub use coffer_parameters::{EVENT_LOG_FILE, Limits as ParameterLimits};
pub use seal::{AUTO_UNSEAL_KEY_FILE, KekSource};

/// Default listen address (documented in README).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4700";
/// Largest request body accepted; Secrets Manager's own limits are far below this.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `None` keeps everything in memory (`--dev`); otherwise the embedded store's directory
    /// (with [`ServerConfig::database_url`]: only the local files, e.g. the auto-unseal key).
    pub data_dir: Option<PathBuf>,
    /// `postgres://...`: the store is this PostgreSQL database instead (also with `--dev`).
    /// May hold a password: never log it.
    pub database_url: Option<String>,
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
    /// An uninitialised store initialises itself on start (auto-unseal); `false` waits for
    /// `coffer operator init` (shares or a chosen auto-unseal key).
    pub auto_init: bool,
    /// The auto-unseal key a self-initialising start uses; `None`: `unseal.key` in the data
    /// directory (created), or an in-memory key without one (`--dev`).
    pub auto_unseal: Option<KekSource>,
    pub audit: AuditSettings,
    /// Wraps the opened store before anything uses it (tests inject faults with it).
    pub store_wrapper: Option<StoreWrapper>,
    /// Wraps the audit records' home likewise (tests make it fail).
    pub records_wrapper: Option<RecordsWrapper>,
    /// Rotation functions by name, addressable as `arn:aws:lambda:REGION:ACCOUNT:function:NAME`
    /// in every account and region: `command:PROGRAM [ARGS]` (the event JSON on stdin) or an
    /// `http(s)://` URL (the event JSON as a POST).
    pub rotation_functions: Vec<(String, String)>,
    /// How long one rotation step may run before it counts as failed.
    pub rotation_step_timeout: std::time::Duration,
    /// PEM certificates trusted, besides the system's roots, when fetching OpenID Connect
    /// issuers' keys (AssumeRoleWithWebIdentity with a private issuer).
    pub oidc_ca_file: Option<PathBuf>,
    /// The Python interpreter deployed Lambda functions run with; `None`: `COFFER_LAMBDA_PYTHON`,
    /// else `python3`. It should provide boto3, as AWS's managed runtime does.
    pub lambda_python: Option<String>,
}

pub type StoreWrapper =
    Arc<dyn Fn(Arc<dyn coffer_store::Store>) -> Arc<dyn coffer_store::Store> + Send + Sync>;

pub type RecordsWrapper = Arc<
    dyn Fn(
            Arc<dyn coffer_audit::records::RecordStore>,
        ) -> Arc<dyn coffer_audit::records::RecordStore>
        + Send
        + Sync,
>;

/// The audit trail's settings.
#[derive(Clone, Debug)]
pub struct AuditSettings {
    /// Records older than this are pruned (at a digest boundary). `None`: kept forever.
    pub retention: Option<std::time::Duration>,
    /// Replaces auditing with nothing: ONLY for measuring what auditing costs
    /// (`coffer server --unaudited-benchmark-baseline`). Never serve real traffic like this.
    pub noop: bool,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            // CloudTrail's event history keeps 90 days too.
            retention: Some(std::time::Duration::from_secs(90 * 24 * 3600)),
            noop: false,
        }
    }
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
            database_url: None,
            dev: true,
            account_id: None,
            root_credentials: None,
            tls: TlsMode::Off,
            allow_insecure_remote: false,
            clock: Arc::new(coffer_core::SystemClock),
            task_interval: std::time::Duration::from_secs(60),
            parameter_events_webhook: None,
            oidc_ca_file: None,
            parameter_events_log: None,
            parameter_limits: ParameterLimits::default(),
            auto_init: true,
            auto_unseal: None,
            audit: AuditSettings::default(),
            store_wrapper: None,
            records_wrapper: None,
            rotation_functions: Vec::new(),
            rotation_step_timeout: std::time::Duration::from_secs(300),
            lambda_python: None,
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

pub use coffer_audit;
pub use listener::RunningServer;

/// The audit log: records in segment files beside the embedded store; in the store itself when
/// everything is in memory or on PostgreSQL (one chain for every node sharing the database).
async fn open_audit(
    config: &ServerConfig,
    store: &Arc<dyn coffer_store::Store>,
) -> Result<Arc<coffer_audit::AuditLog>, coffer_audit::AuditError> {
    use coffer_audit::records::{KvRecords, RecordStore};
    let mut records: Arc<dyn RecordStore> = match &config.data_dir {
        Some(dir) if !config.audit.noop && config.database_url.is_none() => {
            let base = coffer_audit::records::read_head(&**store).await?.0;
            let dir = coffer_audit::log::segments_dir(dir);
            Arc::new(
                tokio::task::spawn_blocking(move || {
                    coffer_audit::segments::SegmentRecords::open(&dir, base)
                })
                .await
                .map_err(|e| coffer_audit::AuditError::Internal(e.to_string()))??,
            )
        }
        _ => Arc::new(KvRecords::new(store.clone())),
    };
    if let Some(wrap) = &config.records_wrapper {
        records = wrap(records);
    }
    coffer_audit::AuditLog::open_with(
        store.clone(),
        records,
        config.clock.clone(),
        config.audit.noop,
    )
    .await
}

/// Opens the store, bootstraps keys and credentials, binds the listener and starts serving.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    check_listen_policy(&config)?;
    let webhook = match config.parameter_events_webhook.as_deref() {
        Some(url) => Some(webhook::Webhook::new(url).map_err(StartError::Config)?),
        None => None,
    };
    let mut boot = bootstrap::Bootstrap::open(&config).await?;
    if let Some(wrap) = &config.store_wrapper {
        boot.store = wrap(boot.store.clone());
    }
    if config.audit.noop {
        tracing::warn!("AUDITING IS OFF (--unaudited-benchmark-baseline): calls leave no record");
    }
    let audit = open_audit(&config, &boot.store)
        .await
        .map_err(|e| StartError::Config(format!("audit log: {e}")))?;
    let mut report = boot.report.clone();
    let tls = tls::acceptor(&config)?;
    report.tls_fingerprint = tls.generated_fingerprint;
    let deployed = Arc::new(lambda::DeployedFunctions::default());
    let rotation = rotation::RotationDeps {
        registry: rotation::registry(&config, deployed.clone())?,
        lambda_runtime: lambda::runtime(&config),
        deployed,
        step_timeout: config.rotation_step_timeout,
        kick: Default::default(),
        endpoint: Default::default(),
        pass: Default::default(),
    };
    let issuer_keys = Arc::new(
        oidc_keys::OidcKeys::new(config.oidc_ca_file.as_deref(), config.clock.clone())
            .map_err(StartError::Config)?,
    );
    let state = Arc::new(dispatch::AppState::new(
        &config,
        &boot,
        webhook,
        audit,
        rotation,
        issuer_keys,
    ));
    let wanted = boot.wanted_root_credentials.is_none() && !config.dev;
    let (start, created) = seal::on_start(
        &state.sealer,
        config.auto_init || config.dev,
        config.auto_unseal.clone(),
        &boot.account_id,
        wanted.then(RootCredentials::generate),
    )
    .await
    .map_err(|e| StartError::Config(format!("unsealing: {e}")))?;
    if created.is_some() {
        report.new_root_credentials = created;
    }
    match start {
        seal::StartState::Unsealed(root, held) => state.unseal(root, held).await?,
        seal::StartState::Sealed => {
            tracing::warn!("the server is sealed: unseal it with `coffer operator unseal`")
        }
        seal::StartState::Uninitialized => {
            tracing::warn!("the data directory is not initialized: run `coffer operator init`")
        }
    }
    let tasks = tasks::spawn(state.clone(), config.task_interval);
    listener::serve(config.listen, state, tls.acceptor, report, tasks).await
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
