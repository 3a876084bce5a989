//! Built-in rotators, addressable without registration as Lambda function names:
//! `coffer-postgresql-single-user`, `coffer-postgresql-alternating-users`,
//! `coffer-mysql-single-user`, `coffer-mysql-alternating-users` (MySQL and MariaDB).
//!
//! They follow AWS's rotation templates step by step, on the template's secret shape
//! (`engine`, `host`, `port`, `username`, `password`, `dbname`, `masterarn`, `ssl`), and call
//! Secrets Manager only through [`SecretsApi`] (DescribeSecret, GetSecretValue,
//! GetRandomPassword, PutSecretValue, UpdateSecretVersionStage), in process.
//!
//! TLS follows the templates: `"ssl": true` requires TLS, `"ssl": false` never uses it, and
//! without the member TLS is tried first and plain connections are the fallback.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::api::{self, ApiError, SecretsApi};
use crate::event::{Event, Step};
use crate::function::{InvokeContext, RotationFunction};

mod sql;

pub use sql::{Engine, MySql, Postgres};

pub const NAMES: [&str; 4] = [
    "coffer-postgresql-single-user",
    "coffer-postgresql-alternating-users",
    "coffer-mysql-single-user",
    "coffer-mysql-alternating-users",
];

/// GetRandomPassword's rules for new passwords (AWS's templates read the same from their
/// environment: PASSWORD_LENGTH, EXCLUDE_CHARACTERS, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRules {
    pub length: i64,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub require_each_included_type: bool,
}

impl Default for PasswordRules {
    /// The templates' defaults: 32 characters, without `/@"'\`.
    fn default() -> Self {
        Self {
            length: 32,
            exclude_characters: "/@\"'\\".into(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            require_each_included_type: true,
        }
    }
}

impl PasswordRules {
    fn request(&self) -> Value {
        json!({
            "PasswordLength": self.length,
            "ExcludeCharacters": self.exclude_characters,
            "ExcludeNumbers": self.exclude_numbers,
            "ExcludePunctuation": self.exclude_punctuation,
            "ExcludeUppercase": self.exclude_uppercase,
            "ExcludeLowercase": self.exclude_lowercase,
            "RequireEachIncludedType": self.require_each_included_type,
        })
    }
}

/// The database coordinates of a secret in the templates' shape.
#[derive(Clone)]
pub struct DbSecret {
    pub host: String,
    pub port: Option<u16>,
    pub username: String,
    pub password: Zeroizing<String>,
    pub dbname: Option<String>,
    pub masterarn: Option<String>,
    /// `None`: TLS preferred, plain allowed.
    pub ssl: Option<bool>,
    /// The whole object, so the pending version keeps members the rotator does not know.
    fields: Map<String, Value>,
}

impl DbSecret {
    /// Parses the secret's JSON; the error never quotes the value.
    pub fn parse(value: &str, engine: &dyn Engine) -> Result<Self, String> {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(value) else {
            return Err("the secret value is not a JSON object".into());
        };
        let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_owned);
        let need = |k: &str| {
            text(k).filter(|s| !s.is_empty()).ok_or_else(|| {
                format!(
                    "the secret JSON has no string member \"{k}\" (required by the {} rotator)",
                    engine.name()
                )
            })
        };
        let e = need("engine")?;
        if !engine.accepts(&e) {
            return Err(format!(
                "the secret's engine \"{e}\" is not one the {} rotator handles",
                engine.name()
            ));
        }
        let port = match fields.get("port") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        if fields.get("port").is_some_and(|p| !p.is_null()) && port.is_none() {
            return Err("the secret's \"port\" is not a port number".into());
        }
        let ssl = match fields.get("ssl") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => return Err("the secret's \"ssl\" must be true or false".into()),
        };
        Ok(DbSecret {
            host: need("host")?,
            port,
            username: need("username")?,
            password: Zeroizing::new(need("password")?),
            dbname: text("dbname"),
            masterarn: text("masterarn"),
            ssl,
            fields,
        })
    }

    fn with(&self, username: &str, password: &str) -> Zeroizing<String> {
        let mut f = self.fields.clone();
        f.insert("username".into(), json!(username));
        f.insert("password".into(), json!(password));
        Zeroizing::new(Value::Object(f).to_string())
    }
}

/// Alternating users: `NAME` ↔ `NAME_clone`, as AWS's templates name them.
fn alternate(username: &str) -> String {
    match username.strip_suffix("_clone") {
        Some(base) => base.to_owned(),
        None => format!("{username}_clone"),
    }
}

/// One of the four built-in rotators.
pub struct Builtin {
    engine: Arc<dyn Engine>,
    alternating: bool,
    rules: PasswordRules,
}

impl Builtin {
    pub fn new(engine: Arc<dyn Engine>, alternating: bool, rules: PasswordRules) -> Self {
        Self {
            engine,
            alternating,
            rules,
        }
    }

