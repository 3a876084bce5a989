//! AWS wire protocols for Coffer: JSON 1.1 bodies, Query/XML (IAM, STS), AWS error envelopes and SigV4 verification.
//!
//! A pure room: no I/O, no async, nothing of ours as a dependency.

pub mod error;
pub mod json;
pub mod query;
pub mod sigv4;

pub use error::ErrorEnvelope;
pub use json::WireError;
pub use sigv4::{AuthError, RequestParts, SigningSecret, Verified, Verifier};
