//! The structural guarantee of authorization (issue 5, item 5): every operation in every
//! service's table is refused to a principal without policies, and is not refused to one whose
//! only policy grants exactly the action the table declares for it.
//!
//! The services run on a memory store with the server's authorizer; the inputs below are valid,
//! so each call reaches its authorization decision. A table row without an input here fails the
//! test, so a new operation cannot be added without being covered.

use std::sync::Arc;

use coffer_authz::{IdentityPolicies, IdentityPolicySource, PolicyAuthorizer};
use coffer_core::{Caller, ManualClock, RequestContext, ServiceError};
use coffer_kms::Keyring;
use coffer_parameters::ParametersService;
use coffer_policy::{CompiledPolicy, PolicyKind};
use coffer_secrets::SecretsService;
use coffer_store::Store;
use coffer_store::memory::MemoryStore;
use serde_json::json;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

struct Fixed(Arc<IdentityPolicies>);

impl IdentityPolicySource for Fixed {
    fn identity_policies<'a>(
        &'a self,
        _caller: &'a Caller,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Arc<IdentityPolicies>, String>> + Send + 'a>>
    {
        let p = self.0.clone();
        Box::pin(async move { Ok(p) })
    }
}

struct Env {
    secrets: SecretsService,
    parameters: ParametersService,
    cloudtrail: coffer_audit::CloudTrailService,
    clock: Arc<ManualClock>,
}

async fn env() -> Env {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let keys = Arc::new(Keyring::new(
        store.clone(),
        coffer_crypto::RootKey::from_bytes([9; 32]),
    ));
    let clock = ManualClock::new();
    let audit = coffer_audit::AuditLog::open(store.clone(), clock.clone(), false)
        .await
        .expect("audit log");
    let secrets = SecretsService::new(store.clone(), keys.clone(), clock.clone());
    secrets.set_rotation_hooks(coffer_secrets::RotationHooks {
        functions: Arc::new(coffer_rotation::Registry::new(Default::default())),
        kick: Default::default(),
    });
    Env {
        secrets,
        parameters: ParametersService::new(store, keys, clock.clone()),
        cloudtrail: coffer_audit::CloudTrailService::new(audit, &[7; 32]),
        clock,
    }
}

fn root() -> RequestContext {
    RequestContext::new(Caller::root(ACCOUNT, "AKIAROOT"), REGION, "req")
}

/// A user of the account whose identity policies are `docs`.
async fn user(env: &Env, docs: &[String]) -> RequestContext {
    let mut caller = Caller::root(ACCOUNT, "AKIAUSER");
    caller.principal_arn = format!("arn:aws:iam::{ACCOUNT}:user/tester");
    let policies = IdentityPolicies {
        identity: docs
            .iter()
            .map(|d| Arc::new(CompiledPolicy::parse(d, PolicyKind::Identity).expect("valid")))
            .collect(),
        session: None,
    };
    let shared = PolicyAuthorizer::new(Arc::new(Fixed(Arc::new(policies))), env.clock.clone());
    let authz = shared.for_caller(&caller).await;
    RequestContext::new(caller, REGION, "req").with_authorizer(authz)
}

const RESOURCE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
const PARAM_ARN: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/p1";
const TIER: &str = "/ssm/parameter-store/default-parameter-tier";

fn secrets_input(op: &str) -> Option<serde_json::Value> {
    Some(match op {
        "BatchGetSecretValue" => json!({"SecretIdList": ["s1"]}),
        "CreateSecret" => json!({"Name": "created", "SecretString": "x"}),
        "DeleteResourcePolicy"
        | "DescribeSecret"
        | "GetResourcePolicy"
        | "GetSecretValue"
        | "ListSecretVersionIds"
        | "RestoreSecret"
        | "StopReplicationToReplica"
        | "ListResourcePolicies" => json!({"SecretId": "s1"}),
        "DeleteSecret" => json!({"SecretId": "s1", "RecoveryWindowInDays": 7}),
        "CancelRotateSecret" => json!({"SecretId": "s1"}),
        // Scheduled, not immediate: the secret stays as the later operations expect it.
        "RotateSecret" => json!({"SecretId": "s1", "RotateImmediately": false,
            "RotationLambdaARN": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:coffer-postgresql-single-user"),
            "RotationRules": {"AutomaticallyAfterDays": 30}}),
        "GetRandomPassword" | "ListSecrets" => json!({}),
        "PutResourcePolicy" => json!({"SecretId": "s1", "ResourcePolicy": RESOURCE_POLICY}),
        "PutSecretValue" => json!({"SecretId": "s1", "SecretString": "y"}),
        "RemoveRegionsFromReplication" => {
            json!({"SecretId": "s1", "RemoveReplicaRegions": ["us-west-2"]})
        }
        "ReplicateSecretToRegions" => {
            json!({"SecretId": "s1", "AddReplicaRegions": [{"Region": "us-west-2"}]})
        }
        "TagResource" => json!({"SecretId": "s1", "Tags": [{"Key": "k", "Value": "v"}]}),
        "UntagResource" => json!({"SecretId": "s1", "TagKeys": ["k"]}),
        "UpdateSecret" => json!({"SecretId": "s1", "Description": "d"}),
        "UpdateSecretVersionStage" => json!({"SecretId": "s1", "VersionStage": "custom"}),
        "ValidateResourcePolicy" => json!({"ResourcePolicy": RESOURCE_POLICY}),
        _ => return None,
    })
}