    /// The built-in for a function name, if it is one.
    pub fn named(name: &str, rules: &PasswordRules) -> Option<Self> {
        let (engine, alternating): (Arc<dyn Engine>, bool) = match name {
            "coffer-postgresql-single-user" => (Arc::new(Postgres), false),
            "coffer-postgresql-alternating-users" => (Arc::new(Postgres), true),
            "coffer-mysql-single-user" => (Arc::new(MySql), false),
            "coffer-mysql-alternating-users" => (Arc::new(MySql), true),
            _ => return None,
        };
        Some(Self::new(engine, alternating, rules.clone()))
    }
}

fn api_err(e: ApiError) -> String {
    e.to_string()
}

async fn get(
    api: &dyn SecretsApi,
    arn: &str,
    stage: &str,
    vid: Option<&str>,
) -> Result<Option<Zeroizing<String>>, String> {
    api::secret_string(api, arn, stage, vid)
        .await
        .map_err(api_err)
}

#[async_trait]
impl RotationFunction for Builtin {
    async fn invoke(&self, event: &Event, ctx: &InvokeContext) -> Result<(), String> {
        let api = ctx.api.as_ref();
        let (arn, token) = (&event.secret_id, &event.client_request_token);
        // The templates' entry checks: rotation enabled, the token is a version staged AWSPENDING
        // (or already AWSCURRENT: nothing left to do).
        let meta = api
            .call("DescribeSecret", json!({"SecretId": arn}))
            .await
            .map_err(api_err)?;
        if meta.get("RotationEnabled") != Some(&Value::Bool(true)) {
            return Err(format!("secret {arn} is not enabled for rotation"));
        }
        let versions = api::versions_to_stages(api, arn).await.map_err(api_err)?;
        let Some((_, stages)) = versions.iter().find(|(v, _)| v == token) else {
            return Err(format!(
                "secret version {token} has no stage for rotation of secret {arn}"
            ));
        };
        if stages.iter().any(|s| s == "AWSCURRENT") {
            return Ok(());
        }
        if !stages.iter().any(|s| s == "AWSPENDING") {
            return Err(format!(
                "secret version {token} not set as AWSPENDING for rotation of secret {arn}"
            ));
        }
        match event.step {
            Step::Create => self.create(api, arn, token).await,
            Step::Set => self.set(api, arn, token).await,
            Step::Test => self.test(api, arn, token).await,
            Step::Finish => finish(api, arn, token, &versions).await,
        }
    }
}

impl Builtin {
    fn parse(&self, value: &str) -> Result<DbSecret, String> {
        DbSecret::parse(value, self.engine.as_ref())
    }

    async fn create(&self, api: &dyn SecretsApi, arn: &str, token: &str) -> Result<(), String> {
        let current = get(api, arn, "AWSCURRENT", None)
            .await?
            .ok_or("the secret has no AWSCURRENT value")?;
        let current = self.parse(&current)?;
        if get(api, arn, "AWSPENDING", Some(token)).await?.is_some() {
            return Ok(());
        }
        let out = api
            .call("GetRandomPassword", self.rules.request())
            .await
            .map_err(api_err)?;
        let password = Zeroizing::new(
            out.get("RandomPassword")
                .and_then(Value::as_str)
                .ok_or("GetRandomPassword returned no password")?
                .to_owned(),
        );
        let username = if self.alternating {
            alternate(&current.username)
        } else {
            current.username.clone()
        };
        let pending = current.with(&username, &password);
        api.call(
            "PutSecretValue",
            json!({"SecretId": arn, "ClientRequestToken": token,
                   "SecretString": pending.as_str(), "VersionStages": ["AWSPENDING"]}),
        )
        .await
        .map_err(api_err)?;
        Ok(())
    }

