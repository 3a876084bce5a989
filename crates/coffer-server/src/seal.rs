//! Sealing: where the root key comes from, and the operator actions that change it.
//!
//! The store holds one seal record (`meta/seal`, JSON): how the server unseals and the root key
//! sealed under the unseal key (AES-256-GCM, see `coffer_crypto::root_wrapped::wrap_root`):
//! - `shares`: the unseal key is a random 256-bit key split with Shamir (threshold T of N); the
//!   record keeps the share set's id and a SHA-256 digest of each share, so every share is
//!   checked on its own when it is given (corrupt, from another set, unknown, duplicate) and
//!   the combined key is checked by opening the sealed root key before anything uses it.
//! - `auto`: the unseal key is a key-encryption key read from a file (32 raw bytes, mode 0600),
//!   from an environment variable (base64 of 32 bytes), or (`--dev`) held in process memory.
//!
//! The root key itself never touches disk and lives in memory only inside the services
//! (`dispatch::Services`), zeroized when they drop (seal, rotation, shutdown).
//!
//! Atomicity: `init`, `rekey` and `rotate-root` each end in one store batch that checks the seal
//! record's version. `rotate-root` writes, in that batch, every root-sealed record rewrapped
//! (`crate::root_wrapped`) and the record with the new sealed root key and the next
//! `root_generation`; a crash leaves either all old or all new. It runs with this node's services
//! taken down (requests get `ServiceUnavailable` meanwhile), so no write under the old key can
//! slip in between the scan and the commit from this node.
//!
//! Several nodes on one store: seal state is per node (each unseals, with the same shares or
//! auto-unseal key, and seals on its own). Every other node's root-sealed writes check the seal
//! record (`crate::root_guard`), so none lands under the old root key once rotate-root has read
//! the record; and each node follows a rotation made elsewhere within [`WATCH_INTERVAL`]
//! ([`follow_root_rotation`]): re-unsealed from the record with an auto-unseal key, sealed with
//! shares (the shares stay the same). A rekey keeps the root key and its generation: other
//! nodes keep serving.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_core::{Clock as _, SystemClock};
use coffer_crypto::RootKey;
use coffer_crypto::root_wrapped::{unwrap_root, wrap_root};
use coffer_crypto::shamir::{self, Share, ShareError};
use coffer_store::{Entry, Store, StoreError, WriteBatch};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::RootCredentials;
use crate::dispatch::AppState;
use crate::root_guard::SealHeld;

pub(crate) const SEAL_RECORD_KEY: &[u8] = b"meta/seal";
/// How often each node compares the seal record's root generation with its own.
pub(crate) const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// The auto-unseal key file a data directory gets when it initialises itself on first start.
pub const AUTO_UNSEAL_KEY_FILE: &str = "unseal.key";
/// The interim root key file of data directories created before sealing existed; adopted (and
/// then removed) on first start.
const LEGACY_ROOT_KEY_FILE: &str = "root.key";
/// Test-only crash injection: `rekey-before-commit`, `rekey-after-commit`,
/// `rotate-root-before-commit`, `rotate-root-after-commit` abort the process at that point.
const CRASH_POINT_ENV: &str = "COFFER_TEST_CRASH_POINT";

