use std::sync::Arc;

use coffer_core::authz::{AccessRequest, ConditionKey, ResourcePolicy};
use coffer_core::{Caller, ManualClock, PrincipalType, RequestContext};

use super::*;

const ACCOUNT: &str = "123456789012";
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf";

struct Fixed(Result<Arc<IdentityPolicies>, String>);

impl IdentityPolicySource for Fixed {
    fn identity_policies<'a>(
        &'a self,
        _caller: &'a Caller,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<IdentityPolicies>, String>> + Send + 'a>> {
        let r = self.0.clone();
        Box::pin(async move { r })
    }
}

fn compile(doc: &str) -> Arc<CompiledPolicy> {
    Arc::new(CompiledPolicy::parse(doc, PolicyKind::Identity).expect("valid"))
}

fn user() -> Caller {
    let mut c = Caller::root(ACCOUNT, "AKIAUSER");
    c.principal_arn = format!("arn:aws:iam::{ACCOUNT}:user/alice");
    c.principal_type = PrincipalType::IamUser;
    c.principal_id = "AIDAALICE".into();
    c.user_name = Some("alice".into());
    c.tags.insert("team".into(), "db".into());
    c
}

/// Polls a future that is ready at once (the fixed source never waits).
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("pending"),
    }
}

fn ctx_for(caller: Caller, source: Fixed) -> RequestContext {
    let shared = PolicyAuthorizer::new(Arc::new(source), ManualClock::new());
    let authz = now(shared.for_caller(&caller));
    RequestContext::new(caller, "us-east-1", "req").with_authorizer(authz)
}

fn with(docs: &[&str]) -> Fixed {
    Fixed(Ok(Arc::new(IdentityPolicies {
        identity: docs.iter().map(|d| compile(d)).collect(),
        session: Vec::new(),
        boundary: None,
    })))
}

const GSV: &str = "secretsmanager:GetSecretValue";

#[test]
fn root_is_allowed_without_any_lookup() {
    let ctx = ctx_for(Caller::root(ACCOUNT, "AKIAROOT"), Fixed(Err("down".into())));
    assert!(ctx.authorize(&AccessRequest::new(GSV, SECRET)).is_ok());
}

#[test]
fn no_policies_denies_with_aws_message() {
    let ctx = ctx_for(user(), with(&[]));
    let e = ctx.authorize(&AccessRequest::new(GSV, SECRET)).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: {GSV} on \
             resource: {SECRET} because no identity-based policy allows the {GSV} action"
        )
    );
}

#[test]
fn failing_lookup_denies() {
    let ctx = ctx_for(user(), Fixed(Err("store unavailable".into())));
    assert!(ctx.authorize(&AccessRequest::new(GSV, SECRET)).is_err());
}

#[test]
fn allow_and_explicit_deny() {
    let ctx = ctx_for(
        user(),
        with(&[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"*"}}"#,
        ]),
    );
    assert!(ctx.authorize(&AccessRequest::new(GSV, SECRET)).is_ok());
    let e = ctx
        .authorize(&AccessRequest::new("secretsmanager:DeleteSecret", SECRET))
        .unwrap_err();
    assert!(
        e.message
            .ends_with("on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf with an explicit deny in an identity-based policy"),
        "{}",
        e.message
    );
}

