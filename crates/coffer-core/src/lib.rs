//! Things every room above the pure ones shares: who is calling and where (account, region,
//! partition), the injectable clock, and the contract by which a service error names its AWS
//! error code and HTTP status (mapped to the wire envelope in exactly one place, the server).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub mod arn;

/// The caller of one request, as established by SigV4 authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    /// ARN of the principal, e.g. `arn:aws:iam::123456789012:root`.
    pub principal_arn: String,
    pub access_key_id: String,
}

impl Caller {
    /// The account's root principal (`arn:aws:iam::ACCOUNT:root`) signing with `access_key_id`.
    pub fn root(account_id: &str, access_key_id: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            principal_arn: format!("arn:aws:iam::{account_id}:root"),
            access_key_id: access_key_id.to_string(),
        }
    }
}

/// Everything a service operation needs to know about the request besides its input.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub caller: Caller,
    /// Region from the SigV4 credential scope.
    pub region: String,
    pub request_id: String,
}

impl RequestContext {
    pub fn account_id(&self) -> &str {
        &self.caller.account_id
    }
    /// `aws`, `aws-cn` or `aws-us-gov`, derived from the region as AWS does.
    pub fn partition(&self) -> &'static str {
        arn::partition_for_region(&self.region)
    }
}

/// An AWS-shaped service error: every service's error enum implements this, and the server turns
/// it into `{"__type": code, "message": message}` with `status`.
pub trait ServiceError: std::error::Error + Send + Sync + 'static {
    fn code(&self) -> &'static str;
    fn status(&self) -> u16;
}

/// Wall-clock time in Unix milliseconds, injectable so tests advance time instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> i64;
    fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        d.as_millis() as i64
    }
}

/// A clock that starts at real time and moves only forward by `advance`.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            millis: AtomicI64::new(SystemClock.now_millis()),
        })
    }
    pub fn advance(&self, by: std::time::Duration) {
        self.millis
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;
