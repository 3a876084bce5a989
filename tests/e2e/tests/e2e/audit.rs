//! The audit trail end to end: one redacted record per call (the grep test), LookupEvents
//! through the SDK, tamper detection on the stored trail, fail closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_sdk_secretsmanager::primitives::Blob;
use coffer_audit::AuditError;
use coffer_audit::chain::{ChainEntry, Head};
use coffer_audit::records::{Pending, RecordStore};
use coffer_audit::verify::{Problem, verify};
use coffer_core::Clock as _;
use coffer_store::{Entry, Store, WriteBatch};

use crate::harness::TestServer;

const MARKER: &str = "AUDITMARKER7f3a9c";
/// A String parameter's value is stored as given (AWS does not encrypt String parameters
/// either), so this one is looked for in the audit trail only.
const PLAIN_MARKER: &str = "PLAINMARKER51d2e8";

fn cloudtrail(s: &TestServer) -> aws_sdk_cloudtrail::Client {
    let conf = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
        .endpoint_url(s.endpoint())
        .credentials_provider(aws_sdk_cloudtrail::config::Credentials::new(
            coffer_server::DEV_ACCESS_KEY_ID,
            coffer_server::DEV_SECRET_ACCESS_KEY,
            None,
            None,
            "coffer-e2e",
        ))
        .build();
    aws_sdk_cloudtrail::Client::from_conf(conf)
}

