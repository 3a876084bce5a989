//! The key service. Today: AWS-managed keys (`alias/aws/secretsmanager`, `alias/aws/ssm`) created
//! on first use per account and region, and envelope encryption for services. The KMS issue grows
//! this into the `TrentService` API (customer keys, aliases, rotation) on the same records.
//!
//! Layout of trust: root key (crypto room) wraps each KMS key's material (stored in the store);
//! the key material wraps a fresh random data key per encrypted value; the data key encrypts the
//! value with AES-256-GCM, the encryption context bound as AAD on both layers.
//!
//! Store records (JSON values):
//! - `kms/key/{account}/{region}/{uuid}` → [`KeyRecord`]: metadata plus every material version,
//!   each sealed under the root key with AAD = key ARN + material version.
//! - `kms/alias/{account}/{region}/alias/{name}` → [`AliasRecord`]: the alias's target key.
//!
//! Blob (what [`Keyring::encrypt`] returns), all integers big-endian:
//! `format (1) = 0x01 | key uuid (16) | material version (4) | wrapped key len (2) |
//!  wrapped data key | sealed value`.
//! Both the wrapped data key and the sealed value use the same AAD: the header fields, the key
//! ARN (so account and region are bound) and the canonical encryption context.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_core::arn::{Arn, partition_for_region};
use coffer_crypto::{AeadKey, RootKey};
use coffer_store::{Entry, Store, StoreError, WriteBatch};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Encryption context: ordered `(name, value)` pairs bound as AAD, e.g.
/// `[("SecretARN", arn), ("SecretVersionId", id)]`. As in AWS KMS the order does not matter:
/// pairs are sorted before being bound.
pub type EncryptionContext<'a> = &'a [(&'a str, &'a str)];

/// The AWS-managed key Secrets Manager uses when a secret names no key.
pub const SECRETS_MANAGER_ALIAS: &str = "alias/aws/secretsmanager";
/// The AWS-managed key SSM Parameter Store uses for `SecureString` without a key.
pub const SSM_ALIAS: &str = "alias/aws/ssm";
/// The AWS-managed key Lambda encrypts function code and environment variables with.
pub const LAMBDA_ALIAS: &str = "alias/aws/lambda";

/// AWS-managed aliases created on first use, with the description AWS gives their keys.
pub(crate) const MANAGED_ALIASES: &[(&str, &str)] = &[
    (
        LAMBDA_ALIAS,
        "Default key that protects my Lambda functions when no other key is defined",
    ),
    (
        SECRETS_MANAGER_ALIAS,
        "Default key that protects my Secrets Manager data when no other key is defined",
    ),
    (
        SSM_ALIAS,
        "Default key that protects my SSM parameters when no other key is defined",
    ),
];

const BLOB_FORMAT_V1: u8 = 0x01;
const BLOB_HEADER_LEN: usize = 1 + 16 + 4 + 2;
/// Bound on retries of a lost first-use race; each retry re-reads, so two suffice in practice.
const CREATE_RETRIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key id / ARN / alias does not name a key in this account and region.
    #[error("key not found: {0}")]
    NotFound(String),
    /// The key exists but its state forbids the use (disabled, pending deletion). The message is
    /// KMS's own (`ARN is disabled.`, `ARN is pending deletion.`).
    #[error("{arn} is {}.", state.describe())]
    InvalidState { arn: String, state: KeyState },
    /// Ciphertext tampered with, moved to another record, or wrong context.
    #[error("ciphertext could not be decrypted")]
    InvalidCiphertext,
    #[error("storage: {0}")]
    Store(#[from] coffer_store::StoreError),
}

/// What a key reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// The key's UUID.
    pub key_id: String,
    /// `arn:PARTITION:kms:REGION:ACCOUNT:key/UUID`.
    pub arn: String,
}

/// `arn:PARTITION:kms:REGION:ACCOUNT:key/UUID`.
pub fn key_arn(partition: &str, region: &str, account: &str, key_id: &str) -> String {
    format!("arn:{partition}:kms:{region}:{account}:key/{key_id}")
}

/// `arn:PARTITION:kms:REGION:ACCOUNT:alias/NAME`; `alias_name` includes the `alias/` prefix.
pub fn alias_arn(partition: &str, region: &str, account: &str, alias_name: &str) -> String {
    format!("arn:{partition}:kms:{region}:{account}:{alias_name}")
}

