//! Several `coffer server` nodes over one PostgreSQL database behave as one service (issue 8,
//! point 3): writes on one node are read on the others, concurrent writers on different nodes
//! lose no update, background jobs run once per due item, a node that dies mid-job is taken over
//! after its lease expires, and the audit trail stays one verifiable chain; seal state is per
//! node (unsealed with the same shares), and a rekey or a root rotation through one node leaves
//! the others serving correctly. Each test has a database of its own (skipped with a notice when
//! no PostgreSQL answers, failed under CI).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_secretsmanager::types::RotationRulesType;
use coffer_core::{Clock as _, ManualClock};
use coffer_server::ServerConfig;
use coffer_store::Store;
use coffer_store::postgres::{PgStore, scratch::ScratchDb};
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::iam_util::{err_code, iam, policy, sts_with, user_with_key};
use crate::sealing::{assert_sealed, get, operator, shares};

const DAY: Duration = Duration::from_secs(86_400);

/// Nodes sharing one database and one manual clock (for the background jobs; requests are
/// signed and checked by the real clock).
struct Cluster {
    nodes: Vec<TestServer>,
    clock: Arc<ManualClock>,
    db: ScratchDb,
}

async fn cluster(label: &str, n: usize, f: impl Fn(usize, &mut ServerConfig)) -> Option<Cluster> {
    let db = ScratchDb::create(label).await?;
    let clock = ManualClock::new();
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(start_node(&db, &clock, i, &f).await);
    }
    Some(Cluster { nodes, clock, db })
}

/// Node `i` of a cluster on `db`, configured by `f`.
async fn start_node(
    db: &ScratchDb,
    clock: &Arc<ManualClock>,
    i: usize,
    f: impl Fn(usize, &mut ServerConfig),
) -> TestServer {
    let mut c = ServerConfig::dev();
    c.listen = coffer_server::ephemeral();
    c.database_url = Some(db.url().to_string());
    c.clock = clock.clone();
    // Jobs run when a test says so (and once at start).
    c.task_interval = DAY;
    f(i, &mut c);
    TestServer {
        server: coffer_server::start(c).await.expect("node starts"),
        clock: clock.clone(),
        _dir: None,
        _db: None,
    }
}

impl Cluster {
    /// Stops every node and starts them again (configured by `f`) on the same database.
    async fn restart(&mut self, f: impl Fn(usize, &mut ServerConfig)) {
        let count = self.nodes.len();
        for n in self.nodes.drain(..) {
            n.server.shutdown().await;
        }
        for i in 0..count {
            let node = start_node(&self.db, &self.clock, i, &f).await;
            self.nodes.push(node);
        }
    }

    /// The whole trail as node 0 reads it, after checking it verifies as one chain with every
    /// record once.
    async fn verified_trail(&self) -> Vec<Value> {
        let audit = self.nodes[0].server.audit();
        audit.seal("test").await.unwrap();
        let key = audit.public_key().expect("unsealed").raw().unwrap();
        let trail = audit.read_trail().await.unwrap();
        let report = coffer_audit::verify::verify(&trail, &key);
        assert!(report.ok(), "{report:?}");
        let records: Vec<Value> = trail.entries.into_iter().map(|(_, e)| e.record).collect();
        let ids: HashSet<&str> = records
            .iter()
            .map(|r| r["eventID"].as_str().expect("every record has an id"))
            .collect();
        assert_eq!(ids.len(), records.len(), "a record was chained twice");
        records
    }

    /// Every node runs its background jobs, all at the same moment.
    async fn run_jobs_everywhere(&self) {
        let [x, y, z] = &self.nodes[..] else {
            panic!("three nodes")
        };
        tokio::join!(
            x.server.run_background_jobs(),
            y.server.run_background_jobs(),
            z.server.run_background_jobs()
        );
    }

    async fn shutdown(self) {
        for n in self.nodes {
            n.server.shutdown().await;
        }
        drop(self.db);
    }
}

fn service_events<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["eventType"] == "AwsServiceEvent" && r["eventName"] == name)
        .collect()
}