/// Every byte the data directory holds (audit segments included), per file.
pub(crate) fn data_dir_text(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let path = e.path();
        if path.is_dir() {
            out.extend(data_dir_text(&path));
        } else if path.is_file() {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn every_call_leaves_one_redacted_record_and_no_value_reaches_disk() {
    // Scans the embedded store's files (PostgreSQL rows: tests/e2e postgres.rs).
    let s = TestServer::embedded().await;
    let sm = s.sm();
    let ssm = s.ssm();
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{MARKER}-binary"),
    );
    let mut calls = 0u64;
    macro_rules! call {
        ($e:expr) => {{
            calls += 1;
            $e
        }};
    }
    call!(
        sm.create_secret()
            .name("audit/a")
            .secret_string(format!("{MARKER}-create"))
            .send()
            .await
            .unwrap()
    );
    call!(
        sm.put_secret_value()
            .secret_id("audit/a")
            .secret_binary(Blob::new(format!("{MARKER}-binary")))
            .send()
            .await
            .unwrap()
    );
    call!(
        sm.put_secret_value()
            .secret_id("audit/a")
            .secret_string(format!("{MARKER}-put"))
            .send()
            .await
            .unwrap()
    );
    call!(
        sm.update_secret()
            .secret_id("audit/a")
            .secret_string(format!("{MARKER}-update"))
            .send()
            .await
            .unwrap()
    );
    call!(
        sm.get_secret_value()
            .secret_id("audit/a")
            .send()
            .await
            .unwrap()
    );
    call!(
        sm.batch_get_secret_value()
            .secret_id_list("audit/a")
            .send()
            .await
            .unwrap()
    );
    call!(
        sm.describe_secret()
            .secret_id("audit/a")
            .send()
            .await
            .unwrap()
    );
    call!(
        sm.list_secret_version_ids()
            .secret_id("audit/a")
            .send()
            .await
            .unwrap()
    );
    call!(sm.list_secrets().send().await.unwrap());
    call!(sm.get_random_password().send().await.unwrap());
    // A client error carrying the marker.
    let e = call!(
        sm.create_secret()
            .name("audit/a")
            .secret_string(format!("{MARKER}-dup"))
            .send()
            .await
            .unwrap_err()
    );
    assert_eq!(crate::harness::code(&e), "ResourceExistsException");
    // An authentication failure carrying the marker.
    let bad = s.sm_with(
        "us-east-1",
        coffer_server::DEV_ACCESS_KEY_ID,
        "wrong-secret-key-wrong-secret-key-0000",
    );
    call!(
        bad.put_secret_value()
            .secret_id("audit/a")
            .secret_string(format!("{MARKER}-unauth"))
            .send()
            .await
            .unwrap_err()
    );
    call!(
        ssm.put_parameter()
            .name("/audit/p")
            .value(format!("{MARKER}-secure"))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap()
    );
    call!(
        ssm.put_parameter()
            .name("/audit/q")
            .value(format!("{PLAIN_MARKER}-plain"))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap()
    );
    call!(
        ssm.get_parameter()
            .name("/audit/p")
            .with_decryption(true)
            .send()
            .await
            .unwrap()
    );
    call!(
        ssm.get_parameters()
            .names("/audit/p")
            .names("/audit/q")
            .with_decryption(true)
            .send()
            .await
            .unwrap()
    );
    call!(
        ssm.get_parameters_by_path()
            .path("/audit")
            .with_decryption(true)
            .send()
            .await
            .unwrap()
    );
    call!(
        ssm.get_parameter_history()
            .name("/audit/p")
            .with_decryption(true)
            .send()
            .await
            .unwrap()
    );
    call!(
        ssm.delete_parameter()
            .name("/audit/q")
            .send()
            .await
            .unwrap()
    );
    call!(
        sm.delete_secret()
            .secret_id("audit/a")
            .force_delete_without_recovery(true)
            .send()
            .await
            .unwrap()
    );
    // An unknown operation (raw, signed).
    let (status, _, _) = call!(
        s.raw_post(
            Some("secretsmanager.NoSuchOperation"),
            format!("{{\"x\":\"{MARKER}\"}}").as_bytes(),
            true
        )
        .await
    );
    assert_eq!(status, 400);

    let trail = s.server.audit().read_trail().await.unwrap();
    assert_eq!(trail.entries.len() as u64, calls, "one record per call");
    let names: Vec<&str> = trail
        .entries
        .iter()
        .map(|(_, e)| e.record["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "CreateSecret");
    assert!(names.contains(&"NoSuchOperation"));
    let find = |name: &str| {
        trail
            .entries
            .iter()
            .map(|(_, e)| &e.record)
            .find(|r| r["eventName"] == name)
            .unwrap()
            .clone()
    };
    let create = find("CreateSecret");
    assert_eq!(create["eventSource"], "secretsmanager.amazonaws.com");
    assert_eq!(create["eventType"], "AwsApiCall");
    assert_eq!(create["readOnly"], false);
    assert_eq!(create["awsRegion"], "us-east-1");
    assert_eq!(create["sourceIPAddress"], "127.0.0.1");
    assert_eq!(create["userIdentity"]["type"], "Root");
    assert_eq!(
        create["userIdentity"]["accessKeyId"],
        coffer_server::DEV_ACCESS_KEY_ID
    );
    assert_eq!(create["requestParameters"]["name"], "audit/a");
    assert_eq!(
        create["requestParameters"]["secretString"],
        coffer_audit::redact::HIDDEN
    );
    assert!(
        create["responseElements"]["arn"]
            .as_str()
            .unwrap()
            .contains(":secret:audit/a-")
    );
    assert_eq!(
        create["resources"][0]["type"],
        "AWS::SecretsManager::Secret"
    );
    assert_eq!(create["recipientAccountId"], "000000000000");
    assert!(
        create["userAgent"]
            .as_str()
            .unwrap()
            .contains("aws-sdk-rust")
    );
    let get = find("GetSecretValue");
    assert_eq!(get["readOnly"], true);
    assert_eq!(get["responseElements"], serde_json::Value::Null);
    assert!(
        get["resources"][0]["ARN"]
            .as_str()
            .unwrap()
            .contains(":secret:audit/a-")
    );
    let records: Vec<&serde_json::Value> = trail.entries.iter().map(|(_, e)| &e.record).collect();
    let dup = records
        .iter()
        .find(|r| r["errorCode"] == "ResourceExistsException")
        .unwrap();
    assert_eq!(dup["eventName"], "CreateSecret");
    let unauth = records
        .iter()
        .find(|r| r["errorCode"] == "InvalidSignatureException")
        .unwrap();
    assert_eq!(unauth["userIdentity"]["type"], "Unknown");
    assert_eq!(
        unauth["userIdentity"]["accessKeyId"],
        coffer_server::DEV_ACCESS_KEY_ID
    );
    assert_eq!(unauth["requestParameters"], serde_json::Value::Null);
    let put_param = find("PutParameter");
    assert_eq!(put_param["eventSource"], "ssm.amazonaws.com");
    assert_eq!(
        put_param["requestParameters"]["value"],
        coffer_audit::redact::HIDDEN
    );
    assert_eq!(
        put_param["resources"][0]["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/audit/p"
    );

    // The grep test: nowhere in the trail, nowhere in the data directory.
    s.server.audit().seal("test").await.unwrap();
    let export = coffer_audit::export::to_jsonl(&trail, None);
    assert!(!export.contains(MARKER), "marker in the audit trail");
    assert!(
        !export.contains(PLAIN_MARKER),
        "String parameter value in the audit trail"
    );
    assert!(!export.contains(&b64), "base64 marker in the audit trail");
    let dir = s._dir.as_ref().unwrap().path().to_path_buf();
    let key = s.audit_key();
    let report = verify(&s.server.audit().read_trail().await.unwrap(), &key);
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.sealed_through, Some(calls));
    s.server.shutdown().await;
    for (file, bytes) in data_dir_text(&dir) {
        if let Some(at) = bytes
            .windows(MARKER.len())
            .position(|w| w == MARKER.as_bytes())
        {
            let ctx = String::from_utf8_lossy(
                &bytes[at.saturating_sub(300)..(at + 100).min(bytes.len())],
            );
            panic!("marker in {file}: ...{ctx}...");
        }
        assert!(!contains(&bytes, b64.as_bytes()), "base64 marker in {file}");
    }
}

#[tokio::test]
async fn lookup_events_filters_pages_and_refuses_bad_input() {
    // Records as store rows (in memory) and in segment files (durable): one behaviour.
    lookup_events_scenario(TestServer::dev().await).await;
    lookup_events_scenario(TestServer::durable().await).await;
}

async fn lookup_events_scenario(s: TestServer) {
    let sm = s.sm();
    for i in 0..3 {
        sm.create_secret()
            .name(format!("look/{i}"))
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    for _ in 0..4 {
        sm.get_secret_value()
            .secret_id("look/1")
            .send()
            .await
            .unwrap();
    }
    s.ssm()
        .put_parameter()
        .name("/look/p")
        .value("v")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let ct = cloudtrail(&s);
    let attr = |k: LookupAttributeKey, v: &str| {
        LookupAttribute::builder()
            .attribute_key(k)
            .attribute_value(v)
            .build()
            .unwrap()
    };

    // Newest first, CloudTrailEvent is the record as a JSON string.
    let all = ct.lookup_events().send().await.unwrap();
    let events = all.events();
    assert_eq!(events.len(), 8);
    assert_eq!(events[0].event_name(), Some("PutParameter"));
    assert_eq!(events[7].event_name(), Some("CreateSecret"));
    let rec: serde_json::Value =
        serde_json::from_str(events[0].cloud_trail_event().unwrap()).unwrap();
    assert_eq!(rec["eventSource"], "ssm.amazonaws.com");
    assert_eq!(events[0].username(), Some("root"));
    assert_eq!(
        events[0].access_key_id(),
        Some(coffer_server::DEV_ACCESS_KEY_ID)
    );

    let by_name = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::EventName, "GetSecretValue"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.events().len(), 4);
    let by_resource = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::ResourceName, "look/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_resource.events().len(), 5, "the create and four reads");
    let ro = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::ReadOnly, "true"))
        .send()
        .await
        .unwrap();
    // The reads, plus the LookupEvents calls made so far (each is recorded before it answers
    // the next one).
    assert!(ro.events().iter().all(|e| e.read_only() == Some("true")));
    assert!(
        ro.events()
            .iter()
            .filter(|e| e.event_name() == Some("GetSecretValue"))
            .count()
            == 4
    );
    let src = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::EventSource, "ssm.amazonaws.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(src.events().len(), 1);
    let id = src.events()[0].event_id().unwrap().to_string();
    let by_id = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::EventId, &id))
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.events().len(), 1);
    let by_type = ct
        .lookup_events()
        .lookup_attributes(attr(
            LookupAttributeKey::ResourceType,
            "AWS::SSM::Parameter",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(by_type.events().len(), 1);
    let by_user = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::Username, "nobody"))
        .send()
        .await
        .unwrap();
    assert!(by_user.events().is_empty());
    let by_key = ct
        .lookup_events()
        .lookup_attributes(attr(
            LookupAttributeKey::AccessKeyId,
            coffer_server::DEV_ACCESS_KEY_ID,
        ))
        .send()
        .await
        .unwrap();
    assert!(by_key.events().len() >= 8);

    // Pages of two, no repeats, same order as one page.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = ct
            .lookup_events()
            .lookup_attributes(attr(LookupAttributeKey::EventName, "GetSecretValue"))
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        seen.extend(
            page.events()
                .iter()
                .map(|e| e.event_id().unwrap().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let one: Vec<String> = by_name
        .events()
        .iter()
        .map(|e| e.event_id().unwrap().to_string())
        .collect();
    assert_eq!(seen, one);

    // Time range: everything is "now"; a window in the past finds nothing.
    let past = aws_sdk_cloudtrail::primitives::DateTime::from_secs(s.clock.now_secs() - 7200);
    let past_end = aws_sdk_cloudtrail::primitives::DateTime::from_secs(s.clock.now_secs() - 3600);
    let none = ct
        .lookup_events()
        .start_time(past)
        .end_time(past_end)
        .send()
        .await
        .unwrap();
    assert!(none.events().is_empty());

    // CloudTrail's errors.
    let code = |e: &aws_sdk_cloudtrail::error::SdkError<
        aws_sdk_cloudtrail::operation::lookup_events::LookupEventsError,
    >| {
        aws_sdk_cloudtrail::error::ProvideErrorMetadata::code(e)
            .unwrap_or_default()
            .to_string()
    };
    let e = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::EventName, "A"))
        .lookup_attributes(attr(LookupAttributeKey::EventName, "B"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidLookupAttributesException");
    let e = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::ReadOnly, "maybe"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidLookupAttributesException");
    let e = ct
        .lookup_events()
        .start_time(past_end)
        .end_time(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidTimeRangeException");
    let e = ct.lookup_events().max_results(51).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidMaxResultsException");
    let e = ct
        .lookup_events()
        .next_token("forged.token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidNextTokenException");
    // A token for one filter is refused for another.
    let page = ct.lookup_events().max_results(1).send().await.unwrap();
    let t = page.next_token().unwrap().to_string();
    let e = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::EventName, "GetSecretValue"))
        .next_token(t)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidNextTokenException");
}