/// Store key of a key record.
pub fn key_record_key(account: &str, region: &str, key_id: &str) -> Vec<u8> {
    format!("kms/key/{account}/{region}/{key_id}").into_bytes()
}

/// Store key of an alias record; `alias_name` includes the `alias/` prefix.
pub fn alias_record_key(account: &str, region: &str, alias_name: &str) -> Vec<u8> {
    format!("kms/alias/{account}/{region}/{alias_name}").into_bytes()
}

/// Who manages a key, as in KMS `KeyManager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyManager {
    #[serde(rename = "AWS")]
    Aws,
    #[serde(rename = "CUSTOMER")]
    Customer,
}

/// A key's lifecycle state, as in KMS `KeyState` (the subset Coffer's keys can be in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// A key of origin `EXTERNAL` without (or after deleting) its imported material.
    PendingImport,
}

impl KeyState {
    /// The `KeyState` enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
        }
    }

    /// How KMS's error messages name the state (`... is pending deletion.`).
    pub fn describe(self) -> &'static str {
        match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending deletion",
            KeyState::PendingImport => "pending import",
        }
    }
}

/// One version of a key's material, sealed under the root key (see [`wrap_material`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct MaterialRecord {
    pub version: u32,
    /// Base64 of the root-key-sealed 32-byte material.
    pub wrapped: String,
    /// When a rotation added this version (unix millis); `None` for the key's first material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_ms: Option<i64>,
    /// `AUTOMATIC` or `ON_DEMAND` for versions a rotation added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_type: Option<String>,
}

impl std::fmt::Debug for MaterialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterialRecord")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The stored form of a KMS key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    /// Unix seconds.
    pub creation_date: i64,
    pub description: String,
    pub key_manager: KeyManager,
    pub key_state: KeyState,
    /// The material version new encryptions use.
    pub current_version: u32,
    pub materials: Vec<MaterialRecord>,
    /// The key policy document; `None` means the one AWS gives such a key
    /// ([`KeyRecord::policy_text`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<coffer_service::tags::Tag>,
    /// Set while `PendingDeletion`: when the key is deleted (unix millis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_window_days: Option<u32>,
    /// Automatic rotation period when rotation is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period_days: Option<u32>,
    /// When automatic rotation next adds a material version (unix millis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_ms: Option<i64>,
    /// `EXTERNAL` for a key whose material is imported (ImportKeyMaterial); `None`: `AWS_KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// An imported key's material fingerprint (SHA-256 under a key-specific label): a
    /// re-import must bring the same material, so existing ciphertexts stay readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_fingerprint: Option<String>,
}

impl KeyRecord {
    /// `Err(InvalidState)` unless the key may be used for cryptographic operations.
    pub fn check_usable(&self) -> Result<(), KeyError> {
        match self.key_state {
            KeyState::Enabled => Ok(()),
            state => Err(KeyError::InvalidState {
                arn: self.arn.clone(),
                state,
            }),
        }
    }
}

/// Seals 32 bytes of key material under the root key, bound to the key's ARN and the material
/// version. The one place key material is wrapped: root-key rotation rewraps with this too.
pub fn wrap_material(
    root: &AeadKey,
    arn: &str,
    version: u32,
    material: &[u8; 32],
) -> Result<String, KeyError> {
    let wrapped = root
        .seal(material, &material_aad(arn, version))
        .map_err(crypto_internal)?;
    Ok(B64.encode(wrapped))
}

/// The inverse of [`wrap_material`]. Failing means the record was altered or `root` is not the
/// key that wrapped it: a storage-level fault, never a caller error.
pub fn unwrap_material(
    root: &AeadKey,
    arn: &str,
    m: &MaterialRecord,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let wrapped = B64
        .decode(&m.wrapped)
        .map_err(|_| corrupt("key material encoding"))?;
    let raw = root
        .open(&wrapped, &material_aad(arn, m.version))
        .map_err(|_| corrupt("key material does not unwrap under the root key"))?;
    let raw: Zeroizing<[u8; 32]> = Zeroizing::new(
        raw.as_slice()
            .try_into()
            .map_err(|_| corrupt("key material length"))?,
    );
    Ok(raw)
}

