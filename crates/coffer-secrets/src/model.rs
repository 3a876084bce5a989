//! Stored records and the key layout.
//!
//! ```text
//! sm/{account}/{region}/secret/{name}            SecretMeta (JSON): metadata, versions → stages
//! sm/{account}/{region}/version/{name}:{vid}     VersionRecord (JSON): encrypted value
//! sm/{account}/{region}/access/{name}            AccessRecord (JSON): last-accessed days
//! sm/deletion/{deletion_ms:020}/{account}/{region}/{name}   index of scheduled deletions
//! sm/rotation/{due_ms:020}/{account}/{region}/{name}   index of due rotations
//! ```
//!
//! Names cannot contain `:` (see [`crate::validate::secret_name`]), so `{name}:{vid}` is
//! unambiguous even when a caller-chosen version id contains `/`. Account ids are digits, so
//! `sm/deletion/` never collides with an account's space.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub(crate) const AWSCURRENT: &str = "AWSCURRENT";
pub(crate) const AWSPREVIOUS: &str = "AWSPREVIOUS";
pub(crate) const AWSPENDING: &str = "AWSPENDING";
pub(crate) const DEFAULT_KMS_ALIAS: &str = "alias/aws/secretsmanager";

/// AWS keeps at most this many versions, but never removes versions younger than a day.
pub(crate) const MAX_VERSIONS: usize = 100;
pub(crate) const VERSION_MIN_AGE_MS: i64 = 24 * 3600 * 1000;
/// A ceiling that keeps one secret's metadata record bounded when a caller writes faster than
/// the 24-hour rule lets old versions go.
pub(crate) const HARD_MAX_VERSIONS: usize = 2000;
pub(crate) const MAX_STAGES_PER_VERSION: usize = 20;

pub(crate) use coffer_service::tags::Tag;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionMeta {
    pub stages: Vec<String>,
    pub created_ms: i64,
    /// Order of creation (ties in `created_ms` are common in tests and bursts).
    pub seq: u64,
    /// The key that encrypts this version's value (`None` = aws/secretsmanager).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// A version RotateSecret created for the rotation function to fill (AWSPENDING, no value
    /// yet), as AWS does; PutSecretValue with its id writes the value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_value: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ReplicaStatus {
    InSync,
    Failed,
}

impl ReplicaStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReplicaStatus::InSync => "InSync",
            ReplicaStatus::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Replica {
    pub region: String,
    pub kms_key_id: Option<String>,
    pub status: ReplicaStatus,
    pub status_message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SecretMeta {
    pub arn: String,
    pub name: String,
    pub region: String,
    pub description: Option<String>,
    /// `None` = the AWS-managed key alias/aws/secretsmanager.
    pub kms_key_id: Option<String>,
    pub tags: Vec<Tag>,
    pub created_ms: i64,
    pub changed_ms: i64,
    /// When DeleteSecret was called.
    pub deleted_ms: Option<i64>,
    /// When the recovery window ends.
    pub deletion_ms: Option<i64>,
    pub versions: BTreeMap<String, VersionMeta>,
    pub next_seq: u64,
    pub policy: Option<String>,
    /// `Some(region)`: this record is a read-only replica of the secret in `region`.
    pub primary_region: Option<String>,
    pub replicas: Vec<Replica>,
    pub owning_service: Option<String>,
    pub secret_type: Option<String>,
    /// Rotation configuration and state (see `crate::rotation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<crate::rotation::RotationState>,
}

impl SecretMeta {
    pub fn is_deleted(&self) -> bool {
        self.deleted_ms.is_some()
    }

    pub fn version_with_stage(&self, stage: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, v)| v.stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.as_str())
    }

    /// Attaches `stages` to `vid` (which must exist), moving each from whichever version holds
    /// it; moving AWSCURRENT moves AWSPREVIOUS to the version it left.
    /// Adds version `vid` without stages, under the secret's current key, numbered next.
    /// `awaiting_value`: a rotation's AWSPENDING version created before its value.
    pub fn insert_version(&mut self, vid: &str, now: i64, awaiting_value: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.versions.insert(
            vid.to_owned(),
            VersionMeta {
                stages: Vec::new(),
                created_ms: now,
                seq,
                kms_key_id: self.kms_key_id.clone(),
                awaiting_value,
            },
        );
    }

    pub fn attach_stages(&mut self, vid: &str, stages: &[String]) {
        for stage in stages {
            let holder = self.version_with_stage(stage).map(str::to_owned);
            if holder.as_deref() == Some(vid) {
                continue;
            }
            if let Some(h) = &holder
                && let Some(v) = self.versions.get_mut(h)
            {
                v.stages.retain(|s| s != stage);
            }
            if let Some(v) = self.versions.get_mut(vid) {
                v.stages.push(stage.clone());
            }
            if stage == AWSCURRENT
                && let Some(h) = holder
            {
                let prev = vec![AWSPREVIOUS.to_owned()];
                self.attach_stages(&h, &prev);
            }
        }
    }

    pub fn detach_stage(&mut self, vid: &str, stage: &str) {
        if let Some(v) = self.versions.get_mut(vid) {
            v.stages.retain(|s| s != stage);
        }
    }

    /// Versions to drop so at most [`MAX_VERSIONS`] remain: unlabeled ones, oldest first, and
    /// only those older than a day — as AWS documents.
    pub fn versions_to_prune(&self, now_ms: i64) -> Vec<String> {
        let excess = self.versions.len().saturating_sub(MAX_VERSIONS);
        if excess == 0 {
            return Vec::new();
        }
        let mut candidates: Vec<(&String, &VersionMeta)> = self
            .versions
            .iter()
            .filter(|(_, v)| v.stages.is_empty() && now_ms - v.created_ms >= VERSION_MIN_AGE_MS)
            .collect();
        candidates.sort_by_key(|(_, v)| v.seq);
        candidates
            .into_iter()
            .take(excess)
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn kms_display(&self) -> Option<&str> {
        self.kms_key_id.as_deref()
    }

    /// Whether the secret takes part in replication (as a primary or as a replica).
    pub fn is_replicated(&self) -> bool {
        self.primary_region.is_some() || !self.replicas.is_empty()
    }

    pub fn primary_region(&self) -> &str {
        self.primary_region.as_deref().unwrap_or(&self.region)
    }
}