/// Fails every batch that writes an `audit/` key while `fail` is set.
struct AuditFault {
    inner: Arc<dyn Store>,
    fail: Arc<AtomicBool>,
}

#[async_trait]
impl Store for AuditFault {
    async fn get(&self, key: &[u8]) -> coffer_store::Result<Option<Entry>> {
        self.inner.get(key).await
    }
    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> coffer_store::Result<Vec<(Vec<u8>, Entry)>> {
        self.inner.scan(start, end, limit).await
    }
    async fn commit(&self, batch: WriteBatch) -> coffer_store::Result<u64> {
        if self.fail.load(Ordering::SeqCst)
            && batch.ops.iter().any(|(k, _)| k.starts_with(b"audit/"))
        {
            return Err(coffer_store::StoreError::Unavailable(
                "audit area not writable (test)".into(),
            ));
        }
        self.inner.commit(batch).await
    }
}

#[tokio::test]
async fn a_call_whose_record_cannot_be_written_fails_and_changes_nothing() {
    // Records as rows of the in-memory store: the store refuses `audit/` writes.
    let fail = Arc::new(AtomicBool::new(false));
    let f = fail.clone();
    let s = TestServer::with_config(move |c| {
        c.store_wrapper = Some(Arc::new(move |inner: Arc<dyn Store>| {
            Arc::new(AuditFault {
                inner,
                fail: f.clone(),
            }) as Arc<dyn Store>
        }));
    })
    .await;
    fails_closed(&s, &fail).await;
}

