//! The structural guarantee of authorization (issue 5, item 5): every operation in every
//! service's table is refused to a principal without policies, and is not refused to one whose
//! only policy grants exactly the action the table declares for it.
//!
//! The services run on a memory store with the server's authorizer; the inputs come from
//! `coffer-test-inputs` (shared with the e2e audit grep test) and are valid, so each call reaches
//! its authorization decision. A table row without an input there fails the test, so a new
//! operation cannot be added without being covered. The KMS keys used have the default key
//! policy, which delegates to IAM, so the identity policy alone decides.

use std::sync::Arc;

use coffer_authz::{IdentityPolicies, IdentityPolicySource, PolicyAuthorizer};
use coffer_core::{Caller, ManualClock, RequestContext, ServiceError};
use coffer_kms::{Keyring, KmsService};
use coffer_parameters::ParametersService;
use coffer_policy::{CompiledPolicy, PolicyKind};
use coffer_secrets::SecretsService;
use coffer_store::Store;
use coffer_store::memory::MemoryStore;
use coffer_test_inputs::{Fixture, Input, Seed, Service, Transport};
use serde_json::Value;

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
    fx: Fixture,
}

/// The one execution role the Lambda inputs name; sessions are not needed (no function runs).
struct OneRole(String);

#[async_trait::async_trait]
impl coffer_lambda::Roles for OneRole {
    async fn trusts_lambda(
        &self,
        _account: &str,
        role_arn: &str,
        _function_arn: &str,
    ) -> Result<bool, String> {
        Ok(role_arn == self.0)
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

async fn env() -> Env {
    let fx = Fixture::new(ACCOUNT, REGION);
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
        Arc::new(OneRole(fx.role_arn())),
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
        fx,
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
        session: Vec::new(),
        boundary: None,
    };
    let shared = PolicyAuthorizer::new(Arc::new(Fixed(Arc::new(policies))), env.clock.clone());
    let authz = shared.for_caller(&caller).await;
    RequestContext::new(caller, REGION, "req").with_authorizer(authz)
}

/// The JSON- and REST-protocol services in the order [`run_all`] walks them, with their tables.
fn tables() -> [(Service, &'static [coffer_service::OperationSpec]); 5] {
    [
        (Service::SecretsManager, SecretsService::operations()),
        (Service::Ssm, ParametersService::operations()),
        (
            Service::CloudTrail,
            coffer_audit::CloudTrailService::operations(),
        ),
        (Service::Lambda, coffer_lambda::LambdaService::operations()),
        (Service::Kms, KmsService::operations()),
    ]
}

impl Env {
    /// One call of `op` as `ctx`: the JSON answer (`Null` when there is none), or the error code.
    async fn call_as(
        &self,
        ctx: &RequestContext,
        service: Service,
        op: &str,
        input: Input,
    ) -> Result<Value, String> {
        let json = |out: Vec<u8>| serde_json::from_slice(&out).unwrap_or(Value::Null);
        let body = match &input {
            Input::Json(v) | Input::Lambda { body: v, .. } => v.to_string(),
            Input::Query(_) => unreachable!("IAM and STS run in query_services"),
        };
        let body = body.as_bytes();
        macro_rules! answer {
            ($call:expr) => {
                $call.await.map(json).map_err(|e| e.code().to_string())
            };
        }
        match (service, input) {
            (Service::SecretsManager, _) => answer!(self.secrets.call(ctx, op, body)),
            (Service::Ssm, _) => answer!(self.parameters.call(ctx, op, body)),
            (Service::Kms, _) => answer!(self.kms.call(ctx, op, body)),
            (Service::CloudTrail, _) => answer!(self.cloudtrail.call(ctx, op, body)),
            (
                Service::Lambda,
                Input::Lambda {
                    function,
                    invocation_type,
                    ..
                },
            ) => {
                let spec = coffer_lambda::LambdaService::operations()
                    .iter()
                    .find(|o| o.name == op)
                    .expect("a row of the table");
                let req = coffer_lambda::Request {
                    operation: spec,
                    function,
                    query: "",
                    invocation_type,
                    log_type: None,
                    body,
                };
                self.lambda
                    .call(ctx, req)
                    .await
                    .map(|r| json(r.body))
                    .map_err(|e| e.code().to_string())
            }
            (s, _) => unreachable!("{s:?} {op}"),
        }
    }
}

impl Transport for Env {
    async fn call(&self, service: Service, op: &str, input: Input) -> Result<Value, String> {
        self.call_as(&root(), service, op, input).await
    }
}

/// The services' state the inputs name.
async fn seed(env: &Env) -> Seed {
    coffer_test_inputs::seed_resources(env, &env.fx).await
}

/// Runs every operation of the JSON and REST tables as `ctx_for(action)`; returns (action,
/// error code or "ok") per call.
async fn run_all(
    env: &Env,
    seed: &Seed,
    ctx_for: impl AsyncFn(&str) -> RequestContext,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (service, table) in tables() {
        for spec in table {
            let input = coffer_test_inputs::input(service, spec.name, &env.fx, seed)
                .unwrap_or_else(|| panic!("no input for {service:?} {}", spec.name));
            let ctx = ctx_for(spec.action).await;
            let code = match env.call_as(&ctx, service, spec.name, input).await {
                Ok(_) => "ok".to_string(),
                Err(code) => code,
            };
            out.push((spec.action.to_string(), code));
        }
    }
    out
}

#[tokio::test]
async fn a_principal_without_policies_is_denied_every_operation() {
    let env = env().await;
    let kms = seed(&env).await;
    let results = run_all(&env, &kms, async |_| user(&env, &[]).await).await;
    let total: usize = tables().iter().map(|(_, t)| t.len()).sum();
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
    // KMS calls all succeed, save cancelling the deletion of a key not pending deletion and
    // importing key material with a token the service never issued.
    let kms_failed: Vec<(&str, &str)> = results
        .iter()
        .filter(|(a, c)| a.starts_with("kms:") && c != "ok")
        .map(|(a, c)| (a.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        kms_failed,
        [
            ("kms:CancelKeyDeletion", "KMSInvalidStateException"),
            ("kms:ImportKeyMaterial", "InvalidImportTokenException"),
        ]
    );
}

#[tokio::test]
async fn a_grant_for_another_action_does_not_leak() {
    let env = env().await;
    let kms = seed(&env).await;
    // Each operation's caller holds every action except its own.
    let all: Vec<&str> = tables()
        .iter()
        .flat_map(|(_, t)| t.iter())
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

    /// `pairs` as the server parses a request body.
    fn form(pairs: &[(String, String)]) -> QueryParams {
        QueryParams::parse(coffer_test_inputs::form_encode(pairs).as_bytes()).expect("form")
    }

    fn query(input: Input) -> QueryParams {
        match input {
            Input::Query(pairs) => form(&pairs),
            other => unreachable!("{other:?}"),
        }
    }

    /// Calls as the root, for seeding.
    struct Seeder<'a>(&'a coffer_iam::Iam);

    impl Transport for Seeder<'_> {
        async fn call(&self, service: Service, op: &str, input: Input) -> Result<Value, String> {
            assert_eq!(service, Service::Iam, "{op}");
            let xml = self.0.call_iam(&root(), op, &query(input)).await;
            xml.map(|x| Value::String(String::from_utf8(x).expect("xml")))
                .map_err(|e| e.code().to_string())
        }
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
        let seed = Seed {
            access_key_id: coffer_test_inputs::seed_iam(&Seeder(&iam), &env.fx).await,
            ..Seed::default()
        };
        let mut out = Vec::new();
        for op in coffer_iam::IAM_OPERATIONS {
            let input = coffer_test_inputs::input(Service::Iam, op, &env.fx, &seed)
                .map(query)
                .unwrap_or_else(|| panic!("no input for iam {op}"));
            let action = format!("iam:{op}");
            let ctx = ctx_for(&action).await;
            let code = match iam.call_iam(&ctx, op, &input).await {
                Ok(_) => "ok".to_string(),
                Err(e) => e.code().to_string(),
            };
            out.push((action, code));
        }
        let assume = coffer_test_inputs::input(Service::Sts, "AssumeRole", &env.fx, &seed)
            .map(query)
            .expect("input");
        let ctx = ctx_for("sts:AssumeRole").await;
        let code = match iam.call_sts(&ctx, "AssumeRole", &assume).await {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        out.push(("sts:AssumeRole".into(), code));
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
