//! The structural guarantee of authorization (issue 5, item 5): every operation in every
//! service's table is refused to a principal without policies, and is not refused to one whose
//! only policy grants exactly the action the table declares for it.
//!
//! The services run on a memory store with the server's authorizer; the inputs below are valid,
//! so each call reaches its authorization decision. A table row without an input here fails the
//! test, so a new operation cannot be added without being covered. The KMS keys used have the
//! default key policy, which delegates to IAM, so the identity policy alone decides.

use std::sync::Arc;

use coffer_authz::{IdentityPolicies, IdentityPolicySource, PolicyAuthorizer};
use coffer_core::{Caller, ManualClock, RequestContext, ServiceError};
use coffer_kms::{Keyring, KmsService};
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
    kms: KmsService,
    lambda: Arc<coffer_lambda::LambdaService>,
    clock: Arc<ManualClock>,
}

/// The one execution role the Lambda inputs name; sessions are not needed (no function runs).
struct OneRole;

#[async_trait::async_trait]
impl coffer_lambda::Roles for OneRole {
    async fn trusts_lambda(
        &self,
        _account: &str,
        role_arn: &str,
        _function_arn: &str,
    ) -> Result<bool, String> {
        Ok(role_arn == ROLE_ARN)
    }
    async fn session(
        &self,
        _account: &str,
        _role_arn: &str,
        _function_arn: &str,
        _session_name: &str,
        _secs: i64,
    ) -> Result<Option<coffer_rotation::CallbackEnv>, String> {
        Ok(None)
    }
}

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/fn-role";

