//! IAM roles and policies through aws-sdk-iam: managed policies with versions, attachments,
//! inline policies, trust policies, and the errors for malformed or oversize documents.

use aws_sdk_iam::error::ProvideErrorMetadata as _;

use crate::harness::TestServer;
use crate::iam_util::{ACCOUNT, decode, err_code, iam, policy};

const READ_PROD: &str = r#"{"Effect":"Allow","Action":"ssm:GetParameter*","Resource":"arn:aws:ssm:*:*:parameter/prod/*"}"#;

fn trust_account() -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

#[tokio::test]
async fn managed_policies_versions_and_attachments() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let created = iam
        .create_policy()
        .policy_name("ReadProd")
        .path("/app/")
        .policy_document(policy(&[READ_PROD]))
        .description("read /prod")
        .send()
        .await
        .unwrap();
    let p = created.policy().unwrap();
    let arn = p.arn().unwrap().to_string();
    assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT}:policy/app/ReadProd"));
    assert_eq!(p.default_version_id(), Some("v1"));
    assert_eq!(p.attachment_count(), Some(0));

    let dup = iam
        .create_policy()
        .policy_name("ReadProd")
        .policy_document(policy(&[READ_PROD]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&dup), "EntityAlreadyExists");

    let v2 = iam
        .create_policy_version()
        .policy_arn(&arn)
        .policy_document(policy(&[READ_PROD, READ_PROD]))
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    assert_eq!(v2.policy_version().unwrap().version_id(), Some("v2"));
    assert!(v2.policy_version().unwrap().is_default_version());
    let got = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let doc = decode(got.policy_version().unwrap().document().unwrap());
    assert_eq!(
        doc["Statement"][0]["Resource"],
        "arn:aws:ssm:*:*:parameter/prod/*"
    );
    for _ in 3..=5 {
        iam.create_policy_version()
            .policy_arn(&arn)
            .policy_document(policy(&[READ_PROD]))
            .send()
            .await
            .unwrap();
    }
    let sixth = iam
        .create_policy_version()
        .policy_arn(&arn)
        .policy_document(policy(&[READ_PROD]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&sixth), "LimitExceeded");
    let versions = iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 5);
    let default_del = iam
        .delete_policy_version()
        .policy_arn(&arn)
        .version_id("v2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&default_del), "DeleteConflict");

    // Attach to a user, a group and a role; the count follows; deletion waits for detaching.
    iam.create_user().user_name("u1").send().await.unwrap();
    iam.create_group().group_name("g1").send().await.unwrap();
    iam.create_role()
        .role_name("r1")
        .assume_role_policy_document(trust_account())
        .send()
        .await
        .unwrap();
    iam.attach_user_policy()
        .user_name("u1")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    iam.attach_group_policy()
        .group_name("g1")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("r1")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    let p = iam.get_policy().policy_arn(&arn).send().await.unwrap();
    assert_eq!(p.policy().unwrap().attachment_count(), Some(3));
    let attached = iam
        .list_attached_role_policies()
        .role_name("r1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_name(),
        Some("ReadProd")
    );
    assert_eq!(
        attached.attached_policies()[0].policy_arn(),
        Some(arn.as_str())
    );
    let only = iam
        .list_policies()
        .only_attached(true)
        .send()
        .await
        .unwrap();
    assert_eq!(only.policies().len(), 1);
    let missing = iam
        .attach_user_policy()
        .user_name("u1")
        .policy_arn(format!("arn:aws:iam::{ACCOUNT}:policy/Nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&missing), "NoSuchEntity");

    let busy = iam
        .delete_policy()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&busy), "DeleteConflict");
    let role_busy = iam.delete_role().role_name("r1").send().await.unwrap_err();
    assert_eq!(err_code(&role_busy), "DeleteConflict");
    iam.detach_user_policy()
        .user_name("u1")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    iam.detach_group_policy()
        .group_name("g1")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name("r1")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    let not_attached = iam
        .detach_role_policy()
        .role_name("r1")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&not_attached), "NoSuchEntity");
    for v in ["v1", "v3", "v4", "v5"] {
        iam.delete_policy_version()
            .policy_arn(&arn)
            .version_id(v)
            .send()
            .await
            .unwrap();
    }
    iam.delete_policy().policy_arn(&arn).send().await.unwrap();
    let gone = iam.get_policy().policy_arn(&arn).send().await.unwrap_err();
    assert_eq!(err_code(&gone), "NoSuchEntity");
}

