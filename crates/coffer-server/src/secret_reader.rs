//! Parameter Store's `/aws/reference/secretsmanager/...` reads secrets through the Secrets
//! Manager service's own operations, so it sees exactly what GetSecretValue would (deleted
//! secrets, stages, decryption), without the parameters room depending on the secrets room.

use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::{RequestContext, ServiceError};
use coffer_parameters::{ReferencedSecret, SecretReadError, SecretReader};
use coffer_secrets::SecretsService;
use serde_json::{Value, json};
use zeroize::Zeroizing;

pub(crate) struct SecretsReader(pub Arc<SecretsService>);

impl SecretsReader {
    async fn call(
        &self,
        ctx: &RequestContext,
        op: &str,
        body: Value,
    ) -> Result<Value, SecretReadError> {
        let out = self
            .0
            .call(ctx, op, body.to_string().as_bytes())
            .await
            .map_err(|e| {
                if e.code() == "ResourceNotFoundException" {
                    SecretReadError::NotFound
                } else if e.code() == "AccessDeniedException" {
                    SecretReadError::Denied(e.to_string())
                } else {
                    SecretReadError::Failed(format!("{}: {e}", e.code()))
                }
            })?;
        serde_json::from_slice(&out)
            .map_err(|_| SecretReadError::Failed("unreadable response".into()))
    }
}

/// A selector of 32–64 characters may be a version id (a ClientRequestToken); anything else is
/// a staging label.
fn looks_like_version_id(s: &str) -> bool {
    (32..=64).contains(&s.len())
}

#[async_trait]
impl SecretReader for SecretsReader {
    async fn read_secret(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version: Option<&str>,
    ) -> Result<ReferencedSecret, SecretReadError> {
        let mut value = match version {
            Some(v) if looks_like_version_id(v) => {
                let by_id = json!({"SecretId": secret_id, "VersionId": v});
                match self.call(ctx, "GetSecretValue", by_id).await {
                    Err(SecretReadError::NotFound) => {
                        let by_stage = json!({"SecretId": secret_id, "VersionStage": v});
                        self.call(ctx, "GetSecretValue", by_stage).await?
                    }
                    other => other?,
                }
            }
            Some(v) => {
                let by_stage = json!({"SecretId": secret_id, "VersionStage": v});
                self.call(ctx, "GetSecretValue", by_stage).await?
            }
            None => {
                self.call(ctx, "GetSecretValue", json!({"SecretId": secret_id}))
                    .await?
            }
        };
        let secret = match value.get_mut("SecretString") {
            Some(Value::String(s)) => Zeroizing::new(std::mem::take(s)),
            _ => match value.get_mut("SecretBinary") {
                Some(Value::String(b64)) => Zeroizing::new(std::mem::take(b64)),
                _ => return Err(SecretReadError::NotFound),
            },
        };
        let arn = value["ARN"].as_str().unwrap_or_default().to_string();
        let created_ms = value["CreatedDate"]
            .as_f64()
            .map(|s| (s * 1000.0) as i64)
            .unwrap_or(0);
        let describe = self
            .call(ctx, "DescribeSecret", json!({"SecretId": secret_id}))
            .await?;
        Ok(ReferencedSecret {
            arn,
            value: secret,
            created_ms,
            source_result: describe.to_string(),
        })
    }
}
