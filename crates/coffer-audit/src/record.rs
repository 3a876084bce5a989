//! CloudTrail records: the fields AWS documents for an event (`eventVersion` 1.08), built from
//! what the server knows about a call. Values arrive here already redacted (see `redact`).

use coffer_core::Caller;
use serde_json::Value;

use crate::canonical::Object;

pub const EVENT_VERSION: &str = "1.08";

/// A resource a call touched (`resources` in the record, `Resources` in LookupEvents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub arn: String,
    pub account_id: String,
    /// CloudFormation-style type, e.g. `AWS::SecretsManager::Secret`.
    pub kind: &'static str,
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
    /// The record as JSON (tests, tools); the same bytes as [`ApiCall::canonical`].
    pub fn to_record(&self) -> Value {
        parse(&self.canonical())
    }

    /// The record in canonical form (see [`crate::canonical`]), written straight from the
    /// call's fields: the request path makes one per call, and building a `Value` tree only to
    /// serialise it cost more than the rest of the record together.
    pub fn canonical(&self) -> Vec<u8> {
        write(&Fields {
            time_ms: self.event_time_ms,
            source: &self.event_source,
            name: &self.event_name,
            region: &self.region,
            event_type: "AwsApiCall",
            recipient: &self.recipient_account_id,
            event_id: &self.event_id,
            request_id: Some(&self.request_id),
            error: self.error.as_ref().map(|(c, m)| (c.as_str(), m.as_str())),
            read_only: self.read_only,
            request: &self.request_parameters,
            response: &self.response_elements,
            resources: &self.resources,
            details: None,
            source_ip: &self.source_ip,
            user_agent: &self.user_agent,
            identity: match &self.caller {
                Some(c) => Identity::Caller(c),
                None => Identity::Unknown(self.claimed_access_key_id.as_deref()),
            },
        })
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
    /// The record (with a fresh event id) as JSON.
    pub fn to_record(&self) -> Value {
        parse(&self.canonical(&new_call_id()))
    }

    /// The record in canonical form, as event `event_id`.
    pub fn canonical(&self, event_id: &str) -> Vec<u8> {
        let source = format!("{}.amazonaws.com", self.service);
        write(&Fields {
            time_ms: self.event_time_ms,
            source: &source,
            name: self.event_name,
            region: &self.region,
            event_type: "AwsServiceEvent",
            recipient: &self.account_id,
            event_id,
            request_id: None,
            error: None,
            read_only: false,
            request: &Value::Null,
            response: &Value::Null,
            resources: &self.resources,
            details: Some(&self.details),
            source_ip: &source,
            user_agent: &source,
            identity: Identity::Service {
                account: &self.account_id,
                invoked_by: &source,
            },
        })
    }
}

/// Everything a record holds, borrowed: the one layout of CloudTrail records here.
struct Fields<'a> {
    time_ms: i64,
    source: &'a str,
    name: &'a str,
    region: &'a str,
    event_type: &'a str,
    recipient: &'a str,
    event_id: &'a str,
    request_id: Option<&'a str>,
    error: Option<(&'a str, &'a str)>,
    read_only: bool,
    request: &'a Value,
    response: &'a Value,
    resources: &'a [Resource],
    details: Option<&'a Value>,
    source_ip: &'a str,
    user_agent: &'a str,
    identity: Identity<'a>,
}

enum Identity<'a> {
    Caller(&'a Caller),
    /// Not authenticated: the access key id it claimed, if any.
    Unknown(Option<&'a str>),
    Service {
        account: &'a str,
        invoked_by: &'a str,
    },
}

/// Canonical bytes of `f`: members in ascending key order at every level.
fn write(f: &Fields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let mut r = Object::new(&mut out);
    r.str("awsRegion", f.region);
    if let Some((code, message)) = f.error {
        r.str("errorCode", code).str("errorMessage", message);
    }
    r.str("eventCategory", "Management")
        .str("eventID", f.event_id)
        .str("eventName", f.name)
        .str("eventSource", f.source)
        .str("eventTime", write_time(f.time_ms, &mut [0; 20]))
        .str("eventType", f.event_type)
        .str("eventVersion", EVENT_VERSION)
        .bool("managementEvent", true)
        .bool("readOnly", f.read_only)
        .str("recipientAccountId", f.recipient);
    if let Some(id) = f.request_id {
        r.str("requestID", id);
    }
    r.value("requestParameters", f.request);
    if !f.resources.is_empty() {
        let out = r.key("resources");
        out.push(b'[');
        for (i, res) in f.resources.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut o = Object::new(out);
            o.str("ARN", &res.arn)
                .str("accountId", &res.account_id)
                .str("type", res.kind);
            o.end();
        }
        out.push(b']');
    }
    r.value("responseElements", f.response);
    if let Some(d) = f.details {
        r.value("serviceEventDetails", d);
    }
    r.str("sourceIPAddress", f.source_ip)
        .str("userAgent", f.user_agent)
        .object("userIdentity", |id| match &f.identity {
            Identity::Caller(c) => write_identity(c, id),
            Identity::Unknown(akid) => {
                if let Some(k) = akid {
                    id.str("accessKeyId", k);
                }
                id.str("type", "Unknown");
            }
            Identity::Service {
                account,
                invoked_by,
            } => {
                id.str("accountId", account).str("invokedBy", invoked_by);
            }
        });
    r.end();
    out
}

