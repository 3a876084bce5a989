//! End-to-end tests: the real server on an ephemeral port, driven by the AWS SDK for Rust.
//! One test binary on purpose: each extra binary relinks the SDK.

mod harness;
mod server;
