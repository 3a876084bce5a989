//! Authorization of KMS operations with the server's authorizer: each key operation is decided
//! on the key's ARN with the key policy taking part, by KMS's rule (IAM policies count only
//! where the key policy delegates to the account).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_authz::{IdentityPolicies, IdentityPolicySource, PolicyAuthorizer};
use coffer_core::{Caller, ManualClock, RequestContext, ServiceError};
use coffer_kms::{Keyring, KmsService};
use coffer_policy::{CompiledPolicy, PolicyKind};
use coffer_store::memory::MemoryStore;
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const USER: &str = "arn:aws:iam::123456789012:user/tester";

/// Identity policies as given, or a failing lookup.
struct Source(Result<Vec<String>, String>);

impl IdentityPolicySource for Source {
    fn identity_policies<'a>(
        &'a self,
        _caller: &'a Caller,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<IdentityPolicies>, String>> + Send + 'a>> {
        let r = self.0.as_ref().map_err(Clone::clone).map(|docs| {
            Arc::new(IdentityPolicies {
                identity: docs
                    .iter()
                    .map(|d| Arc::new(CompiledPolicy::parse(d, PolicyKind::Identity).unwrap()))
                    .collect(),
                session: Vec::new(),
                boundary: None,
            })
        });
        Box::pin(async move { r })
    }
}

struct Env {
    svc: KmsService,
    clock: Arc<ManualClock>,
}

fn env() -> Env {
    let keys = Arc::new(Keyring::new(
        Arc::new(MemoryStore::new()),
        coffer_crypto::RootKey::from_bytes([5; 32]),
    ));
    let clock = ManualClock::new();
    Env {
        svc: KmsService::new(keys, clock.clone()),
        clock,
    }
}

fn root() -> RequestContext {
    RequestContext::new(Caller::root(ACCOUNT, "AKIDROOT"), "us-east-1", "req")
}

/// An identity policy allowing `actions` on `resource`.
fn allow(actions: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{actions}","Resource":"{resource}"}}]}}"#
    )
}

/// A key policy of `statements` (JSON objects).
fn key_policy(statements: &[&str]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    )
}

const DELEGATE: &str = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}"#;

impl Env {
    async fn user(&self, source: Result<Vec<String>, String>) -> RequestContext {
        self.user_as(USER, source).await
    }

    async fn user_as(&self, arn: &str, source: Result<Vec<String>, String>) -> RequestContext {
        let mut caller = Caller::root(ACCOUNT, "AKIDUSER");
        caller.principal_arn = arn.into();
        let shared = PolicyAuthorizer::new(Arc::new(Source(source)), self.clock.clone());
        let authz = shared.for_caller(&caller).await;
        RequestContext::new(caller, "us-east-1", "req").with_authorizer(authz)
    }

    async fn call(&self, ctx: &RequestContext, op: &str, body: Value) -> Result<Value, String> {
        match self.svc.call(ctx, op, body.to_string().as_bytes()).await {
            Ok(out) => Ok(serde_json::from_slice(&out).unwrap()),
            Err(e) => Err(format!("{}: {e}", e.code())),
        }
    }

    /// A key created by the root, with `policy` (the default one when `None`); its ARN.
    async fn key(&self, policy: Option<&str>) -> String {
        let body = match policy {
            Some(p) => json!({"Policy": p}),
            None => json!({}),
        };
        let out = self.call(&root(), "CreateKey", body).await.unwrap();
        out["KeyMetadata"]["Arn"].as_str().unwrap().to_owned()
    }

    async fn encrypt(&self, ctx: &RequestContext, key: &str) -> Result<String, String> {
        let body = json!({"KeyId": key, "Plaintext": B64.encode(b"hi")});
        let out = self.call(ctx, "Encrypt", body).await?;
        Ok(out["CiphertextBlob"].as_str().unwrap().to_owned())
    }
}

fn denied(r: Result<impl std::fmt::Debug, String>, because: &str) {
    let e = r.unwrap_err();
    assert!(e.starts_with("AccessDeniedException: User: "), "{e}");
    assert!(e.ends_with(because), "{e}");
}