#[tokio::test]
async fn inline_policies_of_users_groups_and_roles() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    iam.create_user().user_name("u").send().await.unwrap();
    iam.create_group().group_name("g").send().await.unwrap();
    iam.create_role()
        .role_name("r")
        .assume_role_policy_document(trust_account())
        .send()
        .await
        .unwrap();
    let doc = policy(&[READ_PROD]);
    iam.put_user_policy()
        .user_name("u")
        .policy_name("p")
        .policy_document(&doc)
        .send()
        .await
        .unwrap();
    iam.put_group_policy()
        .group_name("g")
        .policy_name("p")
        .policy_document(&doc)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("r")
        .policy_name("p")
        .policy_document(&doc)
        .send()
        .await
        .unwrap();
    let got = iam
        .get_role_policy()
        .role_name("r")
        .policy_name("p")
        .send()
        .await
        .unwrap();
    assert_eq!(got.role_name(), "r");
    assert_eq!(
        decode(got.policy_document()),
        serde_json::from_str::<serde_json::Value>(&doc).unwrap()
    );
    let names = iam
        .list_user_policies()
        .user_name("u")
        .send()
        .await
        .unwrap();
    assert_eq!(names.policy_names(), ["p"]);
    let g = iam
        .get_group_policy()
        .group_name("g")
        .policy_name("p")
        .send()
        .await
        .unwrap();
    assert_eq!(g.policy_name(), "p");
    let busy = iam.delete_user().user_name("u").send().await.unwrap_err();
    assert_eq!(err_code(&busy), "DeleteConflict");
    iam.delete_user_policy()
        .user_name("u")
        .policy_name("p")
        .send()
        .await
        .unwrap();
    let missing = iam
        .get_user_policy()
        .user_name("u")
        .policy_name("p")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&missing), "NoSuchEntity");
    assert_eq!(
        missing.as_service_error().and_then(|e| e.message()),
        Some("The user policy with name p cannot be found.")
    );
    iam.delete_user().user_name("u").send().await.unwrap();

    // A user's inline policies share 2048 characters.
    iam.create_user().user_name("big").send().await.unwrap();
    let many: Vec<&str> = std::iter::repeat_n(READ_PROD, 30).collect();
    let oversize = iam
        .put_user_policy()
        .user_name("big")
        .policy_name("p")
        .policy_document(policy(&many))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&oversize), "LimitExceeded");
}

#[tokio::test]
async fn malformed_documents_and_trust_policies_are_refused() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    iam.create_user().user_name("u").send().await.unwrap();
    for (doc, why) in [
        ("not json", "not JSON"),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter"}]}"#,
            "no Resource",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
            "bad Effect",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"x"}}}]}"#,
            "unknown operator",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#,
            "Principal in an identity policy",
        ),
    ] {
        let e = iam
            .put_user_policy()
            .user_name("u")
            .policy_name("p")
            .policy_document(doc)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e), "MalformedPolicyDocument", "{why}");
        let e = iam
            .create_policy()
            .policy_name("p")
            .policy_document(doc)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e), "MalformedPolicyDocument", "{why}");
    }
    // Trust policies need a principal and take no resource.
    for doc in [
        policy(&[r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#]),
        policy(&[
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole","Resource":"*"}"#,
        ]),
    ] {
        let e = iam
            .create_role()
            .role_name("r")
            .assume_role_policy_document(doc)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e), "MalformedPolicyDocument");
    }
    assert!(
        iam.get_role().role_name("r").send().await.is_err(),
        "nothing half-written"
    );
    // Oversize managed policy.
    let many: Vec<&str> = std::iter::repeat_n(READ_PROD, 80).collect();
    let e = iam
        .create_policy()
        .policy_name("huge")
        .policy_document(policy(&many))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "LimitExceeded");
}

