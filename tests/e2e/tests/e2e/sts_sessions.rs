//! STS through aws-sdk-sts: GetCallerIdentity, AssumeRole (trust policy, duration, session
//! tags, session policy), GetSessionToken, and session credentials that verify through
//! `x-amz-security-token` and expire on time.

use std::time::Duration;

use crate::harness::TestServer;
use crate::iam_util::{ACCOUNT, err_code, iam, policy, sts, sts_with, user_with_key};

fn trust(principal: &str) -> String {
    policy(&[&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":["sts:AssumeRole","sts:TagSession"]}}"#
    )])
}

#[tokio::test]
async fn caller_identity_of_root() {
    let s = TestServer::dev().await;
    let me = sts(&s).get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some(ACCOUNT));
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:iam::{ACCOUNT}:root").as_str())
    );
    assert_eq!(me.user_id(), Some(ACCOUNT));
}

#[tokio::test]
async fn assumed_role_sessions_act_as_the_role_and_expire() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "alice", "/").await;
    iam.create_role()
        .role_name("reader")
        .path("/app/")
        .assume_role_policy_document(trust(&format!("arn:aws:iam::{ACCOUNT}:user/alice")))
        .send()
        .await
        .unwrap();
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/app/reader");
    let alice = sts_with(&s, &akid, &secret, None);
    let out = alice
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("job-42")
        .duration_seconds(900)
        .tags(
            aws_sdk_sts::types::Tag::builder()
                .key("project")
                .value("x")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let c = out.credentials().unwrap();
    assert!(
        c.access_key_id().starts_with("ASIA"),
        "{}",
        c.access_key_id()
    );
    let assumed = out.assumed_role_user().unwrap();
    assert_eq!(
        assumed.arn(),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/reader/job-42")
    );
    assert!(assumed.assumed_role_id().starts_with("AROA"));
    assert!(assumed.assumed_role_id().ends_with(":job-42"));
    let expires = c.expiration().secs();
    let now = coffer_core::Clock::now_secs(&*s.clock);
    assert!(
        (expires - now - 900).abs() <= 5,
        "expires in 900 s: {expires} vs {now}"
    );

    let session = sts_with(
        &s,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    );
    let me = session.get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some(assumed.arn()));
    assert_eq!(me.user_id(), Some(assumed.assumed_role_id()));

    // The token is bound to its key id and cannot be altered.
    let mut forged = c.session_token().to_string();
    forged.replace_range(10..11, if &forged[10..11] == "A" { "B" } else { "A" });
    let bad = sts_with(&s, c.access_key_id(), c.secret_access_key(), Some(&forged))
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&bad), "InvalidClientTokenId");
    let no_token = sts_with(&s, c.access_key_id(), c.secret_access_key(), None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&no_token), "InvalidClientTokenId");

    // Time passes (the service clock): the session ends.
    s.clock.advance(Duration::from_secs(901));
    let expired = session.get_caller_identity().send().await.unwrap_err();
    assert_eq!(err_code(&expired), "ExpiredToken");
}

