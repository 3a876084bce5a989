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
                session: None,
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
        let mut caller = Caller::root(ACCOUNT, "AKIDUSER");
        caller.principal_arn = USER.into();
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