/// The key id (UUID) a ciphertext blob names, if it is one of ours at all.
pub fn ciphertext_key_id(blob: &[u8]) -> Option<String> {
    if blob.len() < BLOB_HEADER_LEN || blob[0] != BLOB_FORMAT_V1 {
        return None;
    }
    Uuid::from_slice(&blob[1..17])
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// The material version a ciphertext blob was encrypted under, if the blob is one of ours.
pub fn ciphertext_version(blob: &[u8]) -> Option<u32> {
    (blob.len() >= BLOB_HEADER_LEN && blob[0] == BLOB_FORMAT_V1)
        .then(|| u32::from_be_bytes([blob[17], blob[18], blob[19], blob[20]]))
}

/// What KMS reports as the `KeyMaterialId` of material version `version` of the key `key_arn`:
/// 64 lowercase hex digits, derived from the ARN and the version, so each rotation's material
/// has its own id and every node reports the same one without storing it. Nothing secret goes
/// in.
pub fn material_id(key_arn: &str, version: u32) -> String {
    hex::encode(coffer_crypto::sha256(&[
        b"coffer-kms-material-id\0",
        key_arn.as_bytes(),
        b"\0",
        &version.to_be_bytes(),
    ]))
}

/// The stored form of an alias.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRecord {
    /// Includes the `alias/` prefix.
    pub alias_name: String,
    pub alias_arn: String,
    pub target_key_id: String,
    /// Unix seconds.
    pub creation_date: i64,
    /// When UpdateAlias last changed the target (unix seconds); creation until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<i64>,
}

/// Cache key for unwrapped material: the key ARN (so it names account and region — a blob moved
/// elsewhere cannot hit another account's cached material) and the material version.
type MaterialId = (String, u32);

/// Unwrapped per-value data keys kept ready to use; the map is emptied when it fills.
const DATA_KEY_CACHE_CAPACITY: usize = 4096;

/// An unwrapped data key, the AAD its unwrap succeeded under, and the ARN of the key that
/// wrapped it (for [`Keyring::forget_key`]).
struct CachedDataKey {
    aad: Box<[u8]>,
    kms_arn: String,
    key: Arc<AeadKey>,
}

pub struct Keyring {
    store: Arc<dyn Store>,
    root: AeadKey,
    /// Root of every derived key (`derive_key`); itself derived, so the root key is held once.
    derivation: zeroize::Zeroizing<[u8; 32]>,
    materials: RwLock<HashMap<MaterialId, Arc<AeadKey>>>,
    /// Wrapped data key → what it unwrapped to, and under which AAD. Used only when the AAD is
    /// byte-identical too, so a hit stands for an unwrap that already succeeded with exactly
    /// these bytes: it skips the unwrap and the key schedule without changing what decrypts.
    /// Any other AAD (moved blob, other context) or wrapped key takes the full path.
    data_keys: RwLock<HashMap<Box<[u8]>, CachedDataKey>>,
    /// AWS-managed alias → key; these never change target, so caching is always correct.
    managed: RwLock<HashMap<(String, String, &'static str), KeyRef>>,
    /// Key id → its state as last read, so the decrypt hot path need not read the key record
    /// each time. Changes made through this node drop the entry at once ([`Keyring::forget_key`]);
    /// changes made by another node sharing the store are seen within [`STATE_TTL`].
    states: RwLock<HashMap<Uuid, CachedState>>,
}

/// How long a cached key state is trusted before it is read again.
const STATE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

struct CachedState {
    account: String,
    region: String,
    state: KeyState,
    access: Arc<KeyAccess>,
    at: std::time::Instant,
}

/// What authorizing a use of a key takes: its ARN, the key policy in force and its tags
/// (behind `aws:ResourceTag/*`). Cached with the key's state, so the hot paths (Decrypt, and
/// the services' reads) decide without reading the key record each time.
#[derive(Debug)]
pub struct KeyAccess {
    pub key_id: String,
    pub arn: String,
    pub policy: String,
    pub tags: Vec<coffer_service::tags::Tag>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}

impl Keyring {
    /// `root` unwraps key material; it lives only in memory.
    pub fn new(store: Arc<dyn Store>, root: RootKey) -> Self {
        Self {
            store,
            root: AeadKey::new(root.as_bytes()),
            derivation: coffer_crypto::derive_key(root.as_bytes(), "coffer/keyring/derivation"),
            materials: RwLock::new(HashMap::new()),
            data_keys: RwLock::new(HashMap::new()),
            managed: RwLock::new(HashMap::new()),
            states: RwLock::new(HashMap::new()),
        }
    }