#[tokio::test]
async fn trust_policy_and_duration_are_enforced() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "mallory", "/").await;
    iam.create_role()
        .role_name("only-alice")
        .assume_role_policy_document(trust(&format!("arn:aws:iam::{ACCOUNT}:user/alice")))
        .send()
        .await
        .unwrap();
    let mallory = sts_with(&s, &akid, &secret, None);
    let denied = mallory
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/only-alice"))
        .role_session_name("s1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&denied), "AccessDenied");
    let missing = sts(&s)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/none"))
        .role_session_name("s1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&missing), "AccessDenied");

    // A trust policy naming the account delegates to the caller's identity policies. The
    // account root never assumes roles (AWS refuses root credentials for AssumeRole).
    iam.create_role()
        .role_name("acct")
        .assume_role_policy_document(trust(&format!("arn:aws:iam::{ACCOUNT}:root")))
        .send()
        .await
        .unwrap();
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/acct");
    let by_root = sts(&s)
        .assume_role()
        .role_arn(&arn)
        .role_session_name("s1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&by_root), "AccessDenied");
    let not_granted = mallory
        .assume_role()
        .role_arn(&arn)
        .role_session_name("s1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&not_granted), "AccessDenied", "no identity grant");
    iam.put_user_policy()
        .user_name("mallory")
        .policy_name("assume")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    let too_long = mallory
        .assume_role()
        .role_arn(&arn)
        .role_session_name("s1")
        .duration_seconds(7200)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&too_long), "ValidationError");
    let too_short = mallory
        .assume_role()
        .role_arn(&arn)
        .role_session_name("s1")
        .duration_seconds(899)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&too_short), "ValidationError");
    let bad_name = mallory
        .assume_role()
        .role_arn(&arn)
        .role_session_name("has space")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&bad_name), "ValidationError");
    let malformed = mallory
        .assume_role()
        .role_arn(&arn)
        .role_session_name("s1")
        .policy("{nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&malformed), "MalformedPolicyDocument");
    let ok = mallory
        .assume_role()
        .role_arn(&arn)
        .role_session_name("s1")
        .policy(policy(&[
            r#"{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    assert!(ok.credentials().is_some());

    // Trust conditions are evaluated: a role for a third party demands its ExternalId.
    iam.create_role()
        .role_name("vendor")
        .assume_role_policy_document(policy(&[&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/mallory"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"ext-42"}}}}}}"#
        )]))
        .send()
        .await
        .unwrap();
    let vendor = format!("arn:aws:iam::{ACCOUNT}:role/vendor");
    for external in [None, Some("ext-41")] {
        let e = mallory
            .assume_role()
            .role_arn(&vendor)
            .role_session_name("v1")
            .set_external_id(external.map(String::from))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e), "AccessDenied", "{external:?}");
    }
    let ok = mallory
        .assume_role()
        .role_arn(&vendor)
        .role_session_name("v1")
        .external_id("ext-42")
        .send()
        .await
        .unwrap();
    assert!(ok.credentials().is_some());
}

#[tokio::test]
async fn session_tokens_for_users_and_root() {
    let s = TestServer::dev().await;
    let (akid, secret) = user_with_key(&iam(&s), "ursula", "/").await;
    let out = sts_with(&s, &akid, &secret, None)
        .get_session_token()
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let c = out.credentials().unwrap();
    let session = sts_with(
        &s,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    );
    let me = session.get_caller_identity().send().await.unwrap();
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:iam::{ACCOUNT}:user/ursula").as_str())
    );
    let nested = session.get_session_token().send().await.unwrap_err();
    assert_eq!(err_code(&nested), "AccessDenied");

    let root = sts(&s)
        .get_session_token()
        .duration_seconds(7200)
        .send()
        .await
        .unwrap();
    let c = root.credentials().unwrap();
    let lifetime = c.expiration().secs() - coffer_core::Clock::now_secs(&*s.clock);
    assert!(
        lifetime <= 3600 + 5,
        "root sessions last at most an hour: {lifetime}"
    );
}

