//! `coffer migrate`: moves a deployment's store between an embedded data directory and a
//! PostgreSQL database (either way, or between two databases), then proves the copy.
//!
//! Every key is copied except leases (`lease/`, held by the source's nodes). The audit trail
//! changes home on the way: an embedded store keeps records in segment files, PostgreSQL as
//! rows, so records are written as rows for PostgreSQL; an embedded target takes them as rows
//! too (its server chains new records into segment files after them). The source trail must
//! verify before anything is copied, and afterwards the target must hold the same keys with the
//! same values and a trail that verifies with the same key, with the same records.

use std::path::PathBuf;
use std::sync::Arc;

use coffer_audit::chain::ChainEntry;
use coffer_audit::digest::PublicKeyInfo;
use coffer_audit::keys;
use coffer_audit::verify::{Trail, verify};
use coffer_store::copy::{CopyReport, compare, copy_all};
use coffer_store::embedded::{DB_FILE, EmbeddedStore};
use coffer_store::postgres::{PgStore, is_postgres_url};
use coffer_store::{Store, WriteBatch};

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An embedded store's data directory.
    Embedded(PathBuf),
    /// A PostgreSQL URL (may hold a password: shown only through [`Location::describe`]).
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL, else a data directory.
    pub fn parse(s: &str) -> Self {
        if is_postgres_url(s) {
            Self::Postgres(s.to_string())
        } else {
            Self::Embedded(PathBuf::from(s))
        }
    }

    fn keeps_trail_as_rows(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// What a migration copied and checked.
#[derive(Debug, Clone)]
pub struct MigrateReport {
    pub copied: CopyReport,
    pub audit_records: usize,
    pub audit_digests: usize,
    /// The last record a signed digest seals, in both stores.
    pub sealed_through: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Refused(String),
    #[error("storage: {0}")]
    Store(#[from] coffer_store::StoreError),
    #[error("audit trail: {0}")]
    Audit(#[from] coffer_audit::AuditError),
    #[error("verification failed: {0}")]
    Verify(String),
}

/// Never copied: leases belong to the source's nodes.
fn not_copied(key: &[u8]) -> bool {
    key.starts_with(coffer_service::lease::LEASE_PREFIX)
}

/// Compared through the trail instead: records and head are rewritten on the way to PostgreSQL.
fn compared_as_trail(key: &[u8]) -> bool {
    not_copied(key) || key.starts_with(keys::RECORDS.as_bytes()) || key == keys::HEAD
}

struct Opened {
    store: Arc<dyn Store>,
    location: Location,
}

async fn open(location: &Location, must_exist: bool) -> Result<Opened, MigrateError> {
    let store: Arc<dyn Store> = match location {
        Location::Postgres(url) => Arc::new(PgStore::connect(url).await?),
        Location::Embedded(dir) => {
            let exists = dir.join(DB_FILE).exists();
            if must_exist && !exists {
                return Err(MigrateError::Refused(format!(
                    "no embedded store in {}",
                    dir.display()
                )));
            }
            if !must_exist && coffer_audit::log::segments_dir(dir).exists() {
                return Err(MigrateError::Refused(format!(
                    "{} already holds an audit trail; migrate into a new directory",
                    dir.display()
                )));
            }
            let dir = dir.clone();
            // Takes the directory lock: refused while a server uses it.
            Arc::new(
                tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir))
                    .await
                    .map_err(|e| MigrateError::Refused(e.to_string()))??,
            )
        }
    };
    Ok(Opened {
        store,
        location: location.clone(),
    })
}

/// The trail as its home keeps it, and the public key recorded beside the signing key.
async fn read_trail(o: &Opened) -> Result<(Trail, Option<PublicKeyInfo>), MigrateError> {
    Ok(match &o.location {
        Location::Embedded(dir) => coffer_audit::log::read_data_dir(dir)?,
        Location::Postgres(_) => {
            let trail = coffer_audit::log::read_trail(&*o.store).await?;
            let key = o
                .store
                .get(keys::SIGNING_KEY)
                .await?
                .and_then(|e| coffer_audit::log::stored_public_key(&e.value));
            (trail, key)
        }
    })
}

/// Checks `trail` against `key`; returns its report.
fn verified(
    trail: &Trail,
    key: Option<&PublicKeyInfo>,
    which: &str,
) -> Result<coffer_audit::verify::Report, MigrateError> {
    let Some(key) = key else {
        if trail.entries.is_empty() {
            return Ok(verify(trail, &[0u8; 32]));
        }
        return Err(MigrateError::Verify(format!(
            "the {which} trail has records but no signing key"
        )));
    };
    let raw = key.raw().ok_or_else(|| {
        MigrateError::Verify(format!("the {which} trail's public key is malformed"))
    })?;
    let report = verify(trail, &raw);
    match &report.problem {
        None => Ok(report),
        Some(p) => Err(MigrateError::Verify(format!("the {which} trail: {p}"))),
    }
}

fn entries_oldest_first(trail: &Trail) -> Vec<ChainEntry> {
    let mut entries: Vec<ChainEntry> = trail.entries.iter().map(|(_, e)| e.clone()).collect();
    entries.sort_by_key(|e| e.seq);
    entries
}

/// Copies the store at `from` into the new or empty store at `to` and verifies the copy. Stop
/// every server of `from` first (an embedded source is locked while this runs).
pub async fn migrate(from: &Location, to: &Location) -> Result<MigrateReport, MigrateError> {
    if matches!((from, to), (Location::Embedded(_), Location::Embedded(_))) {
        return Err(MigrateError::Refused(
            "both stores are data directories: stop the server and copy the directory instead"
                .into(),
        ));
    }
    if from == to {
        return Err(MigrateError::Refused(
            "--from and --to name the same store".into(),
        ));
    }
    let source = open(from, true).await?;
    let (src_trail, key) = read_trail(&source).await?;
    let src_report = verified(&src_trail, key.as_ref(), "source")?;

    let target = open(to, false).await?;
    let copied = copy_all(&*source.store, &*target.store, &not_copied).await?;
    if to.keeps_trail_as_rows() && !from.keeps_trail_as_rows() {
        let mut batch = WriteBatch::new();
        for (k, v) in coffer_audit::records::entries_as_rows(&entries_oldest_first(&src_trail))? {
            batch.put(k, v);
            if batch.ops.len() >= 500 {
                target.store.commit(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            target.store.commit(batch).await?;
        }
    }

    compare(&*source.store, &*target.store, &compared_as_trail).await?;
    // An embedded target is read back the way `coffer audit verify` reads it: from its files
    // (read-only, beside the open store: its commits are durable when acknowledged).
    let (dst_trail, dst_key) = read_trail(&target).await?;
    if dst_key != key {
        return Err(MigrateError::Verify(
            "the target's audit signing key differs from the source's".into(),
        ));
    }
    let dst_report = verified(&dst_trail, dst_key.as_ref(), "target")?;
    let same = |t: &Trail| {
        let e = entries_oldest_first(t);
        (e.len(), e.last().map(|l| (l.seq, l.hash)))
    };
    if same(&src_trail) != same(&dst_trail) || src_report.digests != dst_report.digests {
        return Err(MigrateError::Verify(format!(
            "the target trail has {} records and {} digests, the source {} and {}",
            dst_report.records, dst_report.digests, src_report.records, src_report.digests
        )));
    }
    Ok(MigrateReport {
        copied,
        audit_records: dst_report.records,
        audit_digests: dst_report.digests,
        sealed_through: dst_report.sealed_through,
    })
}