#[tokio::test]
async fn iam_counts_only_where_the_key_policy_delegates_to_the_account() {
    let e = env();
    let default_key = e.key(None).await;
    let other = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/other"},"Action":"kms:*","Resource":"*"}"#;
    let closed = e.key(Some(&key_policy(&[other]))).await;
    let user = e.user(Ok(vec![allow("kms:*", "*")])).await;

    assert!(e.encrypt(&user, &default_key).await.is_ok());
    denied(
        e.encrypt(&user, &closed).await,
        "because no resource-based policy allows the kms:Encrypt action",
    );
    denied(
        e.call(&user, "DescribeKey", json!({"KeyId": closed})).await,
        "because no resource-based policy allows the kms:DescribeKey action",
    );
    // The root keeps full access, whatever the key policy says.
    let blob = e.encrypt(&root(), &closed).await.unwrap();
    e.call(&root(), "Decrypt", json!({"CiphertextBlob": blob}))
        .await
        .unwrap();
    // Decrypt is decided on the key the ciphertext names.
    denied(
        e.call(&user, "Decrypt", json!({"CiphertextBlob": blob}))
            .await,
        "because no resource-based policy allows the kms:Decrypt action",
    );
}

#[tokio::test]
async fn a_key_policy_naming_the_user_allows_without_identity_policies() {
    let e = env();
    let named = format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{USER}"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}"#
    );
    let key = e.key(Some(&key_policy(&[DELEGATE, &named]))).await;
    let user = e.user(Ok(vec![])).await;
    let blob = e.encrypt(&user, &key).await.unwrap();
    e.call(&user, "Decrypt", json!({"CiphertextBlob": blob}))
        .await
        .unwrap();
    // Only what the statement names: DescribeKey needs an identity policy (the key delegates).
    denied(
        e.call(&user, "DescribeKey", json!({"KeyId": key})).await,
        "because no identity-based policy allows the kms:DescribeKey action",
    );
}

#[tokio::test]
async fn an_explicit_deny_in_the_key_policy_beats_an_identity_allow() {
    let e = env();
    let deny = format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"{USER}"}},"Action":"kms:Decrypt","Resource":"*"}}"#
    );
    let key = e.key(Some(&key_policy(&[DELEGATE, &deny]))).await;
    let user = e.user(Ok(vec![allow("kms:*", "*")])).await;
    let blob = e.encrypt(&user, &key).await.unwrap();
    denied(
        e.call(&user, "Decrypt", json!({"CiphertextBlob": blob}))
            .await,
        "with an explicit deny in a resource-based policy",
    );
}

#[tokio::test]
async fn a_failing_policy_lookup_denies() {
    let e = env();
    let named = format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{USER}"}},"Action":"kms:*","Resource":"*"}}"#
    );
    let key = e.key(Some(&key_policy(&[DELEGATE, &named]))).await;
    let user = e.user(Err("iam unavailable".into())).await;
    denied(e.encrypt(&user, &key).await, "kms:Encrypt action");
    denied(
        e.call(&user, "ListKeys", json!({})).await,
        "kms:ListKeys action",
    );
}

#[tokio::test]
async fn keys_are_authorized_by_their_arn_whatever_names_them() {
    let e = env();
    let key = e.key(None).await;
    let other = e.key(None).await;
    e.call(
        &root(),
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": key}),
    )
    .await
    .unwrap();
    let alias_arn = "arn:aws:kms:us-east-1:123456789012:alias/app";
    let id = key.rsplit('/').next().unwrap();
    let user = e.user(Ok(vec![allow("kms:Encrypt", &key)])).await;
    for name in [key.as_str(), id, "alias/app", alias_arn] {
        e.encrypt(&user, name).await.unwrap();
    }
    denied(e.encrypt(&user, &other).await, "kms:Encrypt action");

    // Keyless operations stay on `*`: a policy scoped to one key does not list keys.
    let scoped = e.user(Ok(vec![allow("kms:ListKeys", &key)])).await;
    denied(
        e.call(&scoped, "ListKeys", json!({})).await,
        "kms:ListKeys action",
    );

    // Alias changes need the action on the alias (IAM) and on the key (key policy).
    let on_key = e.user(Ok(vec![allow("kms:DeleteAlias", &key)])).await;
    denied(
        e.call(&on_key, "DeleteAlias", json!({"AliasName": "alias/app"}))
            .await,
        &format!(
            "on resource: {alias_arn} because no identity-based policy allows the kms:DeleteAlias action"
        ),
    );
    let on_alias = e.user(Ok(vec![allow("kms:DeleteAlias", alias_arn)])).await;
    denied(
        e.call(&on_alias, "DeleteAlias", json!({"AliasName": "alias/app"}))
            .await,
        "kms:DeleteAlias action",
    );
    let both = e
        .user(Ok(vec![
            allow("kms:DeleteAlias", alias_arn),
            allow("kms:DeleteAlias", &key),
        ]))
        .await;
    e.call(&both, "DeleteAlias", json!({"AliasName": "alias/app"}))
        .await
        .unwrap();
}

