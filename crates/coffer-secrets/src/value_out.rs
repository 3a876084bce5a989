//! GetSecretValue's answer as a borrowed struct: serialised straight to JSON for GetSecretValue
//! (no intermediate `serde_json::Value` tree, no copy of the plaintext into an owned string when
//! it is valid UTF-8), or turned into a map for BatchGetSecretValue.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use coffer_service::jsonout::write_str;

use crate::SecretsError;
use crate::ops::Obj;

/// Fields in the order serde_json's (sorted) map writes them, so both forms give the same bytes.
#[derive(Serialize)]
pub(crate) struct SecretValueOut<'a> {
    #[serde(rename = "ARN")]
    pub arn: &'a str,
    /// Epoch seconds with millisecond precision, as [`crate::ops::ts`].
    #[serde(rename = "CreatedDate")]
    pub created_date: f64,
    #[serde(rename = "Name")]
    pub name: &'a str,
    #[serde(rename = "SecretBinary", skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<String>,
    #[serde(rename = "SecretString", skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<Cow<'a, str>>,
    #[serde(rename = "VersionId")]
    pub version_id: &'a str,
    #[serde(rename = "VersionStages")]
    pub version_stages: &'a [String],
}

impl SecretValueOut<'_> {
    /// The JSON response body: the bytes of the derived serialisation (a test holds the two
    /// equal), written by hand with the fast string writer since this is the hottest answer.
    pub fn to_json(&self) -> Result<Vec<u8>, SecretsError> {
        let internal =
            |_| SecretsError::InternalServiceError("An error occurred on the server side.".into());
        let value_len = self.secret_string.as_ref().map_or(0, |s| s.len())
            + self.secret_binary.as_ref().map_or(0, String::len);
        let mut buf = Vec::with_capacity(192 + self.arn.len() + self.name.len() + value_len);
        buf.extend_from_slice(b"{\"ARN\":");
        write_str(&mut buf, &[self.arn]);
        buf.extend_from_slice(b",\"CreatedDate\":");
        serde_json::to_writer(&mut buf, &self.created_date).map_err(internal)?;
        buf.extend_from_slice(b",\"Name\":");
        write_str(&mut buf, &[self.name]);
        if let Some(b) = &self.secret_binary {
            buf.extend_from_slice(b",\"SecretBinary\":");
            write_str(&mut buf, &[b]);
        }
        if let Some(s) = &self.secret_string {
            buf.extend_from_slice(b",\"SecretString\":");
            write_str(&mut buf, &[s]);
        }
        buf.extend_from_slice(b",\"VersionId\":");
        write_str(&mut buf, &[self.version_id]);
        buf.extend_from_slice(b",\"VersionStages\":[");
        for (i, stage) in self.version_stages.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_str(&mut buf, &[stage]);
        }
        buf.extend_from_slice(b"]}");
        Ok(buf)
    }

    /// The same answer as a map (one entry of BatchGetSecretValue's `SecretValues`).
    pub fn to_obj(&self) -> Obj {
        let mut o = Obj::new();
        o.insert("ARN".into(), Value::String(self.arn.to_owned()));
        o.insert("Name".into(), Value::String(self.name.to_owned()));
        o.insert(
            "VersionId".into(),
            Value::String(self.version_id.to_owned()),
        );
        if let Some(s) = &self.secret_string {
            o.insert("SecretString".into(), Value::String(s.clone().into_owned()));
        }
        if let Some(b) = &self.secret_binary {
            o.insert("SecretBinary".into(), Value::String(b.clone()));
        }
        o.insert(
            "VersionStages".into(),
            Value::Array(
                self.version_stages
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
        o.insert("CreatedDate".into(), ts_secs(self.created_date));
        o
    }
}

/// A JSON timestamp from epoch seconds, as [`crate::ops::ts`] makes from milliseconds.
fn ts_secs(secs: f64) -> Value {
    serde_json::json!(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_and_map_forms_serialise_identically() {
        let two = vec!["AWSCURRENT".to_owned(), "x\"y".to_owned()];
        let none: Vec<String> = Vec::new();
        for (string, binary, stages) in [
            (Some(Cow::Borrowed("s3cr\u{e9}t \"q\" \\ \n")), None, &two),
            (
                Some(Cow::Borrowed("plain value, nothing to escape")),
                None,
                &none,
            ),
            (None, Some("AAEC/w==".to_owned()), &two),
        ] {
            for created_ms in [0i64, 1_700_000_000_123, 1_700_000_000_100, 999] {
                let out = SecretValueOut {
                    arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:n-AbCdEf",
                    created_date: created_ms as f64 / 1000.0,
                    name: "n",
                    secret_binary: binary.clone(),
                    secret_string: string.clone(),
                    version_id: "v-1",
                    version_stages: stages,
                };
                let via_map = serde_json::to_vec(&Value::Object(out.to_obj())).unwrap();
                assert_eq!(out.to_json().unwrap(), via_map);
                assert_eq!(out.to_json().unwrap(), serde_json::to_vec(&out).unwrap());
                assert_eq!(crate::ops::ts(created_ms), ts_secs(out.created_date));
            }
        }
    }
}