/// UpdateRole, UpdateRoleDescription and ListInstanceProfilesForRole (which Terraform calls
/// before it deletes a role), with their errors.
#[tokio::test]
async fn roles_update_and_instance_profiles() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    iam.create_role()
        .role_name("svc")
        .assume_role_policy_document(trust_account())
        .description("first")
        .send()
        .await
        .unwrap();
    iam.update_role()
        .role_name("svc")
        .max_session_duration(10_800)
        .send()
        .await
        .unwrap();
    let r = iam.get_role().role_name("svc").send().await.unwrap();
    let r = r.role().unwrap();
    // Only what the call names changes.
    assert_eq!(
        (r.max_session_duration(), r.description()),
        (Some(10_800), Some("first"))
    );
    iam.update_role()
        .role_name("svc")
        .description("second")
        .send()
        .await
        .unwrap();
    let r = iam.get_role().role_name("svc").send().await.unwrap();
    let r = r.role().unwrap();
    assert_eq!(
        (r.max_session_duration(), r.description()),
        (Some(10_800), Some("second"))
    );
    let described = iam
        .update_role_description()
        .role_name("svc")
        .description("third")
        .send()
        .await
        .unwrap();
    assert_eq!(described.role().unwrap().description(), Some("third"));
    assert_eq!(
        iam.get_role()
            .role_name("svc")
            .send()
            .await
            .unwrap()
            .role()
            .unwrap()
            .description(),
        Some("third")
    );
    let too_long = iam
        .update_role()
        .role_name("svc")
        .max_session_duration(50_000)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&too_long), "ValidationError");
    for missing in [
        iam.update_role()
            .role_name("none")
            .description("x")
            .send()
            .await
            .unwrap_err()
            .code()
            .map(str::to_string),
        iam.update_role_description()
            .role_name("none")
            .description("x")
            .send()
            .await
            .unwrap_err()
            .code()
            .map(str::to_string),
        iam.list_instance_profiles_for_role()
            .role_name("none")
            .send()
            .await
            .unwrap_err()
            .code()
            .map(str::to_string),
    ] {
        assert_eq!(missing.as_deref(), Some("NoSuchEntity"));
    }
    let profiles = iam
        .list_instance_profiles_for_role()
        .role_name("svc")
        .send()
        .await
        .unwrap();
    assert!(profiles.instance_profiles().is_empty());
    assert!(!profiles.is_truncated());
    iam.delete_role().role_name("svc").send().await.unwrap();
}

#[tokio::test]
async fn roles_trust_and_session_duration() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let made = iam
        .create_role()
        .role_name("app")
        .path("/svc/")
        .assume_role_policy_document(trust_account())
        .max_session_duration(7200)
        .description("the app")
        .send()
        .await
        .unwrap();
    let r = made.role().unwrap();
    assert_eq!(r.arn(), format!("arn:aws:iam::{ACCOUNT}:role/svc/app"));
    assert!(r.role_id().starts_with("AROA"));
    assert_eq!(r.max_session_duration(), Some(7200));
    let got = iam.get_role().role_name("app").send().await.unwrap();
    let trust = decode(got.role().unwrap().assume_role_policy_document().unwrap());
    assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole");
    let too_long = iam
        .create_role()
        .role_name("x")
        .assume_role_policy_document(trust_account())
        .max_session_duration(50_000)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&too_long), "ValidationError");
    iam.update_assume_role_policy()
        .role_name("app")
        .policy_document(trust_account().replace(":root", ":user/someone"))
        .send()
        .await
        .unwrap();
    let got = iam.get_role().role_name("app").send().await.unwrap();
    let trust = decode(got.role().unwrap().assume_role_policy_document().unwrap());
    assert_eq!(
        trust["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{ACCOUNT}:user/someone")
    );
    iam.tag_role()
        .role_name("app")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("a")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tags = iam.list_role_tags().role_name("app").send().await.unwrap();
    assert_eq!(tags.tags()[0].value(), "a");
    let roles = iam.list_roles().path_prefix("/svc/").send().await.unwrap();
    assert_eq!(roles.roles().len(), 1);
    iam.delete_role().role_name("app").send().await.unwrap();
    let gone = iam.get_role().role_name("app").send().await.unwrap_err();
    assert_eq!(err_code(&gone), "NoSuchEntity");
}