/// What the KMS inputs refer to, made by [`seed`].
#[derive(Default)]
struct KmsSeed {
    /// Used by reads and cryptographic operations.
    key: String,
    /// Disabled, enabled and scheduled for deletion.
    spare: String,
    blob: String,
    grants: Vec<String>,
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
    let lambda = Arc::new(coffer_lambda::LambdaService::new(
        store.clone(),
        keys.clone(),
        clock.clone(),
        Arc::new(OneRole),
        coffer_lambda::Runtime::new(Some("python3".into()), std::env::temp_dir()),
        Default::default(),
    ));
    Env {
        secrets,
        lambda,
        parameters: ParametersService::new(store, keys.clone(), clock.clone()),
        kms: KmsService::new(keys, clock.clone()),
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

fn kms_input(op: &str, k: &KmsSeed) -> Option<serde_json::Value> {
    let key = &k.key;
    Some(match op {
        "CreateKey" | "ListKeys" | "ListAliases" => json!({}),
        "GenerateRandom" => json!({"NumberOfBytes": 8}),
        "CreateAlias" => json!({"AliasName": "alias/created", "TargetKeyId": key}),
        "UpdateAlias" => json!({"AliasName": "alias/a1", "TargetKeyId": key}),
        "DeleteAlias" => json!({"AliasName": "alias/a2"}),
        "CreateGrant" => {
            json!({"KeyId": key, "GranteePrincipal": format!("arn:aws:iam::{ACCOUNT}:user/g"),
                                "Operations": ["Decrypt"]})
        }
        "RetireGrant" => json!({"KeyId": key, "GrantId": k.grants[0]}),
        "RevokeGrant" => json!({"KeyId": key, "GrantId": k.grants[1]}),
        "Decrypt" => json!({"CiphertextBlob": k.blob}),
        "ReEncrypt" => json!({"CiphertextBlob": k.blob, "DestinationKeyId": key}),
        "Encrypt" => json!({"KeyId": key, "Plaintext": "aGk="}),
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            json!({"KeyId": key, "KeySpec": "AES_256"})
        }
        "CancelKeyDeletion" | "DisableKey" | "EnableKey" => json!({"KeyId": k.spare}),
        "ScheduleKeyDeletion" => json!({"KeyId": k.spare, "PendingWindowInDays": 7}),
        "DescribeKey"
        | "DisableKeyRotation"
        | "EnableKeyRotation"
        | "GetKeyRotationStatus"
        | "RotateKeyOnDemand"
        | "ListKeyRotations"
        | "ListResourceTags"
        | "ListKeyPolicies"
        | "GetKeyPolicy"
        | "ListGrants" => json!({"KeyId": key}),
        "PutKeyPolicy" => json!({"KeyId": key, "Policy": format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#)}),
        "TagResource" => json!({"KeyId": key, "Tags": [{"TagKey": "k", "TagValue": "v"}]}),
        "UntagResource" => json!({"KeyId": key, "TagKeys": ["k"]}),
        "UpdateKeyDescription" => json!({"KeyId": key, "Description": "d"}),
        _ => return None,
    })
}

/// `body` called as the root; its answer as JSON.
async fn kms_root(env: &Env, op: &str, body: serde_json::Value) -> serde_json::Value {
    let out = env
        .kms
        .call(&root(), op, body.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("seed {op}: {e}"));
    serde_json::from_slice(&out).expect("json")
}

/// A zip as far as CreateFunction looks (the code never runs here).
const ZIP: &str = "UEsDBAo=";

fn lambda_input(op: &str) -> Option<(Option<&'static str>, serde_json::Value)> {
    Some(match op {
        "CreateFunction" => (
            None,
            json!({"FunctionName": "f2", "Runtime": "python3.12", "Handler": "app.handler",
                "Role": ROLE_ARN, "Code": {"ZipFile": ZIP}}),
        ),
        "AddPermission" => (
            Some("f1"),
            json!({"StatementId": "s", "Action": "lambda:InvokeFunction",
                "Principal": "secretsmanager.amazonaws.com"}),
        ),
        "UpdateFunctionCode" => (Some("f1"), json!({"ZipFile": ZIP})),
        "UpdateFunctionConfiguration" => (Some("f1"), json!({"Timeout": 5})),
        "DeleteFunction" | "GetFunction" | "GetFunctionConfiguration" | "GetPolicy" => {
            (Some("f1"), json!({}))
        }
        // DryRun: authorized and resolved, nothing runs.
        "Invoke" => (Some("f1"), json!({})),
        "ListFunctions" => (None, json!({})),
        _ => return None,
    })
}

async fn lambda_call(
    env: &Env,
    ctx: &RequestContext,
    spec: &'static coffer_service::OperationSpec,
    function: Option<&str>,
    body: &[u8],
) -> Result<coffer_lambda::Response, coffer_lambda::LambdaError> {
    let req = coffer_lambda::Request {
        operation: spec,
        function: function.map(str::to_owned),
        query: "",
        invocation_type: Some("DryRun"),
        log_type: None,
        body,
    };
    env.lambda.call(ctx, req).await
}

async fn seed(env: &Env) -> KmsSeed {
    let r = root();
    let create = coffer_lambda::LambdaService::operations()
        .iter()
        .find(|o| o.name == "CreateFunction")
        .expect("row");
    let (_, mut f1) = lambda_input("CreateFunction").expect("input");
    f1["FunctionName"] = json!("f1");
    lambda_call(env, &r, create, None, f1.to_string().as_bytes())
        .await
        .expect("seed function");
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
    let key_of = |out: serde_json::Value| out["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let key = key_of(kms_root(env, "CreateKey", json!({})).await);
    let spare = key_of(kms_root(env, "CreateKey", json!({})).await);
    for alias in ["alias/a1", "alias/a2"] {
        kms_root(
            env,
            "CreateAlias",
            json!({"AliasName": alias, "TargetKeyId": key}),
        )
        .await;
    }
    let blob = kms_root(env, "Encrypt", json!({"KeyId": key, "Plaintext": "aGk="})).await
        ["CiphertextBlob"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut grants = Vec::new();
    for _ in 0..2 {
        let out = kms_root(
            env,
            "CreateGrant",
            kms_input(
                "CreateGrant",
                &KmsSeed {
                    key: key.clone(),
                    ..Default::default()
                },
            )
            .unwrap(),
        )
        .await;
        grants.push(out["GrantId"].as_str().unwrap().to_owned());
    }
    KmsSeed {
        key,
        spare,
        blob,
        grants,
    }
}

/// Runs every operation of both tables as `ctx`; returns (operation, error code) per call.
async fn run_all(
    env: &Env,
    kms: &KmsSeed,
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
    for spec in coffer_lambda::LambdaService::operations() {
        let (function, input) =
            lambda_input(spec.name).unwrap_or_else(|| panic!("no input for lambda {}", spec.name));
        let ctx = ctx_for(spec.action).await;
        let code = match lambda_call(env, &ctx, spec, function, input.to_string().as_bytes()).await
        {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        out.push((spec.action.to_string(), code));
    }
    for spec in KmsService::operations() {
        let input =
            kms_input(spec.name, kms).unwrap_or_else(|| panic!("no input for kms {}", spec.name));
        let ctx = ctx_for(spec.action).await;
        let code = match env
            .kms
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
    let kms = seed(&env).await;
    let results = run_all(&env, &kms, async |_| user(&env, &[]).await).await;
    let total = SecretsService::operations().len()
        + ParametersService::operations().len()
        + coffer_audit::CloudTrailService::operations().len()
        + coffer_lambda::LambdaService::operations().len()
        + KmsService::operations().len();
    assert_eq!(results.len(), total);
    for (action, code) in &results {
        assert_eq!(code, "AccessDeniedException", "{action} was not denied");
    }
}

#[tokio::test]
async fn each_operation_is_allowed_with_exactly_its_declared_action() {
    let env = env().await;
    let kms = seed(&env).await;
    let results = run_all(&env, &kms, async |action| {
        // ReEncrypt's row names kms:ReEncryptFrom (the source key); the destination key takes
        // kms:ReEncryptTo, which belongs to the same operation.
        let action = match action {
            "kms:ReEncryptFrom" => r#"["kms:ReEncryptFrom","kms:ReEncryptTo"]"#.to_string(),
            // A function's execution role is passed to it, as in AWS.
            "lambda:CreateFunction" => r#"["lambda:CreateFunction","iam:PassRole"]"#.to_string(),
            a => format!("\"{a}\""),
        };
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{action},"Resource":"*"}}]}}"#
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
    // KMS calls all succeed, save cancelling the deletion of a key not pending deletion.
    let kms_failed: Vec<_> = results
        .iter()
        .filter(|(a, c)| a.starts_with("kms:") && c != "ok")
        .collect();
    assert_eq!(
        kms_failed,
        [&(
            "kms:CancelKeyDeletion".to_string(),
            "KMSInvalidStateException".to_string()
        )]
    );
}

#[tokio::test]
async fn a_grant_for_another_action_does_not_leak() {
    let env = env().await;
    let kms = seed(&env).await;
    // Each operation's caller holds every action except its own.
    let all: Vec<&str> = SecretsService::operations()
        .iter()
        .chain(ParametersService::operations())
        .chain(coffer_audit::CloudTrailService::operations())
        .chain(coffer_lambda::LambdaService::operations())
        .chain(KmsService::operations())
        .map(|s| s.action)
        .collect();
    let results = run_all(&env, &kms, async |action| {
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

/// IAM and STS (Query protocol; their table is the list of `Action` names, each `iam:NAME`).
mod query_services {
    use super::*;
    use coffer_wire::query::QueryParams;

    const P: &str = "arn:aws:iam::123456789012:policy/p1";
    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}]}"#;
    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;

    /// `pairs` form-encoded (every byte but unreserved ones as `%XX`), then parsed as the
    /// server parses a request body.
    fn form(pairs: &[(&str, &str)]) -> QueryParams {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let text: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        QueryParams::parse(text.join("&").as_bytes()).expect("form")
    }

    fn iam_input(op: &str, akid: &str) -> Option<QueryParams> {
        let user = ("UserName", "u1");
        let group = ("GroupName", "g1");
        let role = ("RoleName", "r1");
        let arn = ("PolicyArn", P);
        let inline = ("PolicyName", "inline");
        let doc = ("PolicyDocument", DOC);
        let key = ("AccessKeyId", akid);
        let tag = [("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v")];
        Some(form(&match op {
            "AddUserToGroup" | "RemoveUserFromGroup" => vec![group, user],
            "AttachGroupPolicy" | "DetachGroupPolicy" => vec![group, arn],
            "AttachRolePolicy" | "DetachRolePolicy" => vec![role, arn],
            "AttachUserPolicy" | "DetachUserPolicy" => vec![user, arn],
            "CreateAccessKey"
            | "DeleteUser"
            | "GetUser"
            | "ListAccessKeys"
            | "ListAttachedUserPolicies"
            | "ListGroupsForUser"
            | "ListUserPolicies"
            | "ListUserTags" => vec![user],
            "CreateGroup" => vec![("GroupName", "g2")],
            "CreatePolicy" => vec![("PolicyName", "p2"), doc],
            "CreatePolicyVersion" => vec![arn, doc],
            "CreateRole" => vec![("RoleName", "r2"), ("AssumeRolePolicyDocument", TRUST)],
            "CreateUser" => vec![("UserName", "u2")],
            "DeleteAccessKey" => vec![user, ("AccessKeyId", "AKIAAAAAAAAAAAAAAAAA")],
            "DeleteGroup" | "GetGroup" | "ListAttachedGroupPolicies" | "ListGroupPolicies" => {
                vec![group]
            }
            "DeleteGroupPolicy" | "GetGroupPolicy" => vec![group, inline],
            "DeletePolicy" | "GetPolicy" | "ListPolicyVersions" => vec![arn],
            "DeletePolicyVersion" => vec![arn, ("VersionId", "v9")],
            "GetPolicyVersion" | "SetDefaultPolicyVersion" => vec![arn, ("VersionId", "v1")],
            "DeleteRole"
            | "GetRole"
            | "ListAttachedRolePolicies"
            | "ListRolePolicies"
            | "ListRoleTags" => vec![role],
            "DeleteRolePolicy" | "GetRolePolicy" => vec![role, inline],
            "DeleteUserPolicy" | "GetUserPolicy" => vec![user, inline],
            "GetAccessKeyLastUsed" => vec![key],
            "ListGroups" | "ListPolicies" | "ListRoles" | "ListUsers" => vec![],
            "PutGroupPolicy" => vec![group, inline, doc],
            "PutRolePolicy" => vec![role, inline, doc],
            "PutUserPolicy" => vec![user, inline, doc],
            "TagRole" => [vec![role], tag.to_vec()].concat(),
            "TagUser" => [vec![user], tag.to_vec()].concat(),
            "UntagRole" => vec![role, ("TagKeys.member.1", "k")],
            "UntagUser" => vec![user, ("TagKeys.member.1", "k")],
            "UpdateAccessKey" => vec![user, key, ("Status", "Inactive")],
            "UpdateAssumeRolePolicy" => vec![role, ("PolicyDocument", TRUST)],
            "UpdateUser" => vec![user, ("NewPath", "/moved/")],
            _ => return None,
        }))
    }

    /// One of each entity, linked as the operations above expect; returns the user's key id.
    async fn seed(iam: &coffer_iam::Iam) -> String {
        let r = root();
        let run = async |op: &str, pairs: &[(&str, &str)]| {
            iam.call_iam(&r, op, &form(pairs))
                .await
                .unwrap_or_else(|e| panic!("seeding {op}: {}", e.code()))
        };
        run("CreateUser", &[("UserName", "u1")]).await;
        run("CreateGroup", &[("GroupName", "g1")]).await;
        run(
            "CreateRole",
            &[("RoleName", "r1"), ("AssumeRolePolicyDocument", TRUST)],
        )
        .await;
        run(
            "CreatePolicy",
            &[("PolicyName", "p1"), ("PolicyDocument", DOC)],
        )
        .await;
        for (kind, name) in [("User", "u1"), ("Group", "g1"), ("Role", "r1")] {
            let (entity, policy) = (format!("{kind}Name"), format!("Put{kind}Policy"));
            run(
                &policy,
                &[
                    (&entity, name),
                    ("PolicyName", "inline"),
                    ("PolicyDocument", DOC),
                ],
            )
            .await;
        }
        let xml = run("CreateAccessKey", &[("UserName", "u1")]).await;
        let xml = String::from_utf8(xml).expect("xml");
        let start = xml.find("<AccessKeyId>").expect("key id") + "<AccessKeyId>".len();
        xml[start..start + xml[start..].find('<').expect("end")].to_string()
    }

    fn iam() -> coffer_iam::Iam {
        coffer_iam::Iam::new(
            Arc::new(MemoryStore::new()),
            &coffer_crypto::RootKey::from_bytes([9; 32]),
            ManualClock::new(),
        )
    }

    /// Runs every IAM operation, then AssumeRole, as the principal `ctx_for` gives for each
    /// action; returns (action, error code or "ok").
    async fn run_all(
        env: &Env,
        ctx_for: impl AsyncFn(&str) -> RequestContext,
    ) -> Vec<(String, String)> {
        let iam = iam();
        let akid = seed(&iam).await;
        let mut out = Vec::new();
        for op in coffer_iam::IAM_OPERATIONS {
            let input = iam_input(op, &akid).unwrap_or_else(|| panic!("no input for iam {op}"));
            let action = format!("iam:{op}");
            let ctx = ctx_for(&action).await;
            let code = match iam.call_iam(&ctx, op, &input).await {
                Ok(_) => "ok".to_string(),
                Err(e) => e.code().to_string(),
            };
            out.push((action, code));
        }
        // The role trusts the account: the caller's identity policies decide.
        let assume = form(&[
            ("RoleArn", "arn:aws:iam::123456789012:role/r1"),
            ("RoleSessionName", "s1"),
        ]);
        let ctx = ctx_for("sts:AssumeRole").await;
        let code = match iam.call_sts(&ctx, "AssumeRole", &assume).await {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        out.push(("sts:AssumeRole".into(), code));
        let _ = env;
        out
    }

    #[tokio::test]
    async fn without_policies_every_iam_operation_and_assume_role_is_denied() {
        let env = env().await;
        let results = run_all(&env, async |_| user(&env, &[]).await).await;
        assert_eq!(results.len(), coffer_iam::IAM_OPERATIONS.len() + 1);
        for (action, code) in &results {
            assert_eq!(code, "AccessDenied", "{action} was not denied");
        }
        // AWS requires no permission for these two: they only describe or extend the caller.
        let ctx = user(&env, &[]).await;
        let iam = iam();
        for op in ["GetCallerIdentity", "GetSessionToken"] {
            assert!(iam.call_sts(&ctx, op, &form(&[])).await.is_ok(), "{op}");
        }
    }

    #[tokio::test]
    async fn each_iam_operation_is_allowed_with_exactly_its_action() {
        let env = env().await;
        let grant = async |action: &str| {
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
            );
            user(&env, &[doc]).await
        };
        let results = run_all(&env, grant).await;
        for (action, code) in &results {
            assert_ne!(code, "AccessDenied", "{action} was denied though granted");
        }
        let ok = results.iter().filter(|(_, c)| c == "ok").count();
        assert!(ok * 2 > results.len(), "{results:?}");

        let all: Vec<String> = coffer_iam::IAM_OPERATIONS
            .iter()
            .map(|op| format!("\"iam:{op}\""))
            .chain(["\"sts:AssumeRole\"".to_string()])
            .collect();
        let others = async |action: &str| {
            let rest: Vec<&str> = all
                .iter()
                .map(String::as_str)
                .filter(|a| a.trim_matches('"') != action)
                .collect();
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
                rest.join(",")
            );
            user(&env, &[doc]).await
        };
        for (action, code) in run_all(&env, others).await {
            assert_eq!(code, "AccessDenied", "{action} allowed by other actions");
        }
    }
}