fn parameters_input(op: &str) -> Option<serde_json::Value> {
    Some(match op {
        "AddTagsToResource" => json!({"ResourceType": "Parameter", "ResourceId": "/p1",
                                      "Tags": [{"Key": "k", "Value": "v"}]}),
        "RemoveTagsFromResource" => {
            json!({"ResourceType": "Parameter", "ResourceId": "/p1", "TagKeys": ["k"]})
        }
        "ListTagsForResource" => json!({"ResourceType": "Parameter", "ResourceId": "/p1"}),
        "DeleteParameter" | "GetParameter" | "GetParameterHistory" => json!({"Name": "/p1"}),
        "DeleteParameters" | "GetParameters" => json!({"Names": ["/p1"]}),
        "DeleteResourcePolicy" => {
            json!({"ResourceArn": PARAM_ARN, "PolicyId": "id", "PolicyHash": "hash"})
        }
        "GetResourcePolicies" => json!({"ResourceArn": PARAM_ARN}),
        "PutResourcePolicy" => json!({"ResourceArn": PARAM_ARN, "Policy": RESOURCE_POLICY}),
        "DescribeParameters" => json!({}),
        "GetParametersByPath" => json!({"Path": "/", "Recursive": true}),
        "GetServiceSetting" | "ResetServiceSetting" => json!({"SettingId": TIER}),
        "UpdateServiceSetting" => json!({"SettingId": TIER, "SettingValue": "Standard"}),
        "LabelParameterVersion" => json!({"Name": "/p1", "Labels": ["l1"]}),
        "UnlabelParameterVersion" => {
            json!({"Name": "/p1", "ParameterVersion": 1, "Labels": ["l1"]})
        }
        "PutParameter" => json!({"Name": "/p2", "Value": "v", "Type": "String"}),
        _ => return None,
    })
}

async fn seed(env: &Env) {
    let r = root();
    env.secrets
        .call(&r, "CreateSecret", br#"{"Name":"s1","SecretString":"v"}"#)
        .await
        .expect("seed secret");
    env.parameters
        .call(
            &r,
            "PutParameter",
            br#"{"Name":"/p1","Value":"v","Type":"String"}"#,
        )
        .await
        .expect("seed parameter");
}

/// Runs every operation of both tables as `ctx`; returns (operation, error code) per call.
async fn run_all(
    env: &Env,
    ctx_for: impl AsyncFn(&str) -> RequestContext,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for spec in SecretsService::operations() {
        let input = secrets_input(spec.name)
            .unwrap_or_else(|| panic!("no input for secretsmanager {}", spec.name));
        let ctx = ctx_for(spec.action).await;
        let code = match env
            .secrets
            .call(&ctx, spec.name, input.to_string().as_bytes())
            .await
        {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        out.push((spec.action.to_string(), code));
    }
    for spec in ParametersService::operations() {
        let input =
            parameters_input(spec.name).unwrap_or_else(|| panic!("no input for ssm {}", spec.name));
        let ctx = ctx_for(spec.action).await;
        let code = match env
            .parameters
            .call(&ctx, spec.name, input.to_string().as_bytes())
            .await
        {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        out.push((spec.action.to_string(), code));
    }
    for spec in coffer_audit::CloudTrailService::operations() {
        let input = cloudtrail_input(spec.name)
            .unwrap_or_else(|| panic!("no input for cloudtrail {}", spec.name));
        let ctx = ctx_for(spec.action).await;
        let code = match env
            .cloudtrail
            .call(&ctx, spec.name, input.to_string().as_bytes())
            .await
        {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        out.push((spec.action.to_string(), code));
    }
    out
}

fn cloudtrail_input(op: &str) -> Option<serde_json::Value> {
    Some(match op {
        "LookupEvents" => json!({"LookupAttributes": [
            {"AttributeKey": "EventSource", "AttributeValue": "ssm.amazonaws.com"}]}),
        _ => return None,
    })
}

#[tokio::test]
async fn a_principal_without_policies_is_denied_every_operation() {
    let env = env().await;
    seed(&env).await;
    let results = run_all(&env, async |_| user(&env, &[]).await).await;
    let total = SecretsService::operations().len()
        + ParametersService::operations().len()
        + coffer_audit::CloudTrailService::operations().len();
    assert_eq!(results.len(), total);
    for (action, code) in &results {
        assert_eq!(code, "AccessDeniedException", "{action} was not denied");
    }
}

#[tokio::test]
async fn each_operation_is_allowed_with_exactly_its_declared_action() {
    let env = env().await;
    seed(&env).await;
    let results = run_all(&env, async |action| {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
        );
        user(&env, &[doc]).await
    })
    .await;
    for (action, code) in &results {
        assert_ne!(
            code, "AccessDeniedException",
            "{action} was denied though granted"
        );
    }
    // Most calls succeed outright; the rest fail for reasons of their own (replication
    // of a secret without replicas, a resource policy on a standard parameter...).
    let ok = results.iter().filter(|(_, c)| c == "ok").count();
    assert!(ok * 2 > results.len(), "{results:?}");
}

#[tokio::test]
async fn a_grant_for_another_action_does_not_leak() {
    let env = env().await;
    seed(&env).await;
    // Each operation's caller holds every action except its own.
    let all: Vec<&str> = SecretsService::operations()
        .iter()
        .chain(ParametersService::operations())
        .chain(coffer_audit::CloudTrailService::operations())
        .map(|s| s.action)
        .collect();
    let results = run_all(&env, async |action| {
        let others: Vec<String> = all
            .iter()
            .filter(|a| **a != action)
            .map(|a| format!("\"{a}\""))
            .collect();
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
            others.join(",")
        );
        user(&env, &[doc]).await
    })
    .await;
    for (action, code) in &results {
        assert_eq!(
            code, "AccessDeniedException",
            "{action} allowed by other actions"
        );
    }
}