#[tokio::test]
async fn re_encrypt_needs_from_on_the_source_and_to_on_the_destination() {
    let e = env();
    let source = e.key(None).await;
    let dest = e.key(None).await;
    let blob = e.encrypt(&root(), &source).await.unwrap();
    let body = json!({"CiphertextBlob": blob, "DestinationKeyId": dest});
    let from_only = e.user(Ok(vec![allow("kms:ReEncryptFrom", &source)])).await;
    denied(
        e.call(&from_only, "ReEncrypt", body.clone()).await,
        &format!(
            "on resource: {dest} because no identity-based policy allows the kms:ReEncryptTo action"
        ),
    );
    let to_only = e.user(Ok(vec![allow("kms:ReEncryptTo", &dest)])).await;
    denied(
        e.call(&to_only, "ReEncrypt", body.clone()).await,
        "kms:ReEncryptFrom action",
    );
    let both = e
        .user(Ok(vec![
            allow("kms:ReEncryptFrom", &source),
            allow("kms:ReEncryptTo", &dest),
        ]))
        .await;
    e.call(&both, "ReEncrypt", body).await.unwrap();
}

const LOCKOUT: &str = "MalformedPolicyDocumentException: The new key policy will not allow you to update the key policy in the future.";

#[tokio::test]
async fn a_key_policy_that_would_lock_the_caller_out_is_refused_unless_bypassed() {
    let e = env();
    let other = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/other"},"Action":"kms:*","Resource":"*"}"#;
    let admin = e.user(Ok(vec![allow("kms:*", "*")])).await;
    let create = |policy: Option<String>, bypass: Option<bool>| {
        let mut body = json!({});
        if let Some(p) = policy {
            body["Policy"] = json!(p);
        }
        if let Some(b) = bypass {
            body["BypassPolicyLockoutSafetyCheck"] = json!(b);
        }
        body
    };
    // The default policy, given or not, delegates to IAM, which allows PutKeyPolicy.
    e.call(&admin, "CreateKey", create(None, None))
        .await
        .unwrap();
    e.call(
        &admin,
        "CreateKey",
        create(Some(key_policy(&[DELEGATE])), None),
    )
    .await
    .unwrap();
    let closed = key_policy(&[other]);
    assert_eq!(
        e.call(
            &admin,
            "CreateKey",
            create(Some(closed.clone()), Some(false))
        )
        .await
        .unwrap_err(),
        LOCKOUT
    );
    e.call(
        &admin,
        "CreateKey",
        create(Some(closed.clone()), Some(true)),
    )
    .await
    .unwrap();
    // Delegating to IAM is not enough when IAM does not allow PutKeyPolicy either.
    let creator = e.user(Ok(vec![allow("kms:CreateKey", "*")])).await;
    assert_eq!(
        e.call(
            &creator,
            "CreateKey",
            create(Some(key_policy(&[DELEGATE])), None)
        )
        .await
        .unwrap_err(),
        LOCKOUT
    );
    e.call(&creator, "CreateKey", create(None, None))
        .await
        .unwrap();

    // PutKeyPolicy alike; the refused policy is not stored.
    let key = e.key(None).await;
    let put = |policy: &str, bypass: bool| {
        json!({"KeyId": key, "PolicyName": "default", "Policy": policy,
               "BypassPolicyLockoutSafetyCheck": bypass})
    };
    assert_eq!(
        e.call(&admin, "PutKeyPolicy", put(&closed, false))
            .await
            .unwrap_err(),
        LOCKOUT
    );
    let p = e
        .call(&root(), "GetKeyPolicy", json!({"KeyId": key}))
        .await
        .unwrap();
    assert!(p["Policy"].as_str().unwrap().contains(":root"), "{p}");
    // A statement naming the caller with PutKeyPolicy keeps it in.
    let named = format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{USER}"}},"Action":"kms:PutKeyPolicy","Resource":"*"}}"#
    );
    let with_me = key_policy(&[other, &named]);
    e.call(&admin, "PutKeyPolicy", put(&with_me, false))
        .await
        .unwrap();
    e.call(&admin, "PutKeyPolicy", put(&closed, true))
        .await
        .unwrap();
    // Bypassed, the caller is now locked out; the account root is never.
    denied(
        e.call(&admin, "PutKeyPolicy", put(&with_me, true)).await,
        "because no resource-based policy allows the kms:PutKeyPolicy action",
    );
    e.call(&root(), "PutKeyPolicy", put(&closed, false))
        .await
        .unwrap();
}