    /// The store the keyring reads and writes (the key service commits through the same one).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Fresh random material for `arn`, version `version`, wrapped under the root key; the
    /// unwrapped material is cached, as the key is about to be used.
    pub fn new_material(&self, arn: &str, version: u32) -> Result<MaterialRecord, KeyError> {
        self.material(arn, version, &coffer_crypto::random_key())
    }

    /// `material` (fresh, or imported) for `arn`, version `version`, wrapped under the root key
    /// (and cached, as the key is about to be used).
    pub fn material(
        &self,
        arn: &str,
        version: u32,
        material: &[u8; 32],
    ) -> Result<MaterialRecord, KeyError> {
        let wrapped = wrap_material(&self.root, arn, version, material)?;
        if let Ok(mut m) = self.materials.write() {
            m.insert((arn.to_owned(), version), Arc::new(AeadKey::new(material)));
        }
        Ok(MaterialRecord {
            version,
            wrapped,
            rotated_ms: None,
            rotation_type: None,
        })
    }

    /// `Err(InvalidState)` unless the key `key_id` in this scope is enabled; `Err(InvalidCiphertext)`
    /// if no such key exists here (deleted, or a blob from another account or region).
    async fn check_state(
        &self,
        account: &str,
        region: &str,
        key_id: &Uuid,
    ) -> Result<(), KeyError> {
        let (state, access) = self
            .cached_state(account, region, key_id)
            .await?
            .ok_or(KeyError::InvalidCiphertext)?;
        match state {
            KeyState::Enabled => Ok(()),
            state => Err(KeyError::InvalidState {
                arn: access.arn.clone(),
                state,
            }),
        }
    }

    /// The state and access data of the key `key_id` in this scope (`None`: no such key), from
    /// the cache while fresh, else read from the store and cached.
    async fn cached_state(
        &self,
        account: &str,
        region: &str,
        key_id: &Uuid,
    ) -> Result<Option<(KeyState, Arc<KeyAccess>)>, KeyError> {
        let cached = self.states.read().ok().and_then(|m| {
            m.get(key_id)
                .filter(|c| {
                    c.account == account && c.region == region && c.at.elapsed() < STATE_TTL
                })
                .map(|c| (c.state, c.access.clone()))
        });
        if cached.is_some() {
            return Ok(cached);
        }
        let id = key_id.hyphenated().to_string();
        let Some(rec) = self.load_key(account, region, &id).await? else {
            return Ok(None);
        };
        let access = Arc::new(KeyAccess {
            policy: rec.policy_text().into_owned(),
            key_id: rec.key_id,
            arn: rec.arn,
            tags: rec.tags,
        });
        if let Ok(mut m) = self.states.write() {
            m.insert(
                *key_id,
                CachedState {
                    account: account.to_owned(),
                    region: region.to_owned(),
                    state: rec.key_state,
                    access: access.clone(),
                    at: std::time::Instant::now(),
                },
            );
        }
        Ok(Some((rec.key_state, access)))
    }

    /// What authorizing a use of the key `key` names (as in [`Keyring::resolve`]) takes. A key
    /// id or key ARN is resolved without a read while the key's state is cached; an alias is
    /// read first. Changes to the policy made through another node are seen within a second
    /// (the state cache's lifetime).
    pub async fn key_access(
        &self,
        account: &str,
        region: &str,
        key: &str,
    ) -> Result<Arc<KeyAccess>, KeyError> {
        let id = match direct_key_id(account, region, key) {
            Some(id) => id,
            None => {
                let kref = self.resolve(account, region, key).await?;
                Uuid::parse_str(&kref.key_id).map_err(|_| corrupt("alias target"))?
            }
        };
        self.cached_state(account, region, &id)
            .await?
            .map(|(_, access)| access)
            .ok_or_else(|| KeyError::NotFound(key.to_owned()))
    }

    /// A key for one internal `purpose` (e.g. MACing NextTokens), stable for as long as the root
    /// key is, so what it protects survives restarts and is shared by nodes.
    pub fn derive_key(&self, purpose: &str) -> zeroize::Zeroizing<[u8; 32]> {
        coffer_crypto::derive_key(&self.derivation, purpose)
    }

    /// Resolves a key id, key ARN, alias name (`alias/x`) or alias ARN in `account`/`region`.
    /// AWS-managed aliases (`alias/aws/...`) are created on first use.
    pub async fn resolve(
        &self,
        account: &str,
        region: &str,
        key: &str,
    ) -> Result<KeyRef, KeyError> {
        self.resolve_record(account, region, key)
            .await
            .map(|(r, _)| r)
    }