#[tokio::test]
async fn a_call_whose_record_cannot_be_written_fails_and_changes_nothing_on_disk() {
    // Records in segment files beside the embedded store: the segment writes fail.
    let fail = Arc::new(AtomicBool::new(false));
    let f = fail.clone();
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::durable_at(dir.path(), move |c| {
        c.records_wrapper = Some(Arc::new(move |inner: Arc<dyn RecordStore>| {
            Arc::new(RecordsFault {
                inner,
                fail: f.clone(),
            }) as Arc<dyn RecordStore>
        }));
    })
    .await;
    fails_closed(&s, &fail).await;
}

/// Fails every append while `fail` is set.
struct RecordsFault {
    inner: Arc<dyn RecordStore>,
    fail: Arc<AtomicBool>,
}

#[async_trait]
impl RecordStore for RecordsFault {
    async fn append(&self, batch: &[Pending<'_>]) -> Result<bool, AuditError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(AuditError::Unavailable(
                "segment not writable (test)".into(),
            ));
        }
        self.inner.append(batch).await
    }
    async fn head(&self) -> Result<Head, AuditError> {
        self.inner.head().await
    }
    async fn scan_newest(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, bytes::Bytes)>, AuditError> {
        self.inner.scan_newest(after, limit).await
    }
    async fn entries(&self) -> Result<(Vec<(Option<u64>, ChainEntry)>, Option<Head>), AuditError> {
        self.inner.entries().await
    }
    async fn remove_below(&self, seq: u64) -> Result<usize, AuditError> {
        self.inner.remove_below(seq).await
    }
    fn failing(&self) -> bool {
        self.fail.load(Ordering::SeqCst) || self.inner.failing()
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

/// While `fail` is set, reads and writes fail with InternalFailure and change nothing; the
/// trail stays whole.
async fn fails_closed(s: &TestServer, fail: &AtomicBool) {
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(s.endpoint())
        .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            coffer_server::DEV_ACCESS_KEY_ID,
            coffer_server::DEV_SECRET_ACCESS_KEY,
            None,
            None,
            "e2e",
        ))
        .build();
    let sm = aws_sdk_secretsmanager::Client::from_conf(conf);
    sm.create_secret()
        .name("fc")
        .secret_string("before")
        .send()
        .await
        .unwrap();
    let before = s.server.audit().read_trail().await.unwrap().entries.len();

    fail.store(true, Ordering::SeqCst);
    let e = sm
        .put_secret_value()
        .secret_id("fc")
        .secret_string("after")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&e), "InternalFailure");
    let e = sm
        .create_secret()
        .name("fc2")
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&e), "InternalFailure");
    let e = sm
        .get_secret_value()
        .secret_id("fc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        crate::harness::code(&e),
        "InternalFailure",
        "reads fail closed too"
    );
    fail.store(false, Ordering::SeqCst);

    // Nothing changed, and the trail is whole.
    let v = sm.get_secret_value().secret_id("fc").send().await.unwrap();
    assert_eq!(v.secret_string(), Some("before"));
    let ids = sm
        .list_secret_version_ids()
        .secret_id("fc")
        .send()
        .await
        .unwrap();
    assert_eq!(ids.versions().len(), 1);
    let e = sm
        .describe_secret()
        .secret_id("fc2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&e), "ResourceNotFoundException");
    let trail = s.server.audit().read_trail().await.unwrap();
    assert_eq!(
        trail.entries.len(),
        before + 3,
        "the three calls after the fault"
    );
    let key = s.audit_key();
    assert!(verify(&trail, &key).ok());
}