const GRANTEE: &str = "arn:aws:iam::123456789012:user/grantee";

impl Env {
    async fn grant(&self, key: &str, grantee: &str, ops: &[&str], constraints: Value) -> Value {
        let mut body = json!({"KeyId": key, "GranteePrincipal": grantee, "Operations": ops});
        if !constraints.is_null() {
            body["Constraints"] = constraints;
        }
        self.call(&root(), "CreateGrant", body).await.unwrap()
    }

    async fn encrypt_with(&self, key: &str, context: Value) -> String {
        let body =
            json!({"KeyId": key, "Plaintext": B64.encode(b"hi"), "EncryptionContext": context});
        let out = self.call(&root(), "Encrypt", body).await.unwrap();
        out["CiphertextBlob"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_grant_allows_its_operations_to_its_grantee_until_revoked() {
    let e = env();
    let key = e.key(None).await;
    let blob = e.encrypt(&root(), &key).await.unwrap();
    let grantee = e.user_as(GRANTEE, Ok(vec![])).await;
    let decrypt = || e.call(&grantee, "Decrypt", json!({"CiphertextBlob": blob}));
    denied(
        decrypt().await,
        "because no identity-based policy allows the kms:Decrypt action",
    );
    let g = e.grant(&key, GRANTEE, &["Decrypt"], Value::Null).await;
    let out = decrypt().await.unwrap();
    assert_eq!(out["Plaintext"], json!(B64.encode(b"hi")));
    // Only the grant's operations, only for its grantee.
    denied(e.encrypt(&grantee, &key).await, "kms:Encrypt action");
    denied(
        e.call(&grantee, "DescribeKey", json!({"KeyId": key})).await,
        "kms:DescribeKey action",
    );
    let stranger = e.user(Ok(vec![])).await;
    denied(
        e.call(&stranger, "Decrypt", json!({"CiphertextBlob": blob}))
            .await,
        "kms:Decrypt action",
    );
    e.call(
        &root(),
        "RevokeGrant",
        json!({"KeyId": key, "GrantId": g["GrantId"]}),
    )
    .await
    .unwrap();
    denied(decrypt().await, "kms:Decrypt action");
}

#[tokio::test]
async fn grant_constraints_bind_the_encryption_context() {
    let e = env();
    let key = e.key(None).await;
    let grantee = e.user_as(GRANTEE, Ok(vec![])).await;
    e.grant(
        &key,
        GRANTEE,
        &["Decrypt", "DescribeKey"],
        json!({"EncryptionContextEquals": {"app": "billing"}}),
    )
    .await;
    let decrypt = |blob: String, context: Value| {
        e.call(
            &grantee,
            "Decrypt",
            json!({"CiphertextBlob": blob, "EncryptionContext": context}),
        )
    };
    let billing = e.encrypt_with(&key, json!({"app": "billing"})).await;
    decrypt(billing.clone(), json!({"app": "billing"}))
        .await
        .unwrap();
    let payroll = e.encrypt_with(&key, json!({"app": "payroll"})).await;
    denied(
        decrypt(payroll, json!({"app": "payroll"})).await,
        "kms:Decrypt action",
    );
    // Equals means no more pairs either.
    let more = e
        .encrypt_with(&key, json!({"app": "billing", "env": "prod"}))
        .await;
    denied(
        decrypt(more.clone(), json!({"app": "billing", "env": "prod"})).await,
        "kms:Decrypt action",
    );
    // The constraint does not apply to DescribeKey.
    e.call(&grantee, "DescribeKey", json!({"KeyId": key}))
        .await
        .unwrap();

    // A subset constraint: its pairs must be there (names without case), others may be.
    let other = "arn:aws:iam::123456789012:user/subset";
    e.grant(
        &key,
        other,
        &["Decrypt"],
        json!({"EncryptionContextSubset": {"APP": "billing"}}),
    )
    .await;
    let subset = e.user_as(other, Ok(vec![])).await;
    e.call(
        &subset,
        "Decrypt",
        json!({"CiphertextBlob": more, "EncryptionContext": {"app": "billing", "env": "prod"}}),
    )
    .await
    .unwrap();
    denied(
        e.call(
            &subset,
            "Decrypt",
            json!({"CiphertextBlob": billing, "EncryptionContext": {"app": "Billing"}}),
        )
        .await,
        "kms:Decrypt action",
    );
}

#[tokio::test]
async fn an_explicit_deny_beats_a_grant() {
    let e = env();
    let deny = format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"{GRANTEE}"}},"Action":"kms:Decrypt","Resource":"*"}}"#
    );
    let key = e.key(Some(&key_policy(&[DELEGATE, &deny]))).await;
    let blob = e.encrypt(&root(), &key).await.unwrap();
    e.grant(&key, GRANTEE, &["Decrypt"], Value::Null).await;
    let grantee = e.user_as(GRANTEE, Ok(vec![])).await;
    denied(
        e.call(&grantee, "Decrypt", json!({"CiphertextBlob": blob}))
            .await,
        "with an explicit deny in a resource-based policy",
    );
}

