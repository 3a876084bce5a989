//! Parameter policies that fire: notification and expiration events on a manual clock, their
//! EventBridge shape, exactly-once emission, re-arming, restarts and delivery retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::{Caller, Clock, ManualClock, RequestContext};
use coffer_kms::Keyring;
use coffer_parameters::{EventLog, EventSink, ParametersService};
use coffer_store::Store;
use coffer_store::memory::MemoryStore;
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn ctx() -> RequestContext {
    RequestContext::new(Caller::root(ACCOUNT, "AKIDEXAMPLE"), "eu-west-1", "req")
}

fn service(
    store: &Arc<MemoryStore>,
    clock: &Arc<ManualClock>,
    sinks: Vec<Arc<dyn EventSink>>,
) -> ParametersService {
    let store: Arc<dyn Store> = store.clone();
    let keys = Arc::new(Keyring::new(
        store.clone(),
        coffer_crypto::RootKey::from_bytes([9; 32]),
    ));
    ParametersService::new(store, keys, clock.clone()).with_event_sinks(sinks)
}

struct Env {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    log: Arc<EventLog>,
    svc: ParametersService,
}

fn env() -> Env {
    let store = Arc::new(MemoryStore::default());
    let clock = ManualClock::new();
    let log = Arc::new(EventLog::memory());
    let svc = service(&store, &clock, vec![log.clone()]);
    Env {
        store,
        clock,
        log,
        svc,
    }
}

async fn call(svc: &ParametersService, op: &str, body: Value) -> Value {
    let body = serde_json::to_vec(&body).unwrap();
    match svc.call(&ctx(), op, &body).await {
        Ok(out) => serde_json::from_slice(&out).unwrap(),
        Err(e) => panic!("{op} failed: {e}"),
    }
}

fn events(log: &EventLog) -> Vec<Value> {
    log.events()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
        .collect()
}

fn iso_in(clock: &ManualClock, after: Duration) -> String {
    let ms = clock.now_millis() + after.as_millis() as i64;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn put_with(svc: &ParametersService, name: &str, policies: &str) {
    call(
        svc,
        "PutParameter",
        json!({"Name": name, "Value": "v1", "Type": "SecureString", "Tier": "Advanced",
               "Policies": policies}),
    )
    .await;
}

fn no_change(after: &str, unit: &str) -> String {
    format!(
        r#"[{{"Type":"NoChangeNotification","Version":"1.0","Attributes":{{"After":"{after}","Unit":"{unit}"}}}}]"#
    )
}

#[tokio::test]
async fn expiration_notification_then_expiration_each_fire_once_in_the_documented_shape() {
    let e = env();
    let policies = format!(
        r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{}"}}}},
            {{"Type":"ExpirationNotification","Version":"1.0","Attributes":{{"Before":"1","Unit":"Days"}}}}]"#,
        iso_in(&e.clock, 3 * DAY)
    );
    put_with(&e.svc, "/app/db/password", &policies).await;

    e.clock.advance(DAY);
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    assert!(events(&e.log).is_empty(), "nothing is due yet");

    e.clock.advance(DAY + HOUR);
    assert_eq!(e.svc.run_policies().await.unwrap(), 1);
    let got = events(&e.log);
    assert_eq!(got.len(), 1);
    let ev = &got[0];
    assert_eq!(ev["version"], "0");
    assert_eq!(ev["source"], "aws.ssm");
    assert_eq!(ev["detail-type"], "Parameter Store Policy Action");
    assert_eq!(ev["account"], ACCOUNT);
    assert_eq!(ev["region"], "eu-west-1");
    assert_eq!(
        ev["resources"],
        json!([format!(
            "arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/app/db/password"
        )])
    );
    assert_eq!(ev["id"].as_str().unwrap().len(), 36);
    let t = ev["time"].as_str().unwrap();
    assert!(t.ends_with('Z') && t.len() == 20, "{t}");
    let d = &ev["detail"];
    assert_eq!(d["parameter-name"], "/app/db/password");
    assert_eq!(d["parameter-type"], "SecureString");
    assert_eq!(d["policy-type"], "ExpirationNotification");
    assert_eq!(d["action-status"], "Success");
    let content: Value = serde_json::from_str(d["policy-content"].as_str().unwrap()).unwrap();
    assert_eq!(content["Type"], "ExpirationNotification");
    assert!(d["action-reason"].as_str().unwrap().contains("will expire"));
    assert!(
        !e.log.events().unwrap()[0].contains("v1"),
        "events never carry the value"
    );

    // Again, and again after an overwrite that keeps the policies: no duplicate.
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    call(
        &e.svc,
        "PutParameter",
        json!({"Name": "/app/db/password", "Value": "v2", "Overwrite": true}),
    )
    .await;
    e.clock.advance(HOUR);
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    assert_eq!(events(&e.log).len(), 1);

    // Past the expiration: the parameter goes, with its own event.
    e.clock.advance(DAY);
    assert_eq!(e.svc.run_policies().await.unwrap(), 1);
    let got = events(&e.log);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["detail"]["policy-type"], "Expiration");
    assert_eq!(got[1]["detail"]["action-status"], "Finished");
    let err = e
        .svc
        .call(&ctx(), "GetParameter", br#"{"Name":"/app/db/password"}"#)
        .await
        .unwrap_err();
    assert_eq!(coffer_core::ServiceError::code(&err), "ParameterNotFound");
    e.clock.advance(DAY);
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    assert_eq!(events(&e.log).len(), 2);
}

