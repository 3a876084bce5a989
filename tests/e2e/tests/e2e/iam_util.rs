//! Clients and helpers for the IAM and STS tests.

use crate::harness::TestServer;

pub const ACCOUNT: &str = "000000000000";

pub fn iam(s: &TestServer) -> aws_sdk_iam::Client {
    iam_with(
        s,
        coffer_server::DEV_ACCESS_KEY_ID,
        coffer_server::DEV_SECRET_ACCESS_KEY,
        None,
    )
}

pub fn iam_with(
    s: &TestServer,
    akid: &str,
    secret: &str,
    token: Option<&str>,
) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .endpoint_url(s.endpoint())
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            akid,
            secret,
            token.map(String::from),
            None,
            "coffer-e2e",
        ))
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

pub fn sts(s: &TestServer) -> aws_sdk_sts::Client {
    sts_with(
        s,
        coffer_server::DEV_ACCESS_KEY_ID,
        coffer_server::DEV_SECRET_ACCESS_KEY,
        None,
    )
}

pub fn sts_with(
    s: &TestServer,
    akid: &str,
    secret: &str,
    token: Option<&str>,
) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(s.endpoint())
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            akid,
            secret,
            token.map(String::from),
            None,
            "coffer-e2e",
        ))
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// The AWS error code of any SDK error.
pub fn err_code<E: aws_sdk_iam::error::ProvideErrorMetadata + std::fmt::Debug>(e: &E) -> String {
    e.code()
        .map(String::from)
        .unwrap_or_else(|| format!("<no code: {e:?}>"))
}

/// A user with one access key: (access key id, secret).
pub async fn user_with_key(iam: &aws_sdk_iam::Client, name: &str, path: &str) -> (String, String) {
    iam.create_user()
        .user_name(name)
        .path(path)
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap();
    let k = key.access_key().unwrap();
    (
        k.access_key_id().to_string(),
        k.secret_access_key().to_string(),
    )
}

/// An IAM tag.
pub fn tag(key: &str, value: &str) -> aws_sdk_iam::types::Tag {
    aws_sdk_iam::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .unwrap()
}

/// A customer managed policy `name` holding `statements`; its ARN.
pub async fn managed_policy(iam: &aws_sdk_iam::Client, name: &str, statements: &[&str]) -> String {
    iam.create_policy()
        .policy_name(name)
        .policy_document(policy(statements))
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

/// `{"Version":"2012-10-17","Statement":[...]}` from statement JSON texts.
pub fn policy(statements: &[&str]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    )
}

pub fn decode(doc: &str) -> serde_json::Value {
    // IAM returns policy documents URL-encoded; the Rust SDK hands them over as they came.
    let text = percent_decode(doc);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