/// How a value was supplied, so it is returned the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ValueKind {
    #[serde(rename = "s")]
    String,
    #[serde(rename = "b")]
    Binary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub kind: ValueKind,
    /// Base64 of the keyring's ciphertext blob.
    pub blob: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AccessRecord {
    pub arn: String,
    pub secret_day: Option<i64>,
    pub versions: BTreeMap<String, i64>,
}

pub(crate) fn secret_prefix(account: &str, region: &str) -> Vec<u8> {
    format!("sm/{account}/{region}/secret/").into_bytes()
}

/// Concatenates `parts` into one allocation (these keys are built on every read; `format!` costs
/// several times more).
fn concat_key(parts: &[&str]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        key.extend_from_slice(p.as_bytes());
    }
    key
}

pub(crate) fn secret_key(account: &str, region: &str, name: &str) -> Vec<u8> {
    concat_key(&["sm/", account, "/", region, "/secret/", name])
}

pub(crate) fn version_key(account: &str, region: &str, name: &str, vid: &str) -> Vec<u8> {
    concat_key(&["sm/", account, "/", region, "/version/", name, ":", vid])
}

pub(crate) fn access_key(account: &str, region: &str, name: &str) -> Vec<u8> {
    concat_key(&["sm/", account, "/", region, "/access/", name])
}

pub(crate) const DELETION_PREFIX: &str = "sm/deletion/";

pub(crate) fn deletion_key(deletion_ms: i64, account: &str, region: &str, name: &str) -> Vec<u8> {
    format!(
        "{DELETION_PREFIX}{:020}/{account}/{region}/{name}",
        deletion_ms.max(0)
    )
    .into_bytes()
}

/// Parses a deletion index key back into `(account, region, name)`.
pub(crate) fn parse_deletion_key(key: &[u8]) -> Option<(String, String, String)> {
    let s = std::str::from_utf8(key).ok()?;
    let rest = s.strip_prefix(DELETION_PREFIX)?;
    let mut it = rest.splitn(4, '/');
    let _when = it.next()?;
    let account = it.next()?;
    let region = it.next()?;
    let name = it.next()?;
    Some((account.to_owned(), region.to_owned(), name.to_owned()))
}

pub(crate) const ROTATION_PREFIX: &str = "sm/rotation/";

pub(crate) fn rotation_key(due_ms: i64, account: &str, region: &str, name: &str) -> Vec<u8> {
    format!(
        "{ROTATION_PREFIX}{:020}/{account}/{region}/{name}",
        due_ms.max(0)
    )
    .into_bytes()
}

/// Parses a rotation index key back into `(due_ms, account, region, name)`.
pub(crate) fn parse_rotation_key(key: &[u8]) -> Option<(i64, String, String, String)> {
    let s = std::str::from_utf8(key).ok()?;
    let rest = s.strip_prefix(ROTATION_PREFIX)?;
    let mut it = rest.splitn(4, '/');
    let due = it.next()?.parse().ok()?;
    let account = it.next()?;
    let region = it.next()?;
    let name = it.next()?;
    Some((due, account.to_owned(), region.to_owned(), name.to_owned()))
}

/// Midnight UTC of the day containing `ms`, in seconds.
pub(crate) fn day_of(ms: i64) -> i64 {
    let secs = ms.div_euclid(1000);
    secs - secs.rem_euclid(86_400)
}

pub(crate) fn secret_arn(
    partition: &str,
    region: &str,
    account: &str,
    name: &str,
    suffix: &str,
) -> String {
    format!("arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-{suffix}")
}

/// The same secret's ARN in another region (replicas keep name and suffix).
pub(crate) fn arn_in_region(arn: &str, region: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 {
        return arn.to_owned();
    }
    let partition = coffer_core::arn::partition_for_region(region);
    format!(
        "arn:{partition}:{}:{region}:{}:{}",
        parts[2], parts[4], parts[5]
    )
}