#[tokio::test]
async fn no_change_notification_is_rearmed_by_each_change() {
    let e = env();
    put_with(&e.svc, "/svc/key", &no_change("2", "Hours")).await;
    e.clock.advance(HOUR);
    // A new version restarts the count.
    call(
        &e.svc,
        "PutParameter",
        json!({"Name": "/svc/key", "Value": "v2", "Overwrite": true}),
    )
    .await;
    e.clock.advance(HOUR + HOUR / 2);
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    assert!(
        events(&e.log).is_empty(),
        "2.5 h since creation, 1.5 h since the change"
    );

    e.clock.advance(HOUR);
    assert_eq!(e.svc.run_policies().await.unwrap(), 1);
    let got = events(&e.log);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["detail"]["policy-type"], "NoChangeNotification");
    assert!(
        got[0]["detail"]["action-reason"]
            .as_str()
            .unwrap()
            .contains("not been changed for 2 hours")
    );
    e.clock.advance(DAY);
    assert_eq!(
        e.svc.run_policies().await.unwrap(),
        0,
        "fires once per change"
    );

    // Changed again: armed again.
    call(
        &e.svc,
        "PutParameter",
        json!({"Name": "/svc/key", "Value": "v3", "Overwrite": true}),
    )
    .await;
    e.clock.advance(3 * HOUR);
    assert_eq!(e.svc.run_policies().await.unwrap(), 1);
    assert_eq!(events(&e.log).len(), 2);
    let described = call(
        &e.svc,
        "DescribeParameters",
        json!({"ParameterFilters": [{"Key": "Name", "Values": ["/svc/key"]}]}),
    )
    .await;
    assert_eq!(
        described["Parameters"][0]["Policies"][0]["PolicyType"],
        "NoChangeNotification"
    );
}

#[tokio::test]
async fn deleted_or_repoliced_parameters_do_not_notify() {
    let e = env();
    put_with(&e.svc, "/gone", &no_change("1", "Hours")).await;
    put_with(&e.svc, "/changed", &no_change("1", "Hours")).await;
    call(&e.svc, "DeleteParameter", json!({"Name": "/gone"})).await;
    // New policies replace the old notification time.
    call(
        &e.svc,
        "PutParameter",
        json!({"Name": "/changed", "Value": "v2", "Overwrite": true,
               "Policies": no_change("5", "Days")}),
    )
    .await;
    e.clock.advance(2 * HOUR);
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    assert!(events(&e.log).is_empty());
    e.clock.advance(5 * DAY);
    assert_eq!(e.svc.run_policies().await.unwrap(), 1);
    assert_eq!(events(&e.log)[0]["detail"]["parameter-name"], "/changed");
}

