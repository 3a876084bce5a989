//! Building blocks shared by the service rooms (Secrets Manager, Parameter Store, ...), kept
//! free of any one service's error type:
//!
//! - [`token`]: opaque, tamper-checked NextTokens bound to the listing they belong to;
//! - [`locks`]: per-resource write serialization within one node;
//! - [`lease`]: named, expiring leases in the store, so one node of several runs a job;
//! - [`retry_on_conflict!`]: re-running an optimistic write while the store reports a conflict;
//! - [`constraint`]: AWS's model-constraint wording (length, range, enum) for ValidationException;
//! - [`readcache`]: decoded store records reused only for the exact entry they were decoded from;
//! - [`jsonout`]: writing JSON answers from borrowed fields, byte-identical to the map form;
//! - [`tags`]: the stored tag shape and the merge with its quota;
//! - [`opctx`]: one operation's context, through which every authorization decision is made;
//! - [`json_test_calls!`]: the calls the JSON services' own tests make.

pub mod audit;
pub mod constraint;
pub mod jsonout;
pub mod lease;
pub mod locks;
pub mod opctx;
pub mod readcache;
pub mod tags;
pub mod testkit;
pub mod token;

/// One row of the operation table a service contributes to the server.
#[derive(Debug, Clone, Copy)]
pub struct OperationSpec {
    pub name: &'static str,
    /// The IAM action AWS documents for it, e.g. `secretsmanager:GetSecretValue`.
    pub action: &'static str,
    pub read_only: bool,
}

/// Attempts per mutating call before a persistent conflict is given up on.
pub const MAX_ATTEMPTS: usize = 5;

/// Runs `$attempt` (an expression, typically `async { ... }.await`) holding `$guard` (a write-lock
/// future, awaited first) and re-runs it while its result matches `Err($conflict)`, backing off a
/// little between attempts. After [`MAX_ATTEMPTS`] it yields `Err($exhausted)`.
///
/// A macro rather than a function so the attempt can borrow freely from the caller's frame.
#[macro_export]
macro_rules! retry_on_conflict {
    (lock: $guard:expr, conflict: $conflict:pat, exhausted: $exhausted:expr, $attempt:expr) => {{
        let _guard = $guard.await;
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            match $attempt {
                Err($conflict) if attempt < $crate::MAX_ATTEMPTS => {
                    // Another node wrote the same resource: back off a little, then re-read.
                    tokio::time::sleep(std::time::Duration::from_millis(attempt as u64)).await;
                    continue;
                }
                Err($conflict) => break Err($exhausted),
                other => break other,
            }
        }
    }};
}