    /// The stored record of the key `key` names (as in [`Keyring::resolve`]).
    pub async fn describe(
        &self,
        account: &str,
        region: &str,
        key: &str,
    ) -> Result<KeyRecord, KeyError> {
        let (kr, rec) = self.resolve_record(account, region, key).await?;
        match rec {
            Some(rec) => Ok(rec),
            None => self
                .load_key(account, region, &kr.key_id)
                .await?
                .ok_or_else(|| KeyError::NotFound(key.to_owned())),
        }
    }

    /// Envelope-encrypts `plaintext` under `key` (as in [`Keyring::resolve`]). The returned blob
    /// is self-describing (names its key and material version) and opaque to callers.
    pub async fn encrypt(
        &self,
        account: &str,
        region: &str,
        key: &str,
        plaintext: &[u8],
        context: EncryptionContext<'_>,
    ) -> Result<Vec<u8>, KeyError> {
        let (kref, rec) = self.resolve_record(account, region, key).await?;
        let rec = match rec {
            Some(r) => r,
            None => self
                .load_key(account, region, &kref.key_id)
                .await?
                .ok_or_else(|| KeyError::NotFound(key.to_owned()))?,
        };
        rec.check_usable()?;
        let version = rec.current_version;
        let material = self.material_from_record(&rec, version)?;
        let uuid = Uuid::parse_str(&rec.key_id).map_err(|_| corrupt("key record id"))?;

        let mut header = [0u8; BLOB_HEADER_LEN];
        header[0] = BLOB_FORMAT_V1;
        header[1..17].copy_from_slice(uuid.as_bytes());
        header[17..21].copy_from_slice(&version.to_be_bytes());
        let data_key = coffer_crypto::random_key();
        // The wrapped length is fixed by the format (32 + overhead); written for self-description.
        let wrapped_len = (32 + coffer_crypto::SEAL_OVERHEAD) as u16;
        header[21..23].copy_from_slice(&wrapped_len.to_be_bytes());
        let aad = blob_aad(&header, &rec.arn, context);

        let wrapped = material
            .seal(data_key.as_ref(), &aad)
            .map_err(crypto_internal)?;
        let sealed = AeadKey::new(&data_key)
            .seal(plaintext, &aad)
            .map_err(crypto_internal)?;
        let mut blob = Vec::with_capacity(BLOB_HEADER_LEN + wrapped.len() + sealed.len());
        blob.extend_from_slice(&header);
        blob.extend_from_slice(&wrapped);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Decrypts a blob from [`Keyring::encrypt`]; fails with `InvalidCiphertext` if the blob or
    /// the context differ in any bit from what was encrypted.
    pub async fn decrypt(
        &self,
        account: &str,
        region: &str,
        blob: &[u8],
        context: EncryptionContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if blob.len() < BLOB_HEADER_LEN
            || blob[0] != BLOB_FORMAT_V1
            || !valid_scope(account, region)
        {
            return Err(KeyError::InvalidCiphertext);
        }
        let (header, rest) = blob.split_at(BLOB_HEADER_LEN);
        let uuid = Uuid::from_slice(&header[1..17]).map_err(|_| KeyError::InvalidCiphertext)?;
        let version = u32::from_be_bytes([header[17], header[18], header[19], header[20]]);
        let wrapped_len = usize::from(u16::from_be_bytes([header[21], header[22]]));
        if rest.len() < wrapped_len {
            return Err(KeyError::InvalidCiphertext);
        }
        let (wrapped, sealed) = rest.split_at(wrapped_len);
        let aad = blob_aad_for(header, account, region, &uuid, context);
        self.check_state(account, region, &uuid).await?;

        let data_key = match self.cached_data_key(wrapped, &aad) {
            Some(k) => k,
            None => {
                let key_id = uuid.hyphenated().to_string();
                let arn = key_arn(partition_for_region(region), region, account, &key_id);
                let material = match self.cached_material(&arn, version) {
                    Some(m) => m,
                    None => {
                        // A key unknown here (another account/region, or deleted) cannot decrypt.
                        let rec = self
                            .load_key(account, region, &key_id)
                            .await?
                            .ok_or(KeyError::InvalidCiphertext)?;
                        if !rec.materials.iter().any(|m| m.version == version) {
                            return Err(KeyError::InvalidCiphertext);
                        }
                        self.material_from_record(&rec, version)?
                    }
                };
                let raw = material
                    .open(wrapped, &aad)
                    .map_err(|_| KeyError::InvalidCiphertext)?;
                let raw: Zeroizing<[u8; 32]> = Zeroizing::new(
                    raw.as_slice()
                        .try_into()
                        .map_err(|_| KeyError::InvalidCiphertext)?,
                );
                let key = Arc::new(AeadKey::new(&raw));
                if let Ok(mut cache) = self.data_keys.write() {
                    if cache.len() >= DATA_KEY_CACHE_CAPACITY {
                        cache.clear();
                    }
                    cache.insert(
                        wrapped.into(),
                        CachedDataKey {
                            aad: aad.as_slice().into(),
                            kms_arn: arn,
                            key: key.clone(),
                        },
                    );
                }
                key
            }
        };
        data_key
            .open(sealed, &aad)
            .map_err(|_| KeyError::InvalidCiphertext)
    }

    /// Drops cached material and state of a key (call after changing its state or material).
    pub fn forget_key(&self, key_arn: &str) {
        if let Some(id) = key_arn
            .rsplit_once(":key/")
            .and_then(|(_, id)| Uuid::parse_str(id).ok())
            && let Ok(mut m) = self.states.write()
        {
            m.remove(&id);
        }
        if let Ok(mut m) = self.materials.write() {
            m.retain(|(arn, _), _| arn != key_arn);
        }
        if let Ok(mut m) = self.data_keys.write() {
            m.retain(|_, k| k.kms_arn != key_arn);
        }
    }

    fn cached_data_key(&self, wrapped: &[u8], aad: &[u8]) -> Option<Arc<AeadKey>> {
        self.data_keys
            .read()
            .ok()?
            .get(wrapped)
            .filter(|k| *k.aad == *aad)
            .map(|k| k.key.clone())
    }

    /// Returns the key ref and, when it was read on the way, the record.
    async fn resolve_record(
        &self,
        account: &str,
        region: &str,
        key: &str,
    ) -> Result<(KeyRef, Option<KeyRecord>), KeyError> {
        let not_found = || KeyError::NotFound(key.to_owned());
        if !valid_scope(account, region) {
            return Err(not_found());
        }
        // Normalize ARNs to the bare resource after checking they point here.
        let resource = if key.starts_with("arn:") {
            let arn = Arn::parse(key).ok_or_else(not_found)?;
            if arn.service != "kms"
                || arn.partition != partition_for_region(region)
                || arn.region != region
                || arn.account != account
            {
                return Err(not_found());
            }
            arn.resource
        } else {
            key
        };

        if let Some(key_id) = resource.strip_prefix("key/") {
            if key.starts_with("arn:") {
                return self.by_id(account, region, key_id, key).await;
            }
            return Err(not_found());
        }
        if resource.starts_with("alias/") {
            return self.by_alias(account, region, resource, key).await;
        }
        if key.starts_with("arn:") {
            return Err(not_found());
        }
        self.by_id(account, region, resource, key).await
    }

    async fn by_id(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        original: &str,
    ) -> Result<(KeyRef, Option<KeyRecord>), KeyError> {
        // Only canonical lowercase hyphenated UUIDs name keys (that is how they are stored).
        let canonical = Uuid::parse_str(key_id)
            .ok()
            .map(|u| u.hyphenated().to_string())
            .filter(|c| c == key_id)
            .ok_or_else(|| KeyError::NotFound(original.to_owned()))?;
        let rec = self
            .load_key(account, region, &canonical)
            .await?
            .ok_or_else(|| KeyError::NotFound(original.to_owned()))?;
        Ok((
            KeyRef {
                key_id: rec.key_id.clone(),
                arn: rec.arn.clone(),
            },
            Some(rec),
        ))
    }

    async fn by_alias(
        &self,
        account: &str,
        region: &str,
        alias_name: &str,
        original: &str,
    ) -> Result<(KeyRef, Option<KeyRecord>), KeyError> {
        let managed = MANAGED_ALIASES.iter().find(|(a, _)| *a == alias_name);
        if let Some((name, _)) = managed
            && let Some(kr) = self.managed.read().ok().and_then(|m| {
                m.get(&(account.to_owned(), region.to_owned(), *name))
                    .cloned()
            })
        {
            return Ok((kr, None));
        }

        let alias_key = alias_record_key(account, region, alias_name);
        for _ in 0..CREATE_RETRIES {
            if let Some(entry) = self.store.get(&alias_key).await? {
                let alias: AliasRecord = parse(&entry, "alias record")?;
                let kr = KeyRef {
                    arn: key_arn(
                        partition_for_region(region),
                        region,
                        account,
                        &alias.target_key_id,
                    ),
                    key_id: alias.target_key_id,
                };
                if let Some((name, _)) = managed
                    && let Ok(mut m) = self.managed.write()
                {
                    m.insert((account.to_owned(), region.to_owned(), *name), kr.clone());
                }
                return Ok((kr, None));
            }
            let Some((name, description)) = managed else {
                return Err(KeyError::NotFound(original.to_owned()));
            };
            match self
                .create_managed(account, region, name, description)
                .await
            {
                Ok(created) => return Ok(created),
                // Someone else created it first: loop to read theirs.
                Err(KeyError::Store(StoreError::Conflict)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KeyError::Store(StoreError::Conflict))
    }

    /// Creates an AWS-managed key and its alias in one batch that requires the alias to still be
    /// absent, so concurrent first uses end with exactly one key.
    async fn create_managed(
        &self,
        account: &str,
        region: &str,
        alias_name: &'static str,
        description: &str,
    ) -> Result<(KeyRef, Option<KeyRecord>), KeyError> {
        let partition = partition_for_region(region);
        let key_id = Uuid::new_v4().hyphenated().to_string();
        let arn = key_arn(partition, region, account, &key_id);
        let now = unix_now();
        let material = self.new_material(&arn, 1)?;
        let rec = KeyRecord {
            key_id: key_id.clone(),
            arn: arn.clone(),
            account: account.to_owned(),
            region: region.to_owned(),
            creation_date: now,
            description: description.to_owned(),
            key_manager: KeyManager::Aws,
            key_state: KeyState::Enabled,
            current_version: 1,
            materials: vec![material],
            policy: None,
            tags: Vec::new(),
            deletion_ms: None,
            pending_window_days: None,
            rotation_period_days: None,
            next_rotation_ms: None,
            origin: None,
            import_fingerprint: None,
        };
        let alias = AliasRecord {
            alias_name: alias_name.to_owned(),
            alias_arn: alias_arn(partition, region, account, alias_name),
            target_key_id: key_id.clone(),
            creation_date: now,
            last_updated_date: None,
        };
        let key_key = key_record_key(account, region, &key_id);
        let alias_key = alias_record_key(account, region, alias_name);
        let mut batch = WriteBatch::new();
        batch
            .check(alias_key.clone(), None)
            .check(key_key.clone(), None)
            .put(key_key, to_json(&rec)?)
            .put(alias_key, to_json(&alias)?);
        self.store.commit(batch).await?;

        let kr = KeyRef { key_id, arn };
        if let Ok(mut m) = self.managed.write() {
            m.insert(
                (account.to_owned(), region.to_owned(), alias_name),
                kr.clone(),
            );
        }
        Ok((kr, Some(rec)))
    }

    pub(crate) async fn load_key(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
    ) -> Result<Option<KeyRecord>, KeyError> {
        match self
            .store
            .get(&key_record_key(account, region, key_id))
            .await?
        {
            Some(e) => Ok(Some(parse(&e, "key record")?)),
            None => Ok(None),
        }
    }

    fn cached_material(&self, arn: &str, version: u32) -> Option<Arc<AeadKey>> {
        self.materials
            .read()
            .ok()?
            .get(&(arn.to_owned(), version))
            .cloned()
    }

    /// The unwrapped material `version` of `rec`, from the cache or unwrapped with the root key.
    fn material_from_record(
        &self,
        rec: &KeyRecord,
        version: u32,
    ) -> Result<Arc<AeadKey>, KeyError> {
        if let Some(m) = self.cached_material(&rec.arn, version) {
            return Ok(m);
        }
        let m = rec
            .materials
            .iter()
            .find(|m| m.version == version)
            .ok_or_else(|| corrupt("key record lacks its current material"))?;
        let raw = unwrap_material(&self.root, &rec.arn, m)?;
        let key = Arc::new(AeadKey::new(&raw));
        if let Ok(mut cache) = self.materials.write() {
            cache.insert((rec.arn.clone(), version), key.clone());
        }
        Ok(key)
    }
}

/// Account and region become parts of store keys and ARNs: refuse separators so one scope can
/// never name another's records.
fn valid_scope(account: &str, region: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    ok(account) && ok(region)
}

/// The key id a key id or key ARN in this scope names, as stored (canonical lowercase UUID);
/// `None` for aliases and for anything [`Keyring::resolve`] would refuse.
fn direct_key_id(account: &str, region: &str, key: &str) -> Option<Uuid> {
    let id = if key.starts_with("arn:") {
        let arn = Arn::parse(key)?;
        if arn.service != "kms"
            || arn.partition != partition_for_region(region)
            || arn.region != region
            || arn.account != account
        {
            return None;
        }
        arn.resource.strip_prefix("key/")?
    } else {
        key
    };
    let uuid = Uuid::parse_str(id).ok()?;
    (valid_scope(account, region) && uuid.hyphenated().to_string() == id).then_some(uuid)
}

/// AAD binding a material version to its key: `coffer-kms-material\0ARN\0VERSION(be32)`.
fn material_aad(arn: &str, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(arn.len() + 32);
    aad.extend_from_slice(b"coffer-kms-material\0");
    aad.extend_from_slice(arn.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// AAD of both blob layers: header, key ARN, then the canonical context.
fn blob_aad(header: &[u8], arn: &str, context: EncryptionContext<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + arn.len() + 64);
    aad.extend_from_slice(header);
    push_len_prefixed(&mut aad, arn.as_bytes());
    push_canonical_context(&mut aad, context);
    aad
}

/// [`blob_aad`] with the key ARN assembled in place from its parts (the decrypt hot path), so no
/// intermediate strings are formatted. Same bytes as `blob_aad(header, &key_arn(..), context)`.
fn blob_aad_for(
    header: &[u8],
    account: &str,
    region: &str,
    key_id: &Uuid,
    context: EncryptionContext<'_>,
) -> Vec<u8> {
    let mut id_buf = Uuid::encode_buffer();
    let key_id = key_id.hyphenated().encode_lower(&mut id_buf);
    let partition = partition_for_region(region);
    let parts: [&str; 8] = [
        "arn:", partition, ":kms:", region, ":", account, ":key/", key_id,
    ];
    let arn_len: usize = parts.iter().map(|p| p.len()).sum();
    let context_len: usize = 8 + context
        .iter()
        .map(|(k, v)| 16 + k.len() + v.len())
        .sum::<usize>();
    let mut aad = Vec::with_capacity(header.len() + 8 + arn_len + context_len);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&(arn_len as u64).to_be_bytes());
    for p in parts {
        aad.extend_from_slice(p.as_bytes());
    }
    push_canonical_context(&mut aad, context);
    aad
}

/// Canonical, unambiguous encoding of an encryption context: pairs sorted (AWS treats the
/// context as a map), count then each name and value length-prefixed.
pub fn canonical_context(context: EncryptionContext<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    push_canonical_context(&mut out, context);
    out
}

/// Appends [`canonical_context`]'s encoding to `out`; small contexts are sorted on the stack.
fn push_canonical_context(out: &mut Vec<u8>, context: EncryptionContext<'_>) {
    const STACK: usize = 8;
    let mut on_stack: [&(&str, &str); STACK] = [&("", ""); STACK];
    let mut on_heap: Vec<&(&str, &str)>;
    let pairs: &mut [&(&str, &str)] = if context.len() <= STACK {
        for (slot, pair) in on_stack.iter_mut().zip(context) {
            *slot = pair;
        }
        &mut on_stack[..context.len()]
    } else {
        on_heap = context.iter().collect();
        &mut on_heap
    };
    pairs.sort();
    out.extend_from_slice(&(pairs.len() as u64).to_be_bytes());
    for (k, v) in pairs.iter() {
        push_len_prefixed(out, k.as_bytes());
        push_len_prefixed(out, v.as_bytes());
    }
}

fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

pub(crate) fn corrupt(what: &str) -> KeyError {
    KeyError::Store(StoreError::Internal(format!("corrupt KMS data: {what}")))
}

fn crypto_internal(e: coffer_crypto::CryptoError) -> KeyError {
    KeyError::Store(StoreError::Internal(format!("encryption failed: {e}")))
}

pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    entry: &Entry,
    what: &str,
) -> Result<T, KeyError> {
    serde_json::from_slice(&entry.value).map_err(|_| corrupt(what))
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, KeyError> {
    serde_json::to_vec(v).map_err(|_| corrupt("serialization"))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

mod policy;
mod rotate_root;
pub use policy::KeyUseError;
pub use rotate_root::rewrap_key_record;
mod service;

pub use service::{KmsError, KmsService};

#[cfg(test)]
mod tests;