/// Polls `check` until it holds, failing after `bound` (plus a request's time).
async fn within<F, Fut>(bound: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound + Duration::from_millis(500),
            "{what}: not seen within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_write_on_one_node_is_read_on_the_others() {
    let Some(c) = cluster("mn_reads", 3, |_, _| {}).await else {
        return;
    };
    let [a, b, n3] = [&c.nodes[0], &c.nodes[1], &c.nodes[2]];

    // Secrets and parameters: at once (every read goes to the database).
    a.sm()
        .create_secret()
        .name("app/db")
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    for n in [b, n3] {
        let got = n.sm().get_secret_value().secret_id("app/db").send().await;
        assert_eq!(got.unwrap().secret_string(), Some("v1"));
    }
    b.sm()
        .put_secret_value()
        .secret_id("app/db")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    for n in [a, n3] {
        let got = n.sm().get_secret_value().secret_id("app/db").send().await;
        assert_eq!(got.unwrap().secret_string(), Some("v2"));
    }
    b.ssm()
        .put_parameter()
        .name("/app/flag")
        .value("on")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    n3.ssm()
        .put_parameter()
        .name("/app/flag")
        .value("off")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let p = a.ssm().get_parameter().name("/app/flag").send().await;
    let p = p.unwrap();
    assert_eq!(p.parameter().unwrap().value(), Some("off"));
    assert_eq!(p.parameter().unwrap().version(), 2);

    // KMS: a key disabled through one node is refused by another within one second (its
    // cached key state lives that long).
    let key = a.kms().create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let blob = b
        .kms()
        .encrypt()
        .key_id(&key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new("kms-payload"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let decrypt = || a.kms().decrypt().ciphertext_blob(blob.clone()).send();
    decrypt().await.expect("a caches the key as enabled");
    n3.kms().disable_key().key_id(&key_id).send().await.unwrap();
    within(
        Duration::from_secs(1),
        "disable seen by another node",
        || async {
            match decrypt().await {
                Ok(_) => false,
                Err(e) => {
                    assert_eq!(err_code(&e), "DisabledException");
                    true
                }
            }
        },
    )
    .await;

    // IAM: a user's policy attached or removed through one node takes effect on another within
    // one second (IAM changes are eventually consistent on AWS too).
    let (akid, secret) = user_with_key(&iam(a), "mn-user", "/").await;
    let as_user = b.sm_with("us-east-1", &akid, &secret);
    let read = || as_user.get_secret_value().secret_id("app/db").send();
    let denied = read().await.unwrap_err();
    assert_eq!(crate::harness::code(&denied), "AccessDeniedException");
    iam(n3)
        .put_user_policy()
        .user_name("mn-user")
        .policy_name("read")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    within(
        Duration::from_secs(1),
        "policy attached on another node",
        || async { read().await.is_ok() },
    )
    .await;
    iam(a)
        .delete_user_policy()
        .user_name("mn-user")
        .policy_name("read")
        .send()
        .await
        .unwrap();
    within(
        Duration::from_secs(1),
        "policy removed on another node",
        || async { read().await.is_err() },
    )
    .await;

    let records = c.verified_trail().await;
    assert!(records.iter().any(|r| r["eventName"] == "DisableKey"));
    c.shutdown().await;
}

/// Error codes of failed calls, counted.
#[derive(Default)]
struct Failures(std::sync::Mutex<HashMap<String, usize>>);

impl Failures {
    fn add(&self, code: String) {
        *self.0.lock().unwrap().entry(code).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_three_nodes_lose_no_update() {
    const RUN: Duration = Duration::from_secs(4);
    // Puts in all: with the pool below, under Secrets Manager's 100 versions per secret.
    const PUTS: usize = 45;
    const POOL: usize = 30;
    const PARAM_PUTS: usize = 90;
    let Some(c) = cluster("mn_stress", 3, |_, _| {}).await else {
        return;
    };
    let a = &c.nodes[0];
    let sm = a.sm();
    sm.create_secret()
        .name("stress")
        .secret_string("initial")
        .send()
        .await
        .unwrap();
    // Versions the MOVER label visits, each at most once (each keeps a label of its own):
    // successful moves must then form one path, and two moves from the same holder (a lost
    // update) would show as a repeated source.
    let mut pool = Vec::new();
    for i in 0..POOL {
        let token = format!("pool-{i:04}-{}", "0".repeat(24));
        sm.put_secret_value()
            .secret_id("stress")
            .client_request_token(&token)
            .secret_string(format!("pool {i}"))
            .version_stages(format!("P{i}"))
            .send()
            .await
            .unwrap();
        pool.push(token);
    }
    sm.update_secret_version_stage()
        .secret_id("stress")
        .version_stage("MOVER")
        .move_to_version_id(&pool[0])
        .send()
        .await
        .unwrap();
    a.ssm()
        .put_parameter()
        .name("/stress/p")
        .value("v0")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();

    let pool = Arc::new(pool);
    let (puts, next_target, param_puts) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(1)),
        Arc::new(AtomicUsize::new(0)),
    );
    let fails = Arc::new(Failures::default());
    let put_ok = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let moves_ok = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let param_versions = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let deadline = Instant::now() + RUN;
    let mut tasks = tokio::task::JoinSet::new();
    for (n, node) in c.nodes.iter().enumerate() {
        // PutSecretValue
        let (sm, puts, ok, failures) = (node.sm(), puts.clone(), put_ok.clone(), fails.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let i = puts.fetch_add(1, Ordering::SeqCst);
                if i >= PUTS {
                    break;
                }
                let token = format!("put-{n}-{i:04}-{}", "0".repeat(24));
                match sm
                    .put_secret_value()
                    .secret_id("stress")
                    .client_request_token(&token)
                    .secret_string(format!("value {i}"))
                    .send()
                    .await
                {
                    Ok(_) => ok.lock().unwrap().push(token),
                    Err(e) => failures.add(format!("put: {}", crate::harness::code(&e))),
                }
            }
        });
        // UpdateSecretVersionStage: move MOVER from where this node sees it to a fresh version.
        let (sm, pool, next, moves, failures) = (
            node.sm(),
            pool.clone(),
            next_target.clone(),
            moves_ok.clone(),
            fails.clone(),
        );
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let d = sm
                    .describe_secret()
                    .secret_id("stress")
                    .send()
                    .await
                    .unwrap();
                let from = d
                    .version_ids_to_stages()
                    .unwrap()
                    .iter()
                    .find(|(_, s)| s.iter().any(|s| s == "MOVER"))
                    .map(|(v, _)| v.clone())
                    .expect("MOVER is on a version");
                let t = next.fetch_add(1, Ordering::SeqCst);
                let Some(to) = pool.get(t) else { break };
                match sm
                    .update_secret_version_stage()
                    .secret_id("stress")
                    .version_stage("MOVER")
                    .remove_from_version_id(&from)
                    .move_to_version_id(to)
                    .send()
                    .await
                {
                    Ok(_) => moves.lock().unwrap().push((from, to.clone())),
                    Err(e) => failures.add(format!("move: {}", crate::harness::code(&e))),
                }
            }
        });
        // PutParameter overwrites
        let (ssm, count, versions, failures) = (
            node.ssm(),
            param_puts.clone(),
            param_versions.clone(),
            fails.clone(),
        );
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let i = count.fetch_add(1, Ordering::SeqCst);
                if i >= PARAM_PUTS {
                    break;
                }
                match ssm
                    .put_parameter()
                    .name("/stress/p")
                    .value(format!("n{n}-{i}"))
                    .overwrite(true)
                    .send()
                    .await
                {
                    Ok(o) => versions.lock().unwrap().push(o.version()),
                    Err(e) => failures.add(format!("param: {}", err_code(&e))),
                }
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    let put_ok = put_ok.lock().unwrap().clone();
    let moves = moves_ok.lock().unwrap().clone();
    let mut param_versions = param_versions.lock().unwrap().clone();
    eprintln!(
        "stress: {} puts, {} label moves, {} parameter overwrites acknowledged; failures {:?}",
        put_ok.len(),
        moves.len(),
        param_versions.len(),
        fails.0.lock().unwrap()
    );
    assert!(!put_ok.is_empty() && !moves.is_empty() && !param_versions.is_empty());
    // Every failure is a definite answer (a stale label source, AWS's TooManyUpdates), never an
    // internal error whose effect may have happened.
    for code in fails.0.lock().unwrap().keys() {
        assert!(
            code == "move: InvalidParameterException" || code.ends_with("TooManyUpdates"),
            "unexpected failure {code}"
        );
    }

    // Versions: every acknowledged put is a version of its own, nothing else appeared.
    let b = &c.nodes[1];
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = b
            .sm()
            .list_secret_version_ids()
            .secret_id("stress")
            .include_deprecated(true)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        listed.extend(page.versions().iter().cloned());
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    let ids: HashSet<&str> = listed.iter().filter_map(|v| v.version_id()).collect();
    assert_eq!(listed.len(), 1 + POOL + put_ok.len(), "versions");
    for t in put_ok.iter().chain(pool.iter()) {
        assert!(ids.contains(t.as_str()), "acknowledged version {t} lost");
    }
    let holders = |label: &str| -> Vec<String> {
        listed
            .iter()
            .filter(|v| v.version_stages().iter().any(|s| s == label))
            .map(|v| v.version_id().unwrap().to_string())
            .collect()
    };
    let current = holders("AWSCURRENT");
    assert_eq!(current.len(), 1);
    assert!(
        put_ok.contains(&current[0]),
        "AWSCURRENT is an acknowledged put"
    );
    assert_eq!(holders("AWSPREVIOUS").len(), 1);

    // Label moves: one path from pool[0], no source twice, ending where MOVER is now.
    let mut by_source: HashMap<&str, &str> = HashMap::new();
    for (from, to) in &moves {
        assert!(
            by_source.insert(from.as_str(), to.as_str()).is_none(),
            "two moves of MOVER from {from} both succeeded (a lost update)"
        );
    }
    let mut at = pool[0].as_str();
    let mut steps = 0;
    while let Some(next) = by_source.get(at) {
        at = next;
        steps += 1;
    }
    assert_eq!(steps, moves.len(), "every successful move is on the path");
    assert_eq!(holders("MOVER"), [at.to_string()]);

    // Parameter overwrites: each got a version number of its own, and history has them all.
    param_versions.sort_unstable();
    let expected: Vec<i64> = (2..2 + param_versions.len() as i64).collect();
    assert_eq!(param_versions, expected, "parameter versions");
    let mut history = 0;
    let mut token = None;
    loop {
        let page = c.nodes[2]
            .ssm()
            .get_parameter_history()
            .name("/stress/p")
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        history += page.parameters().len();
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(history, 1 + param_versions.len());

    // The audit trail: one chain; every acknowledged put is recorded as a success.
    let records = c.verified_trail().await;
    let recorded: HashSet<&str> = records
        .iter()
        .filter(|r| r["eventName"] == "PutSecretValue" && r.get("errorCode").is_none())
        .filter_map(|r| r["requestParameters"]["clientRequestToken"].as_str())
        .collect();
    for t in &put_ok {
        assert!(recorded.contains(t.as_str()), "put {t} has no audit record");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_jobs_run_once_per_due_item_across_nodes() {
    // Each node's own job loop runs every 50 ms, on threads of its own, as on separate hosts.
    let Some(c) = cluster("mn_jobs", 3, |_, cfg| {
        cfg.task_interval = Duration::from_millis(50)
    })
    .await
    else {
        return;
    };
    // Enough due items that the nodes' runs overlap.
    const N: usize = 20;
    let a = &c.nodes[0];
    for i in 0..N {
        let name = format!("doomed-{i}");
        a.sm()
            .create_secret()
            .name(&name)
            .secret_string("x")
            .send()
            .await
            .unwrap();
        a.sm()
            .delete_secret()
            .secret_id(&name)
            .recovery_window_in_days(7)
            .send()
            .await
            .unwrap();
    }
    let at = aws_smithy_types::DateTime::from_secs(c.clock.now_millis() / 1000 + 86_400)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let expiring =
        format!(r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{at}"}}}}]"#);
    let quiet = r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"2","Unit":"Hours"}}]"#;
    for i in 0..2 * N {
        let (name, policies) = if i % 2 == 0 {
            (format!("/jobs/expiring/{i}"), expiring.as_str())
        } else {
            (format!("/jobs/quiet/{i}"), quiet)
        };
        a.ssm()
            .put_parameter()
            .name(name)
            .value("v")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .tier(aws_sdk_ssm::types::ParameterTier::Advanced)
            .policies(policies)
            .send()
            .await
            .unwrap();
    }
    let kms = a.kms();
    let doomed_key = kms.create_key().send().await.unwrap();
    let doomed_key = doomed_key.key_metadata().unwrap().key_id().to_string();
    kms.schedule_key_deletion()
        .key_id(&doomed_key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let rotating = kms.create_key().send().await.unwrap();
    let rotating = rotating.key_metadata().unwrap().key_id().to_string();
    kms.enable_key_rotation()
        .key_id(&rotating)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();

    c.clock.advance(100 * DAY);
    // Every node runs every job at the same moment, besides their own loops.
    c.run_jobs_everywhere().await;
    let events = || {
        let mut delivered: HashMap<String, usize> = HashMap::new();
        for n in &c.nodes {
            for e in n.server.parameter_events().unwrap() {
                let e: Value = serde_json::from_str(&e).unwrap();
                let name = e["detail"]["parameter-name"].as_str().unwrap().to_string();
                *delivered.entry(name).or_default() += 1;
            }
        }
        delivered
    };
    let chained = || async {
        let trail = a.server.audit().read_trail().await.unwrap();
        trail
            .entries
            .iter()
            .filter(|(_, e)| e.record["eventType"] == "AwsServiceEvent")
            .count()
    };
    within(
        Duration::from_secs(20),
        "every due item handled",
        || async { events().values().sum::<usize>() >= 2 * N && chained().await >= 3 * N },
    )
    .await;
    // Time for a second run of any job on any node to show.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let listed = a.sm().list_secrets().send().await.unwrap();
    assert!(listed.secret_list().is_empty(), "every secret purged");
    let mut left = Vec::new();
    let mut token = None;
    loop {
        let page = a
            .ssm()
            .get_parameters_by_path()
            .path("/jobs")
            .recursive(true)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        left.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name().map(String::from)),
        );
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(left.len(), N, "the expiring parameters are gone: {left:?}");
    assert!(left.iter().all(|n| n.starts_with("/jobs/quiet/")));
    let gone = a.kms().describe_key().key_id(&doomed_key).send().await;
    assert_eq!(err_code(&gone.unwrap_err()), "NotFoundException");
    let rotations = a
        .kms()
        .list_key_rotations()
        .key_id(&rotating)
        .send()
        .await
        .unwrap();
    assert_eq!(rotations.rotations().len(), 1, "the key rotated once");

    // Parameter events: each delivered once, to whichever node delivered it.
    let delivered = events();
    assert_eq!(delivered.len(), 2 * N, "{delivered:?}");
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");

    // Service events: one per effect, in one chain.
    let records = c.verified_trail().await;
    assert_eq!(service_events(&records, "DeleteSecret").len(), N);
    assert_eq!(service_events(&records, "Expiration").len(), N);
    assert_eq!(service_events(&records, "NoChangeNotification").len(), N);
    c.shutdown().await;
}

