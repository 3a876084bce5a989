//! Permissions boundaries through aws-sdk-iam: set on CreateUser/CreateRole or with
//! Put/Delete{User,Role}PermissionsBoundary, enforced on every call of the bounded user and of
//! the role's sessions, counted on the policy (which cannot be deleted while in use), listed by
//! ListEntitiesForPolicy, and delegated through the `iam:PermissionsBoundary` condition key.

use crate::harness::{TestServer, code};
use crate::iam_util::{
    ACCOUNT, err_code, iam, iam_with, managed_policy, policy, sts_with, user_with_key,
};

const ALLOW_ALL: &str = r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#;

fn secret_arn_pattern(name: &str) -> String {
    format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}")
}

async fn boundary_uses(iam: &aws_sdk_iam::Client, arn: &str) -> i32 {
    let got = iam.get_policy().policy_arn(arn).send().await.unwrap();
    got.policy()
        .unwrap()
        .permissions_boundary_usage_count()
        .unwrap()
}

/// (users, roles) ListEntitiesForPolicy names for `usage`.
async fn entities(
    iam: &aws_sdk_iam::Client,
    arn: &str,
    usage: Option<aws_sdk_iam::types::PolicyUsageType>,
) -> (Vec<String>, Vec<String>) {
    let out = iam
        .list_entities_for_policy()
        .policy_arn(arn)
        .set_policy_usage_filter(usage)
        .send()
        .await
        .unwrap();
    (
        out.policy_users()
            .iter()
            .map(|u| u.user_name().unwrap().to_string())
            .collect(),
        out.policy_roles()
            .iter()
            .map(|r| r.role_name().unwrap().to_string())
            .collect(),
    )
}

#[tokio::test]
async fn a_boundary_caps_what_a_users_policies_grant() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let sm = s.sm();
    for name in ["app/db", "ops/root"] {
        sm.create_secret()
            .name(name)
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    let app_only = managed_policy(
        &iam,
        "AppOnly",
        &[&format!(
            r#"{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"{}*"}}"#,
            secret_arn_pattern("app/")
        )],
    )
    .await;

    // An administrator's policy, bounded from the start.
    iam.create_user()
        .user_name("alice")
        .permissions_boundary(&app_only)
        .send()
        .await
        .unwrap();
    iam.put_user_policy()
        .user_name("alice")
        .policy_name("admin")
        .policy_document(policy(&[ALLOW_ALL]))
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let k = key.access_key().unwrap();
    let alice = s.sm_with("us-east-1", k.access_key_id(), k.secret_access_key());

    let got = alice
        .get_secret_value()
        .secret_id("app/db")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("v"));
    let denied = alice
        .get_secret_value()
        .secret_id("ops/root")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&denied), "AccessDeniedException");
    let message = aws_sdk_secretsmanager::error::ProvideErrorMetadata::message(&denied)
        .unwrap()
        .to_string();
    assert!(
        message.contains(
            "because no permissions boundary allows the secretsmanager:GetSecretValue action"
        ),
        "{message}"
    );

    // GetUser shows the boundary, ListUsers does not (as IAM answers).
    let user = iam.get_user().user_name("alice").send().await.unwrap();
    let b = user.user().unwrap().permissions_boundary().unwrap();
    assert_eq!(b.permissions_boundary_arn(), Some(app_only.as_str()));
    assert_eq!(
        b.permissions_boundary_type(),
        Some(&aws_sdk_iam::types::PermissionsBoundaryAttachmentType::Policy)
    );
    let listed = iam.list_users().send().await.unwrap();
    assert!(listed.users()[0].permissions_boundary().is_none());

    // The policy counts the use, names the user, and cannot be deleted meanwhile.
    assert_eq!(boundary_uses(&iam, &app_only).await, 1);
    use aws_sdk_iam::types::PolicyUsageType::{PermissionsBoundary, PermissionsPolicy};
    assert_eq!(
        entities(&iam, &app_only, Some(PermissionsBoundary)).await,
        (vec!["alice".to_string()], vec![])
    );
    assert_eq!(
        entities(&iam, &app_only, Some(PermissionsPolicy)).await,
        (vec![], vec![])
    );
    let refused = iam
        .delete_policy()
        .policy_arn(&app_only)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&refused), "DeleteConflict");

    // Removing the boundary restores what the identity policy grants; putting it back caps again.
    iam.delete_user_permissions_boundary()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    alice
        .get_secret_value()
        .secret_id("ops/root")
        .send()
        .await
        .unwrap();
    let user = iam.get_user().user_name("alice").send().await.unwrap();
    assert!(user.user().unwrap().permissions_boundary().is_none());
    assert_eq!(boundary_uses(&iam, &app_only).await, 0);
    iam.put_user_permissions_boundary()
        .user_name("alice")
        .permissions_boundary(&app_only)
        .send()
        .await
        .unwrap();
    let denied = alice
        .get_secret_value()
        .secret_id("ops/root")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&denied), "AccessDeniedException");

    // A boundary must be an existing managed policy; nothing changes otherwise.
    let missing = format!("arn:aws:iam::{ACCOUNT}:policy/Nope");
    let e = iam
        .put_user_permissions_boundary()
        .user_name("alice")
        .permissions_boundary(&missing)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    assert_eq!(
        aws_sdk_iam::error::ProvideErrorMetadata::message(&e),
        Some(format!("Scope ARN: {missing} does not exist or is not attachable.").as_str())
    );
    let e = iam
        .create_user()
        .user_name("bob")
        .permissions_boundary(&missing)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    let e = iam.get_user().user_name("bob").send().await.unwrap_err();
    assert_eq!(
        err_code(&e),
        "NoSuchEntity",
        "a refused CreateUser left a user"
    );
    let e = iam
        .put_user_permissions_boundary()
        .user_name("alice")
        .permissions_boundary("too-short")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ValidationError");
    let e = iam
        .put_user_permissions_boundary()
        .user_name("nobody")
        .permissions_boundary(&app_only)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    assert_eq!(boundary_uses(&iam, &app_only).await, 1);

    // Deleting the user releases the policy.
    iam.delete_access_key()
        .user_name("alice")
        .access_key_id(k.access_key_id())
        .send()
        .await
        .unwrap();
    iam.delete_user_policy()
        .user_name("alice")
        .policy_name("admin")
        .send()
        .await
        .unwrap();
    iam.delete_user().user_name("alice").send().await.unwrap();
    assert_eq!(boundary_uses(&iam, &app_only).await, 0);
    iam.delete_policy()
        .policy_arn(&app_only)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_roles_boundary_caps_its_sessions() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let read_roles = managed_policy(
        &iam,
        "ReadRoles",
        &[r#"{"Effect":"Allow","Action":["iam:GetRole","iam:ListRoles"],"Resource":"*"}"#],
    )
    .await;
    let get_role_only = managed_policy(
        &iam,
        "GetRoleOnly",
        &[r#"{"Effect":"Allow","Action":"iam:GetRole","Resource":"*"}"#],
    )
    .await;
    iam.create_role()
        .role_name("svc")
        .assume_role_policy_document(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
        ))
        .permissions_boundary(&read_roles)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("svc")
        .policy_name("admin")
        .policy_document(policy(&[ALLOW_ALL]))
        .send()
        .await
        .unwrap();
    let role = iam.get_role().role_name("svc").send().await.unwrap();
    assert_eq!(
        role.role()
            .unwrap()
            .permissions_boundary()
            .unwrap()
            .permissions_boundary_arn(),
        Some(read_roles.as_str())
    );

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
    let creds = sts_with(&s, &akid, &secret, None)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/svc"))
        .role_session_name("job")
        .send()
        .await
        .unwrap();
    let c = creds.credentials().unwrap();
    let session = iam_with(
        &s,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    );
    session.get_role().role_name("svc").send().await.unwrap();
    session.list_roles().send().await.unwrap();
    let denied = session.list_users().send().await.unwrap_err();
    assert_eq!(err_code(&denied), "AccessDenied");

    // Replacing the boundary moves the count and caps the live session at once.
    iam.put_role_permissions_boundary()
        .role_name("svc")
        .permissions_boundary(&get_role_only)
        .send()
        .await
        .unwrap();
    assert_eq!(boundary_uses(&iam, &read_roles).await, 0);
    assert_eq!(boundary_uses(&iam, &get_role_only).await, 1);
    session.get_role().role_name("svc").send().await.unwrap();
    let denied = session.list_roles().send().await.unwrap_err();
    assert_eq!(err_code(&denied), "AccessDenied");
    assert_eq!(
        entities(&iam, &get_role_only, None).await,
        (vec![], vec!["svc".to_string()])
    );

    iam.delete_role_permissions_boundary()
        .role_name("svc")
        .send()
        .await
        .unwrap();
    session.list_users().send().await.unwrap();
    assert_eq!(boundary_uses(&iam, &get_role_only).await, 0);
}

