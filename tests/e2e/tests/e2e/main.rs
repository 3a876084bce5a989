//! End-to-end tests: the real server on an ephemeral port, driven by the AWS SDK for Rust.
//! One test binary on purpose: each extra binary relinks the SDK.

mod audit;
mod audit_every_operation;
mod harness;
mod iam_policies;
mod iam_users;
mod iam_util;
mod kms_aliases;
mod kms_authz;
mod kms_crypto;
mod kms_keys;
mod kms_manage;
mod kms_services;
mod lambda;
mod multinode;
mod postgres;
mod rotation;
mod sealing;
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
mod sts_sessions;
