//! Protocol-level behaviour: health, signatures, errors, durability, encryption at rest.

use std::time::{Duration, SystemTime};

use aws_sdk_secretsmanager::primitives::Blob;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{TestServer, code};

/// Sends one HTTP/1.1 request over a fresh connection and returns status, JSON body and headers.
/// Signed with the `aws-sigv4` crate (the SDK's own signer) when `signed`.
pub async fn raw_post(
    server: &TestServer,
    target: Option<&str>,
    body: &[u8],
    signed: bool,
) -> (u16, serde_json::Value, Vec<(String, String)>) {
    let host = server.server.addr.to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.clone()),
        ("content-type".into(), "application/x-amz-json-1.1".into()),
    ];
    if let Some(t) = target {
        headers.push(("x-amz-target".into(), t.into()));
    }
    if signed {
        headers.extend(sign(&headers, body, "secretsmanager", SystemTime::now()));
    }
    send(&host, "POST", "/", &headers, body).await
}

pub fn sign(
    headers: &[(String, String)],
    body: &[u8],
    service: &str,
    time: SystemTime,
) -> Vec<(String, String)> {
    sign_request("POST", "/", headers, body, service, time)
}

/// SigV4 headers for `method path` with the dev (root) credentials.
pub fn sign_request(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    service: &str,
    time: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(
        coffer_server::DEV_ACCESS_KEY_ID,
        coffer_server::DEV_SECRET_ACCESS_KEY,
        None,
        None,
        "raw",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let req = SignableRequest::new(
        method,
        path,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable");
    let (instructions, _) = sign(req, &params).expect("signs").into_parts();
    let (hs, _) = instructions.into_parts();
    hs.into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

pub async fn send(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, serde_json::Value, Vec<(String, String)>) {
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(req.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string()));
    (status, json, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn health_endpoint_answers_without_auth() {
    let s = TestServer::dev().await;
    let host = s.server.addr.to_string();
    let (status, body, _) = send(
        &host,
        "GET",
        "/health",
        &[("host".into(), host.clone())],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unsigned_request_is_missing_authentication_token() {
    let s = TestServer::dev().await;
    let (status, body, headers) = s
        .raw_post(Some("secretsmanager.ListSecrets"), b"{}", false)
        .await;
    // JSON 1.1 services answer authentication failures with 400, unlike Query services.
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
    assert!(body["message"].is_string());
    assert!(header(&headers, "x-amzn-requestid").is_some_and(|v| v.len() >= 32));
}

#[tokio::test]
async fn protocol_errors_are_aws_shaped() {
    let s = TestServer::dev().await;
    let (status, body, headers) = s
        .raw_post(Some("secretsmanager.NoSuchThing"), b"{}", true)
        .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );
    assert!(header(&headers, "x-amzn-requestid").is_some());

    let (status, body, _) = s.raw_post(None, b"{}", true).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );

    let (status, body, _) = s
        .raw_post(Some("secretsmanager.ListSecrets"), b"{not json", true)
        .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("SerializationException"))
    );

    // A wrongly typed member holding a secret-looking marker: the error must not echo it.
    let marker = "MARKER-7f1c2e-never-echo";
    let payload = format!(r#"{{"Name": "x", "SecretString": ["{marker}"]}}"#);
    let (status, body, _) = s
        .raw_post(
            Some("secretsmanager.CreateSecret"),
            payload.as_bytes(),
            true,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "SerializationException");
    assert!(
        !body.to_string().contains(marker),
        "error echoed the value: {body}"
    );
}

#[tokio::test]
async fn wrong_service_scope_is_rejected() {
    let s = TestServer::dev().await;
    let host = s.server.addr.to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.clone()),
        ("x-amz-target".into(), "secretsmanager.ListSecrets".into()),
    ];
    headers.extend(sign(&headers, b"{}", "ssm", SystemTime::now()));
    let (status, body, _) = send(&host, "POST", "/", &headers, b"{}").await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidSignatureException"))
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("'secretsmanager'")),
        "{body}"
    );
}

#[tokio::test]
async fn bad_credentials_are_rejected() {
    let s = TestServer::dev().await;
    let unknown = s.sm_with("us-east-1", "AKIAUNKNOWNKEY000000", "whatever-secret");
    let err = unknown.list_secrets().send().await.unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");

    let wrong_secret = s.sm_with(
        "us-east-1",
        coffer_server::DEV_ACCESS_KEY_ID,
        "not-the-secret",
    );
    let err = wrong_secret.list_secrets().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
}

