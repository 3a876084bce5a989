//! CloudTrail records: the fields AWS documents for an event (`eventVersion` 1.08), built from
//! what the server knows about a call. Values arrive here already redacted (see `redact`).

use coffer_core::Caller;
use serde_json::{Map, Value, json};

pub const EVENT_VERSION: &str = "1.08";

/// A resource a call touched (`resources` in the record, `Resources` in LookupEvents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub arn: String,
    pub account_id: String,
    /// CloudFormation-style type, e.g. `AWS::SecretsManager::Secret`.
    pub kind: &'static str,
}

impl Resource {
    fn to_json(&self) -> Value {
        json!({"ARN": self.arn, "accountId": self.account_id, "type": self.kind})
    }
}

/// One API call, as the server saw it.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub event_time_ms: i64,
    /// `secretsmanager.amazonaws.com`, ...
    pub event_source: String,
    pub event_name: String,
    pub region: String,
    pub source_ip: String,
    pub user_agent: String,
    /// `None` when the caller could not be authenticated.
    pub caller: Option<Caller>,
    /// The access key id a request claimed, when it could not be authenticated.
    pub claimed_access_key_id: Option<String>,
    pub request_parameters: Value,
    pub response_elements: Value,
    /// `(errorCode, errorMessage)`.
    pub error: Option<(String, String)>,
    pub request_id: String,
    pub event_id: String,
    pub read_only: bool,
    pub resources: Vec<Resource>,
    pub recipient_account_id: String,
}

impl ApiCall {
    pub fn to_record(&self) -> Value {
        self.clone().into_record()
    }

    /// The record, moving the call's values into it (the request path builds one per call).
    pub fn into_record(self) -> Value {
        let identity = match &self.caller {
            Some(c) => user_identity(c),
            None => {
                let mut m = Map::new();
                m.insert("type".into(), json!("Unknown"));
                if let Some(k) = &self.claimed_access_key_id {
                    m.insert("accessKeyId".into(), json!(k));
                }
                Value::Object(m)
            }
        };
        let mut r = base(
            self.event_time_ms,
            &self.event_source,
            &self.event_name,
            &self.region,
            "AwsApiCall",
            &self.recipient_account_id,
        );
        r.insert("userIdentity".into(), identity);
        r.insert("sourceIPAddress".into(), Value::String(self.source_ip));
        r.insert("userAgent".into(), Value::String(self.user_agent));
        r.insert("requestParameters".into(), self.request_parameters);
        r.insert("responseElements".into(), self.response_elements);
        if let Some((code, message)) = self.error {
            r.insert("errorCode".into(), Value::String(code));
            r.insert("errorMessage".into(), Value::String(message));
        }
        r.insert("requestID".into(), Value::String(self.request_id));
        r.insert("eventID".into(), Value::String(self.event_id));
        r.insert("readOnly".into(), json!(self.read_only));
        if !self.resources.is_empty() {
            r.insert(
                "resources".into(),
                Value::Array(self.resources.iter().map(Resource::to_json).collect()),
            );
        }
        Value::Object(r)
    }
}

/// An action a service took on its own (a scheduled deletion, a parameter policy, a rotation
/// step): recorded with the service as the actor, `eventType` `AwsServiceEvent`.
#[derive(Debug, Clone)]
pub struct ServiceEvent {
    pub event_time_ms: i64,
    /// Signing name of the acting service: `secretsmanager`, `ssm`, ...
    pub service: &'static str,
    pub event_name: &'static str,
    pub account_id: String,
    pub region: String,
    pub resources: Vec<Resource>,
    /// `serviceEventDetails`: value-free facts about the action.
    pub details: Value,
}

impl ServiceEvent {
    pub fn to_record(&self) -> Value {
        let source = format!("{}.amazonaws.com", self.service);
        let mut r = base(
            self.event_time_ms,
            &source,
            self.event_name,
            &self.region,
            "AwsServiceEvent",
            &self.account_id,
        );
        r.insert(
            "userIdentity".into(),
            json!({"accountId": self.account_id, "invokedBy": source}),
        );
        r.insert("sourceIPAddress".into(), json!(source));
        r.insert("userAgent".into(), json!(source));
        r.insert("requestParameters".into(), Value::Null);
        r.insert("responseElements".into(), Value::Null);
        r.insert("eventID".into(), json!(new_event_id()));
        r.insert("readOnly".into(), json!(false));
        if !self.resources.is_empty() {
            r.insert(
                "resources".into(),
                Value::Array(self.resources.iter().map(Resource::to_json).collect()),
            );
        }
        r.insert("serviceEventDetails".into(), self.details.clone());
        Value::Object(r)
    }
}