#[tokio::test]
async fn overdue_items_fire_on_the_first_run_after_a_restart() {
    let e = env();
    put_with(&e.svc, "/restart/a", &no_change("1", "Hours")).await;
    let policies = format!(
        r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{}"}}}}]"#,
        iso_in(&e.clock, 2 * HOUR)
    );
    put_with(&e.svc, "/restart/b", &policies).await;
    drop(e.svc);
    // "Down" for a day; a new service on the same store.
    e.clock.advance(DAY);
    let log = Arc::new(EventLog::memory());
    let svc = service(&e.store, &e.clock, vec![log.clone()]);
    assert_eq!(svc.run_policies().await.unwrap(), 2);
    let kinds: Vec<String> = events(&log)
        .iter()
        .map(|v| v["detail"]["policy-type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["NoChangeNotification", "Expiration"]);
    assert_eq!(svc.run_policies().await.unwrap(), 0);
    assert_eq!(events(&log).len(), 2);
}

#[tokio::test]
async fn two_nodes_on_one_store_emit_each_due_item_once() {
    let e = env();
    for i in 0..20 {
        put_with(&e.svc, &format!("/many/p{i}"), &no_change("1", "Hours")).await;
    }
    e.clock.advance(2 * HOUR);
    let other_log = Arc::new(EventLog::memory());
    let other = service(&e.store, &e.clock, vec![other_log.clone()]);
    let (a, b) = tokio::join!(e.svc.run_policies(), other.run_policies());
    assert_eq!(a.unwrap() + b.unwrap(), 20);
    let mut names: Vec<String> = events(&e.log)
        .into_iter()
        .chain(events(&other_log))
        .map(|v| v["detail"]["parameter-name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20);
    assert_eq!(events(&e.log).len() + events(&other_log).len(), 20);
}

/// Fails its first `failures` deliveries, then records.
struct Flaky {
    failures: usize,
    attempts: AtomicUsize,
    got: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl EventSink for Flaky {
    fn name(&self) -> &str {
        "webhook"
    }
    async fn deliver(&self, event: &str) -> Result<(), String> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Err("HTTP 500".into());
        }
        self.got.lock().unwrap().push(event.to_owned());
        Ok(())
    }
}

fn flaky(failures: usize) -> Arc<Flaky> {
    Arc::new(Flaky {
        failures,
        attempts: AtomicUsize::new(0),
        got: std::sync::Mutex::new(Vec::new()),
    })
}

/// A webhook that never answers: the node delivering to it is stopped mid-delivery.
struct Hangs;

#[async_trait]
impl EventSink for Hangs {
    fn name(&self) -> &str {
        "webhook"
    }
    async fn deliver(&self, _event: &str) -> Result<(), String> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_node_dying_mid_delivery_keeps_its_claim_until_it_expires_then_another_delivers_once() {
    let store = Arc::new(MemoryStore::default());
    let clock = ManualClock::new();
    let a = service(&store, &clock, vec![Arc::new(Hangs)]);
    put_with(&a, "/claim/p", &no_change("1", "Hours")).await;
    clock.advance(2 * HOUR);
    // Node A fires the policy, claims the event and hangs delivering it; then it is gone.
    let died = tokio::time::timeout(Duration::from_millis(200), a.run_policies()).await;
    assert!(died.is_err(), "A was stopped while delivering");
    drop(a);

    let hook = flaky(0);
    let b = service(&store, &clock, vec![hook.clone()]);
    assert_eq!(b.run_policies().await.unwrap(), 0, "fired once, by A");
    assert!(
        hook.got.lock().unwrap().is_empty(),
        "A's claim holds: B does not deliver what A may be delivering"
    );
    clock.advance(Duration::from_secs(61));
    b.run_policies().await.unwrap();
    assert_eq!(
        hook.got.lock().unwrap().len(),
        1,
        "B delivers after the claim expired"
    );
    clock.advance(DAY);
    b.run_policies().await.unwrap();
    assert_eq!(hook.got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn failed_deliveries_back_off_and_stay_queued_across_restarts() {
    let store = Arc::new(MemoryStore::default());
    let clock = ManualClock::new();
    let log = Arc::new(EventLog::memory());
    let hook = flaky(2);
    let svc = service(&store, &clock, vec![log.clone(), hook.clone()]);
    put_with(&svc, "/hook/p", &no_change("1", "Hours")).await;
    clock.advance(2 * HOUR);
    assert_eq!(svc.run_policies().await.unwrap(), 1);
    assert_eq!(hook.attempts.load(Ordering::SeqCst), 1);
    assert_eq!(
        events(&log).len(),
        1,
        "the log does not wait for the webhook"
    );

    // Not due again before the backoff (1 s) has passed.
    svc.run_policies().await.unwrap();
    assert_eq!(hook.attempts.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_millis(1000));
    svc.run_policies().await.unwrap();
    assert_eq!(hook.attempts.load(Ordering::SeqCst), 2);
    // Second failure: the wait doubles.
    clock.advance(Duration::from_millis(1500));
    svc.run_policies().await.unwrap();
    assert_eq!(hook.attempts.load(Ordering::SeqCst), 2);

    // Restart with a working webhook: the queued event is still there.
    drop(svc);
    let hook2 = flaky(0);
    let svc = service(&store, &clock, vec![log.clone(), hook2.clone()]);
    clock.advance(Duration::from_millis(600));
    svc.run_policies().await.unwrap();
    let got = hook2.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let ev: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(ev["detail"]["policy-type"], "NoChangeNotification");
    assert_eq!(ev["id"], events(&log)[0]["id"], "one event, two sinks");
    clock.advance(DAY);
    svc.run_policies().await.unwrap();
    assert_eq!(hook2.got.lock().unwrap().len(), 1);
    assert_eq!(events(&log).len(), 1);
}

#[tokio::test]
async fn the_file_log_is_json_lines() {
    let dir = std::env::temp_dir().join(format!("coffer-events-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(coffer_parameters::EVENT_LOG_FILE);
    let store = Arc::new(MemoryStore::default());
    let clock = ManualClock::new();
    let log = Arc::new(EventLog::file(&path));
    assert!(
        log.events().unwrap().is_empty(),
        "a missing file is an empty log"
    );
    let svc = service(&store, &clock, vec![log.clone()]);
    put_with(&svc, "/f/a", &no_change("1", "Hours")).await;
    put_with(&svc, "/f/b", &no_change("3", "Hours")).await;
    clock.advance(2 * HOUR);
    svc.run_policies().await.unwrap();
    clock.advance(2 * HOUR);
    svc.run_policies().await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(text.ends_with('\n'));
    for (line, name) in lines.iter().zip(["/f/a", "/f/b"]) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["detail"]["parameter-name"], name);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
