//! Starting a server per test and building SDK clients for it.
//!
//! `COFFER_TEST_STORE=postgres` runs the suite on PostgreSQL: every server [`TestServer::dev`],
//! [`TestServer::with_config`] and [`TestServer::durable`] start gets a database of its own
//! (created on `COFFER_TEST_PG_URL`, default the local server, and dropped with the server).
//! Tests about the embedded store's own files (segment files, data directory restarts) use
//! [`TestServer::embedded`] / [`TestServer::durable_at`] and run on the embedded store in both
//! passes.

use std::sync::Arc;

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use coffer_core::ManualClock;
use coffer_server::{RunningServer, ServerConfig};
use coffer_store::postgres::scratch::ScratchDb;

/// Whether this run is the PostgreSQL pass (`COFFER_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("COFFER_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// A database of its own for one server of the PostgreSQL pass; `None` in the default pass.
/// The pass was asked for, so an unreachable server fails the test (`scripts/test` decides
/// beforehand whether to skip the pass).
pub async fn pass_database() -> Option<ScratchDb> {
    if !on_postgres() {
        return None;
    }
    Some(
        ScratchDb::create("e2e")
            .await
            .expect("COFFER_TEST_STORE=postgres but PostgreSQL is unreachable"),
    )
}

pub struct TestServer {
    pub server: RunningServer,
    pub clock: Arc<ManualClock>,
    /// Kept alive for durable-store tests.
    pub _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL pass's database, dropped after the server (fields drop in order).
    pub _db: Option<ScratchDb>,
}

impl TestServer {
    /// `--dev`: in-memory store (the pass's database on PostgreSQL), dev credentials, manual
    /// clock.
    pub async fn dev() -> Self {
        Self::start_with(None, true, |_| {}).await
    }

    /// The durable store: embedded in a fresh temporary directory (on PostgreSQL: the pass's
    /// database, with the directory for the server's other files).
    pub async fn durable() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_with(Some(dir), true, |_| {}).await
    }

    /// The embedded store in a fresh temporary directory, in every pass: for tests of its files.
    pub async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_with(Some(dir), false, |_| {}).await
    }

    /// The embedded store in `dir` (the caller keeps it, e.g. across a restart), with `f`
    /// applied. Embedded in every pass: its callers restart over the directory.
    pub async fn durable_at(dir: &std::path::Path, f: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_with(None, false, |c| {
            durable_config(c, dir);
            f(c)
        })
        .await
    }

    /// `--dev` with `f` applied to the configuration (after the harness's own settings).
    pub async fn with_config(f: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_with(None, true, f).await
    }

    /// `pass_store`: on the PostgreSQL pass, use a database of its own.
    async fn start_with(
        dir: Option<tempfile::TempDir>,
        pass_store: bool,
        f: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let clock = ManualClock::new();
        let mut config = ServerConfig::dev();
        config.listen = coffer_server::ephemeral();
        config.clock = clock.clone();
        if let Some(d) = &dir {
            durable_config(&mut config, d.path());
        }
        let db = if pass_store {
            pass_database().await
        } else {
            None
        };
        config.database_url = db.as_ref().map(|d| d.url().to_string());
        f(&mut config);
        let server = coffer_server::start(config).await.expect("server starts");
        Self {
            server,
            clock,
            _dir: dir,
            _db: db,
        }
    }

    /// The audit trail's public key (raw Ed25519 bytes), for `coffer_audit::verify::verify`.
    pub fn audit_key(&self) -> Vec<u8> {
        self.server
            .audit()
            .public_key()
            .expect("unsealed")
            .raw()
            .unwrap()
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn sm(&self) -> aws_sdk_secretsmanager::Client {
        self.sm_in("us-east-1")
    }

    pub fn sm_in(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        self.sm_with(
            region,
            coffer_server::DEV_ACCESS_KEY_ID,
            coffer_server::DEV_SECRET_ACCESS_KEY,
        )
    }

    pub fn sm_with(
        &self,
        region: &str,
        akid: &str,
        secret: &str,
    ) -> aws_sdk_secretsmanager::Client {
        self.sm_signed(
            region,
            Credentials::new(akid, secret, None, None, "coffer-e2e"),
        )
    }

    /// A Secrets Manager client signing with temporary credentials STS issued.
    pub fn sm_session(
        &self,
        c: &aws_sdk_sts::types::Credentials,
    ) -> aws_sdk_secretsmanager::Client {
        self.sm_signed(
            "us-east-1",
            Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "coffer-e2e",
            ),
        )
    }

    fn sm_signed(&self, region: &str, creds: Credentials) -> aws_sdk_secretsmanager::Client {
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(self.endpoint())
            .credentials_provider(creds)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        self.ssm_in("us-east-1")
    }

    pub fn ssm_in(&self, region: &str) -> aws_sdk_ssm::Client {
        self.ssm_with(
            region,
            coffer_server::DEV_ACCESS_KEY_ID,
            coffer_server::DEV_SECRET_ACCESS_KEY,
        )
    }

    pub fn ssm_with(&self, region: &str, akid: &str, secret: &str) -> aws_sdk_ssm::Client {
        let conf = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new(region.to_string()))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                akid,
                secret,
                None,
                None,
                "coffer-e2e",
            ))
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }

    pub fn kms(&self) -> aws_sdk_kms::Client {
        self.kms_in("us-east-1")
    }

    pub fn kms_in(&self, region: &str) -> aws_sdk_kms::Client {
        self.kms_with(
            region,
            coffer_server::DEV_ACCESS_KEY_ID,
            coffer_server::DEV_SECRET_ACCESS_KEY,
        )
    }

    pub fn kms_with(&self, region: &str, akid: &str, secret: &str) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                akid,
                secret,
                None,
                None,
                "coffer-e2e",
            ))
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// A plain HTTP client for raw-protocol tests.
    pub async fn raw_post(
        &self,
        target: Option<&str>,
        body: &[u8],
        signed: bool,
    ) -> (u16, serde_json::Value, Vec<(String, String)>) {
        crate::server::raw_post(self, target, body, signed).await
    }
}

/// The embedded store in `dir`, with the dev credentials as configured root credentials.
fn durable_config(config: &mut ServerConfig, dir: &std::path::Path) {
    config.dev = false;
    config.data_dir = Some(dir.to_path_buf());
    config.root_credentials = Some(coffer_server::RootCredentials {
        access_key_id: coffer_server::DEV_ACCESS_KEY_ID.into(),
        secret_access_key: coffer_server::DEV_SECRET_ACCESS_KEY.into(),
    });
}

/// The AWS error code of an SDK error (`ResourceNotFoundException`, ...).
pub fn code<E, R>(err: &aws_sdk_secretsmanager::error::SdkError<E, R>) -> String
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata,
{
    let kind = match err {
        aws_sdk_secretsmanager::error::SdkError::ServiceError(_) => {
            return err
                .as_service_error()
                .and_then(|e| e.code())
                .unwrap_or("<service error without a code>")
                .to_string();
        }
        aws_sdk_secretsmanager::error::SdkError::ConstructionFailure(_) => "construction failure",
        aws_sdk_secretsmanager::error::SdkError::TimeoutError(_) => "timeout",
        aws_sdk_secretsmanager::error::SdkError::DispatchFailure(_) => "dispatch failure",
        aws_sdk_secretsmanager::error::SdkError::ResponseError(_) => "unparseable response",
        _ => "other SDK error",
    };
    format!("<not a service error: {kind}>")
}
