//! Parameter-policy events end to end: policies set through the SDK fire on the server's manual
//! clock and reach a real webhook on 127.0.0.1 (which fails its first POST, to prove the retry)
//! and the server's event log, in the EventBridge shape AWS documents for Parameter Store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use aws_smithy_types::date_time::{DateTime, Format};
use coffer_core::Clock;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::TestServer;
use crate::ssm_util::{ACCOUNT, assert_code, client};

const HOUR: Duration = Duration::from_secs(3600);

/// A tiny HTTP/1.1 receiver: records every POST body, answers 500 to the first request.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

async fn receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/ssm?token=abc",
        listener.local_addr().unwrap()
    );
    let requests: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut conn).await else {
                    return;
                };
                let first = {
                    let mut r = seen.lock().unwrap();
                    r.push((head, body));
                    r.len() == 1
                };
                let status = if first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let resp =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = conn.write_all(resp.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Receiver { url, requests }
}

/// `(request line + headers, body)` of one request with a content-length.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    Some((head, body))
}

impl Receiver {
    /// The requests received so far, once there are `n` (polls for at most 5 s).
    async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        for _ in 0..100 {
            let got = self.requests.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = self.requests.lock().unwrap().clone();
        panic!("expected {n} webhook requests, got {}", got.len());
    }
}

fn at(s: &TestServer, after: Duration) -> String {
    let ms = s.clock.now_millis() + after.as_millis() as i64;
    DateTime::from_millis(ms).fmt(Format::DateTime).unwrap()
}

fn detail(body: &str) -> (Value, String) {
    let v: Value = serde_json::from_str(body).expect("the webhook receives one JSON event");
    let kind = v["detail"]["policy-type"].as_str().unwrap_or("").to_owned();
    (v, kind)
}

#[tokio::test]
async fn policy_events_reach_the_webhook_with_retry_and_the_event_log() {
    let hook = receiver().await;
    let url = hook.url.clone();
    let s = TestServer::with_config(move |c| {
        c.parameter_events_webhook = Some(url);
        // Only the test drives the jobs.
        c.task_interval = Duration::from_secs(86_400);
    })
    .await;
    let ssm = client(&s);
    ssm.put_parameter()
        .name("/ev/stale")
        .value("s3cr3t-value")
        .r#type(ParameterType::SecureString)
        .tier(ParameterTier::Advanced)
        .policies(
            r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"1","Unit":"Hours"}}]"#,
        )
        .send()
        .await
        .unwrap();
    ssm.put_parameter()
        .name("/ev/temp")
        .value("t")
        .r#type(ParameterType::String)
        .tier(ParameterTier::Advanced)
        .policies(format!(
            r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{}"}}}},
                {{"Type":"ExpirationNotification","Version":"1.0","Attributes":{{"Before":"1","Unit":"Hours"}}}}]"#,
            at(&s, 2 * HOUR)
        ))
        .send()
        .await
        .unwrap();

    // Nothing due yet.
    s.clock.advance(HOUR / 2);
    s.server.run_background_jobs().await;
    assert!(hook.requests.lock().unwrap().is_empty());
    assert!(s.server.parameter_events().unwrap().is_empty());

    // Both notifications fall due; the webhook's first answer is a 500.
    s.clock.advance(HOUR + HOUR / 4);
    s.server.run_background_jobs().await;
    let first = hook.wait_for(1).await;
    assert_eq!(s.server.parameter_events().unwrap().len(), 2);
    // After the backoff (1 s) the failed event is sent again, and the one queued behind it.
    s.clock.advance(Duration::from_secs(1));
    s.server.run_background_jobs().await;
    let got = hook.wait_for(3).await;
    assert!(
        got[1..].iter().any(|(_, b)| b == &first[0].1),
        "the failed event is retried as it was"
    );
    let (head, _) = &got[0];
    assert!(
        head.starts_with("POST /hooks/ssm?token=abc HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let mut kinds: Vec<String> = got[1..].iter().map(|(_, b)| detail(b).1).collect();
    kinds.sort();
    assert_eq!(kinds, ["ExpirationNotification", "NoChangeNotification"]);
    for (_, body) in &got {
        assert!(!body.contains("s3cr3t-value"), "events never carry values");
        let (v, kind) = detail(body);
        assert_eq!(v["source"], "aws.ssm");
        assert_eq!(v["detail-type"], "Parameter Store Policy Action");
        assert_eq!(v["account"], ACCOUNT);
        assert_eq!(v["region"], "us-east-1");
        let name = if kind == "NoChangeNotification" {
            assert_eq!(v["detail"]["parameter-type"], "SecureString");
            "/ev/stale"
        } else {
            assert_eq!(v["detail"]["parameter-type"], "String");
            "/ev/temp"
        };
        assert_eq!(v["detail"]["parameter-name"], name);
        assert_eq!(
            v["resources"][0],
            format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{name}")
        );
        assert_eq!(v["detail"]["action-status"], "Success");
    }

    // Past the expiration: the parameter is deleted and the Expiration event follows.
    s.clock.advance(HOUR);
    s.server.run_background_jobs().await;
    let got = hook.wait_for(4).await;
    let (v, kind) = detail(&got[3].1);
    assert_eq!(kind, "Expiration");
    assert_eq!(v["detail"]["parameter-name"], "/ev/temp");
    let err = ssm
        .get_parameter()
        .name("/ev/temp")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");

    // Nothing fires twice; the log holds each event once, the same ones the webhook got.
    s.clock.advance(24 * HOUR);
    s.server.run_background_jobs().await;
    assert_eq!(hook.requests.lock().unwrap().len(), 4);
    let log: Vec<Value> = s
        .server
        .parameter_events()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(log.len(), 3);
    let mut log_ids: Vec<&str> = log.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let delivered: Vec<Value> = got[1..].iter().map(|(_, b)| detail(b).0).collect();
    let mut hook_ids: Vec<&str> = delivered
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    log_ids.sort();
    hook_ids.sort();
    assert_eq!(log_ids, hook_ids);
}

#[tokio::test]
async fn a_bad_webhook_url_is_refused_at_start() {
    let mut config = coffer_server::ServerConfig::dev();
    config.listen = coffer_server::ephemeral();
    config.parameter_events_webhook = Some("ftp://example.com/x".into());
    let err = coffer_server::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("http://"), "{err}");
}