/// Where an auto-unseal key-encryption key comes from (chosen at init, kept in the record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KekSource {
    /// 32 raw bytes, mode 0600; created at init if absent.
    File(PathBuf),
    /// `unseal.key` in the data directory of whichever node reads it (the default a first start
    /// creates): nodes over one database each keep a copy in their own data directory.
    DataDirFile,
    /// The name of an environment variable holding base64 of 32 bytes.
    Env(String),
    /// `--dev`: a random key held in this process's memory, or with a PostgreSQL store (which
    /// outlives the process and is shared by nodes) the fixed public [`DEV_SHARED_KEK`].
    Dev,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Method {
    Shares {
        threshold: u8,
        shares: u8,
        set_id: String,
        digests: Vec<String>,
    },
    Auto {
        source: KekSource,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealRecord {
    method: Method,
    /// Base64 of the root key sealed under the unseal key.
    wrapped_root: String,
    /// A rekey's new share set, not yet in force: it replaces `method` and `wrapped_root` only
    /// once a quorum of the new shares has been given back (so the operator provably holds
    /// them; a crash before that leaves the old shares working).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<Box<PendingRekey>>,
    /// How many times the root key was rotated (0 for records from before it was counted): a
    /// node whose root key came from another generation holds a stale key.
    #[serde(default)]
    root_generation: u64,
    /// Set by `rotate-root` before it reads the records it rewraps (unix milliseconds): until
    /// then, other nodes hold their root-sealed writes instead of racing the rotation (see
    /// [`crate::root_guard`]). Cleared by the rotation's own commit; a rotation that died
    /// leaves it to expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotating_until: Option<i64>,
}

/// How long a rotation holds other nodes' root-sealed writes at most: ample for the rewrap of
/// many thousands of records, short enough that a rotation that died (or a crash of the whole
/// server mid-rotation) delays those writes by seconds only. A rotation that outlasts it is
/// raced as if unmarked (and refused if a write meets it).
pub(crate) const ROTATION_HOLD_MS: i64 = 10_000;

/// What root-sealed writers need of a seal record's stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealState {
    pub generation: u64,
    pub rotating_until: Option<i64>,
}

impl SealState {
    /// The state of a stored seal record; `None` when it is unreadable.
    pub fn of(value: &[u8]) -> Option<Self> {
        serde_json::from_slice::<SealRecord>(value)
            .ok()
            .map(|r| Self {
                generation: r.root_generation,
                rotating_until: r.rotating_until,
            })
    }
}

fn held(rec: &SealRecord, entry: Entry) -> SealHeld {
    SealHeld {
        generation: rec.root_generation,
        entry,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingRekey {
    method: Method,
    wrapped_root: String,
}

/// What `coffer operator init` asks for.
#[derive(Debug, Clone)]
pub enum InitMethod {
    Shares { shares: u8, threshold: u8 },
    Auto(KekSource),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    #[error("{0}")]
    InvalidShare(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// The server is not in the state the action needs (already initialised, sealed, ...).
    #[error("{0}")]
    InvalidState(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl SealError {
    pub fn code(&self) -> &'static str {
        match self {
            SealError::InvalidShare(_) => "InvalidShareException",
            SealError::InvalidRequest(_) => "ValidationException",
            SealError::InvalidState(_) => "InvalidStateException",
            SealError::Store(_) | SealError::Internal(_) => "InternalFailure",
        }
    }
    pub fn status(&self) -> u16 {
        match self {
            SealError::InvalidShare(_) | SealError::InvalidRequest(_) => 400,
            SealError::InvalidState(_) => 409,
            SealError::Store(_) | SealError::Internal(_) => 500,
        }
    }
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Status {
    pub initialized: bool,
    pub sealed: bool,
    /// `shares` or `auto`; absent before init.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseal_method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<u8>,
    /// Shares given so far towards unsealing.
    pub progress: usize,
    /// A rekey's new shares await verification (`rekey` with `verify`).
    pub rekey_pending: bool,
}

/// What `init` hands back, once.
pub(crate) struct Initialized {
    pub shares: Vec<Zeroizing<String>>,
    pub root_credentials: Option<RootCredentials>,
}

/// `--dev` with a PostgreSQL store: the root key is sealed under this fixed key, public on
/// purpose like the dev credentials, so a restarted or second dev node unseals the same
/// database. Never protects anything real: `--dev` is for trying Coffer out.
pub const DEV_SHARED_KEK: [u8; 32] = *b"coffer --dev shared unseal key!!";

/// The key `KekSource::Dev` stands for on this server: random per process for the in-memory
/// store (nothing outlives it), [`DEV_SHARED_KEK`] for `--dev` on PostgreSQL, and none for a
/// non-dev server on PostgreSQL (a dev-initialised database is not silently served as real).
pub(crate) fn dev_kek_for(config: &crate::ServerConfig) -> Option<Zeroizing<[u8; 32]>> {
    match (&config.database_url, config.dev) {
        (Some(_), true) => Some(Zeroizing::new(DEV_SHARED_KEK)),
        (Some(_), false) => None,
        (None, _) => Some(coffer_crypto::random_key()),
    }
}

/// Sealing state that outlives the services: the pending unseal shares and the dev key.
pub(crate) struct Sealer {
    store: Arc<dyn Store>,
    data_dir: Option<PathBuf>,
    /// `None`: this server does not open stores sealed by `--dev` (see [`dev_kek_for`]).
    dev_kek: Option<Zeroizing<[u8; 32]>>,
    /// Shares given so far; the mutex also serialises every operator action.
    progress: tokio::sync::Mutex<Vec<Share>>,
}

impl Sealer {
    pub fn new(
        store: Arc<dyn Store>,
        data_dir: Option<PathBuf>,
        dev_kek: Option<Zeroizing<[u8; 32]>>,
    ) -> Self {
        Self {
            store,
            data_dir,
            dev_kek,
            progress: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Whether a seal record exists (a store error counts as initialised: `/health` then says
    /// sealed rather than inviting an init).
    pub async fn is_initialized(&self) -> bool {
        !matches!(self.store.get(SEAL_RECORD_KEY).await, Ok(None))
    }

    async fn record(&self) -> Result<Option<(SealRecord, Entry)>, SealError> {
        match self.store.get(SEAL_RECORD_KEY).await? {
            None => Ok(None),
            Some(e) => {
                let rec = serde_json::from_slice(&e.value)
                    .map_err(|_| SealError::Internal("the seal record is unreadable".into()))?;
                Ok(Some((rec, e)))
            }
        }
    }

    /// The root key of an auto-unseal record `rec`, opened with the key from `source`;
    /// `whose` names the root key in the error ("this server's", ...).
    fn open_auto(
        &self,
        rec: &SealRecord,
        source: &KekSource,
        whose: &str,
    ) -> Result<RootKey, SealError> {
        let kek = self.kek(source, false)?;
        unwrap_root(&kek, &decode_wrapped(rec)?).map_err(|_| {
            SealError::InvalidState(format!(
                "the auto-unseal key does not open {whose} root key"
            ))
        })
    }

    fn kek(&self, source: &KekSource, create: bool) -> Result<Zeroizing<[u8; 32]>, SealError> {
        match source {
            KekSource::Dev => self.dev_kek.clone().ok_or_else(|| {
                SealError::InvalidState(
                    "this database was initialised by `coffer server --dev` (its root key is \
                     sealed under the public dev key): start with --dev"
                        .into(),
                )
            }),
            KekSource::DataDirFile => {
                let dir = self.data_dir.as_ref().ok_or_else(|| {
                    SealError::InvalidState(
                        "this database unseals with the auto-unseal key file of a data \
                         directory: start with --data-dir holding unseal.key"
                            .into(),
                    )
                })?;
                self.kek(&KekSource::File(dir.join(AUTO_UNSEAL_KEY_FILE)), create)
            }
            KekSource::File(path) => {
                let key = if create {
                    RootKey::load_or_create(path).map(|(k, _)| k)
                } else {
                    RootKey::load_existing(path)
                }
                .map_err(|e| {
                    SealError::InvalidState(format!("auto-unseal key file {}: {e}", path.display()))
                })?;
                Ok(Zeroizing::new(*key.as_bytes()))
            }
            KekSource::Env(var) => {
                let value = Zeroizing::new(std::env::var(var).map_err(|_| {
                    SealError::InvalidState(format!(
                        "the auto-unseal key variable {var} is not set in the server's environment"
                    ))
                })?);
                let bytes = Zeroizing::new(B64.decode(value.trim()).map_err(|_| {
                    SealError::InvalidState(format!("{var} is not base64 of 32 bytes"))
                })?);
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    SealError::InvalidState(format!("{var} is not base64 of 32 bytes"))
                })?;
                Ok(Zeroizing::new(key))
            }
        }
    }

    /// Checks a share against the record on its own: set, digest, and not given already.
    fn check_share(text: &str, method: &Method, given: &[Share]) -> Result<Share, SealError> {
        let Method::Shares {
            set_id, digests, ..
        } = method
        else {
            return Err(SealError::InvalidRequest(
                "this server unseals with its auto-unseal key; it takes no shares".into(),
            ));
        };
        let share = Share::decode(text).map_err(|e| match e {
            ShareError::Malformed => SealError::InvalidShare(
                "that is not a Coffer unseal share (bad encoding or length)".into(),
            ),
            ShareError::Checksum => SealError::InvalidShare(
                "the share is corrupt or mistyped: its checksum does not match".into(),
            ),
        })?;
        if hex::encode(share.set_id) != *set_id {
            return Err(SealError::InvalidShare(
                "the share belongs to another share set (shares from before the last rekey no \
                 longer work)"
                    .into(),
            ));
        }
        if !digests.contains(&hex::encode(share.digest())) {
            return Err(SealError::InvalidShare(
                "the share is not one of this server's unseal shares".into(),
            ));
        }
        if given.iter().any(|g| g.raw.index == share.raw.index) {
            return Err(SealError::InvalidShare(format!(
                "share {} was already given",
                share.raw.index
            )));
        }
        Ok(share)
    }

    /// Checks `texts` (at least the threshold, no duplicates) and opens the root key with them.
    fn combine(
        &self,
        texts: &[String],
        rec: &SealRecord,
    ) -> Result<(Zeroizing<[u8; 32]>, RootKey), SealError> {
        let Method::Shares { threshold, .. } = rec.method else {
            return Err(SealError::InvalidRequest(
                "this server unseals with its auto-unseal key; it takes no shares".into(),
            ));
        };
        let mut shares = Vec::with_capacity(texts.len());
        for t in texts {
            let s = Self::check_share(t, &rec.method, &shares)?;
            shares.push(s);
        }
        if shares.len() < usize::from(threshold) {
            return Err(SealError::InvalidShare(format!(
                "{} of {threshold} required shares given",
                shares.len()
            )));
        }
        open_with_shares(&shares, rec)
    }
}

fn open_with_shares(
    shares: &[Share],
    rec: &SealRecord,
) -> Result<(Zeroizing<[u8; 32]>, RootKey), SealError> {
    let raw: Vec<_> = shares.iter().map(|s| s.raw.clone()).collect();
    let key = shamir::combine(&raw).map_err(|e| SealError::InvalidShare(e.to_string()))?;
    let key: Zeroizing<[u8; 32]> = Zeroizing::new(
        key.as_slice()
            .try_into()
            .map_err(|_| SealError::InvalidShare("the shares do not combine to a key".into()))?,
    );
    let root = unwrap_root(&key, &decode_wrapped(rec)?).map_err(|_| {
        SealError::InvalidShare(
            "the shares combine to a key that does not open the root key; one is wrong".into(),
        )
    })?;
    Ok((key, root))
}

fn decode_wrapped(rec: &SealRecord) -> Result<Vec<u8>, SealError> {
    B64.decode(&rec.wrapped_root)
        .map_err(|_| SealError::Internal("the seal record is unreadable".into()))
}

fn seal_record_for(
    method: Method,
    unseal_key: &[u8; 32],
    root: &RootKey,
    root_generation: u64,
) -> Result<Vec<u8>, SealError> {
    let wrapped = wrap_root(unseal_key, root)
        .map_err(|_| SealError::Internal("sealing the root key failed".into()))?;
    let rec = SealRecord {
        method,
        wrapped_root: B64.encode(wrapped),
        pending: None,
        root_generation,
        rotating_until: None,
    };
    serde_json::to_vec(&rec).map_err(|e| SealError::Internal(e.to_string()))
}

/// A fresh share set for `unseal_key`: the shares' text and the record's method.
fn new_share_set(
    unseal_key: &[u8; 32],
    shares: u8,
    threshold: u8,
) -> Result<(Vec<Zeroizing<String>>, Method), SealError> {
    let set = shamir::split_into_shares(unseal_key, threshold, shares).map_err(|_| {
        SealError::InvalidRequest(format!(
            "key-threshold must be between 1 and key-shares, and key-shares between 1 and 255 \
             (got {threshold} of {shares})"
        ))
    })?;
    let set_id = set
        .first()
        .map(|s| hex::encode(s.set_id))
        .unwrap_or_default();
    let method = Method::Shares {
        threshold,
        shares,
        set_id,
        digests: set.iter().map(|s| hex::encode(s.digest())).collect(),
    };
    Ok((set.iter().map(Share::encode).collect(), method))
}

fn crash_point(name: &str) {
    if std::env::var(CRASH_POINT_ENV).is_ok_and(|v| v == name) {
        eprintln!("{CRASH_POINT_ENV}={name}: aborting as asked");
        std::process::abort();
    }
}

/// How the server comes up.
pub(crate) enum StartState {
    Unsealed(RootKey, SealHeld),
    Sealed,
    Uninitialized,
}

/// On start: unseal with the auto-unseal key, stay sealed (shares), or initialise a new store
/// (`auto_init`: with `auto_unseal`, else the data directory's key file, else the dev key).
pub(crate) async fn on_start(
    sealer: &Sealer,
    auto_init: bool,
    auto_unseal: Option<KekSource>,
    account: &str,
    new_credentials: Option<RootCredentials>,
) -> Result<(StartState, Option<RootCredentials>), SealError> {
    if let Some((rec, entry)) = sealer.record().await? {
        return match &rec.method {
            Method::Shares { .. } => Ok((StartState::Sealed, None)),
            Method::Auto { source } => {
                let root = sealer.open_auto(&rec, source, "this data directory's")?;
                Ok((StartState::Unsealed(root, held(&rec, entry)), None))
            }
        };
    }
    let legacy = sealer
        .data_dir
        .as_ref()
        .map(|d| d.join(LEGACY_ROOT_KEY_FILE))
        .filter(|p| p.exists());
    if !auto_init && legacy.is_none() {
        return Ok((StartState::Uninitialized, None));
    }
    let source = auto_unseal.unwrap_or(match &sealer.data_dir {
        Some(_) => KekSource::DataDirFile,
        None => KekSource::Dev,
    });
    // A data directory from before sealing: its root key file becomes the root key, sealed
    // under a new auto-unseal key; the file goes once the record is committed.
    let adopted = match &legacy {
        Some(path) => Some(
            RootKey::load_existing(path)
                .map_err(|e| SealError::Internal(format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    // An adopted directory already has its root credentials.
    let credentials = if adopted.is_some() {
        None
    } else {
        new_credentials
    };
    let (state, init) = initialize(
        sealer,
        InitMethod::Auto(source),
        adopted,
        account,
        credentials,
    )
    .await?;
    if let Some(path) = legacy {
        let _ = std::fs::remove_file(path);
    }
    Ok((state, init.root_credentials))
}

/// Creates the root key (or adopts `root`) and the seal record, and stores `credentials` (the
/// root credentials sealed under the new root key) in the same batch.
async fn initialize(
    sealer: &Sealer,
    method: InitMethod,
    root: Option<RootKey>,
    account: &str,
    credentials: Option<RootCredentials>,
) -> Result<(StartState, Initialized), SealError> {
    let root = root.unwrap_or_else(RootKey::generate);
    let (shares, record, unsealed) = match method {
        InitMethod::Shares { shares, threshold } => {
            let unseal_key = coffer_crypto::random_key();
            let (texts, method) = new_share_set(&unseal_key, shares, threshold)?;
            (
                texts,
                seal_record_for(method, &unseal_key, &root, 0)?,
                false,
            )
        }
        InitMethod::Auto(source) => {
            if let KekSource::Env(var) = &source
                && (var.is_empty() || var.contains('='))
            {
                return Err(SealError::InvalidRequest(format!(
                    "{var:?} is not an environment variable name"
                )));
            }
            let kek = sealer.kek(&source, true)?;
            (
                Vec::new(),
                seal_record_for(Method::Auto { source }, &kek, &root, 0)?,
                true,
            )
        }
    };
    let mut batch = WriteBatch::new();
    batch
        .check(SEAL_RECORD_KEY, None)
        .put(SEAL_RECORD_KEY, record.clone());
    if let Some(creds) = &credentials {
        // IAM's access key record (the one stored format); the creation date is informational.
        let now_ms = coffer_core::Clock::now_millis(&coffer_core::SystemClock);
        let (k, v) = coffer_iam::root_access_key_entry(
            &root,
            account,
            &creds.access_key_id,
            &creds.secret_access_key,
            now_ms,
        )
        .map_err(|e| SealError::Internal(format!("storing the root credentials: {e:?}")))?;
        batch.put(k, v);
    }
    let version = match sealer.store.commit(batch).await {
        Ok(v) => v,
        Err(StoreError::Conflict) => {
            return Err(SealError::InvalidState(
                "the server is already initialized".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let state = if unsealed {
        let entry = Entry {
            version,
            value: record.into(),
        };
        StartState::Unsealed(
            root,
            SealHeld {
                generation: 0,
                entry,
            },
        )
    } else {
        StartState::Sealed
    };
    Ok((
        state,
        Initialized {
            shares,
            root_credentials: credentials,
        },
    ))
}

// ---- the operator actions (the HTTP handlers call these) --------------------------------------

pub(crate) async fn status(state: &AppState) -> Result<Status, SealError> {
    let progress = state.sealer.progress.lock().await.len();
    status_with(state, progress).await
}

async fn status_with(state: &AppState, progress: usize) -> Result<Status, SealError> {
    let rec = state.sealer.record().await?;
    let rekey_pending = rec.as_ref().is_some_and(|(r, _)| r.pending.is_some());
    let (unseal_method, threshold, shares) = match rec.as_ref().map(|(r, _)| &r.method) {
        None => (None, None, None),
        Some(Method::Auto { .. }) => (Some("auto"), None, None),
        Some(Method::Shares {
            threshold, shares, ..
        }) => (Some("shares"), Some(*threshold), Some(*shares)),
    };
    Ok(Status {
        initialized: rec.is_some(),
        sealed: !state.is_unsealed(),
        unseal_method,
        threshold,
        shares,
        progress,
        rekey_pending,
    })
}

/// `operator init`: only on an uninitialised server. Shares: the server stays sealed until
/// unsealed with them; auto: it unseals at once.
pub(crate) async fn init(state: &AppState, method: InitMethod) -> Result<Initialized, SealError> {
    let _guard = state.sealer.progress.lock().await;
    if state.sealer.record().await?.is_some() {
        return Err(SealError::InvalidState(
            "the server is already initialized".into(),
        ));
    }
    let creds = match &state.deps.wanted_root_credentials {
        Some(_) => None,
        None => Some(RootCredentials::generate()),
    };
    let (start, out) = initialize(&state.sealer, method, None, &state.account_id, creds).await?;
    if let StartState::Unsealed(root, held) = start {
        state
            .unseal(root, held)
            .await
            .map_err(|e| SealError::Internal(e.to_string()))?;
    }
    Ok(out)
}

/// `operator unseal`: one share (or, for an auto-unseal server, none). Unseals when the
/// threshold is reached; a wrong share is refused and leaves the progress as it was.
pub(crate) async fn unseal(
    state: &AppState,
    share: Option<&str>,
    reset: bool,
) -> Result<Status, SealError> {
    let mut progress = state.sealer.progress.lock().await;
    if reset {
        progress.clear();
    }
    let Some((rec, entry)) = state.sealer.record().await? else {
        return Err(SealError::InvalidState(
            "the server is not initialized (coffer operator init)".into(),
        ));
    };
    if state.is_unsealed() {
        progress.clear();
        return status_with(state, 0).await;
    }
    match (&rec.method, share) {
        (Method::Auto { source }, _) => {
            let root = state.sealer.open_auto(&rec, source, "this server's")?;
            state
                .unseal(root, held(&rec, entry))
                .await
                .map_err(|e| SealError::Internal(e.to_string()))?;
        }
        (Method::Shares { .. }, None) if reset => {}
        (Method::Shares { .. }, None) => {
            return Err(SealError::InvalidRequest("no share given".into()));
        }
        (Method::Shares { threshold, .. }, Some(text)) => {
            let share = Sealer::check_share(text, &rec.method, &progress)?;
            progress.push(share);
            if progress.len() >= usize::from(*threshold) {
                let shares = std::mem::take(&mut *progress);
                let (_key, root) = open_with_shares(&shares, &rec)?;
                state
                    .unseal(root, held(&rec, entry))
                    .await
                    .map_err(|e| SealError::Internal(e.to_string()))?;
            }
        }
    }
    status_with(state, progress.len()).await
}

/// `operator seal` (the caller has been authenticated as root): drops the services and the
/// root key; the pending shares go too.
pub(crate) async fn seal(state: &AppState) -> Result<Status, SealError> {
    let mut progress = state.sealer.progress.lock().await;
    progress.clear();
    state.seal().await;
    status_with(state, 0).await
}

/// `operator rekey`, step one: a quorum of the current shares buys a new share set for the same
/// root key, recorded as pending. The current shares keep working until step two.
pub(crate) async fn rekey(
    state: &AppState,
    current: &[String],
    shares: u8,
    threshold: u8,
) -> Result<Vec<Zeroizing<String>>, SealError> {
    let _guard = state.sealer.progress.lock().await;
    let (rec, entry) = shares_record(state).await?;
    let (_old, root) = state.sealer.combine(current, &rec)?;
    let unseal_key = coffer_crypto::random_key();
    let (texts, method) = new_share_set(&unseal_key, shares, threshold)?;
    let wrapped = wrap_root(&unseal_key, &root)
        .map_err(|_| SealError::Internal("sealing the root key failed".into()))?;
    let mut next = rec;
    next.pending = Some(Box::new(PendingRekey {
        method,
        wrapped_root: B64.encode(wrapped),
    }));
    write_record(state, &next, &entry).await?;
    Ok(texts)
}

/// `operator rekey`, step two: a quorum of the new shares puts them in force (one record write;
/// the old shares stop working).
pub(crate) async fn rekey_verify(state: &AppState, new: &[String]) -> Result<(), SealError> {
    let mut progress = state.sealer.progress.lock().await;
    let (rec, entry) = shares_record(state).await?;
    let Some(pending) = rec.pending.clone() else {
        return Err(SealError::InvalidState("no rekey is pending".into()));
    };
    // The same root key, so the same generation: other nodes keep serving.
    let candidate = SealRecord {
        method: pending.method,
        wrapped_root: pending.wrapped_root,
        pending: None,
        root_generation: rec.root_generation,
        rotating_until: rec.rotating_until,
    };
    state.sealer.combine(new, &candidate)?;
    crash_point("rekey-before-commit");
    write_record(state, &candidate, &entry).await?;
    crash_point("rekey-after-commit");
    // Shares given towards unsealing belong to the old set.
    progress.clear();
    Ok(())
}

async fn shares_record(state: &AppState) -> Result<(SealRecord, Entry), SealError> {
    let Some((rec, entry)) = state.sealer.record().await? else {
        return Err(SealError::InvalidState(
            "the server is not initialized (coffer operator init)".into(),
        ));
    };
    if matches!(rec.method, Method::Auto { .. }) {
        return Err(SealError::InvalidState(
            "this server unseals with an auto-unseal key; it has no shares to rekey".into(),
        ));
    }
    Ok((rec, entry))
}

async fn write_record(state: &AppState, rec: &SealRecord, read: &Entry) -> Result<(), SealError> {
    let value = serde_json::to_vec(rec).map_err(|e| SealError::Internal(e.to_string()))?;
    let mut batch = WriteBatch::new();
    batch
        .check(SEAL_RECORD_KEY, Some(read))
        .put(SEAL_RECORD_KEY, value);
    commit_checked(&*state.sealer.store, batch)
        .await
        .map(|_| ())
}

/// `operator rotate-root` (caller authenticated as root; `current` shares for a shares server):
/// a new root key; every root-sealed record and the seal record rewritten in one batch. The
/// unseal shares (or auto-unseal key) stay the same; a pending rekey is cancelled (its sealed
/// root key would be the old one).
pub(crate) async fn rotate_root(state: &AppState, current: &[String]) -> Result<usize, SealError> {
    let _guard = state.sealer.progress.lock().await;
    let Some((rec, entry)) = state.sealer.record().await? else {
        return Err(SealError::InvalidState(
            "the server is not initialized".into(),
        ));
    };
    if !state.is_unsealed() {
        return Err(SealError::InvalidState(
            "the server is sealed; unseal it before rotating the root key".into(),
        ));
    }
    let (unseal_key, checked_root) = match &rec.method {
        Method::Shares { .. } => {
            let (k, r) = state.sealer.combine(current, &rec)?;
            (k, Some(r))
        }
        Method::Auto { source } => {
            if !current.is_empty() {
                return Err(SealError::InvalidRequest(
                    "this server unseals with an auto-unseal key; it takes no shares".into(),
                ));
            }
            (state.sealer.kek(source, false)?, None)
        }
    };
    // Requests arriving from here on get ServiceUnavailable until the new services are up.
    let Some(old) = state.take_services().await else {
        return Err(SealError::InvalidState(
            "the server was sealed meanwhile".into(),
        ));
    };
    let (old_root, old_held) = old.take_root();
    if old_held.generation != rec.root_generation {
        // Another node rotated the root key; this node follows within a second.
        restore(state, old_root, old_held).await;
        return Err(SealError::InvalidState(
            "the root key was rotated through another node and this node has not caught up yet; \
             try again in a few seconds"
                .into(),
        ));
    }
    if let Some(r) = &checked_root
        && r.as_bytes() != old_root.as_bytes()
    {
        restore(state, old_root, old_held).await;
        return Err(SealError::Internal(
            "the shares open a different root key".into(),
        ));
    }
    let new_root = RootKey::generate();
    let generation = rec.root_generation + 1;
    let until = SystemClock.now_millis() + ROTATION_HOLD_MS;
    let result = async {
        let entry = mark_rotating(state, &rec, entry, until).await?;
        let mut batch = WriteBatch::new();
        let n =
            crate::root_wrapped::rewrap_all(&*state.sealer.store, &old_root, &new_root, &mut batch)
                .await?;
        let record = seal_record_for(rec.method.clone(), &unseal_key, &new_root, generation)?;
        batch
            .check(SEAL_RECORD_KEY, Some(&entry))
            .put(SEAL_RECORD_KEY, record.clone());
        crash_point("rotate-root-before-commit");
        let version = commit_checked(&*state.sealer.store, batch).await?;
        crash_point("rotate-root-after-commit");
        let entry = Entry {
            version,
            value: record.into(),
        };
        Ok::<_, SealError>((n, SealHeld { generation, entry }))
    }
    .await;
    match result {
        Ok((n, new_held)) => {
            drop(old_root);
            state
                .unseal(new_root, new_held)
                .await
                .map_err(|e| SealError::Internal(e.to_string()))?;
            Ok(n)
        }
        Err(e) => {
            unmark_rotating(state, &rec, until).await;
            restore(state, old_root, old_held).await;
            Err(e)
        }
    }
}

/// Conflicts tolerated while marking the seal record as rotating.
const MARK_ATTEMPTS: usize = 50;

/// Marks the seal record as rotating ([`SealRecord::rotating_until`]) before the rotation reads
/// what it rewraps, so that other nodes' root-sealed writes wait for it instead of racing it:
/// without the mark, every such write committed during the rewrap refused the rotation, and a
/// steady stream of them could hold it off indefinitely. Those writes bump the record's
/// version without changing its bytes, so losing to one is retried; any other change refuses.
async fn mark_rotating(
    state: &AppState,
    rec: &SealRecord,
    read: Entry,
    until: i64,
) -> Result<Entry, SealError> {
    // A mark further ahead than any rotation sets comes from a clock running ahead: ignored.
    let now = SystemClock.now_millis();
    if rec
        .rotating_until
        .is_some_and(|t| t > now && t <= now + ROTATION_HOLD_MS)
    {
        return Err(SealError::InvalidState(
            "a root key rotation is in progress (or one was interrupted moments ago); nothing \
             was changed, try again in a few seconds"
                .into(),
        ));
    }
    let mut marked = rec.clone();
    marked.rotating_until = Some(until);
    let value = serde_json::to_vec(&marked).map_err(|e| SealError::Internal(e.to_string()))?;
    let mut read = read;
    for _ in 0..MARK_ATTEMPTS {
        let mut batch = WriteBatch::new();
        batch
            .check(SEAL_RECORD_KEY, Some(&read))
            .put(SEAL_RECORD_KEY, value.clone());
        match state.sealer.store.commit(batch).await {
            Ok(version) => {
                return Ok(Entry {
                    version,
                    value: value.into(),
                });
            }
            Err(StoreError::Conflict) => match state.sealer.store.get(SEAL_RECORD_KEY).await? {
                Some(e) if e.value == read.value => read = e,
                _ => break,
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(changed_meanwhile())
}

/// Lifts the mark (`until`) of a rotation that failed after setting it, so that held writes
/// resume at once (best effort: otherwise the mark expires). Another rotation's mark is left.
async fn unmark_rotating(state: &AppState, rec: &SealRecord, until: i64) {
    let Ok(Some((current, entry))) = state.sealer.record().await else {
        return;
    };
    if current.root_generation != rec.root_generation || current.rotating_until != Some(until) {
        return;
    }
    let mut plain = current;
    plain.rotating_until = None;
    if let Err(e) = write_record(state, &plain, &entry).await {
        tracing::warn!(error = %e, "the failed rotation's mark stays until it expires");
    }
}

async fn restore(state: &AppState, root: RootKey, held: SealHeld) {
    if let Err(e) = state.unseal(root, held).await {
        tracing::error!(error = %e, "could not bring the services back after a failed rotation");
    }
}

/// Follows a root rotation made through another node (every [`WATCH_INTERVAL`], and at once
/// when this node's services find their key stale): nothing while the seal record's root
/// generation is the one this node unsealed with; otherwise the services (and the stale root
/// key) go, and the node unseals again from the record with its auto-unseal key, or stays
/// sealed until an operator unseals it with the shares (which a rotation does not change).
pub(crate) async fn follow_root_rotation(state: &AppState) {
    let Ok(services) = state.services() else {
        return; // sealed: an unseal reads the record as it is then
    };
    let Ok(Some((_, entry))) = state.sealer.record().await else {
        return; // the store is unreachable: next time
    };
    if !services.guard.observe(Some(entry)) {
        return;
    }
    drop(services);
    // Operator actions on this node (rotate-root, seal, unseal) run under the same lock; one
    // may have brought this node up to date meanwhile.
    let _progress = state.sealer.progress.lock().await;
    let Ok(services) = state.services() else {
        return;
    };
    let Ok(Some((rec, entry))) = state.sealer.record().await else {
        return;
    };
    if services.guard.generation() == rec.root_generation {
        return;
    }
    let stale = services.guard.generation();
    services.guard.mark_stale();
    drop(services);
    // Requests get ServiceUnavailable from here on; in-flight ones finish first.
    drop(state.take_services().await);
    match &rec.method {
        Method::Auto { source } => {
            let result = match state.sealer.open_auto(&rec, source, "the rotated") {
                Ok(root) => state
                    .unseal(root, held(&rec, entry))
                    .await
                    .map_err(|e| SealError::Internal(e.to_string())),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => tracing::info!(
                    from = stale,
                    to = rec.root_generation,
                    "the root key was rotated through another node: unsealed again with it"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "the root key was rotated through another node and this node cannot \
                     unseal with the new one: it stays sealed"
                ),
            }
        }
        Method::Shares { .. } => tracing::warn!(
            from = stale,
            to = rec.root_generation,
            "the root key was rotated through another node: this node is sealed; unseal it \
             with the same shares (coffer operator unseal)"
        ),
    }
}

async fn commit_checked(store: &dyn Store, batch: WriteBatch) -> Result<u64, SealError> {
    match store.commit(batch).await {
        Ok(v) => Ok(v),
        Err(StoreError::Conflict) => Err(changed_meanwhile()),
        Err(e) => Err(e.into()),
    }
}

fn changed_meanwhile() -> SealError {
    SealError::InvalidState(
        "the seal state changed meanwhile; nothing was changed, try again".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_key_is_fixed_only_for_dev_on_postgres() {
        let mut c = crate::ServerConfig::dev();
        let random = (dev_kek_for(&c).unwrap(), dev_kek_for(&c).unwrap());
        assert_ne!(*random.0, *random.1, "in memory: random per process");
        c.database_url = Some("postgres://db/x".into());
        assert_eq!(*dev_kek_for(&c).unwrap(), DEV_SHARED_KEK);
        c.dev = false;
        assert!(dev_kek_for(&c).is_none(), "no dev key for a real server");
    }
}
