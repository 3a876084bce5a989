//! First start and every start after it: the store, the root key, the root credentials.

use std::sync::Arc;

use base64::Engine as _;
use coffer_crypto::RootKey;
use coffer_store::{Store, WriteBatch, memory::MemoryStore};
use serde::{Deserialize, Serialize};

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
        // 16 base32 characters after AKIA, as AWS's key ids look; 40 base64 characters of secret.
        const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let id_bytes: [u8; 16] = coffer_crypto::random_bytes();
        let id: String = id_bytes
            .iter()
            .map(|b| B32[(b & 31) as usize] as char)
            .collect();
        let secret_bytes: [u8; 30] = coffer_crypto::random_bytes();
        Self {
            access_key_id: format!("AKIA{id}"),
            secret_access_key: base64::engine::general_purpose::STANDARD.encode(secret_bytes),
        }
    }
}

/// A stored access key: the secret is sealed under the root key, bound to the key id.
#[derive(Serialize, Deserialize)]
struct StoredAccessKey {
    principal_arn: String,
    account_id: String,
    sealed_secret: String,
}

pub(crate) struct AccessKey {
    pub access_key_id: String,
    pub secret: Arc<coffer_wire::sigv4::SigningSecret>,
    pub caller: coffer_core::Caller,
}

pub(crate) struct Bootstrap {
    pub account_id: String,
    pub store: Arc<dyn Store>,
    pub wanted_root_credentials: Option<RootCredentials>,
    pub report: StartReport,
}

fn access_key_prefix(account: &str) -> String {
    format!("iam/{account}/accesskey/")
}

impl Bootstrap {
    pub async fn open(config: &ServerConfig) -> Result<Self, StartError> {
        let store: Arc<dyn Store> = match &config.data_dir {
            None => Arc::new(MemoryStore::new()),
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                Arc::new(coffer_store::embedded::EmbeddedStore::open(dir)?)
            }
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

/// The access keys as the unsealed server authenticates them: every stored one, opened with the
/// root key, plus the configured root credentials (stored now if they were not yet).
pub(crate) async fn unseal_access_keys(
    deps: &crate::dispatch::ServiceDeps,
    root: &RootKey,
) -> Result<Vec<AccessKey>, StartError> {
    let store = &*deps.store;
    let account = &deps.account_id;
    let mut keys = load_access_keys(store, root, account).await?;
    if let Some(creds) = &deps.wanted_root_credentials
        && !keys.iter().any(|k| k.access_key_id == creds.access_key_id)
    {
        keys.push(store_root_key(store, root, account, creds).await?);
    }
    Ok(keys)
}

const ACCOUNT_ID_KEY: &[u8] = b"meta/account-id";

/// A data directory belongs to one account: the first start records it (from `--account-id`, or
/// the default), and a later start with a different explicit id is refused rather than silently
/// serving an empty account.
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
                    "the data directory belongs to account {id}, not {w}"
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

fn aad(access_key_id: &str) -> Vec<u8> {
    format!("coffer:access-key:{access_key_id}").into_bytes()
}

/// The store key and value of a root access key, its secret sealed under the root key.
pub(crate) fn access_key_entry(
    root: &RootKey,
    account: &str,
    creds: &RootCredentials,
) -> Result<(String, Vec<u8>), StartError> {
    let sealed = coffer_crypto::seal(
        root.as_bytes(),
        creds.secret_access_key.as_bytes(),
        &aad(&creds.access_key_id),
    )
    .map_err(|_| StartError::Config("sealing the root credentials failed".into()))?;
    let record = StoredAccessKey {
        principal_arn: coffer_core::Caller::root(account, &creds.access_key_id).principal_arn,
        account_id: account.to_string(),
        sealed_secret: base64::engine::general_purpose::STANDARD.encode(sealed),
    };
    let key = format!("{}{}", access_key_prefix(account), creds.access_key_id);
    let value = serde_json::to_vec(&record).map_err(|e| StartError::Config(e.to_string()))?;
    Ok((key, value))
}

async fn store_root_key(
    store: &dyn Store,
    root: &RootKey,
    account: &str,
    creds: &RootCredentials,
) -> Result<AccessKey, StartError> {
    let (key, value) = access_key_entry(root, account, creds)?;
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    store.commit(batch).await?;
    Ok(AccessKey {
        access_key_id: creds.access_key_id.clone(),
        secret: Arc::new(coffer_wire::sigv4::SigningSecret::new(
            &creds.secret_access_key,
        )),
        caller: coffer_core::Caller::root(account, &creds.access_key_id),
    })
}

/// Root rotation (`crate::root_wrapped`): an access key record (`iam/{account}/accesskey/{id}`)
/// with its secret rewrapped; other `iam/` records are not ours.
pub(crate) fn rewrap_access_key(
    key: &[u8],
    value: &[u8],
    old: &coffer_crypto::AeadKey,
    new: &coffer_crypto::AeadKey,
) -> Result<Option<Vec<u8>>, String> {
    let key = String::from_utf8_lossy(key);
    let Some((_, id)) = key.split_once("/accesskey/") else {
        return Ok(None);
    };
    let Ok(mut record) = serde_json::from_slice::<StoredAccessKey>(value) else {
        return Ok(None);
    };
    let b64 = &base64::engine::general_purpose::STANDARD;
    let sealed = b64
        .decode(&record.sealed_secret)
        .map_err(|_| "unreadable access key record".to_string())?;
    let secret = old
        .open(&sealed, &aad(id))
        .map_err(|_| "the access key does not open under the root key".to_string())?;
    let resealed = new
        .seal(&secret, &aad(id))
        .map_err(|_| "sealing failed".to_string())?;
    record.sealed_secret = b64.encode(resealed);
    serde_json::to_vec(&record)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn to_access_key(id: &str, record: &StoredAccessKey, secret: &str) -> AccessKey {
    AccessKey {
        access_key_id: id.to_string(),
        secret: Arc::new(coffer_wire::sigv4::SigningSecret::new(secret)),
        caller: coffer_core::Caller::root(&record.account_id, id),
    }
}

async fn load_access_keys(
    store: &dyn Store,
    root: &RootKey,
    account: &str,
) -> Result<Vec<AccessKey>, StartError> {
    let prefix = access_key_prefix(account);
    let end = coffer_store::prefix_end(prefix.as_bytes());
    let rows = store.scan(prefix.as_bytes(), &end, usize::MAX).await?;
    let mut keys = Vec::with_capacity(rows.len());
    for (k, entry) in rows {
        let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        let corrupt = |what: &str| StartError::Config(format!("access key {id}: {what}"));
        let record: StoredAccessKey =
            serde_json::from_slice(&entry.value).map_err(|_| corrupt("unreadable record"))?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&record.sealed_secret)
            .map_err(|_| corrupt("unreadable record"))?;
        let secret = coffer_crypto::open(root.as_bytes(), &sealed, &aad(&id))
            .map_err(|_| corrupt("cannot be unsealed with this root key"))?;
        let secret = std::str::from_utf8(&secret).map_err(|_| corrupt("unreadable secret"))?;
        keys.push(to_access_key(&id, &record, secret));
    }
    Ok(keys)
}