#[tokio::test]
async fn tampering_with_the_stored_trail_is_named_by_sequence() {
    // Edits the embedded store's segment files.
    let s = TestServer::embedded().await;
    let sm = s.sm();
    sm.create_secret()
        .name("t")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    for _ in 0..5 {
        sm.get_secret_value().secret_id("t").send().await.unwrap();
    }
    let key = s.audit_key();
    let dir = s._dir.as_ref().unwrap().path().to_path_buf();
    let s_dir = s._dir;
    s.server.shutdown().await; // seals with a digest
    let (trail, _) = coffer_audit::log::read_data_dir(&dir).unwrap();
    assert!(verify(&trail, &key).ok(), "{:?}", verify(&trail, &key));
    assert_eq!(trail.entries.len(), 6);
    assert_eq!(trail.digests.last().unwrap().reason, "shutdown");
    let problem = |edit: &dyn Fn(&mut Vec<Vec<u8>>)| {
        let seg = segment_file(&dir);
        let original = std::fs::read(&seg).unwrap();
        let end = original
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(original.len());
        let mut lines: Vec<Vec<u8>> = original[..end]
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        edit(&mut lines);
        let mut bytes = lines.concat();
        bytes.resize(original.len().max(bytes.len()), 0);
        std::fs::write(&seg, bytes).unwrap();
        let (trail, _) = coffer_audit::log::read_data_dir(&dir).unwrap();
        std::fs::write(&seg, original).unwrap();
        verify(&trail, &key).problem
    };

    let edit3 = |l: &mut Vec<Vec<u8>>| {
        l[2] = String::from_utf8(l[2].clone())
            .unwrap()
            .replace("GetSecretValue", "DescribeSecret")
            .into_bytes();
    };
    assert_eq!(problem(&edit3), Some(Problem::Modified { seq: 3 }));
    assert_eq!(
        problem(&|l| {
            l.remove(3);
        }),
        Some(Problem::Missing { from: 4, to: 4 })
    );
    assert_eq!(
        problem(&|l| l.swap(2, 3)),
        Some(Problem::Reordered { seq: 3, after: 4 })
    );
    assert_eq!(
        problem(&|l| {
            let copy = l[2].clone();
            l.push(copy);
        }),
        Some(Problem::Inserted { seq: 3 })
    );
    assert_eq!(problem(&|_| {}), None, "the file is back as it was");
    drop(s_dir);
}