#[test]
fn global_keys_come_from_the_caller_and_transport() {
    let policy = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
        "Condition":{"StringEquals":{"aws:username":"alice","aws:userid":"AIDAALICE","aws:PrincipalTag/team":"db",
                                     "aws:ResourceTag/team":"${aws:PrincipalTag/team}","aws:PrincipalArn":"arn:aws:iam::123456789012:user/alice",
                                     "aws:PrincipalType":"User","aws:RequestedRegion":"us-east-1","secretsmanager:SecretId":"app/db"},
                     "Bool":{"aws:SecureTransport":"true"},
                     "IpAddress":{"aws:SourceIp":"10.0.0.0/8"},
                     "DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}}"#;
    let base = ctx_for(user(), with(&[policy]));
    let tags = vec![("team".to_string(), "db".to_string())];
    let keys = [ConditionKey::str("secretsmanager:SecretId", "app/db")];
    let req = AccessRequest::new(GSV, SECRET)
        .keys(&keys)
        .resource_tags(&tags);
    let good = base
        .clone()
        .with_transport(Some("10.1.2.3".parse().unwrap()), true);
    assert!(good.authorize(&req).is_ok());
    let plain = base
        .clone()
        .with_transport(Some("10.1.2.3".parse().unwrap()), false);
    assert!(plain.authorize(&req).is_err());
    let outside = base
        .clone()
        .with_transport(Some("192.0.2.1".parse().unwrap()), true);
    assert!(outside.authorize(&req).is_err());
    let other_tags = vec![("team".to_string(), "web".to_string())];
    assert!(
        good.authorize(
            &AccessRequest::new(GSV, SECRET)
                .keys(&keys)
                .resource_tags(&other_tags)
        )
        .is_err()
    );
    // The service's own ResourceTag key mirrors aws:ResourceTag for its resources.
    let svc = ctx_for(
        user(),
        with(&[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
            "Condition":{"StringEquals":{"secretsmanager:ResourceTag/team":"db"}}}}"#,
        ]),
    );
    assert!(
        svc.authorize(&AccessRequest::new(GSV, SECRET).resource_tags(&tags))
            .is_ok()
    );
    assert!(svc.authorize(&AccessRequest::new(GSV, SECRET)).is_err());
}

#[test]
fn resource_policy_grants_and_denies() {
    let ctx = ctx_for(user(), with(&[]));
    let grant = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#;
    assert!(
        ctx.authorize(
            &AccessRequest::new(GSV, SECRET).resource_policy(ResourcePolicy::Combined(grant))
        )
        .is_ok()
    );
    let admin = ctx_for(
        user(),
        with(&[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ]),
    );
    let deny = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#;
    let e = admin
        .authorize(&AccessRequest::new(GSV, SECRET).resource_policy(ResourcePolicy::Combined(deny)))
        .unwrap_err();
    assert!(
        e.message
            .ends_with("with an explicit deny in a resource-based policy"),
        "{}",
        e.message
    );
    // A stored policy that no longer parses fails closed.
    assert!(
        admin
            .authorize(
                &AccessRequest::new(GSV, SECRET).resource_policy(ResourcePolicy::Combined("{"))
            )
            .is_err()
    );
}

#[test]
fn key_policy_must_allow_or_delegate() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/k";
    let admin = ctx_for(
        user(),
        with(&[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#,
        ]),
    );
    let delegating = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}}"#;
    let closed = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"kms:*","Resource":"*"}}"#;
    assert!(
        admin
            .authorize(
                &AccessRequest::new("kms:Decrypt", key)
                    .resource_policy(ResourcePolicy::KeyPolicy(delegating))
            )
            .is_ok()
    );
    let e = admin
        .authorize(
            &AccessRequest::new("kms:Decrypt", key)
                .resource_policy(ResourcePolicy::KeyPolicy(closed)),
        )
        .unwrap_err();
    assert!(
        e.message
            .ends_with("because no resource-based policy allows the kms:Decrypt action"),
        "{}",
        e.message
    );
}

