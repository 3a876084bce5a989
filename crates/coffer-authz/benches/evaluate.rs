//! Evaluation cost: GetSecretValue by a user holding 10 policies of 10 statements each (the
//! issue's benchmark shape), the account root's fast path, and a resource-policy decision.
//!
//! `cargo bench -p coffer-authz --bench evaluate`

use std::hint::black_box;
use std::sync::Arc;

use coffer_authz::{IdentityPolicies, IdentityPolicySource, PolicyAuthorizer};
use coffer_core::authz::{AccessRequest, ConditionKey, ResourcePolicy};
use coffer_core::{Caller, PrincipalType, RequestContext, SystemClock};
use coffer_policy::{CompiledPolicy, PolicyKind};
use criterion::{Criterion, criterion_group, criterion_main};

const ACCOUNT: &str = "123456789012";
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf";

/// Ten policies of ten statements: nine that do not apply (other actions, other resources,
/// conditions) and, in the last policy, the statement that grants the read.
fn policies() -> IdentityPolicies {
    let identity = (0..10)
        .map(|p| {
            let stmts: Vec<String> = (0..10)
                .map(|s| {
                    if p == 9 && s == 9 {
                        r#"{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:app/*","Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}"#.to_string()
                    } else if s % 3 == 0 {
                        format!(r#"{{"Effect":"Allow","Action":"ssm:GetParameter*","Resource":"arn:aws:ssm:*:*:parameter/team{p}/{s}/*"}}"#)
                    } else if s % 3 == 1 {
                        format!(r#"{{"Effect":"Allow","Action":["secretsmanager:Get*","secretsmanager:List*"],"Resource":"arn:aws:secretsmanager:*:*:secret:other{p}-{s}/*"}}"#)
                    } else {
                        format!(r#"{{"Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"*","Condition":{{"StringEquals":{{"aws:ResourceTag/protected":"p{p}{s}"}}}}}}"#)
                    }
                })
                .collect();
            let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, stmts.join(","));
            Arc::new(CompiledPolicy::parse(&doc, PolicyKind::Identity).expect("valid"))
        })
        .collect();
    IdentityPolicies {
        identity,
        session: Vec::new(),
        boundary: None,
    }
}

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

fn user() -> Caller {
    let mut c = Caller::root(ACCOUNT, "AKIAUSER");
    c.principal_arn = format!("arn:aws:iam::{ACCOUNT}:user/app");
    c.principal_type = PrincipalType::IamUser;
    c.principal_id = "AIDAEXAMPLE".into();
    c.user_name = Some("app".into());
    c.tags.insert("team".into(), "db".into());
    c
}

/// The source above answers at once; poll its future once.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the fixed source never waits"),
    }
}

fn bench(c: &mut Criterion) {
    let shared =
        PolicyAuthorizer::new(Arc::new(Fixed(Arc::new(policies()))), Arc::new(SystemClock));
    let user_ctx = {
        let caller = user();
        let authz = block_on(shared.for_caller(&caller));
        RequestContext::new(caller, "us-east-1", "req").with_authorizer(authz)
    };
    let root_ctx = {
        let caller = Caller::root(ACCOUNT, "AKIAROOT");
        let authz = block_on(shared.for_caller(&caller));
        RequestContext::new(caller, "us-east-1", "req").with_authorizer(authz)
    };
    let tags = vec![("team".to_string(), "db".to_string())];
    let keys = [ConditionKey::str("secretsmanager:SecretId", "app/db")];
    let req = AccessRequest::new("secretsmanager:GetSecretValue", SECRET)
        .keys(&keys)
        .resource_tags(&tags);
    assert!(user_ctx.authorize(&req).is_ok());

    c.bench_function("GetSecretValue decision, user with 10x10 statements", |b| {
        b.iter(|| black_box(user_ctx.authorize(black_box(&req))).is_ok())
    });
    c.bench_function("GetSecretValue decision, account root", |b| {
        b.iter(|| black_box(root_ctx.authorize(black_box(&req))).is_ok())
    });
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/app"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let with_policy = req.resource_policy(ResourcePolicy::Combined(policy));
    c.bench_function(
        "GetSecretValue decision, user, with a resource policy",
        |b| b.iter(|| black_box(user_ctx.authorize(black_box(&with_policy))).is_ok()),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