fn parse(canonical: &[u8]) -> Value {
    serde_json::from_slice(canonical).expect("canonical records are JSON")
}

/// A UUID-shaped (version 4 layout) id for a call: its event id, and the server's request ids.
/// A per-process random high half plus a counter (started at random, so successive processes
/// do not line up): unique without a draw from the CSPRNG per call (≈ 2.7 k instructions each
/// in aws-lc). Call ids are correlation handles, not secrets, so they need not be
/// unpredictable.
pub fn new_call_id() -> String {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: LazyLock<u64> =
        LazyLock::new(|| u64::from_be_bytes(coffer_crypto::random_bytes()));
    static COUNTER: LazyLock<AtomicU64> =
        LazyLock::new(|| AtomicU64::new(u64::from_be_bytes(coffer_crypto::random_bytes())));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&PREFIX.to_be_bytes());
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// `userIdentity` of an authenticated caller (members in ascending key order): type, ids, and
/// for temporary credentials the session's issuer and creation time.
fn write_identity(c: &Caller, id: &mut Object<'_>) {
    if c.principal_type == coffer_core::PrincipalType::WebIdentityUser {
        // CloudTrail's shape for AssumeRoleWithWebIdentity: the provider and the token's claims.
        id.str("identityProvider", &c.principal_arn)
            .str("principalId", &c.principal_id)
            .str("type", c.principal_type.as_str());
        if let Some(u) = &c.user_name {
            id.str("userName", u);
        }
        return;
    }
    id.str("accessKeyId", &c.access_key_id)
        .str("accountId", &c.account_id)
        .str("arn", &c.principal_arn)
        .str("principalId", &c.principal_id);
    if let Some(s) = &c.session {
        id.object("sessionContext", |ctx| {
            ctx.object("attributes", |a| {
                a.str(
                    "creationDate",
                    &format_time(s.created_secs.saturating_mul(1000)),
                )
                .str("mfaAuthenticated", "false");
            })
            .object("sessionIssuer", |i| {
                i.str("accountId", &c.account_id)
                    .str("arn", &s.issuer_arn)
                    .str("principalId", &s.issuer_principal_id)
                    .str("type", s.issuer_type.as_str())
                    .str("userName", &s.issuer_name);
            });
        });
    }
    id.str("type", c.principal_type.as_str());
    if let Some(u) = &c.user_name {
        id.str("userName", u);
    }
}

/// The `Username` LookupEvents shows for a record: the IAM user name, `root`, the role session
/// name, or the invoking service.
pub fn lookup_username(record: &Value) -> Option<&str> {
    let id = &record["userIdentity"];
    match id["type"].as_str() {
        Some("Root") => Some("root"),
        Some("IAMUser" | "WebIdentityUser") => id["userName"].as_str(),
        Some("AssumedRole" | "FederatedUser") => id["principalId"]
            .as_str()
            .and_then(|p| p.split_once(':').map(|(_, s)| s)),
        _ => id["invokedBy"].as_str(),
    }
}

/// `2026-11-26T06:00:00Z`, as CloudTrail writes `eventTime`.
pub fn format_time(ms: i64) -> String {
    let mut buf = [0u8; 20];
    write_time(ms, &mut buf).to_string()
}