#[test]
fn trust_policies_name_the_caller_or_delegate_with_conditions() {
    let role = "arn:aws:iam::123456789012:role/deployer";
    let trust = |principal: &str, extra: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"{extra}}}]}}"#
        )
    };
    let ask = |ctx: &RequestContext, doc: &str, keys: &[ConditionKey<'_>]| {
        ctx.authorize(
            &AccessRequest::new("sts:AssumeRole", role)
                .keys(keys)
                .resource_policy(ResourcePolicy::Trust(doc)),
        )
        .is_ok()
    };
    let bare = ctx_for(user(), with(&[]));
    let granted = ctx_for(
        user(),
        with(&[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}"#,
        ]),
    );
    let alice = "arn:aws:iam::123456789012:user/alice";
    // Naming the caller allows by itself; naming the account needs an identity grant too.
    assert!(ask(&bare, &trust(alice, ""), &[]));
    assert!(!ask(
        &bare,
        &trust("arn:aws:iam::123456789012:root", ""),
        &[]
    ));
    assert!(ask(
        &granted,
        &trust("arn:aws:iam::123456789012:root", ""),
        &[]
    ));
    assert!(!ask(
        &granted,
        &trust("arn:aws:iam::123456789012:user/bob", ""),
        &[]
    ));
    assert!(!ask(
        &granted,
        &trust("arn:aws:iam::999999999999:root", ""),
        &[]
    ));
    // Conditions are evaluated on the request's keys.
    let external = trust(
        alice,
        r#","Condition":{"StringEquals":{"sts:ExternalId":"x-123"}}"#,
    );
    assert!(ask(
        &bare,
        &external,
        &[ConditionKey::str("sts:ExternalId", "x-123")]
    ));
    assert!(!ask(
        &bare,
        &external,
        &[ConditionKey::str("sts:ExternalId", "other")]
    ));
    assert!(!ask(&bare, &external, &[]));
    // A Deny anywhere wins; a document that is not a trust policy denies.
    let denied = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{alice}"}},"Action":"sts:AssumeRole"}},{{"Effect":"Deny","Principal":{{"AWS":"*"}},"Action":"sts:*"}}]}}"#
    );
    assert!(!ask(&bare, &denied, &[]));
    let with_resource = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Resource":"*"}]}"#;
    assert!(!ask(&granted, with_resource, &[]));
}

#[test]
fn session_policy_bounds_the_role() {
    let mut c = user();
    c.principal_type = PrincipalType::AssumedRole;
    c.principal_arn = "arn:aws:sts::123456789012:assumed-role/app/s1".into();
    c.user_name = None;
    let src = Fixed(Ok(Arc::new(IdentityPolicies {
        identity: vec![compile(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}}"#,
        )],
        session: vec![compile(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}}"#,
        )],
        boundary: None,
    })));
    let ctx = ctx_for(c, src);
    assert!(
        ctx.authorize(&AccessRequest::new("secretsmanager:DescribeSecret", SECRET))
            .is_ok()
    );
    let denied = ctx.authorize(&AccessRequest::new(GSV, SECRET)).unwrap_err();
    assert!(
        denied
            .message
            .ends_with("because no session policy allows the secretsmanager:GetSecretValue action"),
        "{}",
        denied.message
    );
}

#[test]
fn a_permissions_boundary_caps_what_identity_policies_grant() {
    let admin =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    let boundary = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*"},
        {"Effect":"Deny","Action":"secretsmanager:DescribeSecret","Resource":"*"}]}"#;
    let with_boundary = |identity: &[&str]| {
        Fixed(Ok(Arc::new(IdentityPolicies {
            identity: identity.iter().map(|d| compile(d)).collect(),
            session: Vec::new(),
            boundary: Some(compile(boundary)),
        })))
    };
    let ctx = ctx_for(user(), with_boundary(&[admin]));
    // Inside both: allowed.
    assert!(ctx.authorize(&AccessRequest::new(GSV, SECRET)).is_ok());
    // Granted by the identity policy, outside the boundary: denied, and the message says why.
    let d = ctx
        .authorize(&AccessRequest::new("secretsmanager:DeleteSecret", SECRET))
        .unwrap_err();
    assert!(
        d.message.ends_with(
            "because no permissions boundary allows the secretsmanager:DeleteSecret action"
        ),
        "{}",
        d.message
    );
    assert!(!d.is_explicit());
    // An explicit deny in the boundary wins and is explicit.
    let d = ctx
        .authorize(&AccessRequest::new("secretsmanager:DescribeSecret", SECRET))
        .unwrap_err();
    assert!(
        d.message
            .ends_with("with an explicit deny in a permissions boundary"),
        "{}",
        d.message
    );
    assert!(d.is_explicit());
    // The boundary grants nothing by itself.
    let ctx = ctx_for(user(), with_boundary(&[]));
    let d = ctx.authorize(&AccessRequest::new(GSV, SECRET)).unwrap_err();
    assert!(
        d.message.ends_with(
            "because no identity-based policy allows the secretsmanager:GetSecretValue action"
        ),
        "{}",
        d.message
    );
}

