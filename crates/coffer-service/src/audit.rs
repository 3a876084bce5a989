//! How a service records an action it takes on its own (a purge at the end of a recovery window,
//! a parameter policy firing): it asks the audit log for one store write describing the action
//! and puts it in the same batch that carries the action out, so the action and its record are
//! committed together or not at all. The audit log chains it afterwards.

/// One action a service took by itself (recorded as CloudTrail's `AwsServiceEvent`).
#[derive(Debug, Clone)]
pub struct ServiceAction<'a> {
    /// Signing name of the acting service (`secretsmanager`, `ssm`).
    pub service: &'static str,
    pub event_name: &'static str,
    pub account_id: &'a str,
    pub region: &'a str,
    pub time_ms: i64,
    pub resource_arn: String,
    /// CloudFormation-style type, e.g. `AWS::SecretsManager::Secret`.
    pub resource_type: &'static str,
    /// `serviceEventDetails`: value-free facts about the action.
    pub details: serde_json::Value,
}

pub trait ServiceEventLog: Send + Sync {
    /// The `(key, value)` to put in the action's batch.
    fn record(&self, action: &ServiceAction<'_>) -> (Vec<u8>, Vec<u8>);
}