/// [`format_time`] into `buf`, digit by digit: `time`'s format descriptions cost more than the
/// rest of a record's fixed members together.
fn write_time(ms: i64, buf: &mut [u8; 20]) -> &str {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    // Years before 0 or after 9999 do not occur in records; clamp rather than spill.
    let year = t.year().clamp(0, 9999) as u32;
    let fields = [
        (year / 100, 0),
        (year % 100, 2),
        (u8::from(t.month()) as u32, 5),
        (t.day() as u32, 8),
        (t.hour() as u32, 11),
        (t.minute() as u32, 14),
        (t.second() as u32, 17),
    ];
    *buf = *b"0000-00-00T00:00:00Z";
    for (v, at) in fields {
        buf[at] = b'0' + (v / 10) as u8;
        buf[at + 1] = b'0' + (v % 10) as u8;
    }
    // Only ASCII digits and separators were written.
    std::str::from_utf8(buf).unwrap_or_default()
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
    use serde_json::json;

    fn user_identity(c: &Caller) -> Value {
        let mut out = Vec::new();
        let mut o = Object::new(&mut out);
        write_identity(c, &mut o);
        o.end();
        parse(&out)
    }

    fn call(caller: Option<Caller>) -> ApiCall {
        ApiCall {
            event_time_ms: 1_764_136_800_123,
            event_source: "secretsmanager.amazonaws.com".into(),
            event_name: "GetSecretValue".into(),
            region: "us-east-1".into(),
            source_ip: "127.0.0.1".into(),
            user_agent: "ua \"quoted\" \u{1}".into(),
            caller,
            claimed_access_key_id: Some("AKIACLAIMED".into()),
            request_parameters: json!({"secretId": "a", "versionStage": "AWSCURRENT"}),
            response_elements: json!({"arn": "x", "nested": {"b": [1, null], "a": "é"}}),
            error: Some(("AccessDeniedException".into(), "no".into())),
            request_id: "req".into(),
            event_id: "evt".into(),
            read_only: true,
            resources: vec![Resource {
                arn: "arn:aws:secretsmanager:us-east-1:111122223333:secret:a-AbCdEf".into(),
                account_id: "111122223333".into(),
                kind: "AWS::SecretsManager::Secret",
            }],
            recipient_account_id: "111122223333".into(),
        }
    }

    /// The direct writer's bytes are canonical (re-canonicalising them changes nothing), for
    /// every shape of record: so records verify after any JSON tool re-writes them.
    #[test]
    fn records_are_written_in_canonical_form() {
        let mut session = Caller::root("111122223333", "ASIATEMP");
        session.principal_type = coffer_core::PrincipalType::AssumedRole;
        session.user_name = Some("u".into());
        session.session = Some(coffer_core::SessionContext {
            issuer_type: coffer_core::IssuerType::Role,
            issuer_arn: "arn:aws:iam::111122223333:role/deploy".into(),
            issuer_principal_id: "AROAEXAMPLE".into(),
            issuer_name: "deploy".into(),
            session_name: Some("s".into()),
            created_secs: 0,
            expires_secs: 3600,
        });
        let mut plain = call(None);
        plain.error = None;
        plain.resources.clear();
        plain.claimed_access_key_id = None;
        let records = [
            call(None).canonical(),
            call(Some(Caller::root("111122223333", "AKIAROOT"))).canonical(),
            call(Some(session)).canonical(),
            plain.canonical(),
            ServiceEvent {
                event_time_ms: 0,
                service: "ssm",
                event_name: "ParameterExpired",
                account_id: "111122223333".into(),
                region: "eu-west-1".into(),
                resources: vec![],
                details: json!({"z": 1, "a": "b"}),
            }
            .canonical("evt-2"),
        ];
        for bytes in &records {
            let v = parse(bytes);
            assert_eq!(
                crate::canonical::to_vec(&v),
                *bytes,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let r = parse(&records[0]);
        assert_eq!(
            r["userIdentity"],
            json!({"accessKeyId": "AKIACLAIMED", "type": "Unknown"})
        );
        assert_eq!(r["errorCode"], "AccessDeniedException");
        assert_eq!(r["eventTime"], "2025-11-26T06:00:00Z");
        assert_eq!(r["resources"][0]["type"], "AWS::SecretsManager::Secret");
        let e = parse(&records[4]);
        assert_eq!(e["eventType"], "AwsServiceEvent");
        assert_eq!(e["userIdentity"]["invokedBy"], "ssm.amazonaws.com");
        assert!(e.get("requestID").is_none());
        assert_eq!(e["serviceEventDetails"]["z"], 1);
    }

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
        // Digit by digit, as `time`'s format description spells it, across days, leap years
        // and both ends of the digits.
        let fmt =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        for secs in (0..4_102_444_800i64)
            .step_by(7_654_321)
            .chain([951_782_399, 253_402_300_799])
        {
            let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
            assert_eq!(
                format_time(secs * 1000 + 999),
                t.format(&fmt).unwrap(),
                "{secs}"
            );
        }
    }

    #[test]
    fn call_ids_are_unique_uuid_shaped_v4() {
        let ids: Vec<String> = (0..1000).map(|_| new_call_id()).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            let u = uuid::Uuid::parse_str(id).expect("UUID-shaped");
            assert_eq!(u.get_version_num(), 4, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id, &u.hyphenated().to_string(), "lowercase hyphenated");
        }
    }
}