/// The one audit segment of a small data directory.
fn segment_file(dir: &std::path::Path) -> std::path::PathBuf {
    let segs: Vec<_> = std::fs::read_dir(coffer_audit::log::segments_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.into_iter().next().unwrap()
}

#[tokio::test]
async fn background_actions_are_recorded_as_service_events() {
    let s = TestServer::dev().await;
    let sm = s.sm();
    sm.create_secret()
        .name("bg")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    sm.delete_secret()
        .secret_id("bg")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    // Runs are one at a time per node; this one also waits out the server's startup run, which
    // could otherwise take its digest after the clock moved, just before the purge below.
    s.server.run_background_jobs().await;
    s.clock.advance(std::time::Duration::from_secs(8 * 86_400));
    s.server.run_background_jobs().await;

    let trail = s.server.audit().read_trail().await.unwrap();
    let last = &trail.entries.last().unwrap().1.record;
    assert_eq!(last["eventType"], "AwsServiceEvent");
    assert_eq!(last["eventName"], "DeleteSecret");
    assert_eq!(last["eventSource"], "secretsmanager.amazonaws.com");
    assert_eq!(
        last["userIdentity"]["invokedBy"],
        "secretsmanager.amazonaws.com"
    );
    assert!(
        last["resources"][0]["ARN"]
            .as_str()
            .unwrap()
            .contains(":secret:bg-")
    );
    // The background run also sealed the chain.
    let key = s.audit_key();
    let report = verify(&trail, &key);
    assert!(report.ok(), "{report:?}");
    let events: Vec<String> = trail
        .entries
        .iter()
        .map(|(_, e)| format!("{} {}", e.record["eventType"], e.record["eventName"]))
        .collect();
    assert_eq!(report.sealed_through, Some(3), "{events:?}");
    // Visible through LookupEvents like any event.
    let found = cloudtrail(&s)
        .lookup_events()
        .lookup_attributes(
            LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::EventName)
                .attribute_value("DeleteSecret")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(found.events().len(), 2, "the API call and the purge");
    assert_eq!(
        found.events()[0].username(),
        Some("secretsmanager.amazonaws.com")
    );
}

#[tokio::test]
async fn retention_prunes_at_a_sealed_digest_and_the_trail_still_verifies() {
    let s = TestServer::dev().await;
    let sm = s.sm();
    sm.create_secret()
        .name("r")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    sm.get_secret_value().secret_id("r").send().await.unwrap();
    let audit = s.server.audit();
    audit.seal("test").await.unwrap();
    s.clock.advance(std::time::Duration::from_secs(3600));
    sm.get_secret_value().secret_id("r").send().await.unwrap();
    let before = audit.read_trail().await.unwrap();
    let removed = audit
        .prune(std::time::Duration::from_secs(1800))
        .await
        .unwrap();
    assert_eq!(
        removed,
        2,
        "{:?} {:?}",
        before.digests,
        before.entries.iter().map(|e| e.1.seq).collect::<Vec<_>>()
    );
    let trail = audit.read_trail().await.unwrap();
    assert_eq!(trail.entries.first().unwrap().1.seq, 3);
    assert_eq!(trail.anchor.unwrap().seq, 3);
    let key = audit.public_key().expect("unsealed").raw().unwrap();
    assert!(verify(&trail, &key).ok(), "{:?}", verify(&trail, &key));
    // Removing the sealing digest makes the prune point unverifiable.
    let mut t = trail;
    t.digests.clear();
    assert_eq!(
        verify(&t, &key).problem,
        Some(Problem::UnsealedAnchor { seq: 3 })
    );
}

#[tokio::test]
async fn iam_and_sts_calls_are_recorded_with_secrets_hidden() {
    use crate::iam_util::{iam, sts, sts_with};
    let s = TestServer::dev().await;
    let iam = iam(&s);
    iam.create_user()
        .user_name("audit-iam")
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("audit-iam")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let user_secret = key.secret_access_key.clone();
    let err = iam.get_user().user_name("audit-nobody").send().await;
    assert!(err.is_err());
    sts(&s).get_caller_identity().send().await.unwrap();
    // The user's own call, signed with the new key.
    sts_with(&s, &key.access_key_id, &user_secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();

    let trail = s.server.audit().read_trail().await.unwrap();
    let records: Vec<&serde_json::Value> = trail.entries.iter().map(|(_, e)| &e.record).collect();
    let find = |name: &str| {
        records
            .iter()
            .filter(|r| r["eventName"] == name)
            .copied()
            .collect::<Vec<_>>()
    };
    let create = find("CreateUser");
    assert_eq!(create.len(), 1);
    assert_eq!(create[0]["eventSource"], "iam.amazonaws.com");
    assert_eq!(create[0]["readOnly"], false);
    assert_eq!(create[0]["requestParameters"]["userName"], "audit-iam");
    assert_eq!(create[0]["userIdentity"]["type"], "Root");
    let missing = find("GetUser");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["readOnly"], true);
    assert!(
        missing[0]["errorCode"]
            .as_str()
            .unwrap()
            .contains("NoSuchEntity"),
        "{}",
        missing[0]
    );
    let who = find("GetCallerIdentity");
    assert_eq!(who.len(), 2);
    assert!(who.iter().all(|r| r["eventSource"] == "sts.amazonaws.com"));
    assert_eq!(who[1]["userIdentity"]["type"], "IAMUser");
    assert_eq!(who[1]["userIdentity"]["userName"], "audit-iam");
    assert_eq!(who[1]["userIdentity"]["accessKeyId"], key.access_key_id);
    assert_eq!(find("CreateAccessKey").len(), 1);

    let export = coffer_audit::export::to_jsonl(&trail, None);
    assert!(
        !export.contains(&user_secret),
        "a secret access key reached the audit trail"
    );
}
