//! The two database engines, on sqlx (the design's one SQL stack, shared with the PostgreSQL
//! store; without `macros`). Statements that set passwords cannot take bind parameters in either
//! database, so identifiers and literals are quoted here, by each engine's rules.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use super::DbSecret;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database engine the built-ins rotate passwords in.
#[async_trait]
pub trait Engine: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether a secret's `engine` member names this engine.
    fn accepts(&self, engine: &str) -> bool;
    /// Logs in with the secret's credentials; the error never contains the password.
    async fn login(&self, s: &DbSecret) -> Result<Box<dyn Session>, String>;
}

/// One logged-in connection.
#[async_trait]
pub trait Session: Send {
    async fn ping(&mut self) -> Result<(), String>;
    /// The logged-in user changes its own password.
    async fn set_own_password(&mut self, user: &str, password: &str) -> Result<(), String>;
    async fn user_exists(&mut self, user: &str) -> Result<bool, String>;
    async fn set_user_password(&mut self, user: &str, password: &str) -> Result<(), String>;
    /// Creates `user` with the privileges of `like`.
    async fn create_user_like(
        &mut self,
        user: &str,
        password: &str,
        like: &str,
    ) -> Result<(), String>;
    async fn close(self: Box<Self>);
}

fn db_err(e: sqlx::Error) -> String {
    // sqlx's messages carry server text (never the password, which is sent hashed or as a
    // statement literal that servers do not echo in errors).
    e.to_string()
}

async fn within<T>(
    f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, f).await {
        Ok(r) => r.map_err(db_err),
        Err(_) => Err(format!(
            "the database did not answer within {} seconds",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

// ----- PostgreSQL ------------------------------------------------------------------------------

pub struct Postgres;

/// `"name"` with embedded quotes doubled.
fn pg_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A string literal that is right whatever `standard_conforming_strings` says: `E'...'` with
/// quotes and backslashes escaped.
fn pg_literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[async_trait]
impl Engine for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn accepts(&self, engine: &str) -> bool {
        matches!(engine, "postgres" | "postgresql" | "aurora-postgresql")
    }
    async fn login(&self, s: &DbSecret) -> Result<Box<dyn Session>, String> {
        let opts = PgConnectOptions::new_without_pgpass()
            .host(&s.host)
            .port(s.port.unwrap_or(5432))
            .username(&s.username)
            .password(&s.password)
            .database(s.dbname.as_deref().unwrap_or("postgres"))
            .ssl_mode(match s.ssl {
                Some(true) => PgSslMode::Require,
                Some(false) => PgSslMode::Disable,
                None => PgSslMode::Prefer,
            });
        let conn = within(PgConnection::connect_with(&opts)).await?;
        Ok(Box::new(PgSession(conn)))
    }
}

struct PgSession(PgConnection);

impl PgSession {
    async fn exec(&mut self, sql: &str) -> Result<(), String> {
        // Built from quoted identifiers and literals (see the quoting helpers).
        within(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut self.0)).await?;
        Ok(())
    }
}

#[async_trait]
impl Session for PgSession {
    async fn ping(&mut self) -> Result<(), String> {
        self.exec("SELECT NOW()").await
    }
    async fn set_own_password(&mut self, user: &str, password: &str) -> Result<(), String> {
        self.set_user_password(user, password).await
    }
    async fn user_exists(&mut self, user: &str) -> Result<bool, String> {
        let rows = within(
            sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
                .bind(user)
                .fetch_all(&mut self.0),
        )
        .await?;
        Ok(!rows.is_empty())
    }
    async fn set_user_password(&mut self, user: &str, password: &str) -> Result<(), String> {
        let sql = format!(
            "ALTER USER {} WITH PASSWORD {}",
            pg_ident(user),
            pg_literal(password)
        );
        self.exec(&sql).await
    }
    async fn create_user_like(
        &mut self,
        user: &str,
        password: &str,
        like: &str,
    ) -> Result<(), String> {
        // AWS's template: a login role that is granted the current user's role.
        let sql = format!(
            "CREATE ROLE {} WITH LOGIN PASSWORD {}; GRANT {} TO {}",
            pg_ident(user),
            pg_literal(password),
            pg_ident(like),
            pg_ident(user)
        );
        self.exec(&sql).await
    }
    async fn close(self: Box<Self>) {
        let _ = self.0.close().await;
    }
}

// ----- MySQL / MariaDB ---------------------------------------------------------------------------

pub struct MySql;

/// `'text'` with quotes doubled and backslashes escaped (the default SQL mode).
fn my_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[async_trait]
impl Engine for MySql {
    fn name(&self) -> &'static str {
        "mysql"
    }
    fn accepts(&self, engine: &str) -> bool {
        matches!(engine, "mysql" | "mariadb" | "aurora-mysql" | "aurora")
    }
    async fn login(&self, s: &DbSecret) -> Result<Box<dyn Session>, String> {
        let mut opts = MySqlConnectOptions::new()
            .host(&s.host)
            .port(s.port.unwrap_or(3306))
            .username(&s.username)
            .password(&s.password)
            .ssl_mode(match s.ssl {
                Some(true) => MySqlSslMode::Required,
                Some(false) => MySqlSslMode::Disabled,
                None => MySqlSslMode::Preferred,
            });
        if let Some(db) = &s.dbname {
            opts = opts.database(db);
        }
        let conn = within(MySqlConnection::connect_with(&opts)).await?;
        Ok(Box::new(MySession(conn)))
    }
}

