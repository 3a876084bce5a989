//! Shared helpers for the Secrets Manager end-to-end tests.
//!
//! The server judges signature freshness by real time and everything else (dates, recovery
//! windows, version retention) by its manual clock, so tests advance that clock by days while
//! the SDK keeps signing with the wall clock.

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::primitives::DateTime;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use coffer_core::Clock;

use crate::harness::TestServer;

pub const ACCOUNT: &str = "000000000000";
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A client in `us-east-1`.
pub fn client(s: &TestServer) -> Client {
    s.sm()
}

pub fn client_in(s: &TestServer, region: &str) -> Client {
    s.sm_in(region)
}

/// The server clock, in whole seconds since the epoch.
pub fn now_secs(s: &TestServer) -> i64 {
    s.clock.now_millis() / 1000
}

pub fn secs(d: Option<&DateTime>) -> i64 {
    d.map(DateTime::secs)
        .unwrap_or_else(|| panic!("timestamp missing"))
}

/// A valid ClientRequestToken (UUID-shaped, 36 characters) unique per `n`.
pub fn token(n: u64) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        n >> 16,
        n & 0xffff_ffff_ffff
    )
}

pub fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

pub fn filter(key: &str, values: &[&str]) -> Filter {
    let mut f = Filter::builder().key(FilterNameStringType::from(key));
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

/// Asserts the error is one of `codes` (AWS documents some limits without fixing which of its
/// validation errors reports them).
#[track_caller]
pub fn assert_code_in<E, R>(err: &aws_sdk_secretsmanager::error::SdkError<E, R>, codes: &[&str])
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata,
{
    let c = crate::harness::code(err);
    assert!(
        codes.contains(&c.as_str()),
        "got {c}, expected one of {codes:?}"
    );
}

/// Parameter-constraint violations: AWS answers them with its framework `ValidationException`
/// or with the service's `InvalidParameterException`.
pub const INVALID: &[&str] = &["InvalidParameterException", "ValidationException"];

/// Version id currently holding `stage`, from DescribeSecret.
pub async fn version_with(sm: &Client, id: &str, stage: &str) -> Option<String> {
    let d = sm
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .expect("describe");
    d.version_ids_to_stages()?
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == stage))
        .map(|(v, _)| v.clone())
}

/// All versions (ids) of a secret from ListSecretVersionIds, walking every page.
pub async fn all_versions(sm: &Client, id: &str, include_deprecated: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = sm
            .list_secret_version_ids()
            .secret_id(id)
            .include_deprecated(include_deprecated)
            .max_results(100)
            .set_next_token(next.take())
            .send()
            .await
            .expect("list versions");
        out.extend(
            page.versions()
                .iter()
                .filter_map(|v| v.version_id().map(str::to_string)),
        );
        match page.next_token() {
            Some(t) => next = Some(t.to_string()),
            None => return out,
        }
    }
}
