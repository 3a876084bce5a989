//! The audit trail. Every API call (and every action a service takes on its own) becomes one
//! CloudTrail-format record, redacted by the operation's model shapes, chained by SHA-256 and
//! sealed at intervals by Ed25519-signed digests; records kept in segment files beside the
//! embedded store or as rows of the shared store ([`records`]), digests and intents under
//! `audit/` in the store; served back through CloudTrail's `LookupEvents`; verified offline.
//!
//! Pure parts (no I/O): [`canonical`], [`chain`], [`digest`], [`record`], [`redact`],
//! [`verify`], [`export`]. Storage: [`records`], [`segments`]; the appender: [`log`]. The API:
//! [`lookup`].

pub mod canonical;
pub mod chain;
pub mod digest;
pub mod export;
pub mod keys;
pub mod linger;
pub mod log;
pub mod lookup;
pub mod record;
pub mod records;
pub mod redact;
pub mod resources;
pub mod segments;
pub mod verify;

pub use log::AuditLog;
pub use lookup::CloudTrailService;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("audit storage unavailable: {0}")]
    Unavailable(String),
    #[error("audit failure: {0}")]
    Internal(String),
}

impl From<coffer_store::StoreError> for AuditError {
    fn from(e: coffer_store::StoreError) -> Self {
        AuditError::Unavailable(e.to_string())
    }
}