#[tokio::test]
async fn account_authorization_details_show_every_grant_in_pages() {
    use aws_sdk_iam::types::EntityType;
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let read = crate::iam_util::managed_policy(&iam, "Read", &[READ_PROD]).await;
    iam.create_policy_version()
        .policy_arn(&read)
        .policy_document(policy(&[READ_PROD, READ_PROD]))
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    let bound = crate::iam_util::managed_policy(&iam, "Bound", &[READ_PROD]).await;
    iam.create_user()
        .user_name("dana")
        .path("/eng/")
        .permissions_boundary(&bound)
        .send()
        .await
        .unwrap();
    iam.create_group()
        .group_name("readers")
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name("readers")
        .user_name("dana")
        .send()
        .await
        .unwrap();
    iam.put_user_policy()
        .user_name("dana")
        .policy_name("own")
        .policy_document(policy(&[READ_PROD]))
        .send()
        .await
        .unwrap();
    iam.attach_group_policy()
        .group_name("readers")
        .policy_arn(&read)
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("job")
        .assume_role_policy_document(trust_account())
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("job")
        .policy_arn(&read)
        .send()
        .await
        .unwrap();

    let all = iam
        .get_account_authorization_details()
        .send()
        .await
        .unwrap();
    assert!(!all.is_truncated());
    let [user] = all.user_detail_list() else {
        panic!("{:?}", all.user_detail_list())
    };
    assert_eq!(user.user_name(), Some("dana"));
    assert_eq!(user.path(), Some("/eng/"));
    assert_eq!(user.group_list(), ["readers"]);
    let inline = &user.user_policy_list()[0];
    assert_eq!(inline.policy_name(), Some("own"));
    assert_eq!(
        decode(inline.policy_document().unwrap())["Statement"][0]["Action"],
        "ssm:GetParameter*"
    );
    assert_eq!(
        user.permissions_boundary()
            .unwrap()
            .permissions_boundary_arn(),
        Some(bound.as_str())
    );
    let [group] = all.group_detail_list() else {
        panic!("{:?}", all.group_detail_list())
    };
    assert_eq!(
        group.attached_managed_policies()[0].policy_arn(),
        Some(read.as_str())
    );
    let [role] = all.role_detail_list() else {
        panic!("{:?}", all.role_detail_list())
    };
    assert_eq!(role.role_name(), Some("job"));
    assert_eq!(
        decode(role.assume_role_policy_document().unwrap())["Statement"][0]["Action"],
        "sts:AssumeRole"
    );
    assert_eq!(
        role.attached_managed_policies()[0].policy_name(),
        Some("Read")
    );
    let policies = all.policies();
    assert_eq!(policies.len(), 2);
    let read_detail = policies
        .iter()
        .find(|p| p.arn() == Some(read.as_str()))
        .unwrap();
    assert_eq!(read_detail.attachment_count(), Some(2));
    assert_eq!(read_detail.default_version_id(), Some("v2"));
    let versions: Vec<(&str, bool)> = read_detail
        .policy_version_list()
        .iter()
        .map(|v| (v.version_id().unwrap(), v.is_default_version()))
        .collect();
    assert_eq!(versions, [("v1", false), ("v2", true)]);
    let bound_detail = policies
        .iter()
        .find(|p| p.arn() == Some(bound.as_str()))
        .unwrap();
    assert_eq!(bound_detail.permissions_boundary_usage_count(), Some(1));

    // A filter keeps only the kinds asked for.
    let roles = iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .send()
        .await
        .unwrap();
    assert_eq!(roles.role_detail_list().len(), 1);
    assert!(roles.user_detail_list().is_empty() && roles.policies().is_empty());
    let e = iam
        .get_account_authorization_details()
        .filter(EntityType::from("Robots"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ValidationError");

    // Pages of two carry all five items exactly once.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let p = iam
            .get_account_authorization_details()
            .max_items(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        let names = p
            .user_detail_list()
            .iter()
            .filter_map(|u| u.user_name())
            .chain(p.group_detail_list().iter().filter_map(|g| g.group_name()))
            .chain(p.role_detail_list().iter().filter_map(|r| r.role_name()))
            .chain(p.policies().iter().filter_map(|p| p.policy_name()))
            .map(String::from)
            .collect::<Vec<_>>();
        assert!(names.len() <= 2);
        seen.extend(names);
        if !p.is_truncated() {
            break;
        }
        marker = p.marker().map(String::from);
    }
    seen.sort();
    assert_eq!(seen, ["Bound", "Read", "dana", "job", "readers"]);

    // An IAM action like any other.
    let (akid, secret) = crate::iam_util::user_with_key(&iam, "nosy", "/").await;
    let e = crate::iam_util::iam_with(&s, &akid, &secret, None)
        .get_account_authorization_details()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
}

#[tokio::test]
async fn the_policy_simulator_agrees_with_enforcement() {
    use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let secret = |name: &str| format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}");
    let sm = s.sm();
    for name in ["app/x", "prod/y"] {
        sm.create_secret()
            .name(name)
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    let deny_prod = crate::iam_util::managed_policy(
        &iam,
        "DenyProd",
        &[&format!(
            r#"{{"Effect":"Deny","Action":"secretsmanager:*","Resource":"{}"}}"#,
            secret("prod/*")
        )],
    )
    .await;
    let (akid, key_secret) = crate::iam_util::user_with_key(&iam, "sam", "/").await;
    iam.put_user_policy()
        .user_name("sam")
        .policy_name("read-all")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    iam.create_group()
        .group_name("guarded")
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name("guarded")
        .user_name("sam")
        .send()
        .await
        .unwrap();
    iam.attach_group_policy()
        .group_name("guarded")
        .policy_arn(&deny_prod)
        .send()
        .await
        .unwrap();

    let user_arn = format!("arn:aws:iam::{ACCOUNT}:user/sam");
    let out = iam
        .simulate_principal_policy()
        .policy_source_arn(&user_arn)
        .action_names("secretsmanager:GetSecretValue")
        .action_names("secretsmanager:DeleteSecret")
        .resource_arns(secret("app/x-AbCdEf"))
        .resource_arns(secret("prod/y-AbCdEf"))
        .send()
        .await
        .unwrap();
    let got: Vec<(String, String, String, Vec<String>)> = out
        .evaluation_results()
        .iter()
        .map(|r| {
            (
                r.eval_action_name().to_string(),
                r.eval_resource_name()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .to_string(),
                r.eval_decision().as_str().to_string(),
                r.matched_statements()
                    .iter()
                    .map(|m| {
                        format!(
                            "{}:{}",
                            m.source_policy_type().unwrap().as_str(),
                            m.source_policy_id().unwrap()
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let row = |a: &str, r: &str, d: &str, m: &[&str]| {
        (
            format!("secretsmanager:{a}"),
            r.to_string(),
            d.to_string(),
            m.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        got,
        [
            row(
                "GetSecretValue",
                "app/x-AbCdEf",
                "allowed",
                &["user:read-all"]
            ),
            row(
                "GetSecretValue",
                "prod/y-AbCdEf",
                "explicitDeny",
                &["user-managed:DenyProd"]
            ),
            row("DeleteSecret", "app/x-AbCdEf", "implicitDeny", &[]),
            row(
                "DeleteSecret",
                "prod/y-AbCdEf",
                "explicitDeny",
                &["user-managed:DenyProd"]
            ),
        ]
    );
    // What the simulator says is what the server does.
    let as_sam = s.sm_with("us-east-1", &akid, &key_secret);
    as_sam
        .get_secret_value()
        .secret_id("app/x")
        .send()
        .await
        .unwrap();
    let denied = as_sam
        .get_secret_value()
        .secret_id("prod/y")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&denied), "AccessDeniedException");

    // Custom policies, a boundary and context keys; paged one result at a time.
    let regional = policy(&[
        r#"{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}"#,
    ]);
    let region = |r: &str| {
        ContextEntry::builder()
            .context_key_name("aws:RequestedRegion")
            .context_key_type(ContextKeyTypeEnum::String)
            .context_key_values(r)
            .build()
    };
    let decide = async |r: &str, boundary: Option<&str>| {
        let out = iam
            .simulate_custom_policy()
            .policy_input_list(&regional)
            .set_permissions_boundary_policy_input_list(boundary.map(|b| vec![b.to_string()]))
            .action_names("ssm:GetParameter")
            .context_entries(region(r))
            .send()
            .await
            .unwrap();
        out.evaluation_results()[0].clone()
    };
    let r = decide("us-east-1", None).await;
    assert_eq!(r.eval_decision(), &PolicyEvaluationDecisionType::Allowed);
    assert_eq!(r.eval_resource_name(), Some("*"));
    assert_eq!(
        r.matched_statements()[0].source_policy_id(),
        Some("PolicyInputList.1")
    );
    let r = decide("eu-west-1", None).await;
    assert_eq!(
        r.eval_decision(),
        &PolicyEvaluationDecisionType::ImplicitDeny
    );
    let kms_only = policy(&[r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#]);
    let r = decide("us-east-1", Some(&kms_only)).await;
    assert_eq!(
        r.eval_decision(),
        &PolicyEvaluationDecisionType::ImplicitDeny
    );
    assert!(
        !r.permissions_boundary_decision_detail()
            .unwrap()
            .allowed_by_permissions_boundary()
    );

    // A resource policy naming the caller grants by itself.
    let grant = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{user_arn}"}},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}]}}"#
    );
    let out = iam
        .simulate_custom_policy()
        .policy_input_list(policy(&[
            r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}"#,
        ]))
        .resource_policy(&grant)
        .caller_arn(&user_arn)
        .action_names("secretsmanager:GetSecretValue")
        .action_names("secretsmanager:PutSecretValue")
        .max_items(1)
        .send()
        .await
        .unwrap();
    assert!(out.is_truncated());
    let first = &out.evaluation_results()[0];
    assert_eq!(
        first.eval_decision(),
        &PolicyEvaluationDecisionType::Allowed
    );
    assert_eq!(
        first.matched_statements()[0].source_policy_id(),
        Some("ResourcePolicy")
    );
    let rest = iam
        .simulate_custom_policy()
        .policy_input_list(policy(&[
            r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}"#,
        ]))
        .resource_policy(&grant)
        .caller_arn(&user_arn)
        .action_names("secretsmanager:GetSecretValue")
        .action_names("secretsmanager:PutSecretValue")
        .marker(out.marker().unwrap())
        .send()
        .await
        .unwrap();
    assert!(!rest.is_truncated());
    assert_eq!(
        rest.evaluation_results()[0].eval_action_name(),
        "secretsmanager:PutSecretValue"
    );
    assert_eq!(
        rest.evaluation_results()[0].eval_decision(),
        &PolicyEvaluationDecisionType::ImplicitDeny
    );

    // Bad input and access.
    let e = iam
        .simulate_custom_policy()
        .policy_input_list("{not json")
        .action_names("ssm:GetParameter")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "MalformedPolicyDocument");
    let e = iam
        .simulate_principal_policy()
        .policy_source_arn(format!("arn:aws:iam::{ACCOUNT}:user/ghost"))
        .action_names("ssm:GetParameter")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    let e = crate::iam_util::iam_with(&s, &akid, &key_secret, None)
        .simulate_principal_policy()
        .policy_source_arn(&user_arn)
        .action_names("ssm:GetParameter")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
}
