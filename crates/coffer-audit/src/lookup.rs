//! CloudTrail `LookupEvents` over the audit chain: newest first, one lookup attribute, a time
//! range, pages of at most 50 with tamper-checked NextTokens. Each call examines a bounded
//! number of records (a page may come back short, with a NextToken to go on), so a selective
//! filter over a long trail never makes one request scan it all.

use coffer_core::{RequestContext, ServiceError};
use coffer_service::OperationSpec;
use coffer_service::token::{TokenKey, scope};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chain::ChainEntry;
use crate::log::AuditLog;
use crate::record::{lookup_username, parse_time};

/// Target prefix of CloudTrail's JSON 1.1 API.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";
/// The same, as the Smithy-generated SDKs (Rust, Go v2, JS v3) send it.
pub const TARGET_PREFIX_SHORT: &str = "CloudTrail_20131101";

static OPERATIONS: &[OperationSpec] = &[OperationSpec {
    name: "LookupEvents",
    action: "cloudtrail:LookupEvents",
    read_only: true,
}];

/// Records examined per call at most.
const EXAMINE: usize = 10_000;
const PAGE: usize = 500;
/// Records are chained in arrival order, which can trail their event time a little (a slow
/// call, another node's clock): keep looking this far past StartTime before stopping.
const TIME_SLACK_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CloudTrailError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

impl CloudTrailError {
    fn client(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: 400,
        }
    }
}

impl coffer_service::opctx::RunError for CloudTrailError {
    fn unknown_operation() -> Self {
        Self::client(
            "UnknownOperationException",
            coffer_service::opctx::UNKNOWN_OPERATION,
        )
    }
    fn undecided() -> Self {
        Self {
            code: "InternalFailure",
            message: "An internal error occurred.".into(),
            status: 500,
        }
    }
}

impl ServiceError for CloudTrailError {
    fn code(&self) -> &'static str {
        self.code
    }
    fn status(&self) -> u16 {
        self.status
    }
}

