//! The PostgreSQL engine: the key space as one table, shared by every Coffer node using the
//! database. Reads go to the database (no mirror), so a write by one node is read by every other
//! at once.
//!
//! A commit is one READ COMMITTED transaction, sent as one call of the `coffer_commit` function
//! (migration 2; one round trip instead of five):
//! 1. take a transaction-scoped advisory lock for every key the batch checks or writes, in
//!    ascending lock-id order (every node sorts the same way, so no two commits wait on each
//!    other in a cycle). Every writer holds the locks of the keys it writes until it commits, so
//!    once a commit holds them, no other commit can change those keys — including inserting a key
//!    that is checked as absent, which row locks (`SELECT ... FOR UPDATE`) could not guard;
//! 2. compare the checked versions with the table (each statement reads the latest committed
//!    rows) and only if all match draw the commit's sequence number from `coffer_commit_seq`;
//! 3. write the batch's puts and deletes with that number as the new version, and commit.
//!
//! Sequence numbers are unique and, for any one key, increase with each commit that writes it
//! (the number is drawn while that key's lock is held). They are NOT gap-free and commits of
//! disjoint keys may become visible out of number order; nothing in Coffer relies on either.

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{Entry, Result, Store, StoreError, WriteBatch};

mod migrate;
mod plan;
pub mod scratch;

use plan::CommitPlan;

/// Connections per node: enough to keep 2–8 cores busy; PostgreSQL's default
/// `max_connections` (100) then serves about ten nodes.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a free connection (or a new one) before it fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// After the database was found unreachable, store operations fail at once for this long
/// instead of each waiting [`ACQUIRE_TIMEOUT`]: one API call makes several store operations in
/// turn (credentials, the record, the audit record), which took up to a minute to fail. The
/// first operation after the window probes the database again.
const FAIL_FAST: Duration = Duration::from_secs(1);

/// One commit (see the module docs and migration 2): the sequence number, or NULL when a check
/// fails.
const COMMIT: &str = "SELECT coffer_commit($1, $2, $3, $4, $5, $6)";

/// Whether `s` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The PostgreSQL engine. See the module docs.
pub struct PgStore {
    pool: PgPool,
    /// Milliseconds after `epoch` until which operations fail fast (see [`FAIL_FAST`]).
    down_until_ms: AtomicU64,
    epoch: Instant,
    /// `host:port/database`, for messages (never the password).
    target: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (libpq URL syntax; `sslmode=disable|prefer|require|verify-ca|
    /// verify-full` chooses TLS, default `prefer`) with a pool of
    /// [`DEFAULT_MAX_CONNECTIONS`], and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            // sqlx's parse errors describe the problem, not the URL (which may hold a password).
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("coffer");
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let unreachable =
            |e| StoreError::Unavailable(format!("cannot connect to PostgreSQL at {target}: {e}"));
        // One plain attempt first: the pool retries until its acquire timeout, but a server
        // that is not there at start should be reported at once.
        sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(unreachable)?
            .close()
            .await
            .map_err(unreachable)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        migrate::run(&pool).await?;
        Ok(Self {
            pool,
            target,
            down_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// `host:port/database` of the store (no credentials).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes every connection; later calls fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs `op` unless the database was just found unreachable; an unreachable answer starts
    /// the fail-fast window.
    async fn guarded<T>(&self, op: impl Future<Output = Result<T>>) -> Result<T> {
        if self.now_ms() < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable(format!(
                "PostgreSQL at {} is unreachable",
                self.target
            )));
        }
        let r = op.await;
        if let Err(StoreError::Unavailable(_)) = &r {
            let until = self.now_ms() + FAIL_FAST.as_millis() as u64;
            self.down_until_ms.fetch_max(until, Ordering::Relaxed);
        }
        r
    }

    async fn get_row(&self, key: &[u8]) -> Result<Option<Entry>> {
        let row: Option<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT value, version FROM coffer_kv WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        row.map(|(value, version)| entry(value, version))
            .transpose()
    }

    async fn scan_rows(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>> {
        if start >= end || limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT key, value, version FROM coffer_kv
             WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3",
        )
        .bind(start)
        .bind(end)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|(k, v, version)| Ok((k, entry(v, version)?)))
            .collect()
    }

    async fn commit_batch(&self, batch: WriteBatch) -> Result<u64> {
        let plan = CommitPlan::new(&batch)?;
        // A failure after sending leaves the outcome unknown (the connection may have died
        // after the server committed): reported as unavailable, like any lost connection.
        let seq: Option<i64> = sqlx::query_scalar(COMMIT)
            .bind(&plan.locks)
            .bind(&plan.check_keys)
            .bind(&plan.check_versions)
            .bind(&plan.delete_keys)
            .bind(&plan.put_keys)
            .bind(&plan.put_values)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        let Some(seq) = seq else {
            return Err(StoreError::Conflict);
        };
        u64::try_from(seq).map_err(|_| StoreError::Internal("negative commit sequence".into()))
    }
}

#[async_trait]
impl Store for PgStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        self.guarded(self.get_row(key)).await
    }

    async fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Entry)>> {
        self.guarded(self.scan_rows(start, end, limit)).await
    }

    async fn commit(&self, batch: WriteBatch) -> Result<u64> {
        self.guarded(self.commit_batch(batch)).await
    }
}

fn entry(value: Vec<u8>, version: i64) -> Result<Entry> {
    let version = u64::try_from(version)
        .map_err(|_| StoreError::Internal("negative version in database".into()))?;
    Ok(Entry {
        version,
        value: value.into(),
    })
}

/// Maps a driver error: lost connections and an overloaded or restarting server are
/// `Unavailable` (the caller may retry later), serialization failures and deadlocks `Conflict`
/// (the caller re-reads and retries), anything else `Internal`. Only the server's primary
/// message is kept: its detail can quote row contents.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = format!("postgresql: {} (SQLSTATE {code})", d.message());
            match code.as_str() {
                "40001" | "40P01" => StoreError::Conflict,
                c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => {
                    StoreError::Unavailable(msg)
                }
                _ => StoreError::Internal(msg),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => StoreError::Unavailable(format!("postgresql: {e}")),
        _ => StoreError::Internal(format!("postgresql: {e}")),
    }
}