#[tokio::test]
async fn the_permissions_boundary_key_delegates_user_creation() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let bounded = managed_policy(
        &iam,
        "Bounded",
        &[r#"{"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}"#],
    )
    .await;
    let other = managed_policy(
        &iam,
        "Other",
        &[r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#],
    )
    .await;
    // A delegated administrator may create users and manage their policies only with the
    // `Bounded` boundary on them, and may never remove a boundary.
    let (akid, secret) = user_with_key(&iam, "delegate", "/").await;
    iam.put_user_policy()
        .user_name("delegate")
        .policy_name("delegation")
        .policy_document(policy(&[&format!(
            r#"{{"Effect":"Allow","Action":["iam:CreateUser","iam:PutUserPermissionsBoundary","iam:PutUserPolicy"],"Resource":"*","Condition":{{"StringEquals":{{"iam:PermissionsBoundary":"{bounded}"}}}}}}"#
        )]))
        .send()
        .await
        .unwrap();
    let delegate = iam_with(&s, &akid, &secret, None);

    let e = delegate
        .create_user()
        .user_name("u-none")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    let e = delegate
        .create_user()
        .user_name("u-other")
        .permissions_boundary(&other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    delegate
        .create_user()
        .user_name("u1")
        .permissions_boundary(&bounded)
        .send()
        .await
        .unwrap();
    // The entity's current boundary is the key for its policy changes.
    delegate
        .put_user_policy()
        .user_name("u1")
        .policy_name("all")
        .policy_document(policy(&[ALLOW_ALL]))
        .send()
        .await
        .unwrap();
    let e = delegate
        .put_user_permissions_boundary()
        .user_name("u1")
        .permissions_boundary(&other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    let e = delegate
        .delete_user_permissions_boundary()
        .user_name("u1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    // A user without a boundary is out of the delegate's reach.
    iam.create_user().user_name("u2").send().await.unwrap();
    let e = delegate
        .put_user_policy()
        .user_name("u2")
        .policy_name("all")
        .policy_document(policy(&[ALLOW_ALL]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    let user = iam.get_user().user_name("u1").send().await.unwrap();
    assert_eq!(
        user.user()
            .unwrap()
            .permissions_boundary()
            .unwrap()
            .permissions_boundary_arn(),
        Some(bounded.as_str())
    );
}
