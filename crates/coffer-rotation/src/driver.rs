//! Runs one rotation: the four steps in order against one function, each under a timeout, then
//! what Secrets Manager itself does after finishSecret (clearing AWSPENDING). A failed step stops
//! the rotation with AWSCURRENT where it was; the AWSPENDING version stays, so the next attempt
//! resumes with the same token, as AWS's functions expect.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{self, SecretsApi};
use crate::event::{Event, Step};
use crate::function::{InvokeContext, RotationFunction};

const AWSCURRENT: &str = "AWSCURRENT";
const AWSPENDING: &str = "AWSPENDING";
const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// Longest failure message kept in the rotation record.
const MAX_MESSAGE: usize = 1024;

/// Why a rotation stopped: the step and a message free of secret values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `createSecret` ... `finishSecret`, or `start` before the function ran.
    pub step: String,
    pub message: String,
}

impl Failure {
    pub fn new(step: &str, message: impl Into<String>) -> Self {
        Self {
            step: step.to_owned(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

/// Rotates `arn` to version `token` with `function`.
pub async fn rotate(
    function: &dyn RotationFunction,
    ctx: &InvokeContext,
    arn: &str,
    token: &str,
    step_timeout: Duration,
) -> Result<(), Failure> {
    for step in Step::ALL {
        let event = Event {
            secret_id: arn.to_owned(),
            client_request_token: token.to_owned(),
            step,
            rotation_token: Some(token.to_owned()),
        };
        let outcome = tokio::time::timeout(step_timeout, function.invoke(&event, ctx)).await;
        let message = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(m)) => m,
            Err(_) => format!(
                "the rotation function did not finish within {} seconds",
                step_timeout.as_secs()
            ),
        };
        let message = scrub(ctx.api.as_ref(), arn, token, &message).await;
        return Err(Failure::new(step.as_str(), message));
    }
    // What AWS does after finishSecret: the new version must be AWSCURRENT, and AWSPENDING goes.
    let stages = api::versions_to_stages(ctx.api.as_ref(), arn)
        .await
        .map_err(|e| Failure::new("finishSecret", e.to_string()))?;
    let held = |vid: &str, stage: &str| {
        stages
            .iter()
            .any(|(v, s)| v == vid && s.iter().any(|x| x == stage))
    };
    if !held(token, AWSCURRENT) {
        return Err(Failure::new(
            "finishSecret",
            format!("the rotation function did not move AWSCURRENT to version {token}"),
        ));
    }
    if held(token, AWSPENDING) {
        ctx.api
            .call(
                "UpdateSecretVersionStage",
                json!({"SecretId": arn, "VersionStage": AWSPENDING, "RemoveFromVersionId": token}),
            )
            .await
            .map_err(|e| Failure::new("finishSecret", e.to_string()))?;
    }
    Ok(())
}

/// Removes every value of the secret's labelled versions (whole, and each JSON string member
/// that could be a credential) from `message`, and bounds its length. Functions should never
/// print secrets, but their output is not ours to trust.
async fn scrub(api: &dyn SecretsApi, arn: &str, token: &str, message: &str) -> String {
    let mut values = Vec::new();
    for (stage, vid) in [
        (AWSCURRENT, None),
        (AWSPREVIOUS, None),
        (AWSPENDING, Some(token)),
    ] {
        if let Ok(Some(v)) = api::secret_string(api, arn, stage, vid).await {
            values.push(v);
        }
    }
    redact(message, values.iter().map(|v| v.as_str()))
}

/// Members of AWS's database secret shape that are not secret and help to read an error.
const PUBLIC_MEMBERS: &[&str] = &["engine", "host", "port", "username", "dbname", "masterarn"];

pub fn redact<'a>(message: &str, values: impl Iterator<Item = &'a str>) -> String {
    let mut secrets: Vec<String> = Vec::new();
    for v in values {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(v) {
            for (k, x) in m {
                if let Value::String(s) = x
                    && s.len() >= 4
                    && !PUBLIC_MEMBERS.contains(&k.as_str())
                {
                    secrets.push(s);
                }
            }
        }
        if v.len() >= 4 {
            secrets.push(v.to_owned());
        }
    }
    // Longest first, so a value containing another is removed whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_owned();
    for s in &secrets {
        out = out.replace(s.as_str(), "*****");
    }
    if out.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_values_and_password_members() {
        let v = r#"{"engine":"postgres","host":"db","username":"app","password":"hunter2!x"}"#;
        let m = redact(
            "login app@db with hunter2!x failed; value was {\"engine\":\"postgres\",\"host\":\"db\",\"username\":\"app\",\"password\":\"hunter2!x\"}",
            [v].into_iter(),
        );
        assert!(!m.contains("hunter2"), "{m}");
        assert!(m.contains("app@db"), "{m}");
        assert!(redact(&"x".repeat(5000), std::iter::empty()).len() <= MAX_MESSAGE + 3);
    }
}
