//! Sealing through the real server: init with shares, unseal (with bad shares on the way), seal,
//! restart, rekey, rotate-root; a sealed server serves no data.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::harness::{TestServer, code};
use crate::server::{send, sign_request};

/// `POST /coffer/operator/{action}`, optionally signed with the dev (root) credentials.
pub(crate) async fn operator(
    s: &TestServer,
    action: &str,
    body: Value,
    signed: bool,
) -> (u16, Value) {
    let host = s.server.addr.to_string();
    let path = format!("/coffer/operator/{action}");
    let body = body.to_string().into_bytes();
    let mut headers = vec![
        ("host".to_string(), host.clone()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    if signed {
        let sig = sign_request("POST", &path, &headers, &body, "coffer", SystemTime::now());
        headers.extend(sig);
    }
    let (status, json, _) = send(&host, "POST", &path, &headers, &body).await;
    (status, json)
}

pub(crate) async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    let host = s.server.addr.to_string();
    let (status, json, _) = send(&host, "GET", path, &[("host".into(), host.clone())], b"").await;
    (status, json)
}

/// A durable server on `dir` that waits for `coffer operator init` (no auto-init).
async fn start_on(dir: &std::path::Path) -> TestServer {
    TestServer::durable_at(dir, |c| c.auto_init = false).await
}

pub(crate) fn shares(v: &Value) -> Vec<String> {
    v["shares"]
        .as_array()
        .expect("shares")
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

pub(crate) async fn assert_sealed(s: &TestServer) {
    let (status, health) = get(s, "/health").await;
    assert_eq!((status, health["status"].as_str()), (503, Some("sealed")));
    let err = s.sm().list_secrets().send().await.unwrap_err();
    assert_eq!(code(&err), "ServiceUnavailable");
}

#[tokio::test]
async fn dev_server_seals_serves_nothing_and_auto_unseals() {
    let s = TestServer::dev().await;
    s.sm()
        .create_secret()
        .name("kept")
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    // Sealing needs the root credentials.
    let (status, body) = operator(&s, "seal", json!({}), false).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
    let (status, body) = operator(&s, "seal", json!({}), true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sealed"], true);
    assert_sealed(&s).await;
    let (_, st) = get(&s, "/coffer/operator/status").await;
    assert_eq!(
        (st["sealed"].as_bool(), st["unseal_method"].as_str()),
        (Some(true), Some("auto"))
    );
    // A sealed server cannot authenticate the seal call either; unseal needs no shares (dev key).
    let (status, body) = operator(&s, "unseal", json!({}), false).await;
    assert_eq!(
        (status, body["sealed"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let v = s
        .sm()
        .get_secret_value()
        .secret_id("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("v1"));
    let (status, health) = get(&s, "/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn shares_init_unseal_restart_rekey_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let s = start_on(&path).await;
    let (status, health) = get(&s, "/health").await;
    assert_eq!(
        (status, health["status"].as_str()),
        (503, Some("uninitialized"))
    );
    assert_eq!(
        code(&s.sm().list_secrets().send().await.unwrap_err()),
        "ServiceUnavailable"
    );

    // Bad init parameters change nothing.
    for bad in [
        json!({"key_shares": 3, "key_threshold": 4}),
        json!({"key_shares": 3, "key_threshold": 0}),
        json!({"key_shares": 3}),
    ] {
        let (status, body) = operator(&s, "init", bad.clone(), false).await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some("ValidationException")),
            "{bad}: {body}"
        );
    }
    let (status, init) = operator(
        &s,
        "init",
        json!({"key_shares": 5, "key_threshold": 3}),
        false,
    )
    .await;
    assert_eq!(status, 200, "{init}");
    let set = shares(&init);
    assert_eq!(set.len(), 5);
    assert_eq!(init["status"]["sealed"], true);
    // The durable harness configures the dev credentials, so init generates none.
    assert!(init["root_credentials"].is_null());
    let (status, again) = operator(
        &s,
        "init",
        json!({"key_shares": 1, "key_threshold": 1}),
        false,
    )
    .await;
    assert_eq!(
        (status, again["__type"].as_str()),
        (409, Some("InvalidStateException"))
    );
    assert_sealed(&s).await;

    // Wrong, corrupt, duplicate shares: refused with a reason, progress unchanged.
    let (status, st) = operator(&s, "unseal", json!({"share": set[0]}), false).await;
    assert_eq!((status, st["progress"].as_u64()), (200, Some(1)), "{st}");
    let mut corrupt = set[1].clone().into_bytes();
    corrupt[10] = if corrupt[10] == b'A' { b'B' } else { b'A' };
    let corrupt = String::from_utf8(corrupt).unwrap();
    let other_server = coffer_crypto_share();
    for (bad, says) in [
        (set[0].clone(), "already given"),
        (corrupt, "checksum"),
        ("garbage".to_string(), "not a Coffer unseal share"),
        (other_server, "another share set"),
    ] {
        let (status, body) = operator(&s, "unseal", json!({"share": bad}), false).await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some("InvalidShareException")),
            "{body}"
        );
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let (_, st) = get(&s, "/coffer/operator/status").await;
    assert_eq!(
        (st["progress"].as_u64(), st["sealed"].as_bool()),
        (Some(1), Some(true))
    );
    operator(&s, "unseal", json!({"share": set[1]}), false).await;
    let (status, st) = operator(&s, "unseal", json!({"share": set[2]}), false).await;
    assert_eq!(
        (status, st["sealed"].as_bool(), st["progress"].as_u64()),
        (200, Some(false), Some(0))
    );

    s.sm()
        .create_secret()
        .name("db")
        .secret_string("pw-1")
        .send()
        .await
        .unwrap();
    s.ssm()
        .put_parameter()
        .name("/p")
        .value("sv")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();

    // Restart: sealed again; a different quorum of the same shares unseals.
    s.server.shutdown().await;
    let s = start_on(&path).await;
    assert_sealed(&s).await;
    for share in &set[2..5] {
        operator(&s, "unseal", json!({"share": share}), false).await;
    }
    let v = s
        .sm()
        .get_secret_value()
        .secret_id("db")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("pw-1"));

    // Rekey: too few current shares change nothing; then a new 2-of-3 set, verified.
    let (status, body) = operator(
        &s,
        "rekey",
        json!({"shares": [set[0], set[1]], "key_shares": 3, "key_threshold": 2}),
        false,
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidShareException")),
        "{body}"
    );
    let (status, body) = operator(
        &s,
        "rekey",
        json!({"shares": [set[0], set[1], set[1]], "key_shares": 3, "key_threshold": 2}),
        false,
    )
    .await;
    assert_eq!(status, 400, "duplicate: {body}");
    let (status, rk) = operator(
        &s,
        "rekey",
        json!({"shares": [set[0], set[1], set[3]], "key_shares": 3, "key_threshold": 2}),
        false,
    )
    .await;
    assert_eq!(status, 200, "{rk}");
    let new = shares(&rk);
    // Until verified, the old shares are still the ones in force.
    let (_, st) = get(&s, "/coffer/operator/status").await;
    assert_eq!(
        (st["rekey_pending"].as_bool(), st["threshold"].as_u64()),
        (Some(true), Some(3))
    );
    let (status, body) = operator(&s, "rekey", json!({"verify": [new[0]]}), false).await;
    assert_eq!(status, 400, "one of two: {body}");
    let (status, st) = operator(&s, "rekey", json!({"verify": [new[2], new[0]]}), false).await;
    assert_eq!(
        (
            status,
            st["threshold"].as_u64(),
            st["rekey_pending"].as_bool()
        ),
        (200, Some(2), Some(false)),
        "{st}"
    );

    // Rotate-root: root credentials and a quorum of the (new) shares; data stays readable.
    let (status, body) = operator(
        &s,
        "rotate-root",
        json!({"shares": [new[1], new[2]]}),
        false,
    )
    .await;
    assert_eq!(status, 400, "unsigned: {body}");
    let (status, body) = operator(
        &s,
        "rotate-root",
        json!({"shares": [set[0], set[1], set[2]]}),
        true,
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidShareException")),
        "old set: {body}"
    );
    let (status, body) =
        operator(&s, "rotate-root", json!({"shares": [new[1], new[2]]}), true).await;
    assert_eq!(status, 200, "{body}");
    // KMS key material (the two AWS-managed keys) and the root access key were rewrapped.
    assert!(body["rewrapped_records"].as_u64().unwrap() >= 3, "{body}");
    let v = s
        .sm()
        .get_secret_value()
        .secret_id("db")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("pw-1"));

    // After a restart, the new shares unseal the rotated root key and everything reads.
    s.server.shutdown().await;
    let s = start_on(&path).await;
    assert_sealed(&s).await;
    let (status, body) = operator(&s, "unseal", json!({"share": set[0]}), false).await;
    assert_eq!(status, 400, "old share after rekey: {body}");
    operator(&s, "unseal", json!({"share": new[0]}), false).await;
    let (_, st) = operator(&s, "unseal", json!({"share": new[1]}), false).await;
    assert_eq!(st["sealed"], false, "{st}");
    let v = s
        .sm()
        .get_secret_value()
        .secret_id("db")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("pw-1"));
    let p = s
        .ssm()
        .get_parameter()
        .name("/p")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(p.parameter().unwrap().value(), Some("sv"));
    s.server.shutdown().await;
    drop(dir);
}

/// A well-formed share of some other server's set.
fn coffer_crypto_share() -> String {
    let set = coffer_crypto::shamir::split_into_shares(&[7u8; 32], 2, 2).unwrap();
    set[0].encode().to_string()
}

/// IAM lives inside the unsealed services: a sealed server answers IAM/STS with
/// ServiceUnavailable, and rotate-root rewraps IAM users' access keys (they keep working) while
/// STS sessions (sealed under a root-derived key) end.
#[tokio::test]
async fn iam_keys_survive_rotate_root_and_sealed_iam_is_unavailable() {
    use crate::iam_util::{err_code, iam, sts, sts_with, user_with_key};
    let s = TestServer::dev().await;
    let (akid, secret) = user_with_key(&iam(&s), "rotated", "/").await;
    let who = sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.arn(), Some("arn:aws:iam::000000000000:user/rotated"));
    let session = sts(&s)
        .get_session_token()
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let c = session.credentials().unwrap();
    let (s_akid, s_secret, s_token) = (
        c.access_key_id().to_string(),
        c.secret_access_key().to_string(),
        c.session_token().to_string(),
    );
    sts_with(&s, &s_akid, &s_secret, Some(&s_token))
        .get_caller_identity()
        .send()
        .await
        .unwrap();

    let (status, body) = operator(&s, "rotate-root", json!({}), true).await;
    assert_eq!(status, 200, "{body}");
    // The user's key and the root key (at least), plus KMS material.
    assert!(body["rewrapped_records"].as_u64().unwrap() >= 2, "{body}");
    let who = sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.arn(), Some("arn:aws:iam::000000000000:user/rotated"));
    sts(&s).get_caller_identity().send().await.unwrap();
    let err = sts_with(&s, &s_akid, &s_secret, Some(&s_token))
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_ne!(
        err_code(&err),
        "",
        "a session from before rotate-root: {err:?}"
    );

    let (status, body) = operator(&s, "seal", json!({}), true).await;
    assert_eq!(status, 200, "{body}");
    let err = iam(&s).list_users().send().await.unwrap_err();
    assert_eq!(err_code(&err), "ServiceUnavailable", "{err:?}");
    let err = sts(&s).get_caller_identity().send().await.unwrap_err();
    assert_eq!(err_code(&err), "ServiceUnavailable", "{err:?}");
    let (status, body) = operator(&s, "unseal", json!({}), false).await;
    assert_eq!(status, 200, "{body}");
    let who = sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.arn(), Some("arn:aws:iam::000000000000:user/rotated"));
}
