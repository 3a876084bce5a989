//! First start and every start after it: the store, the account id, the wanted root credentials
//! (stored through IAM at init or unseal: the root key is not here).

use std::sync::Arc;

use coffer_store::{Store, WriteBatch, memory::MemoryStore};

use crate::{ServerConfig, StartError, StartReport};

/// The dev account id (`--dev` default, also the default for a fresh data dir).
pub const DEV_ACCOUNT_ID: &str = "000000000000";
/// `--dev` root credentials: AWS's documented example pair, public on purpose.
pub const DEV_ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const DEV_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

#[derive(Clone, PartialEq, Eq)]
pub struct RootCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl RootCredentials {
    pub(crate) fn generate() -> Self {
        let (access_key_id, secret_access_key) = coffer_iam::generate_access_key();
        Self {
            access_key_id,
            secret_access_key,
        }
    }
}

pub(crate) struct Bootstrap {
    pub account_id: String,
    pub store: Arc<dyn Store>,
    pub wanted_root_credentials: Option<RootCredentials>,
    pub report: StartReport,
}

impl Bootstrap {
    pub async fn open(config: &ServerConfig) -> Result<Self, StartError> {
        // With a database too: the directory holds the auto-unseal key file a first start
        // writes, TLS files and the parameter event log.
        if let Some(dir) = &config.data_dir {
            std::fs::create_dir_all(dir)?;
        }
        let store: Arc<dyn Store> = match (&config.database_url, &config.data_dir) {
            (Some(url), _) => {
                let store = coffer_store::postgres::PgStore::connect(url).await?;
                tracing::info!(database = store.target(), "using the PostgreSQL store");
                Arc::new(store)
            }
            (None, None) => Arc::new(MemoryStore::new()),
            (None, Some(dir)) => Arc::new(coffer_store::embedded::EmbeddedStore::open(dir)?),
        };
        let mut report = StartReport::default();
        let account = resolve_account_id(&*store, config.account_id.as_deref()).await?;
        let wanted = config.root_credentials.clone().or_else(|| {
            config.dev.then(|| RootCredentials {
                access_key_id: DEV_ACCESS_KEY_ID.into(),
                secret_access_key: DEV_SECRET_ACCESS_KEY.into(),
            })
        });
        if config.dev {
            report.new_root_credentials = wanted.clone();
        }
        Ok(Self {
            account_id: account,
            store,
            wanted_root_credentials: wanted,
            report,
        })
    }
}

const ACCOUNT_ID_KEY: &[u8] = b"meta/account-id";

/// A store (data directory or database) belongs to one account: the first start records it
/// (from `--account-id`, or the default), and a later start with a different explicit id is
/// refused rather than silently serving an empty account.
async fn resolve_account_id(store: &dyn Store, wanted: Option<&str>) -> Result<String, StartError> {
    if let Some(id) = wanted {
        validate_account_id(id)?;
    }
    let stored = store.get(ACCOUNT_ID_KEY).await?;
    match (stored, wanted) {
        (Some(e), wanted) => {
            let id = String::from_utf8_lossy(&e.value).into_owned();
            match wanted {
                Some(w) if w != id => Err(StartError::Config(format!(
                    "the store (data directory or database) belongs to account {id}, not {w}"
                ))),
                _ => Ok(id),
            }
        }
        (None, wanted) => {
            let id = wanted.unwrap_or(DEV_ACCOUNT_ID).to_string();
            let mut batch = WriteBatch::new();
            batch
                .check(ACCOUNT_ID_KEY, None)
                .put(ACCOUNT_ID_KEY, id.clone().into_bytes());
            store.commit(batch).await?;
            Ok(id)
        }
    }
}

fn validate_account_id(id: &str) -> Result<(), StartError> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(StartError::Config(format!(
            "account id must be 12 digits, got {id:?}"
        )))
    }
}