#[tokio::test]
async fn grants_to_create_grants_and_to_retire_them() {
    let e = env();
    let key = e.key(None).await;
    e.grant(
        &key,
        GRANTEE,
        &["CreateGrant", "Decrypt"],
        json!({"EncryptionContextSubset": {"app": "billing"}}),
    )
    .await;
    let grantee = e.user_as(GRANTEE, Ok(vec![])).await;
    let create = |ops: Value, constraints: Value| {
        e.call(
            &grantee,
            "CreateGrant",
            json!({"KeyId": key, "GranteePrincipal": USER, "Operations": ops,
                   "RetiringPrincipal": GRANTEE, "Constraints": constraints}),
        )
    };
    // No more operations than the grant, and at least its constraint.
    denied(
        create(
            json!(["Encrypt"]),
            json!({"EncryptionContextSubset": {"app": "billing"}}),
        )
        .await,
        "kms:CreateGrant action",
    );
    denied(
        create(
            json!(["Decrypt"]),
            json!({"EncryptionContextSubset": {"env": "prod"}}),
        )
        .await,
        "kms:CreateGrant action",
    );
    let g = create(
        json!(["Decrypt"]),
        json!({"EncryptionContextEquals": {"app": "billing", "env": "prod"}}),
    )
    .await
    .unwrap();
    // Without a constraint the operations still bound what may be granted.
    let free = "arn:aws:iam::123456789012:user/free";
    e.grant(&key, free, &["CreateGrant", "Decrypt"], Value::Null)
        .await;
    let free = e.user_as(free, Ok(vec![])).await;
    let delegate = |ops: Value| {
        e.call(
            &free,
            "CreateGrant",
            json!({"KeyId": key, "GranteePrincipal": USER, "Operations": ops}),
        )
    };
    denied(
        delegate(json!(["Decrypt", "Encrypt"])).await,
        "kms:CreateGrant action",
    );
    delegate(json!(["Decrypt"])).await.unwrap();
    // The retiring principal retires it without any policy allowing RetireGrant; others may not.
    let user = e.user(Ok(vec![])).await;
    denied(
        e.call(&user, "RetireGrant", json!({"GrantToken": g["GrantToken"]}))
            .await,
        "kms:RetireGrant action",
    );
    e.call(
        &grantee,
        "RetireGrant",
        json!({"GrantToken": g["GrantToken"]}),
    )
    .await
    .unwrap();
    let listed = e
        .call(&root(), "ListGrants", json!({"KeyId": key}))
        .await
        .unwrap();
    assert_eq!(listed["Grants"].as_array().unwrap().len(), 3, "{listed}");
}
