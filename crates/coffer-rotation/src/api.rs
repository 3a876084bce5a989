//! How rotation talks to Secrets Manager: an operation name and its JSON input, answered with the
//! JSON output or AWS's error code and message — the HTTP API's semantics, in process or not.

use async_trait::async_trait;
use serde_json::{Value, json};
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        self.code == "ResourceNotFoundException"
    }
}

/// Secrets Manager operations for one account and region, as one caller.
#[async_trait]
pub trait SecretsApi: Send + Sync {
    async fn call(&self, operation: &str, input: Value) -> Result<Value, ApiError>;
}

/// GetSecretValue's SecretString for a stage (and version); `None` when AWS would answer
/// ResourceNotFoundException.
pub async fn secret_string(
    api: &dyn SecretsApi,
    secret_id: &str,
    stage: &str,
    version_id: Option<&str>,
) -> Result<Option<Zeroizing<String>>, ApiError> {
    let mut input = json!({"SecretId": secret_id, "VersionStage": stage});
    if let Some(v) = version_id {
        input["VersionId"] = json!(v);
    }
    match api.call("GetSecretValue", input).await {
        Ok(mut out) => Ok(match out.get_mut("SecretString").map(Value::take) {
            Some(Value::String(s)) => Some(Zeroizing::new(s)),
            _ => None,
        }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// DescribeSecret's VersionIdsToStages.
pub async fn versions_to_stages(
    api: &dyn SecretsApi,
    secret_id: &str,
) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let out = api
        .call("DescribeSecret", json!({"SecretId": secret_id}))
        .await?;
    Ok(out
        .get("VersionIdsToStages")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let stages = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    (k.clone(), stages)
                })
                .collect()
        })
        .unwrap_or_default())
}