fn base(
    time_ms: i64,
    source: &str,
    name: &str,
    region: &str,
    event_type: &str,
    recipient: &str,
) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("eventVersion".into(), json!(EVENT_VERSION));
    r.insert("eventTime".into(), json!(format_time(time_ms)));
    r.insert("eventSource".into(), json!(source));
    r.insert("eventName".into(), json!(name));
    r.insert("awsRegion".into(), json!(region));
    r.insert("eventType".into(), json!(event_type));
    r.insert("managementEvent".into(), json!(true));
    r.insert("eventCategory".into(), json!("Management"));
    r.insert("recipientAccountId".into(), json!(recipient));
    r
}

/// A random (v4) event id.
pub fn new_event_id() -> String {
    uuid::Builder::from_random_bytes(coffer_crypto::random_bytes())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// `userIdentity` of an authenticated caller: type, ids, and for temporary credentials the
/// session's issuer and creation time.
pub fn user_identity(c: &Caller) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(c.principal_type.as_str()));
    m.insert("principalId".into(), json!(c.principal_id));
    m.insert("arn".into(), json!(c.principal_arn));
    m.insert("accountId".into(), json!(c.account_id));
    m.insert("accessKeyId".into(), json!(c.access_key_id));
    if let Some(u) = &c.user_name {
        m.insert("userName".into(), json!(u));
    }
    if let Some(s) = &c.session {
        m.insert(
            "sessionContext".into(),
            json!({
                "sessionIssuer": {
                    "type": s.issuer_type.as_str(),
                    "principalId": s.issuer_principal_id,
                    "arn": s.issuer_arn,
                    "accountId": c.account_id,
                    "userName": s.issuer_name,
                },
                "attributes": {
                    "creationDate": format_time(s.created_secs.saturating_mul(1000)),
                    "mfaAuthenticated": "false",
                },
            }),
        );
    }
    Value::Object(m)
}

/// The `Username` LookupEvents shows for a record: the IAM user name, `root`, the role session
/// name, or the invoking service.
pub fn lookup_username(record: &Value) -> Option<&str> {
    let id = &record["userIdentity"];
    match id["type"].as_str() {
        Some("Root") => Some("root"),
        Some("IAMUser") => id["userName"].as_str(),
        Some("AssumedRole") => id["principalId"]
            .as_str()
            .and_then(|p| p.split_once(':').map(|(_, s)| s)),
        _ => id["invokedBy"].as_str(),
    }
}

/// `2026-11-26T06:00:00Z`, as CloudTrail writes `eventTime`.
pub fn format_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt).unwrap_or_default()
}

/// Seconds since the epoch of a CloudTrail `eventTime`.
pub fn parse_time(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        let root = Caller::root("111122223333", "AKIAROOT");
        let id = user_identity(&root);
        assert_eq!(id["type"], "Root");
        assert_eq!(id["principalId"], "111122223333");
        assert_eq!(id["arn"], "arn:aws:iam::111122223333:root");
        assert_eq!(id["accessKeyId"], "AKIAROOT");
        assert!(id.get("sessionContext").is_none());
        assert_eq!(lookup_username(&json!({"userIdentity": id})), Some("root"));
        let mut role = Caller::root("111122223333", "ASIATEMP");
        role.principal_type = coffer_core::PrincipalType::AssumedRole;
        role.principal_arn = "arn:aws:sts::111122223333:assumed-role/deploy/ci-42".into();
        role.principal_id = "AROAEXAMPLE:ci-42".into();
        role.session = Some(coffer_core::SessionContext {
            issuer_type: coffer_core::IssuerType::Role,
            issuer_arn: "arn:aws:iam::111122223333:role/deploy".into(),
            issuer_principal_id: "AROAEXAMPLE".into(),
            issuer_name: "deploy".into(),
            session_name: Some("ci-42".into()),
            created_secs: 0,
            expires_secs: 3600,
        });
        let id = user_identity(&role);
        assert_eq!(id["type"], "AssumedRole");
        assert_eq!(id["sessionContext"]["sessionIssuer"]["type"], "Role");
        assert_eq!(
            id["sessionContext"]["sessionIssuer"]["arn"],
            "arn:aws:iam::111122223333:role/deploy"
        );
        assert_eq!(
            id["sessionContext"]["attributes"]["creationDate"],
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(lookup_username(&json!({"userIdentity": id})), Some("ci-42"));
    }

    #[test]
    fn time_round_trip() {
        let s = format_time(1_764_136_800_123);
        assert_eq!(s, "2025-11-26T06:00:00Z");
        assert_eq!(parse_time(&s), Some(1_764_136_800));
    }
}
