//! End-to-end tests live in tests/e2e.rs: one binary, so the SDK links once.