impl From<crate::AuditError> for CloudTrailError {
    fn from(e: crate::AuditError) -> Self {
        tracing::error!(error = %e, "LookupEvents failed");
        Self {
            code: "InternalFailure",
            message: "An internal error occurred.".into(),
            status: 500,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Input {
    #[serde(default)]
    lookup_attributes: Option<Vec<Attribute>>,
    #[serde(default)]
    start_time: Option<f64>,
    #[serde(default)]
    end_time: Option<f64>,
    #[serde(default)]
    event_category: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    attribute_key: Option<String>,
    attribute_value: Option<String>,
}

const KEYS: &[&str] = &[
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

/// The CloudTrail API served by the audit log.
pub struct CloudTrailService {
    log: std::sync::Arc<AuditLog>,
    tokens: TokenKey,
}

impl CloudTrailService {
    /// `token_key`: derived from the root key, so NextTokens work across restarts and nodes.
    pub fn new(log: std::sync::Arc<AuditLog>, token_key: &[u8; 32]) -> Self {
        Self {
            log,
            tokens: TokenKey::new(token_key),
        }
    }

    pub fn operations() -> &'static [OperationSpec] {
        OPERATIONS
    }

    pub async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, CloudTrailError> {
        // Through the request's authorizer, like every other service's operations: the trail
        // is account-wide, so the decision is on `*` (CloudTrail documents no resource for it).
        let call =
            coffer_service::opctx::Dispatch::start::<CloudTrailError>(OPERATIONS, operation)?;
        call.ctx(ctx)
            .check_any()
            .map_err(|e| CloudTrailError::client("AccessDeniedException", e.message))?;
        let out = match call.name() {
            "LookupEvents" => self.lookup_events(ctx, body).await?,
            _ => unreachable!("every row of OPERATIONS is dispatched"),
        };
        call.finish(out)
    }

    async fn lookup_events(
        &self,
        ctx: &RequestContext,
        body: &[u8],
    ) -> Result<Vec<u8>, CloudTrailError> {
        let body = if body.is_empty() {
            b"{}".as_slice()
        } else {
            body
        };
        let input: Input = serde_json::from_slice(body).map_err(|e| {
            CloudTrailError::client("SerializationException", format!("Invalid request: {e}"))
        })?;
        let filter = match input.lookup_attributes.as_deref().unwrap_or_default() {
            [] => None,
            [a] => {
                let key = a.attribute_key.as_deref().unwrap_or_default();
                let value = a.attribute_value.as_deref().unwrap_or_default();
                if !KEYS.contains(&key) {
                    return Err(CloudTrailError::client(
                        "InvalidLookupAttributesException",
                        format!("Invalid lookup attribute key: {key}"),
                    ));
                }
                if value.is_empty() || value.chars().count() > 2000 {
                    return Err(CloudTrailError::client(
                        "InvalidLookupAttributesException",
                        "Lookup attribute values must be 1 to 2000 characters long.",
                    ));
                }
                if key == "ReadOnly" && value != "true" && value != "false" {
                    return Err(CloudTrailError::client(
                        "InvalidLookupAttributesException",
                        "The ReadOnly lookup attribute value must be true or false.",
                    ));
                }
                Some((key.to_string(), value.to_string()))
            }
            _ => {
                return Err(CloudTrailError::client(
                    "InvalidLookupAttributesException",
                    "You can specify only one lookup attribute.",
                ));
            }
        };
        let start = input.start_time.map(|t| t.floor() as i64);
        let end = input.end_time.map(|t| t.floor() as i64);
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(CloudTrailError::client(
                "InvalidTimeRangeException",
                "Start time must be earlier than end time.",
            ));
        }
        if let Some(c) = &input.event_category
            && c != "insight"
        {
            return Err(CloudTrailError::client(
                "InvalidEventCategoryException",
                format!("Invalid event category: {c}"),
            ));
        }
        let max = match input.max_results {
            None => 50,
            Some(n @ 1..=50) => n as usize,
            Some(_) => {
                return Err(CloudTrailError::client(
                    "InvalidMaxResultsException",
                    "MaxResults must be between 1 and 50.",
                ));
            }
        };
        let filter_text = filter
            .as_ref()
            .map(|(k, v)| format!("{k}={v}"))
            .unwrap_or_default();
        let token_scope = scope(&[
            "LookupEvents",
            ctx.account_id(),
            &ctx.region,
            &filter_text,
            &format!("{start:?}/{end:?}/{:?}", input.event_category),
        ]);
        let mut after: Option<u64> = match input.next_token.as_deref() {
            None | Some("") => None,
            Some(t) => Some(self.tokens.open(&token_scope, t).map_err(|_| {
                CloudTrailError::client("InvalidNextTokenException", "Invalid NextToken.")
            })?),
        };
        // Insight events are not produced here: an insight lookup is valid and empty.
        if input.event_category.is_some() {
            return Ok(serde_json::to_vec(&json!({"Events": []})).unwrap_or_default());
        }

        let mut events = Vec::new();
        let mut examined = 0;
        let mut exhausted = false;
        'scan: while events.len() < max {
            if examined >= EXAMINE {
                break;
            }
            let rows = self.log.scan_newest(after, PAGE).await?;
            if rows.is_empty() {
                exhausted = true;
                break;
            }
            for (seq, bytes) in rows {
                examined += 1;
                after = Some(seq);
                let Ok(entry) = serde_json::from_slice::<ChainEntry>(&bytes) else {
                    continue;
                };
                let r = &entry.record;
                let t = r["eventTime"].as_str().and_then(parse_time).unwrap_or(0);
                if start.is_some_and(|s| t < s - TIME_SLACK_SECS) {
                    exhausted = true;
                    break 'scan;
                }
                if start.is_some_and(|s| t < s) || end.is_some_and(|e| t > e) {
                    continue;
                }
                if r["recipientAccountId"].as_str() != Some(ctx.account_id())
                    || r["awsRegion"].as_str() != Some(ctx.region.as_str())
                {
                    continue;
                }
                if let Some((k, v)) = &filter
                    && !matches(r, k, v)
                {
                    continue;
                }
                events.push(event(r, t));
                if events.len() == max {
                    break 'scan;
                }
            }
        }
        let mut out = Map::new();
        out.insert("Events".into(), Value::Array(events));
        if !exhausted && let Some(seq) = after {
            // More may follow; `after` is the last record examined.
            if seq > 1 {
                out.insert(
                    "NextToken".into(),
                    json!(self.tokens.issue(&token_scope, &seq)),
                );
            }
        }
        Ok(serde_json::to_vec(&Value::Object(out)).unwrap_or_default())
    }
}

fn matches(r: &Value, key: &str, v: &str) -> bool {
    let resources = || r["resources"].as_array().into_iter().flatten();
    match key {
        "EventId" => r["eventID"] == v,
        "EventName" => r["eventName"] == v,
        "ReadOnly" => r["readOnly"].as_bool().map(|b| b.to_string()).as_deref() == Some(v),
        "Username" => lookup_username(r) == Some(v),
        "ResourceType" => resources().any(|x| x["type"] == v),
        "ResourceName" => {
            resources().any(|x| x["ARN"].as_str().is_some_and(|a| names_resource(a, v)))
        }
        "EventSource" => r["eventSource"] == v,
        "AccessKeyId" => r["userIdentity"]["accessKeyId"] == v,
        _ => false,
    }
}

/// Whether `v` names the resource `arn`: the ARN itself, its resource id (`key/ID`'s `ID`,
/// a parameter's name with or without its leading slash), or a secret's name (the ARN without
/// its six-character suffix).
fn names_resource(arn: &str, v: &str) -> bool {
    if arn == v {
        return true;
    }
    let Some(resource) = coffer_core::arn::Arn::parse(arn).map(|a| a.resource) else {
        return false;
    };
    if let Some(secret) = resource.strip_prefix("secret:") {
        return secret == v
            || secret
                .rsplit_once('-')
                .is_some_and(|(name, suffix)| suffix.len() == 6 && name == v);
    }
    if let Some(name) = resource.strip_prefix("parameter") {
        return name == v || name.strip_prefix('/') == Some(v);
    }
    resource.split_once('/').is_some_and(|(_, id)| id == v)
}

fn event(r: &Value, time: i64) -> Value {
    let mut e = Map::new();
    e.insert("EventId".into(), r["eventID"].clone());
    e.insert("EventName".into(), r["eventName"].clone());
    e.insert(
        "ReadOnly".into(),
        json!(r["readOnly"].as_bool().unwrap_or(false).to_string()),
    );
    if let Some(k) = r["userIdentity"]["accessKeyId"].as_str() {
        e.insert("AccessKeyId".into(), json!(k));
    }
    e.insert("EventTime".into(), json!(time));
    e.insert("EventSource".into(), r["eventSource"].clone());
    if let Some(u) = lookup_username(r) {
        e.insert("Username".into(), json!(u));
    }
    let resources: Vec<Value> = r["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| json!({"ResourceType": x["type"], "ResourceName": x["ARN"]}))
        .collect();
    e.insert("Resources".into(), Value::Array(resources));
    e.insert(
        "CloudTrailEvent".into(),
        json!(String::from_utf8(crate::canonical::to_vec(r)).unwrap_or_default()),
    );
    Value::Object(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        let s = "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf";
        assert!(names_resource(s, s));
        assert!(names_resource(s, "prod/db"));
        assert!(!names_resource(s, "prod"));
        let p = "arn:aws:ssm:us-east-1:1:parameter/prod/db";
        assert!(names_resource(p, "/prod/db"));
        assert!(names_resource(p, "prod/db"));
        assert!(!names_resource(p, "/db"));
        let k = "arn:aws:kms:us-east-1:1:key/1234";
        assert!(names_resource(k, "1234"));
    }
}