    async fn set(&self, api: &dyn SecretsApi, arn: &str, token: &str) -> Result<(), String> {
        let pending = get(api, arn, "AWSPENDING", Some(token))
            .await?
            .ok_or("the AWSPENDING version has no value (createSecret did not run)")?;
        let pending = self.parse(&pending)?;
        let current = self.parse(
            &get(api, arn, "AWSCURRENT", None)
                .await?
                .ok_or("the secret has no AWSCURRENT value")?,
        )?;
        if pending.host != current.host {
            return Err(format!(
                "the pending secret's host {} is not the current secret's host {}",
                pending.host, current.host
            ));
        }
        if self.alternating {
            let master_arn = current
                .masterarn
                .clone()
                .ok_or("the secret has no \"masterarn\" (required for alternating users)")?;
            let master = self.parse(
                &get(api, &master_arn, "AWSCURRENT", None)
                    .await?
                    .ok_or("the master secret has no AWSCURRENT value")?,
            )?;
            if master.host != current.host {
                return Err(format!(
                    "the master secret's host {} is not the secret's host {}",
                    master.host, current.host
                ));
            }
            // The master's credentials, the pending user's database.
            let mut admin = master.clone();
            admin.port = pending.port.or(master.port);
            admin.dbname = pending.dbname.clone().or(master.dbname);
            admin.ssl = pending.ssl.or(master.ssl);
            let mut s = self.engine.login(&admin).await.map_err(|e| {
                format!("unable to log into the database with the master secret: {e}")
            })?;
            let r = if s.user_exists(&pending.username).await? {
                s.set_user_password(&pending.username, &pending.password)
                    .await
            } else {
                s.create_user_like(&pending.username, &pending.password, &current.username)
                    .await
            };
            s.close().await;
            return r;
        }
        if pending.username != current.username {
            return Err(format!(
                "the pending secret's username {} is not the current username {}",
                pending.username, current.username
            ));
        }
        // The templates return early when the pending password already logs in (a resumed
        // rotation). That check proves nothing where the server trusts the client (PostgreSQL
        // `trust`), so the password is set again instead, through whichever login works: setting
        // the same password twice is harmless.
        let pending_login = self.engine.login(&pending).await.ok();
        let current_login = match pending_login {
            Some(s) => Ok(s),
            None => self.engine.login(&current).await,
        };
        let mut session = match current_login {
            Ok(s) => s,
            Err(current_err) => {
                // The templates' fallback: the previous password may still be the live one.
                let previous = get(api, arn, "AWSPREVIOUS", None).await?;
                let previous = previous.as_deref().map(|p| self.parse(p)).transpose()?;
                match previous {
                    // Only the same account on the same server: a previous value pointing
                    // elsewhere must not get the pending password.
                    Some(p)
                        if p.username == current.username
                            && p.host == current.host
                            && p.port == current.port =>
                    {
                        self.engine.login(&p).await.map_err(|_| {
                            format!(
                                "unable to log into the database with the previous, current, or pending secret: {current_err}"
                            )
                        })?
                    }
                    _ => {
                        return Err(format!(
                            "unable to log into the database with the current or pending secret: {current_err}"
                        ));
                    }
                }
            }
        };
        let r = session
            .set_own_password(&current.username, &pending.password)
            .await;
        session.close().await;
        r
    }

    async fn test(&self, api: &dyn SecretsApi, arn: &str, token: &str) -> Result<(), String> {
        let pending = get(api, arn, "AWSPENDING", Some(token))
            .await?
            .ok_or("the AWSPENDING version has no value")?;
        let pending = self.parse(&pending)?;
        let mut s =
            self.engine.login(&pending).await.map_err(|e| {
                format!("unable to log into the database with the pending secret: {e}")
            })?;
        let r = s.ping().await;
        s.close().await;
        r
    }
}

/// finishSecret: AWSCURRENT moves to the new version (AWSPREVIOUS follows to the old one).
async fn finish(
    api: &dyn SecretsApi,
    arn: &str,
    token: &str,
    versions: &[(String, Vec<String>)],
) -> Result<(), String> {
    let current = versions
        .iter()
        .find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT"))
        .map(|(v, _)| v.clone());
    if current.as_deref() == Some(token) {
        return Ok(());
    }
    let mut input =
        json!({"SecretId": arn, "VersionStage": "AWSCURRENT", "MoveToVersionId": token});
    if let Some(c) = current {
        input["RemoveFromVersionId"] = json!(c);
    }
    api.call("UpdateSecretVersionStage", input)
        .await
        .map_err(api_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_shape_is_checked_without_quoting_values() {
        let ok = DbSecret::parse(
            r#"{"engine":"postgres","host":"h","port":"5432","username":"u","password":"pw-secret","dbname":"d","ssl":"true"}"#,
            &Postgres,
        )
        .unwrap();
        assert_eq!((ok.port, ok.ssl), (Some(5432), Some(true)));
        for (bad, why) in [
            ("not json pw-secret", "not a JSON object"),
            (
                r#"{"engine":"postgres","host":"h","username":"u"}"#,
                "\"password\"",
            ),
            (
                r#"{"engine":"mysql","host":"h","username":"u","password":"pw-secret"}"#,
                "engine",
            ),
            (
                r#"{"engine":"postgres","host":"h","username":"u","password":"pw-secret","port":"x"}"#,
                "port",
            ),
            (
                r#"{"engine":"postgres","host":"h","username":"u","password":"pw-secret","ssl":3}"#,
                "ssl",
            ),
        ] {
            let e = DbSecret::parse(bad, &Postgres).err().unwrap();
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("pw-secret"));
        }
        assert!(
            DbSecret::parse(
                r#"{"engine":"mariadb","host":"h","username":"u","password":"p"}"#,
                &MySql
            )
            .is_ok()
        );
    }

    #[test]
    fn alternating_names() {
        assert_eq!(alternate("app"), "app_clone");
        assert_eq!(alternate("app_clone"), "app");
    }
}