struct MySession(MySqlConnection);

impl MySession {
    async fn exec(&mut self, sql: &str) -> Result<(), String> {
        // Built from quoted identifiers and literals (see the quoting helpers).
        within(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut self.0)).await?;
        Ok(())
    }

    /// The host part of `user`'s account (the first, if there are several), `%` if unknown.
    async fn host_of(&mut self, user: &str) -> Result<String, String> {
        let row: Option<(String,)> = within(
            sqlx::query_as("SELECT CAST(Host AS CHAR) FROM mysql.user WHERE User = ? LIMIT 1")
                .bind(user)
                .fetch_optional(&mut self.0),
        )
        .await?;
        Ok(row.map(|r| r.0).unwrap_or_else(|| "%".into()))
    }
}

#[async_trait]
impl Session for MySession {
    async fn ping(&mut self) -> Result<(), String> {
        self.exec("SELECT NOW()").await
    }
    async fn set_own_password(&mut self, _user: &str, password: &str) -> Result<(), String> {
        // The account this login matched, whatever its host part. MariaDB wants the CREATE USER
        // privilege for ALTER USER even on oneself, so it gets SET PASSWORD; MySQL 8 has no
        // PASSWORD() and takes ALTER USER CURRENT_USER().
        let (version,): (String,) =
            within(sqlx::query_as("SELECT VERSION()").fetch_one(&mut self.0)).await?;
        let sql = if version.contains("MariaDB") {
            format!("SET PASSWORD = PASSWORD({})", my_literal(password))
        } else {
            format!(
                "ALTER USER CURRENT_USER() IDENTIFIED BY {}",
                my_literal(password)
            )
        };
        self.exec(&sql).await
    }
    async fn user_exists(&mut self, user: &str) -> Result<bool, String> {
        let row: (i64,) = within(
            sqlx::query_as("SELECT COUNT(*) FROM mysql.user WHERE User = ?")
                .bind(user)
                .fetch_one(&mut self.0),
        )
        .await?;
        Ok(row.0 > 0)
    }
    async fn set_user_password(&mut self, user: &str, password: &str) -> Result<(), String> {
        let host = self.host_of(user).await?;
        self.exec(&format!(
            "ALTER USER {}@{} IDENTIFIED BY {}",
            my_literal(user),
            my_literal(&host),
            my_literal(password)
        ))
        .await
    }
    async fn create_user_like(
        &mut self,
        user: &str,
        password: &str,
        like: &str,
    ) -> Result<(), String> {
        let host = self.host_of(like).await?;
        let grants: Vec<(String,)> = within(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SHOW GRANTS FOR {}@{}",
                my_literal(like),
                my_literal(&host)
            )))
            .fetch_all(&mut self.0),
        )
        .await?;
        self.exec(&format!(
            "CREATE USER {}@{} IDENTIFIED BY {}",
            my_literal(user),
            my_literal(&host),
            my_literal(password)
        ))
        .await?;
        // AWS's template: replay the current user's grants for the new one.
        for (grant,) in grants {
            if let Some(g) = retarget_grant(&grant, like, user) {
                self.exec(&g).await?;
            }
        }
        Ok(())
    }
    async fn close(self: Box<Self>) {
        let _ = self.0.close().await;
    }
}

/// `GRANT ... TO 'like'@'host' [IDENTIFIED BY PASSWORD '...']` → the same grant to `user`,
/// without the password clause. `None` for lines that are not grants to `like`.
fn retarget_grant(grant: &str, like: &str, user: &str) -> Option<String> {
    let grant = match grant.find(" IDENTIFIED BY PASSWORD") {
        Some(i) => &grant[..i],
        None => grant,
    };
    for q in ['`', '\''] {
        let from = format!(" TO {q}{like}{q}@");
        if let Some(i) = grant.find(&from) {
            let to = format!(" TO {q}{user}{q}@");
            return Some(format!("{}{}{}", &grant[..i], to, &grant[i + from.len()..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(pg_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(pg_literal(r"it's\"), r"E'it''s\\'");
        assert_eq!(my_literal(r"it's\"), r"'it''s\\'");
    }

    #[test]
    fn grants_are_retargeted_without_password_clause() {
        assert_eq!(
            retarget_grant(
                "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABC'",
                "app",
                "app_clone"
            )
            .unwrap(),
            "GRANT USAGE ON *.* TO `app_clone`@`%`"
        );
        assert_eq!(
            retarget_grant("GRANT SELECT ON `d`.* TO 'app'@'%'", "app", "app_clone").unwrap(),
            "GRANT SELECT ON `d`.* TO 'app_clone'@'%'"
        );
        assert!(retarget_grant("GRANT SELECT ON x TO `other`@`%`", "app", "b").is_none());
    }
}
