//! `/aws/reference/secretsmanager/<secret-id>`: Secrets Manager secrets read through Parameter
//! Store. Parameters depends on no secrets crate: the server supplies a [`SecretReader`].

use async_trait::async_trait;
use coffer_core::RequestContext;
use coffer_service::opctx::OpCtx;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::ParametersService;
use crate::error::ParametersError as E;
use crate::ops::{Obj, ts};

/// A secret version as Parameter Store returns it.
pub struct ReferencedSecret {
    pub arn: String,
    /// The version's SecretString, or the base64 of its SecretBinary.
    pub value: Zeroizing<String>,
    pub created_ms: i64,
    /// DescribeSecret's JSON response for the secret (AWS returns it as `SourceResult`).
    pub source_result: String,
}

impl std::fmt::Debug for ReferencedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferencedSecret")
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretReadError {
    /// No such secret (or version/stage): the parameter is not found.
    #[error("secret not found")]
    NotFound,
    /// The caller may not read the secret (`secretsmanager:GetSecretValue`); AWS's message.
    #[error("{0}")]
    Denied(String),
    /// Anything else (decryption, storage); logged, answered as InternalServerError.
    #[error("{0}")]
    Failed(String),
}

/// Reads Secrets Manager secrets for Parameter Store (implemented by the server).
#[async_trait]
pub trait SecretReader: Send + Sync + 'static {
    /// The value of `secret_id` (name or ARN) in the caller's account and region: the version
    /// `version` names (a version id or staging label) or, without one, `AWSCURRENT`.
    async fn read_secret(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version: Option<&str>,
    ) -> Result<ReferencedSecret, SecretReadError>;
}

impl ParametersService {
    pub(crate) async fn get_reference(
        &self,
        ctx: &OpCtx<'_>,
        name: &str,
        secret_id: &str,
        selector: Option<&str>,
        decrypt: bool,
    ) -> Result<Obj, E> {
        if !decrypt {
            return Err(E::Validation(
                "WithDecryption flag must be True for retrieving a Secret Manager secret.".into(),
            ));
        }
        let reader = self.secrets.as_ref().ok_or_else(|| E::not_found(name))?;
        let version = selector.map(|s| s.trim_start_matches(':'));
        let s = reader
            .read_secret(ctx, secret_id, version)
            .await
            .map_err(|e| match e {
                SecretReadError::NotFound => E::not_found(name),
                SecretReadError::Denied(m) => E::AccessDenied(m),
                SecretReadError::Failed(m) => {
                    tracing::error!(error = %m, "reading a referenced secret failed");
                    E::internal()
                }
            })?;
        let mut o = Obj::new();
        o.insert("Name".into(), json!(name));
        o.insert("Type".into(), json!("SecureString"));
        o.insert("Value".into(), Value::String(s.value.as_str().to_owned()));
        o.insert("Version".into(), json!(0));
        if let Some(sel) = selector {
            o.insert("Selector".into(), json!(sel));
        }
        o.insert("SourceResult".into(), json!(s.source_result));
        o.insert("LastModifiedDate".into(), ts(s.created_ms));
        o.insert("ARN".into(), json!(s.arn));
        o.insert("DataType".into(), json!("text"));
        Ok(o)
    }
}
