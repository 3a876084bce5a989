//! Parameter-policy events and their delivery.
//!
//! A policy that fires (an `Expiration` deleting its parameter, an `ExpirationNotification` or
//! `NoChangeNotification` falling due) produces one event in the EventBridge shape AWS documents
//! for Parameter Store (`source: aws.ssm`, `detail-type: Parameter Store Policy Action`). The
//! event is queued once per configured [`EventSink`] in the store, in the same batch that marks
//! the policy fired, so a due item is emitted exactly once across the nodes sharing the store and
//! survives restarts. The runner then delivers queued events: a node first claims an entry (moves
//! it a minute ahead in a batch checked against the entry it read), so one node delivers it; a
//! failed delivery is retried with exponential backoff (kept in the store, so retries survive
//! restarts too). Delivery is at least once: a crash between a sink's acknowledgement and the
//! queue update repeats that one event (after the claim's minute, from any node).
//!
//! ```text
//! ps/outbox/{sink}/{next attempt ms:020}/{seq:016x}-{event id}   Queued (JSON): attempts + event
//! ```

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::model::{InlinePolicy, Param};

/// `detail-type` of every event this module emits.
pub const DETAIL_TYPE: &str = "Parameter Store Policy Action";
/// The event log's file name inside the data directory.
pub const EVENT_LOG_FILE: &str = "parameter-events.jsonl";

pub(crate) const OUTBOX_PREFIX: &str = "ps/outbox/";
/// Longest wait between two delivery attempts of one event.
pub(crate) const MAX_BACKOFF_MS: i64 = 3_600_000;

/// Where events go. Implementations: [`EventLog`] here, an HTTP webhook in the server.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// A short, stable name (`[a-z0-9-]+`) keying this sink's queue in the store: renaming it
    /// orphans what is queued under the old name.
    fn name(&self) -> &str;
    /// Delivers one event (a JSON object, one line). `Err` = retry later; the text is logged.
    async fn deliver(&self, event: &str) -> Result<(), String>;
}

/// The append-only event log: JSON Lines in a file (`parameter-events.jsonl` in the data
/// directory), or in memory for `--dev` without a file.
pub struct EventLog {
    target: Target,
}

enum Target {
    File(PathBuf),
    Memory(Mutex<Vec<String>>),
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::File(p) => f.debug_tuple("EventLog").field(p).finish(),
            Target::Memory(_) => f.write_str("EventLog(memory)"),
        }
    }
}

impl EventLog {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            target: Target::File(path.into()),
        }
    }

    pub fn memory() -> Self {
        Self {
            target: Target::Memory(Mutex::new(Vec::new())),
        }
    }

    /// The file this log appends to (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::File(p) => Some(p),
            Target::Memory(_) => None,
        }
    }

    /// Every event logged so far, oldest first (a missing file is an empty log).
    pub fn events(&self) -> std::io::Result<Vec<String>> {
        match &self.target {
            Target::Memory(m) => Ok(m.lock().map(|v| v.clone()).unwrap_or_default()),
            Target::File(p) => match std::fs::read_to_string(p) {
                Ok(s) => Ok(s.lines().map(str::to_owned).collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(e),
            },
        }
    }
}

#[async_trait]
impl EventSink for EventLog {
    fn name(&self) -> &str {
        "log"
    }

    async fn deliver(&self, event: &str) -> Result<(), String> {
        // One event per line: compact JSON never holds a raw newline, but be sure.
        let line = event.replace('\n', " ");
        match &self.target {
            Target::Memory(m) => {
                m.lock().map_err(|_| "event log poisoned")?.push(line);
                Ok(())
            }
            Target::File(p) => {
                let p = p.clone();
                tokio::task::spawn_blocking(move || append_line(&p, &line))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("appending to the event log: {e}"))
            }
        }
    }
}

fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf)?;
    f.sync_data()
}

/// One queued delivery.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Queued {
    pub attempts: u32,
    pub event: String,
}

pub(crate) fn outbox_prefix(sink: &str) -> String {
    format!("{OUTBOX_PREFIX}{sink}/")
}