#[tokio::test]
async fn a_node_killed_mid_rotation_is_finished_by_another_after_its_lease_expires() {
    let Some(py) = crate::rotation::python() else {
        crate::rotation::skip("python3 with boto3");
        return;
    };
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures");
    let rotator = format!(
        "command:{} -B {} file_rotator.lambda_handler {}",
        py.display(),
        fixtures.join("lambda_shim.py").display(),
        fixtures.display()
    );
    const STEP: Duration = Duration::from_secs(30);
    // Node 0's function hangs in its first step (that node dies there); node 1's works.
    let Some(mut c) = cluster("mn_rotation", 2, |i, cfg| {
        let spec = if i == 0 {
            "command:sleep 3600".to_string()
        } else {
            rotator.clone()
        };
        cfg.rotation_functions = vec![("mn-rotator".into(), spec)];
        cfg.rotation_step_timeout = STEP;
    })
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("service.key");
    std::fs::write(&keyfile, "initial-key").unwrap();
    let secret = serde_json::json!({"apikey": "initial-key", "keyfile": keyfile});
    let a = c.nodes.remove(0);
    a.sm()
        .create_secret()
        .name("api-key")
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap();
    // Starts the rotation on node 0 at once (its scheduler is kicked).
    a.sm()
        .rotate_secret()
        .secret_id("api-key")
        .rotation_lambda_arn("arn:aws:lambda:us-east-1:000000000000:function:mn-rotator")
        .rotation_rules(
            RotationRulesType::builder()
                .automatically_after_days(7)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let store = PgStore::connect(c.db.url()).await.unwrap();
    let lease = b"lease/rotation/".to_vec();
    within(Duration::from_secs(5), "node 0 takes the lease", || async {
        let end = coffer_store::prefix_end(&lease);
        !store.scan(&lease, &end, 1).await.unwrap().is_empty()
    })
    .await;
    // Node 0 dies mid-step: its jobs are aborted where they are, the lease stays.
    a.server.shutdown().await;

    let b = &c.nodes[0];
    let current = || async {
        let v = b
            .sm()
            .get_secret_value()
            .secret_id("api-key")
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(v.secret_string().unwrap()).unwrap();
        v["apikey"].as_str().unwrap().to_string()
    };
    b.server.run_background_jobs().await;
    assert_eq!(current().await, "initial-key", "the lease keeps node 1 out");

    // The lease lasts four steps and a minute.
    c.clock.advance(STEP * 4 + Duration::from_secs(61));
    b.server.run_background_jobs().await;
    let key = current().await;
    assert_ne!(key, "initial-key", "node 1 finished the rotation");
    assert_eq!(std::fs::read_to_string(&keyfile).unwrap(), key);
    let d = b
        .sm()
        .describe_secret()
        .secret_id("api-key")
        .send()
        .await
        .unwrap();
    let stages = d.version_ids_to_stages().unwrap();
    assert!(!stages.values().flatten().any(|s| s == "AWSPENDING"));

    let records = c.verified_trail().await;
    assert_eq!(service_events(&records, "RotationSucceeded").len(), 1);
    assert!(service_events(&records, "RotationFailed").is_empty());
    assert!(
        !serde_json::to_string(&records).unwrap().contains(&key),
        "a rotated value reached the audit trail"
    );
    c.shutdown().await;
}

/// Nodes that are not `--dev`: each has a data directory of its own holding a copy of the
/// auto-unseal key, and both unseal the one store.
#[tokio::test]
async fn nodes_with_their_own_data_directories_and_one_unseal_key_serve_one_store() {
    let Some(db) = ScratchDb::create("mn_unseal").await else {
        return;
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let config = |dir: &std::path::Path| {
        let mut c = ServerConfig::dev();
        c.listen = coffer_server::ephemeral();
        c.dev = false;
        c.database_url = Some(db.url().to_string());
        c.data_dir = Some(dir.to_path_buf());
        c.root_credentials = Some(coffer_server::RootCredentials {
            access_key_id: coffer_server::DEV_ACCESS_KEY_ID.into(),
            secret_access_key: coffer_server::DEV_SECRET_ACCESS_KEY.into(),
        });
        c
    };
    let node = |server| TestServer {
        server,
        clock: ManualClock::new(),
        _dir: None,
        _db: None,
    };
    // The default key file: the first start writes DATA_DIR/unseal.key, and every node reads
    // the one in its own data directory.
    let a = node(coffer_server::start(config(dirs[0].path())).await.unwrap());
    let refused = coffer_server::start(config(dirs[1].path()))
        .await
        .err()
        .expect("a node without the key file cannot unseal")
        .to_string();
    assert!(refused.contains("unseal.key"), "{refused}");
    std::fs::copy(
        dirs[0].path().join("unseal.key"),
        dirs[1].path().join("unseal.key"),
    )
    .unwrap();
    let b = node(coffer_server::start(config(dirs[1].path())).await.unwrap());
    a.sm()
        .create_secret()
        .name("shared")
        .secret_string("from-a")
        .send()
        .await
        .unwrap();
    let got = b.sm().get_secret_value().secret_id("shared").send().await;
    assert_eq!(got.unwrap().secret_string(), Some("from-a"));
    a.server.shutdown().await;
    b.server.shutdown().await;
}

// ---- Seal state per node: shares, seal, rekey and rotate-root through one node ----------------

/// Nodes that are not `--dev`: they wait for `coffer operator init` (shares here) and are each
/// unsealed by an operator; the dev credentials are their configured root credentials.
fn shares_node(_: usize, c: &mut ServerConfig) {
    c.dev = false;
    c.auto_init = false;
    c.root_credentials = Some(coffer_server::RootCredentials {
        access_key_id: coffer_server::DEV_ACCESS_KEY_ID.into(),
        secret_access_key: coffer_server::DEV_SECRET_ACCESS_KEY.into(),
    });
}

/// Gives `node` the shares one at a time; it must be unsealed after the last.
async fn unseal_with(node: &TestServer, shares: &[String]) {
    for share in shares {
        let (status, body) = operator(node, "unseal", json!({ "share": share }), false).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, st) = get(node, "/coffer/operator/status").await;
    assert_eq!(st["sealed"], false, "{st}");
}

async fn serving(node: &TestServer) -> bool {
    get(node, "/health").await.0 == 200
}

async fn read(node: &TestServer, name: &str) -> String {
    let v = node.sm().get_secret_value().secret_id(name).send().await;
    let v = v.unwrap_or_else(|e| panic!("GetSecretValue {name}: {e:?}"));
    v.secret_string().unwrap().to_string()
}

/// A KMS client that does not retry, so the test sees every answer.
fn kms_once(node: &TestServer) -> aws_sdk_kms::Client {
    let conf = node.kms().config().to_builder();
    aws_sdk_kms::Client::from_conf(conf.retry_config(RetryConfig::disabled()).build())
}

/// Encrypts with `key_id` through `from` and decrypts through `to`.
async fn round_trip(from: &TestServer, to: &TestServer, key_id: &str) {
    let sealed = from
        .kms()
        .encrypt()
        .key_id(key_id)
        .plaintext(Blob::new("across nodes"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Encrypt with {key_id}: {e:?}"));
    let opened = to
        .kms()
        .decrypt()
        .ciphertext_blob(sealed.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("Decrypt under {key_id}: {e:?}"));
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"across nodes");
}

/// The ARN `node` authenticates an access key as.
async fn caller_arn(node: &TestServer, akid: &str, secret: &str) -> String {
    let who = sts_with(node, akid, secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetCallerIdentity as {akid}: {e:?}"));
    who.arn().unwrap().to_string()
}

/// Root-sealed things made through one node: a customer KMS key, a secret encrypted under it,
/// an IAM user's access key.
struct Made {
    tag: &'static str,
    key_id: String,
    akid: String,
    secret: String,
}

async fn make(node: &TestServer, tag: &'static str) -> Made {
    let key = node.kms().create_key().send().await;
    let key = key.unwrap_or_else(|e| panic!("CreateKey ({tag}): {e:?}"));
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    node.sm()
        .create_secret()
        .name(format!("under-cmk-{tag}"))
        .kms_key_id(&key_id)
        .secret_string(format!("value {tag}"))
        .send()
        .await
        .unwrap();
    let (akid, secret) = user_with_key(&iam(node), &format!("user-{tag}"), "/").await;
    Made {
        tag,
        key_id,
        akid,
        secret,
    }
}

/// `made` works on every node: the key both ways between every pair, the secret read, the
/// access key authenticated.
async fn check(nodes: &[TestServer], made: &Made) {
    for from in nodes {
        for to in nodes {
            round_trip(from, to, &made.key_id).await;
        }
        let name = format!("under-cmk-{}", made.tag);
        assert_eq!(read(from, &name).await, format!("value {}", made.tag));
        assert_eq!(
            caller_arn(from, &made.akid, &made.secret).await,
            format!("arn:aws:iam::000000000000:user/user-{}", made.tag)
        );
    }
}

/// Seal state is per node: with shares, every node starts sealed and is unsealed with the same
/// shares; sealing one leaves the others serving; a rekey through one node leaves the others
/// serving, and a node sealed afterwards unseals with the new shares only.
#[tokio::test]
async fn shares_nodes_unseal_and_seal_on_their_own_and_keep_serving_through_a_rekey() {
    let Some(c) = cluster("mn_shares", 2, shares_node).await else {
        return;
    };
    let [a, b] = [&c.nodes[0], &c.nodes[1]];
    for n in [a, b] {
        let (status, health) = get(n, "/health").await;
        assert_eq!(
            (status, health["status"].as_str()),
            (503, Some("uninitialized"))
        );
    }
    let init = json!({"key_shares": 3, "key_threshold": 2});
    let (status, body) = operator(a, "init", init.clone(), false).await;
    assert_eq!(status, 200, "{body}");
    let set = shares(&body);
    // Node 1 finds the database initialised: not initialised twice, and sealed like node 0.
    let (status, again) = operator(b, "init", init, false).await;
    assert_eq!(
        (status, again["__type"].as_str()),
        (409, Some("InvalidStateException")),
        "{again}"
    );
    assert_sealed(a).await;
    assert_sealed(b).await;
    unseal_with(a, &set[..2]).await;
    assert_sealed(b).await;
    unseal_with(b, &set[1..]).await;
    a.sm()
        .create_secret()
        .name("shared")
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    assert_eq!(read(b, "shared").await, "v1");

    // Sealing node 0 leaves node 1 serving: reads, writes, root-sealed writes.
    let (status, st) = operator(a, "seal", json!({}), true).await;
    assert_eq!((status, st["sealed"].as_bool()), (200, Some(true)), "{st}");
    assert_sealed(a).await;
    assert_eq!(read(b, "shared").await, "v1");
    b.sm()
        .put_secret_value()
        .secret_id("shared")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    let key = b.kms().create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    // Node 0 unseals again with the same shares (another quorum) and sees node 1's writes.
    unseal_with(a, &[set[2].clone(), set[0].clone()]).await;
    assert_eq!(read(a, "shared").await, "v2");
    round_trip(b, a, &key_id).await;

    // A rekey through node 0 keeps the root key: node 1 is not sealed, not even after its seal
    // check has run, and its root-sealed writes (checked against the moved seal record) commit.
    let (status, rk) = operator(
        a,
        "rekey",
        json!({"shares": [set[0], set[1]], "key_shares": 3, "key_threshold": 2}),
        false,
    )
    .await;
    assert_eq!(status, 200, "{rk}");
    let new = shares(&rk);
    let (status, st) = operator(a, "rekey", json!({"verify": [new[0], new[1]]}), false).await;
    assert_eq!(
        (status, st["rekey_pending"].as_bool()),
        (200, Some(false)),
        "{st}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(serving(b).await, "a rekey sealed another node");
    assert_eq!(read(b, "shared").await, "v2");
    let made = make(b, "after-rekey").await;
    check(&c.nodes, &made).await;

    // Sealed now, node 1 unseals with the new shares; the old ones are refused.
    let (status, st) = operator(b, "seal", json!({}), true).await;
    assert_eq!(status, 200, "{st}");
    assert_sealed(b).await;
    let (status, body) = operator(b, "unseal", json!({"share": set[0]}), false).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidShareException")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another share set"),
        "{body}"
    );
    unseal_with(b, &new[1..]).await;
    assert_eq!(read(b, "shared").await, "v2");
    assert!(serving(a).await);
    c.shutdown().await;
}

/// Rotate-root through node 0 with shares: node 1, which nobody calls, finds the new root
/// generation within a second and seals itself; the same shares unseal it. Keys made through
/// node 1 before and after the rotation work on both nodes, also after both restart.
#[tokio::test]
async fn rotate_root_through_one_shares_node_seals_the_others_until_unsealed_with_the_same_shares()
{
    let Some(mut c) = cluster("mn_rotate_shares", 2, shares_node).await else {
        return;
    };
    let init = json!({"key_shares": 3, "key_threshold": 2});
    let (status, body) = operator(&c.nodes[0], "init", init, false).await;
    assert_eq!(status, 200, "{body}");
    let set = shares(&body);
    for n in &c.nodes {
        unseal_with(n, &set[..2]).await;
    }
    let before = make(&c.nodes[1], "before").await;
    // Both nodes have used the key (its material is cached on both).
    check(&c.nodes, &before).await;

    let [a, b] = [&c.nodes[0], &c.nodes[1]];
    let (status, body) =
        operator(a, "rotate-root", json!({"shares": [set[1], set[2]]}), true).await;
    assert_eq!(status, 200, "{body}");
    let took = within(
        Duration::from_secs(1),
        "node 1 sealed after the rotation",
        || async { !serving(b).await },
    )
    .await;
    eprintln!("node 1 sealed itself {took:?} after the rotation");
    assert_sealed(b).await;
    assert!(serving(a).await);
    unseal_with(b, &[set[2].clone(), set[0].clone()]).await;
    let after = make(b, "after").await;
    for made in [&before, &after] {
        check(&c.nodes, made).await;
    }

    // Restarted, both nodes unseal with the same shares, and everything still works.
    c.restart(shares_node).await;
    for n in &c.nodes {
        assert_sealed(n).await;
        unseal_with(n, &[set[0].clone(), set[2].clone()]).await;
    }
    for made in [&before, &after] {
        check(&c.nodes, made).await;
    }
    c.shutdown().await;
}

/// Rotate-root through node 0 with an auto-unseal key: node 1, which nobody calls, unseals
/// again with the new root key within a second (its first call then succeeds with a key whose
/// material exists only under the new root key). Everything made before and after works on
/// both nodes, also after both restart.
#[tokio::test]
async fn rotate_root_through_one_auto_unseal_node_is_followed_by_the_others_within_a_second() {
    let Some(mut c) = cluster("mn_rotate_auto", 2, |_, _| {}).await else {
        return;
    };
    let before = make(&c.nodes[1], "before").await;
    check(&c.nodes, &before).await;

    let [a, b] = [&c.nodes[0], &c.nodes[1]];
    let (status, body) = operator(a, "rotate-root", json!({}), true).await;
    assert_eq!(status, 200, "{body}");
    let fresh = a.kms().create_key().send().await.unwrap();
    let fresh = fresh.key_metadata().unwrap().key_id().to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kms_once(b)
        .encrypt()
        .key_id(&fresh)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .expect("node 1 follows the rotation within a second");
    let after = make(b, "after").await;
    for made in [&before, &after] {
        check(&c.nodes, made).await;
    }
    round_trip(b, a, &fresh).await;

    c.restart(|_, _| {}).await;
    for made in [&before, &after] {
        check(&c.nodes, made).await;
    }
    round_trip(&c.nodes[1], &c.nodes[0], &fresh).await;
    c.shutdown().await;
}

/// The rotation mark as other nodes see it (written straight into the shared store, as a
/// rotation through a third node would leave it): rotate-root is refused while it stands, a
/// root-sealed write waits for it and proceeds once it is lifted, and then rotate-root goes
/// through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_marked_rotation_holds_root_sealed_writes_and_other_rotations() {
    let Some(c) = cluster("mn_rotate_mark", 2, |_, _| {}).await else {
        return;
    };
    let store = PgStore::connect(c.db.url()).await.unwrap();
    let plain = store.get(b"meta/seal").await.unwrap().unwrap();
    let mut marked: Value = serde_json::from_slice(&plain.value).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    marked["rotating_until"] = json!(now_ms + 8_000);
    let put = |value: Vec<u8>| {
        let mut b = coffer_store::WriteBatch::new();
        b.put(b"meta/seal".to_vec(), value);
        b
    };
    store
        .commit(put(serde_json::to_vec(&marked).unwrap()))
        .await
        .unwrap();

    let (status, body) = operator(&c.nodes[0], "rotate-root", json!({}), true).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (409, Some("InvalidStateException")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("in progress"),
        "{body}"
    );
    // Node 1 sees the mark when its write conflicts on the seal record's version.
    let kms = kms_once(&c.nodes[1]);
    let started = Instant::now();
    let write = tokio::spawn(async move { kms.create_key().send().await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !write.is_finished(),
        "a root-sealed write waits while the mark stands"
    );
    store.commit(put(plain.value.to_vec())).await.unwrap();
    let made = write
        .await
        .unwrap()
        .expect("goes through once the mark is lifted");
    assert!(started.elapsed() >= Duration::from_millis(700));
    let key_id = made.key_metadata().unwrap().key_id().to_string();
    let (status, body) = operator(&c.nodes[0], "rotate-root", json!({}), true).await;
    assert_eq!(status, 200, "{body}");
    // The key made while held works under the new root key, through node 1 once it has caught
    // up (ServiceUnavailable meanwhile) and through node 0.
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = kms_once(&c.nodes[1])
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
    {
        assert!(
            err_code(&e) == "ServiceUnavailable" && Instant::now() < deadline,
            "{}",
            err_code(&e)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    round_trip(&c.nodes[1], &c.nodes[0], &key_id).await;
}

/// Root-sealed writes through node 1 (CreateKey, CreateAccessKey) racing rotate-root through
/// node 0: each either fails with a definite answer (ServiceUnavailable while node 1 catches up,
/// a conflict) or commits under the root key in force. Rotate-root gets through on its first
/// attempt: the writes meeting its rewrap wait for it. Every key made then works through node 0,
/// also after both nodes restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn root_sealed_writes_racing_rotate_root_end_up_under_the_new_root_key() {
    let Some(mut c) = cluster("mn_rotate_race", 2, |_, _| {}).await else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let fails = Arc::new(Failures::default());
    let keys = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let access = Arc::new(std::sync::Mutex::new(Vec::<(String, String, String)>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let (kms, stop_k, keys_k, fails_k) = (
        kms_once(&c.nodes[1]),
        stop.clone(),
        keys.clone(),
        fails.clone(),
    );
    tasks.spawn(async move {
        while !stop_k.load(Ordering::SeqCst) {
            match kms.create_key().send().await {
                Ok(k) => keys_k
                    .lock()
                    .unwrap()
                    .push(k.key_metadata().unwrap().key_id().to_string()),
                Err(e) => fails_k.add(format!("CreateKey: {}", err_code(&e))),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let conf = iam(&c.nodes[1]).config().to_builder();
    let iam_b = aws_sdk_iam::Client::from_conf(conf.retry_config(RetryConfig::disabled()).build());
    let (stop_i, access_i, fails_i) = (stop.clone(), access.clone(), fails.clone());
    tasks.spawn(async move {
        let mut i = 0;
        while !stop_i.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            i += 1;
            let user = format!("racer-{i}");
            if let Err(e) = iam_b.create_user().user_name(&user).send().await {
                fails_i.add(format!("CreateUser: {}", err_code(&e)));
                continue;
            }
            match iam_b.create_access_key().user_name(&user).send().await {
                Ok(k) => {
                    let k = k.access_key().unwrap();
                    access_i.lock().unwrap().push((
                        user,
                        k.access_key_id().to_string(),
                        k.secret_access_key().to_string(),
                    ));
                }
                Err(e) => fails_i.add(format!("CreateAccessKey: {}", err_code(&e))),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // rotate-root marks the seal record first, so node 1's root-sealed writes wait for it
    // instead of refusing it: one attempt gets through however steady the writes (before the
    // mark, every write committed during the rewrap refused the rotation).
    let (status, body) = operator(&c.nodes[0], "rotate-root", json!({}), true).await;
    assert_eq!(status, 200, "{body}");
    // Node 1 keeps writing while it catches up, and after.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    let keys = keys.lock().unwrap().clone();
    let access = access.lock().unwrap().clone();
    let failures = fails.0.lock().unwrap().clone();
    eprintln!(
        "race: node 1 made {} keys and {} access keys; failures {failures:?}",
        keys.len(),
        access.len()
    );
    assert!(!keys.is_empty() && !access.is_empty());
    for code in failures.keys() {
        assert!(
            code.ends_with(": ServiceUnavailable")
                || code.ends_with(": ConflictException")
                || code.ends_with(": ConcurrentModification"),
            "unexpected failure {code}"
        );
    }

    for restarted in [false, true] {
        if restarted {
            c.restart(|_, _| {}).await;
        }
        let [a, b] = [&c.nodes[0], &c.nodes[1]];
        for k in &keys {
            round_trip(b, a, k).await;
        }
        for (user, akid, secret) in &access {
            assert_eq!(
                caller_arn(a, akid, secret).await,
                format!("arn:aws:iam::000000000000:user/{user}")
            );
        }
    }
    c.shutdown().await;
}
