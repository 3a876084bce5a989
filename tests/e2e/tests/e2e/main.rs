//! End-to-end tests: the real server on an ephemeral port, driven by the AWS SDK for Rust.
//! One test binary on purpose: each extra binary relinks the SDK.

mod harness;
mod rotation;
mod secrets_batch;
mod secrets_crud;
mod secrets_delete;
mod secrets_list;
mod secrets_password;
mod secrets_replication;
mod secrets_tags_policies;
mod secrets_util;
mod secrets_versions;
mod server;
mod ssm_events;
mod ssm_get;
mod ssm_path;
mod ssm_put;
mod ssm_resources;
mod ssm_util;
mod ssm_versions;