#[tokio::test]
async fn clock_skew_beyond_fifteen_minutes_is_rejected() {
    let s = TestServer::dev().await;
    let host = s.server.addr.to_string();
    let base: Vec<(String, String)> = vec![
        ("host".into(), host.clone()),
        ("x-amz-target".into(), "secretsmanager.ListSecrets".into()),
    ];
    let signed_at = |offset_secs: i64| {
        let now = SystemTime::now();
        let t = if offset_secs < 0 {
            now - Duration::from_secs(offset_secs.unsigned_abs())
        } else {
            now + Duration::from_secs(offset_secs as u64)
        };
        let mut h = base.clone();
        h.extend(sign(&base, b"{}", "secretsmanager", t));
        h
    };
    for (offset, ok) in [
        (-14 * 60, true),
        (14 * 60, true),
        (-16 * 60, false),
        (16 * 60, false),
    ] {
        let (status, body, _) = send(&host, "POST", "/", &signed_at(offset), b"{}").await;
        if ok {
            assert_eq!(status, 200, "offset {offset}: {body}");
        } else {
            assert_eq!(
                (status, body["__type"].as_str()),
                (400, Some("InvalidSignatureException"))
            );
            let msg = body["message"].as_str().unwrap_or("");
            assert!(
                msg.starts_with("Signature expired")
                    || msg.starts_with("Signature not yet current"),
                "{msg}"
            );
        }
    }
    // The domain clock moving (as tests do) does not affect signature freshness.
    s.clock.advance(Duration::from_secs(40 * 24 * 3600));
    s.sm()
        .list_secrets()
        .send()
        .await
        .expect("signed now, verified against real time");
}

#[tokio::test]
async fn partitions_follow_the_region() {
    let s = TestServer::dev().await;
    for (region, partition) in [
        ("us-east-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
    ] {
        let out = s
            .sm_in(region)
            .create_secret()
            .name("p")
            .secret_string("v")
            .send()
            .await
            .unwrap();
        let arn = out.arn().unwrap();
        let prefix = format!("arn:{partition}:secretsmanager:{region}:000000000000:secret:p-");
        assert!(arn.starts_with(&prefix), "{arn}");
        assert_eq!(arn.len(), prefix.len() + 6);
    }
}

#[tokio::test]
async fn durable_store_survives_restart_and_never_holds_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let marker = "PLAINTEXT-MARKER-3b9d0c5a1e";
    let binary_marker = b"BINARY-MARKER-77aa11";
    {
        let mut config = coffer_server::ServerConfig::dev();
        config.listen = coffer_server::ephemeral();
        config.dev = false;
        config.data_dir = Some(dir.path().to_path_buf());
        config.root_credentials = Some(coffer_server::RootCredentials {
            access_key_id: coffer_server::DEV_ACCESS_KEY_ID.into(),
            secret_access_key: coffer_server::DEV_SECRET_ACCESS_KEY.into(),
        });
        let server = coffer_server::start(config.clone()).await.unwrap();
        let s = TestServer {
            server,
            clock: coffer_core::ManualClock::new(),
            _dir: None,
            _db: None,
        };
        let sm = s.sm();
        sm.create_secret()
            .name("db/password")
            .secret_string(marker)
            .send()
            .await
            .unwrap();
        sm.create_secret()
            .name("bin")
            .secret_binary(Blob::new(binary_marker.to_vec()))
            .send()
            .await
            .unwrap();
        s.server.shutdown().await;

        let server = coffer_server::start(config).await.unwrap();
        let s = TestServer {
            server,
            clock: coffer_core::ManualClock::new(),
            _dir: None,
            _db: None,
        };
        let got = s
            .sm()
            .get_secret_value()
            .secret_id("db/password")
            .send()
            .await
            .unwrap();
        assert_eq!(got.secret_string(), Some(marker));
        s.server.shutdown().await;
    }
    let mut scanned = 0;
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        scanned += bytes.len();
        for needle in [marker.as_bytes(), binary_marker.as_slice()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "plaintext found in {}",
                entry.display()
            );
        }
    }
    assert!(scanned > 0, "the data dir was empty");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[tokio::test]
async fn oversize_bodies_and_unknown_paths_are_aws_shaped() {
    let s = TestServer::dev().await;
    let big = vec![b' '; coffer_server::MAX_BODY_BYTES + 1];
    let (status, body, headers) = s
        .raw_post(Some("secretsmanager.ListSecrets"), &big, false)
        .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (413, Some("ValidationException"))
    );
    assert!(header(&headers, "x-amzn-requestid").is_some());

    let host = s.server.addr.to_string();
    let (status, body, _) = send(
        &host,
        "GET",
        "/nowhere",
        &[("host".into(), host.clone())],
        b"",
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (404, Some("UnknownOperationException"))
    );
}

#[tokio::test]
async fn account_id_is_configurable_in_dev_mode() {
    let s = TestServer::with_config(|c| c.account_id = Some("111122223333".into())).await;
    assert_eq!(s.server.account_id(), "111122223333");
    let arn = s
        .sm()
        .create_secret()
        .name("acct")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    assert!(
        arn.arn()
            .unwrap()
            .starts_with("arn:aws:secretsmanager:us-east-1:111122223333:secret:acct-")
    );

    let bad = coffer_server::start({
        let mut c = coffer_server::ServerConfig::dev();
        c.listen = coffer_server::ephemeral();
        c.account_id = Some("12345".into());
        c
    })
    .await;
    assert!(bad.is_err(), "a 5-digit account id was accepted");
}