#[tokio::test]
async fn parameter_quotas_are_configurable() {
    let s = TestServer::with_config(|c| {
        c.parameter_limits.standard_parameters = 2;
        c.parameter_limits.advanced_parameters = 1;
    })
    .await;
    let ssm = client(&s);
    for n in ["/q/a", "/q/b"] {
        crate::ssm_util::put_string(&ssm, n, "v").await;
    }
    let err = ssm
        .put_parameter()
        .name("/q/c")
        .value("v")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterLimitExceeded");
    crate::ssm_util::put_advanced(&ssm, "/q/adv", "v").await;
    let err = ssm
        .put_parameter()
        .name("/q/adv2")
        .value("v")
        .r#type(ParameterType::String)
        .tier(ParameterTier::Advanced)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterLimitExceeded");
}

#[tokio::test]
async fn the_durable_server_appends_events_to_the_log_file_in_its_data_dir() {
    let s = TestServer::durable().await;
    let ssm = client(&s);
    ssm.put_parameter()
        .name("/ev/file")
        .value("v")
        .r#type(ParameterType::String)
        .tier(ParameterTier::Advanced)
        .policies(
            r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"2","Unit":"Days"}}]"#,
        )
        .send()
        .await
        .unwrap();
    s.clock.advance(3 * 24 * HOUR);
    s.server.run_background_jobs().await;
    s.server.run_background_jobs().await;
    let dir = s._dir.as_ref().unwrap().path();
    let text = std::fs::read_to_string(dir.join(coffer_server::EVENT_LOG_FILE)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let (v, kind) = detail(lines[0]);
    assert_eq!(kind, "NoChangeNotification");
    assert_eq!(v["detail"]["parameter-name"], "/ev/file");
    assert_eq!(s.server.parameter_events().unwrap(), lines);
}
