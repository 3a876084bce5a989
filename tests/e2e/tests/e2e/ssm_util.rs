//! Shared helpers for the Parameter Store end-to-end tests.
//!
//! Expected behaviour comes from AWS's SSM API reference (the botocore model and its docs), not
//! from Coffer's code.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterTier, ParameterType, Tag};

use crate::harness::TestServer;

pub const ACCOUNT: &str = "000000000000";

pub fn client(s: &TestServer) -> Client {
    s.ssm()
}

/// The ARN AWS gives a parameter in `us-east-1` (hierarchical names keep their leading slash
/// after `parameter`, flat names get one).
pub fn arn(name: &str) -> String {
    let sep = if name.starts_with('/') { "" } else { "/" };
    format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{sep}{name}")
}

/// PutParameter of a new String parameter; returns its version.
pub async fn put_string(ssm: &Client, name: &str, value: &str) -> i64 {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {name}: {}", crate::harness::code(&e)))
        .version()
}

/// PutParameter with Overwrite; returns the new version.
pub async fn overwrite(ssm: &Client, name: &str, value: &str) -> i64 {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("overwrite {name}: {}", crate::harness::code(&e)))
        .version()
}

pub async fn put_secure(ssm: &Client, name: &str, value: &str) -> i64 {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {name}: {}", crate::harness::code(&e)))
        .version()
}

pub async fn put_advanced(ssm: &Client, name: &str, value: &str) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .tier(ParameterTier::Advanced)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {name}: {}", crate::harness::code(&e)));
}

/// The current value (decrypted) of `name`.
pub async fn value(ssm: &Client, name: &str) -> String {
    ssm.get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {name}: {}", crate::harness::code(&e)))
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_else(|| panic!("{name} has no value"))
        .to_string()
}

pub fn tag(k: &str, v: &str) -> Tag {
    Tag::builder()
        .key(k)
        .value(v)
        .build()
        .expect("key and value set")
}

pub fn filter(key: &str, option: Option<&str>, values: &[&str]) -> ParameterStringFilter {
    let mut f = ParameterStringFilter::builder().key(key);
    if let Some(o) = option {
        f = f.option(o);
    }
    for v in values {
        f = f.values(*v);
    }
    f.build().expect("key set")
}

/// Asserts the error code of an SDK error is `want`.
#[track_caller]
pub fn assert_code<E, R>(err: &aws_sdk_ssm::error::SdkError<E, R>, want: &str)
where
    E: aws_sdk_ssm::error::ProvideErrorMetadata,
{
    assert_eq!(crate::harness::code(err), want);
}