#[test]
fn bounds_do_not_cap_what_a_resource_or_key_policy_grants_by_itself() {
    let admin =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    let narrow = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}}"#;
    let no_deleting = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
        {"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let bounded_by = |boundary: &str, session: Option<&str>| {
        let mut c = user();
        if session.is_some() {
            c.principal_type = PrincipalType::AssumedRole;
        }
        ctx_for(
            c,
            Fixed(Ok(Arc::new(IdentityPolicies {
                identity: vec![compile(admin)],
                session: session.map(compile).into_iter().collect(),
                boundary: Some(compile(boundary)),
            }))),
        )
    };
    let to_alice = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#;
    let to_account = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#;
    let req = |doc| AccessRequest::new(GSV, SECRET).resource_policy(ResourcePolicy::Combined(doc));
    for ctx in [bounded_by(narrow, None), bounded_by(narrow, Some(narrow))] {
        // Granted to the caller by the resource policy: neither bound caps it.
        assert!(ctx.authorize(&req(to_alice)).is_ok());
        // Granted to the account only: the identity policy decides, and the bounds cap it.
        assert!(ctx.authorize(&req(to_account)).is_err());
        assert!(ctx.authorize(&AccessRequest::new(GSV, SECRET)).is_err());
    }
    // An explicit deny in a bound still wins over the resource policy's grant.
    let e = bounded_by(no_deleting, None)
        .authorize(&req(to_alice))
        .unwrap_err();
    assert!(
        e.message
            .ends_with("with an explicit deny in a permissions boundary"),
        "{}",
        e.message
    );
    // A key policy granting through the service to anyone in the account (an AWS managed
    // key's) is not capped either; one delegating to IAM is.
    let key = "arn:aws:kms:us-east-1:123456789012:key/k";
    let managed = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"123456789012"}}}}"#;
    let delegating = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}}"#;
    let caller_account = [ConditionKey::str("kms:CallerAccount", ACCOUNT)];
    let ctx = bounded_by(narrow, None);
    let decrypt = |doc| {
        AccessRequest::new("kms:Decrypt", key)
            .keys(&caller_account)
            .resource_policy(ResourcePolicy::KeyPolicy(doc))
    };
    assert!(ctx.authorize(&decrypt(managed)).is_ok());
    let e = ctx.authorize(&decrypt(delegating)).unwrap_err();
    assert!(
        e.message
            .ends_with("because no permissions boundary allows the kms:Decrypt action"),
        "{}",
        e.message
    );
}

#[test]
fn a_grant_to_the_role_is_capped_but_one_to_the_session_is_not() {
    let role = "arn:aws:iam::123456789012:role/app";
    let session = "arn:aws:sts::123456789012:assumed-role/app/s1";
    let mut c = user();
    c.principal_type = PrincipalType::AssumedRole;
    c.principal_arn = session.into();
    c.user_name = None;
    c.session = Some(coffer_core::SessionContext {
        issuer_type: coffer_core::IssuerType::Role,
        issuer_arn: role.into(),
        issuer_principal_id: "AROAX".into(),
        issuer_name: "app".into(),
        session_name: Some("s1".into()),
        created_secs: 0,
        expires_secs: i64::MAX,
    });
    let ctx = ctx_for(
        c,
        Fixed(Ok(Arc::new(IdentityPolicies {
            identity: vec![],
            session: Vec::new(),
            boundary: Some(compile(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#,
            )),
        }))),
    );
    let grant_to = |principal: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}}}"#
        )
    };
    let (to_session, to_role) = (grant_to(session), grant_to(role));
    let req = |doc: &str| {
        ctx.authorize(
            &AccessRequest::new(GSV, SECRET).resource_policy(ResourcePolicy::Combined(doc)),
        )
    };
    assert!(req(&to_session).is_ok());
    let e = req(&to_role).unwrap_err();
    assert!(
        e.message.ends_with(
            "because no permissions boundary allows the secretsmanager:GetSecretValue action"
        ),
        "{}",
        e.message
    );
}
