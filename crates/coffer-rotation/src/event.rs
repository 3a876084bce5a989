//! The event a rotation function receives, exactly as AWS sends it to a Lambda function.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    #[serde(rename = "createSecret")]
    Create,
    #[serde(rename = "setSecret")]
    Set,
    #[serde(rename = "testSecret")]
    Test,
    #[serde(rename = "finishSecret")]
    Finish,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"SecretId", "ClientRequestToken", "Step", "RotationToken"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    /// The secret's ARN.
    pub secret_id: String,
    /// The version being rotated in (the AWSPENDING version's id).
    pub client_request_token: String,
    pub step: Step,
    /// Identifies this rotation to PutSecretValue's RotationToken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_token: Option<String>,
}

impl Event {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_is_aws_shaped() {
        let e = Event {
            secret_id: "arn:aws:secretsmanager:us-east-1:1:secret:a-AbCdEf".into(),
            client_request_token: "tok".into(),
            step: Step::Set,
            rotation_token: Some("rt".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"SecretId": e.secret_id, "ClientRequestToken": "tok",
                "Step": "setSecret", "RotationToken": "rt"})
        );
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    }
}