#[tokio::test]
async fn inline_and_managed_session_policies_cap_the_session() {
    use aws_sdk_iam::error::ProvideErrorMetadata as _;
    use aws_sdk_sts::types::PolicyDescriptorType;
    let s = TestServer::dev().await;
    let iam = iam(&s);
    iam.create_role()
        .role_name("capped")
        .assume_role_policy_document(trust(&format!("arn:aws:iam::{ACCOUNT}:root")))
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("capped")
        .policy_name("all-iam")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":"iam:*","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    let managed = async |name: &str, action: &str| {
        let allow = format!(r#"{{"Effect":"Allow","Action":"{action}","Resource":"*"}}"#);
        crate::iam_util::managed_policy(&iam, name, &[&allow]).await
    };
    let get_role = managed("OnlyGetRole", "iam:GetRole").await;
    let list_users = managed("OnlyListUsers", "iam:ListUsers").await;
    let (akid, secret) = user_with_key(&iam, "bob", "/").await;
    iam.put_user_policy()
        .user_name("bob")
        .policy_name("assume")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    let bob = sts_with(&s, &akid, &secret, None);
    let arn = |a: &str| PolicyDescriptorType::builder().arn(a).build();
    let session = async |inline: Option<&str>, arns: &[&str]| {
        let out = bob
            .assume_role()
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/capped"))
            .role_session_name("capped")
            .set_policy(inline.map(String::from))
            .set_policy_arns(Some(arns.iter().map(|a| arn(a)).collect()))
            .send()
            .await
            .unwrap();
        let c = out.credentials().unwrap();
        crate::iam_util::iam_with(
            &s,
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
    };

    // Managed session policies: the session may do what any of them allows, within the role.
    let two = session(None, &[&get_role, &list_users]).await;
    two.get_role().role_name("capped").send().await.unwrap();
    two.list_users().send().await.unwrap();
    let e = two.list_roles().send().await.unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    assert!(
        e.message()
            .unwrap()
            .ends_with("because no session policy allows the iam:ListRoles action"),
        "{e:?}"
    );
    // Inline and managed together.
    let mixed = session(
        Some(&policy(&[
            r#"{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}"#,
        ])),
        &[&get_role],
    )
    .await;
    mixed.list_roles().send().await.unwrap();
    mixed.get_role().role_name("capped").send().await.unwrap();
    let e = mixed.list_users().send().await.unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");

    // A policy the account does not have, or too many of them, is refused.
    let missing = format!("arn:aws:iam::{ACCOUNT}:policy/Nope");
    let e = bob
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/capped"))
        .role_session_name("probe")
        .policy_arns(arn(&missing))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    let e = bob
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/capped"))
        .role_session_name("probe")
        .set_policy_arns(Some((0..11).map(|_| arn(&get_role)).collect()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ValidationError");

    // A managed session policy deleted later leaves its sessions with nothing (fail closed).
    iam.delete_policy()
        .policy_arn(&list_users)
        .send()
        .await
        .unwrap();
    let e = two.get_role().role_name("capped").send().await.unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
}

#[tokio::test]
async fn federation_tokens_are_capped_by_their_session_policy() {
    use aws_sdk_iam::error::ProvideErrorMetadata as _;
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let sm = s.sm();
    for name in ["app/a", "app/b"] {
        sm.create_secret()
            .name(name)
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    let (akid, secret) = user_with_key(&iam, "broker", "/").await;
    iam.put_user_policy()
        .user_name("broker")
        .policy_name("broker")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":["sts:GetFederationToken","secretsmanager:*"],"Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    let broker = sts_with(&s, &akid, &secret, None);
    let only_a = policy(&[&format!(
        r#"{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app/a-*"}}"#
    )]);
    let out = broker
        .get_federation_token()
        .name("alice")
        .policy(&only_a)
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let fed = out.federated_user().unwrap();
    assert_eq!(
        fed.arn(),
        format!("arn:aws:sts::{ACCOUNT}:federated-user/alice")
    );
    assert_eq!(fed.federated_user_id(), format!("{ACCOUNT}:alice"));
    let c = out.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));
    let me = sts_with(
        &s,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    )
    .get_caller_identity()
    .send()
    .await
    .unwrap();
    assert_eq!(me.arn(), Some(fed.arn()));

    let as_alice = s.sm_session(c);
    as_alice
        .get_secret_value()
        .secret_id("app/a")
        .send()
        .await
        .unwrap();
    let denied = as_alice
        .get_secret_value()
        .secret_id("app/b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&denied), "AccessDeniedException");

    // Without a session policy a federated user may do nothing, its issuer's policies aside.
    let bare = broker
        .get_federation_token()
        .name("nobody")
        .send()
        .await
        .unwrap();
    let b = bare.credentials().unwrap();
    let e = s
        .sm_session(b)
        .get_secret_value()
        .secret_id("app/a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&e), "AccessDeniedException");

    // Session credentials cannot mint federation tokens; nor can a user without the action.
    let e = sts_with(
        &s,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    )
    .get_federation_token()
    .name("bob")
    .send()
    .await
    .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    let (plain, plain_secret) = user_with_key(&iam, "plain", "/").await;
    let e = sts_with(&s, &plain, &plain_secret, None)
        .get_federation_token()
        .name("bob")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    assert!(
        e.message().unwrap().contains("sts:GetFederationToken"),
        "{e:?}"
    );
    let e = broker
        .get_federation_token()
        .name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ValidationError", "a name of one character");
}
