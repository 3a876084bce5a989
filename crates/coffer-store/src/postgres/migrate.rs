//! Versioned schema migrations for the PostgreSQL engine (files in `migrations/postgres/`).
//!
//! Several nodes may start at once: the whole upgrade runs in ONE transaction that first takes a
//! transaction-scoped advisory lock, so one node migrates and the others, once it commits, find
//! nothing left to do. PostgreSQL's DDL is transactional, so a failed step leaves the schema as
//! it was. (sqlx's own migrator cannot be used here: its `migrate` feature drags `sqlx-sqlite`
//! into resolution, whose `libsqlite3-sys` conflicts with rusqlite's.)

use sqlx::postgres::PgPool;

use super::db_err;
use super::plan::lock_id;
use crate::{Result, StoreError};

/// A released migration. Append only: never edit one (start refuses a changed one).
pub(crate) struct Migration {
    pub version: i32,
    pub description: &'static str,
    pub sql: &'static str,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "key space and commit sequence",
        sql: include_str!("../../migrations/postgres/0001_kv.sql"),
    },
    Migration {
        version: 2,
        description: "commit in one round trip",
        sql: include_str!("../../migrations/postgres/0002_commit_function.sql"),
    },
];

/// `pg_advisory_xact_lock(int4, int4)` key of the upgrade: the two-key space never overlaps
/// the single-bigint space the per-key commit locks use.
const LOCK: (i32, i32) = (0x436f_6666, 1); // "Coff", 1

/// Brings the database's schema up to [`MIGRATIONS`].
pub(crate) async fn run(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK.0)
        .bind(LOCK.1)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    // Asked first rather than `IF NOT EXISTS`, whose notice would be logged at every start.
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('coffer_schema_migrations') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
    if !exists {
        sqlx::raw_sql(
            "CREATE TABLE coffer_schema_migrations (
                 version     integer     PRIMARY KEY,
                 description text        NOT NULL,
                 sql_hash    bigint      NOT NULL,
                 applied_at  timestamptz NOT NULL DEFAULT now()
             )",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    let applied: Vec<(i32, i64)> =
        sqlx::query_as("SELECT version, sql_hash FROM coffer_schema_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
    for m in pending(MIGRATIONS, &applied)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration {}: {e}", m.version)))?;
        sqlx::query(
            "INSERT INTO coffer_schema_migrations (version, description, sql_hash)
             VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(lock_id(m.sql.as_bytes()))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tracing::info!(version = m.version, "applied PostgreSQL schema migration");
    }
    tx.commit().await.map_err(db_err)
}

/// The migrations still to run, given what the database recorded (`(version, sql_hash)`).
/// Refuses a database from a newer build and a released migration that was edited.
pub(crate) fn pending<'a>(
    known: &'a [Migration],
    applied: &[(i32, i64)],
) -> Result<Vec<&'a Migration>> {
    for (version, hash) in applied {
        match known.iter().find(|m| m.version == *version) {
            None => {
                return Err(StoreError::Unavailable(format!(
                    "database schema version {version} is newer than this build supports ({})",
                    known.last().map(|m| m.version).unwrap_or(0)
                )));
            }
            Some(m) if lock_id(m.sql.as_bytes()) != *hash => {
                return Err(StoreError::Unavailable(format!(
                    "schema migration {version} differs from the one applied to this database"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(known
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[Migration] = &[
        Migration {
            version: 1,
            description: "one",
            sql: "CREATE TABLE a (x int)",
        },
        Migration {
            version: 2,
            description: "two",
            sql: "CREATE TABLE b (x int)",
        },
    ];

    fn hash(i: usize) -> i64 {
        lock_id(STEPS[i].sql.as_bytes())
    }

    #[test]
    fn only_unapplied_steps_run_in_order() {
        let all: Vec<i32> = pending(STEPS, &[])
            .unwrap()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(all, vec![1, 2]);
        let rest: Vec<i32> = pending(STEPS, &[(1, hash(0))])
            .unwrap()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(rest, vec![2]);
        assert!(
            pending(STEPS, &[(1, hash(0)), (2, hash(1))])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn newer_or_edited_schemas_are_refused() {
        let newer = pending(STEPS, &[(1, hash(0)), (2, hash(1)), (3, 0)]);
        assert!(matches!(newer, Err(StoreError::Unavailable(m)) if m.contains("newer")));
        let edited = pending(STEPS, &[(1, hash(0) ^ 1)]);
        assert!(matches!(edited, Err(StoreError::Unavailable(m)) if m.contains("differs")));
    }

    #[test]
    fn released_versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
        }
    }
}