/// `entry` = `{sequence:016x}-{event id}`, so entries due at one time keep emission order.
pub(crate) fn outbox_key(sink: &str, due_ms: i64, entry: &str) -> Vec<u8> {
    format!("{OUTBOX_PREFIX}{sink}/{:020}/{entry}", due_ms.max(0)).into_bytes()
}

/// A per-process sequence ordering queue entries emitted in the same millisecond.
pub(crate) fn next_seq() -> u64 {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Wait before the next attempt after `attempts` failed ones: 1 s, 2 s, 4 s, ... up to an hour.
pub(crate) fn backoff_ms(attempts: u32) -> i64 {
    let exp = attempts.saturating_sub(1).min(31);
    1000i64.saturating_mul(1i64 << exp).min(MAX_BACKOFF_MS)
}

/// `2019-02-25T22:37:28Z` (EventBridge's `time`), or with milliseconds for reasons.
pub(crate) fn iso(ms: i64, millis: bool) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    if millis {
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
            t.millisecond()
        )
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// What fired, for the event's `detail`.
pub(crate) struct Fired<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub canon: &'a str,
    pub param: &'a Param,
    pub policy: &'a InlinePolicy,
    pub now_ms: i64,
}

/// The EventBridge event for a policy that fired, as compact JSON.
pub(crate) fn policy_event(f: &Fired<'_>, id: &str) -> String {
    let partition = coffer_core::arn::partition_for_region(f.region);
    let arn = crate::model::param_arn(partition, f.region, f.account, f.canon);
    let since = iso(f.param.current.modified_ms, true);
    let (status, reason) = match f.policy.kind.as_str() {
        "Expiration" => (
            "Finished",
            format!(
                "The parameter expired at {} and was deleted. This action was taken based on the policy created at {since}.",
                iso(f.policy.due_ms.unwrap_or(f.now_ms), true)
            ),
        ),
        "ExpirationNotification" => (
            "Success",
            format!(
                "The parameter will expire at {}. This notification was generated based on the policy created at {since}.",
                iso(f.param.expiration_ms().unwrap_or(f.now_ms), true)
            ),
        ),
        _ => (
            "Success",
            format!(
                "The parameter has not been changed for {}. This notification was generated based on the policy created at {since}.",
                period(&f.policy.text, "After")
            ),
        ),
    };
    json!({
        "version": "0",
        "id": id,
        "detail-type": DETAIL_TYPE,
        "source": "aws.ssm",
        "account": f.account,
        "time": iso(f.now_ms, false),
        "region": f.region,
        "resources": [arn],
        "detail": {
            "parameter-name": f.param.name,
            "parameter-type": f.param.current.ptype.as_str(),
            "policy-type": f.policy.kind,
            "policy-content": f.policy.text,
            "action-status": status,
            "action-reason": reason,
        }
    })
    .to_string()
}

/// `"2 hours"`, `"1 day"` from a policy's `{member, Unit}` attributes.
fn period(text: &str, member: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let attrs = &v["Attributes"];
    let n = match &attrs[member] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => "?".into(),
    };
    let unit = match attrs["Unit"].as_str() {
        Some("Days") => "day",
        _ => "hour",
    };
    let plural = if n == "1" { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_ms(1), 1000);
        assert_eq!(backoff_ms(2), 2000);
        assert_eq!(backoff_ms(4), 8000);
        assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
    }

    #[test]
    fn times_and_periods() {
        assert_eq!(iso(1_551_134_248_000, false), "2019-02-25T22:37:28Z");
        assert_eq!(iso(1_551_134_248_795, true), "2019-02-25T22:37:28.795Z");
        assert_eq!(
            period(r#"{"Attributes":{"After":"2","Unit":"Hours"}}"#, "After"),
            "2 hours"
        );
        assert_eq!(
            period(r#"{"Attributes":{"After":"1","Unit":"Days"}}"#, "After"),
            "1 day"
        );
        assert!(outbox_key("log", 5, "x") < outbox_key("log", 10, "a"));
    }
}
