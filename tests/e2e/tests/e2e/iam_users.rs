//! IAM through aws-sdk-iam: users (paths, tags, rename), access keys and their lifecycle as
//! credentials, groups, and AWS's errors.

use std::time::Duration;

use aws_sdk_iam::error::ProvideErrorMetadata as _;

use crate::harness::TestServer;
use crate::iam_util::{ACCOUNT, err_code, iam, iam_with, sts_with, tag, user_with_key};

#[tokio::test]
async fn users_paths_tags_and_errors() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let made = iam
        .create_user()
        .user_name("alice")
        .path("/eng/")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("db")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let u = made.user().unwrap();
    assert_eq!(u.arn(), format!("arn:aws:iam::{ACCOUNT}:user/eng/alice"));
    assert!(u.user_id().starts_with("AIDA"), "{}", u.user_id());
    assert_eq!(u.path(), "/eng/");

    let dup = iam
        .create_user()
        .user_name("ALICE")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_code(&dup),
        "EntityAlreadyExists",
        "names are case-insensitive"
    );
    iam.create_user().user_name("bob").send().await.unwrap();

    let got = iam.get_user().user_name("alice").send().await.unwrap();
    let got = got.user().unwrap();
    assert_eq!(got.tags()[0].key(), "team");
    assert_eq!(got.tags()[0].value(), "db");

    let eng = iam.list_users().path_prefix("/eng/").send().await.unwrap();
    let names: Vec<&str> = eng.users().iter().map(|u| u.user_name()).collect();
    assert_eq!(names, ["alice"]);
    let page = iam.list_users().max_items(1).send().await.unwrap();
    assert_eq!(page.users().len(), 1);
    assert!(page.is_truncated());
    let rest = iam
        .list_users()
        .marker(page.marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.users().len(), 1);
    assert!(!rest.is_truncated());
    assert_ne!(rest.users()[0].user_name(), page.users()[0].user_name());

    iam.tag_user()
        .user_name("alice")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("env")
                .value("prod")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    iam.untag_user()
        .user_name("alice")
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let tags = iam
        .list_user_tags()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("env", "prod")]);

    iam.update_user()
        .user_name("alice")
        .new_user_name("alice2")
        .new_path("/ops/")
        .send()
        .await
        .unwrap();
    let missing = iam.get_user().user_name("alice").send().await.unwrap_err();
    assert_eq!(err_code(&missing), "NoSuchEntity");
    assert_eq!(
        missing.as_service_error().and_then(|e| e.message()),
        Some("The user with name alice cannot be found.")
    );
    let renamed = iam.get_user().user_name("alice2").send().await.unwrap();
    assert_eq!(
        renamed.user().unwrap().arn(),
        format!("arn:aws:iam::{ACCOUNT}:user/ops/alice2")
    );

    let bad = iam
        .create_user()
        .user_name("no spaces")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&bad), "ValidationError");
    let bad_path = iam
        .create_user()
        .user_name("x")
        .path("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&bad_path), "ValidationError");

    iam.delete_user().user_name("alice2").send().await.unwrap();
    let gone = iam
        .delete_user()
        .user_name("alice2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&gone), "NoSuchEntity");
}

#[tokio::test]
async fn access_keys_authenticate_until_inactive_or_deleted() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "carol", "/team/").await;
    assert!(akid.starts_with("AKIA") && akid.len() == 20, "{akid}");
    assert_eq!(secret.len(), 40);

    // The new key signs requests as the user.
    let me = sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:iam::{ACCOUNT}:user/team/carol").as_str())
    );
    assert_eq!(me.account(), Some(ACCOUNT));
    assert!(me.user_id().unwrap().starts_with("AIDA"));

    // A wrong secret is a signature mismatch, not an unknown key.
    let wrong = sts_with(&s, &akid, "x".repeat(40).as_str(), None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&wrong), "SignatureDoesNotMatch");

    let listed = iam
        .list_access_keys()
        .user_name("carol")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.access_key_metadata().len(), 1);
    assert_eq!(
        listed.access_key_metadata()[0].access_key_id(),
        Some(akid.as_str())
    );
    assert_eq!(
        listed.access_key_metadata()[0].status(),
        Some(&aws_sdk_iam::types::StatusType::Active)
    );

    // Two keys per user.
    iam.create_access_key()
        .user_name("carol")
        .send()
        .await
        .unwrap();
    let third = iam
        .create_access_key()
        .user_name("carol")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&third), "LimitExceeded");

    // Inactive: refused as an invalid token, on the next request.
    iam.update_access_key()
        .user_name("carol")
        .access_key_id(&akid)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let refused = sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&refused), "InvalidClientTokenId");
    iam.update_access_key()
        .user_name("carol")
        .access_key_id(&akid)
        .status(aws_sdk_iam::types::StatusType::Active)
        .send()
        .await
        .unwrap();
    sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .expect("active again");
    let used = iam
        .get_access_key_last_used()
        .access_key_id(&akid)
        .send()
        .await
        .unwrap();
    assert_eq!(used.user_name(), Some("carol"));
    assert_eq!(used.access_key_last_used().unwrap().service_name(), "sts");

    // A user with keys cannot be deleted; a deleted key no longer authenticates.
    let conflict = iam
        .delete_user()
        .user_name("carol")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&conflict), "DeleteConflict");
    iam.delete_access_key()
        .user_name("carol")
        .access_key_id(&akid)
        .send()
        .await
        .unwrap();
    let deleted = sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&deleted), "InvalidClientTokenId");
    let again = iam
        .delete_access_key()
        .user_name("carol")
        .access_key_id(&akid)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&again), "NoSuchEntity");
}

#[tokio::test]
async fn non_root_users_cannot_manage_iam_without_policies() {
    let s = TestServer::dev().await;
    let root = iam(&s);
    let (akid, secret) = user_with_key(&root, "dave", "/").await;
    let dave = iam_with(&s, &akid, &secret, None);
    let denied = dave
        .create_user()
        .user_name("eve")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&denied), "AccessDenied");
    assert!(
        root.get_user().user_name("eve").send().await.is_err(),
        "nothing was created"
    );
}

#[tokio::test]
async fn keys_survive_a_restart_and_are_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = coffer_server::ServerConfig::dev();
    config.listen = coffer_server::ephemeral();
    config.dev = false;
    config.data_dir = Some(dir.path().to_path_buf());
    config.root_credentials = Some(coffer_server::RootCredentials {
        access_key_id: coffer_server::DEV_ACCESS_KEY_ID.into(),
        secret_access_key: coffer_server::DEV_SECRET_ACCESS_KEY.into(),
    });
    let start = |config: coffer_server::ServerConfig| async move {
        TestServer {
            server: coffer_server::start(config).await.unwrap(),
            clock: coffer_core::ManualClock::new(),
            _dir: None,
            _db: None,
        }
    };
    let s = start(config.clone()).await;
    let (akid, secret) = user_with_key(&iam(&s), "frank", "/").await;
    s.server.shutdown().await;

    let s = start(config).await;
    let me = sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert!(me.arn().unwrap().ends_with(":user/frank"));
    s.server.shutdown().await;

    let mut stack = vec![dir.path().to_path_buf()];
    let mut scanned = 0;
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        scanned += bytes.len();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret access key is in the clear in {}",
            p.display()
        );
    }
    assert!(scanned > 0);
}

#[tokio::test]
async fn groups_membership_and_conflicts() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    iam.create_group()
        .group_name("devs")
        .path("/eng/")
        .send()
        .await
        .unwrap();
    iam.create_user().user_name("gina").send().await.unwrap();
    iam.add_user_to_group()
        .group_name("devs")
        .user_name("gina")
        .send()
        .await
        .unwrap();
    let g = iam.get_group().group_name("devs").send().await.unwrap();
    assert_eq!(
        g.group().unwrap().arn(),
        format!("arn:aws:iam::{ACCOUNT}:group/eng/devs")
    );
    let members: Vec<&str> = g.users().iter().map(|u| u.user_name()).collect();
    assert_eq!(members, ["gina"]);
    let of_user = iam
        .list_groups_for_user()
        .user_name("gina")
        .send()
        .await
        .unwrap();
    assert_eq!(of_user.groups()[0].group_name(), "devs");
    let listed = iam.list_groups().send().await.unwrap();
    assert_eq!(listed.groups().len(), 1);

    let busy = iam
        .delete_group()
        .group_name("devs")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&busy), "DeleteConflict");
    let member = iam
        .delete_user()
        .user_name("gina")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&member), "DeleteConflict");
    iam.remove_user_from_group()
        .group_name("devs")
        .user_name("gina")
        .send()
        .await
        .unwrap();
    let not_member = iam
        .remove_user_from_group()
        .group_name("devs")
        .user_name("gina")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&not_member), "NoSuchEntity");
    iam.delete_group().group_name("devs").send().await.unwrap();
    iam.delete_user().user_name("gina").send().await.unwrap();
    let nope = iam
        .add_user_to_group()
        .group_name("devs")
        .user_name("gina")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&nope), "NoSuchEntity");
}

#[tokio::test]
async fn a_user_has_no_console_mfa_ssh_or_certificate_credentials() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "ci", "/").await;

    // What Terraform's force_destroy asks before deleting a user: all absent, none an error
    // except GetLoginProfile's NoSuchEntity (AWS's answer for a user without a password).
    let e = iam
        .get_login_profile()
        .user_name("ci")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    assert_eq!(
        e.message(),
        Some("Login Profile for User ci cannot be found.")
    );
    let mfa = iam.list_mfa_devices().user_name("ci").send().await.unwrap();
    assert!(mfa.mfa_devices().is_empty() && !mfa.is_truncated());
    let ssh = iam
        .list_ssh_public_keys()
        .user_name("ci")
        .send()
        .await
        .unwrap();
    assert!(ssh.ssh_public_keys().is_empty());
    let certs = iam
        .list_signing_certificates()
        .user_name("ci")
        .send()
        .await
        .unwrap();
    assert!(certs.certificates().is_empty());
    let creds = iam
        .list_service_specific_credentials()
        .user_name("ci")
        .send()
        .await
        .unwrap();
    assert!(creds.service_specific_credentials().is_empty());
    let virtual_mfa = iam.list_virtual_mfa_devices().send().await.unwrap();
    assert!(virtual_mfa.virtual_mfa_devices().is_empty());

    // The user must exist, and the caller be allowed: a user asks about itself by default.
    let e = iam
        .list_mfa_devices()
        .user_name("nobody")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    let as_ci = iam_with(&s, &akid, &secret, None);
    let e = as_ci.list_mfa_devices().send().await.unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    assert!(
        e.message()
            .unwrap()
            .contains(&format!("on resource: arn:aws:iam::{ACCOUNT}:user/ci ")),
        "{e:?}"
    );
    iam.put_user_policy()
        .user_name("ci")
        .policy_name("self")
        .policy_document(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["iam:ListMFADevices","iam:GetLoginProfile"],"Resource":"arn:aws:iam::{ACCOUNT}:user/ci"}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    as_ci.list_mfa_devices().send().await.unwrap();
    let e = as_ci.get_login_profile().send().await.unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    let e = as_ci
        .list_mfa_devices()
        .user_name("nobody")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
}

#[tokio::test]
async fn managed_policies_are_tagged_untagged_and_listed() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let arn = iam
        .create_policy()
        .policy_name("Tagged")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}]}"#,
        )
        .tags(tag("team", "a"))
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    iam.tag_policy()
        .policy_arn(&arn)
        .tags(tag("env", "prod"))
        .tags(tag("team", "b"))
        .send()
        .await
        .unwrap();
    let listed = iam
        .list_policy_tags()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = listed.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("env", "prod"), ("team", "b")]);
    let page = iam
        .list_policy_tags()
        .policy_arn(&arn)
        .max_items(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.tags().len(), 1);
    assert!(page.is_truncated());
    let rest = iam
        .list_policy_tags()
        .policy_arn(&arn)
        .marker(page.marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.tags()[0].key(), "team");

    iam.untag_policy()
        .policy_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let got = iam.get_policy().policy_arn(&arn).send().await.unwrap();
    let keys: Vec<&str> = got
        .policy()
        .unwrap()
        .tags()
        .iter()
        .map(|t| t.key())
        .collect();
    assert_eq!(keys, ["env"]);

    let too_many = (0..50).fold(iam.tag_policy().policy_arn(&arn), |r, n| {
        r.tags(tag(&format!("k{n}"), "v"))
    });
    let e = too_many.send().await.unwrap_err();
    assert_eq!(err_code(&e), "LimitExceeded");
    let e = iam
        .tag_policy()
        .policy_arn(format!("arn:aws:iam::{ACCOUNT}:policy/Nope"))
        .tags(tag("a", "b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    let got = iam
        .list_policy_tags()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.tags().len(), 1, "a refused TagPolicy changed nothing");
}

#[tokio::test]
async fn a_group_renamed_keeps_its_members_and_policies() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "erin", "/").await;
    iam.create_group().group_name("ops").send().await.unwrap();
    iam.create_group().group_name("taken").send().await.unwrap();
    iam.add_user_to_group()
        .group_name("ops")
        .user_name("erin")
        .send()
        .await
        .unwrap();
    iam.put_group_policy()
        .group_name("ops")
        .policy_name("list")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListGroups","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let erin = iam_with(&s, &akid, &secret, None);
    erin.list_groups().send().await.unwrap();

    let e = iam
        .update_group()
        .group_name("ops")
        .new_group_name("TAKEN")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "EntityAlreadyExists");
    let e = iam
        .update_group()
        .group_name("nope")
        .new_path("/x/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");

    iam.update_group()
        .group_name("ops")
        .new_group_name("platform")
        .new_path("/teams/")
        .send()
        .await
        .unwrap();
    let got = iam.get_group().group_name("platform").send().await.unwrap();
    let g = got.group().unwrap();
    assert_eq!(g.path(), "/teams/");
    assert_eq!(
        g.arn(),
        format!("arn:aws:iam::{ACCOUNT}:group/teams/platform")
    );
    assert_eq!(got.users()[0].user_name(), "erin");
    let e = iam.get_group().group_name("ops").send().await.unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    let groups = iam
        .list_groups_for_user()
        .user_name("erin")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = groups.groups().iter().map(|g| g.group_name()).collect();
    assert_eq!(names, ["platform"]);
    // The member still gets the group's policy, and the group can be emptied and deleted
    // under its new name.
    erin.list_groups().send().await.unwrap();
    iam.remove_user_from_group()
        .group_name("platform")
        .user_name("erin")
        .send()
        .await
        .unwrap();
    let e = erin.list_groups().send().await.unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    iam.delete_group_policy()
        .group_name("platform")
        .policy_name("list")
        .send()
        .await
        .unwrap();
    iam.delete_group()
        .group_name("platform")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_credential_report_lists_every_key_with_its_last_use() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let e = iam.get_credential_report().send().await.unwrap_err();
    assert_eq!(err_code(&e), "ReportNotPresent");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 410);

    let (akid, secret) = user_with_key(&iam, "rita", "/ops/").await;
    let second = iam
        .create_access_key()
        .user_name("rita")
        .send()
        .await
        .unwrap();
    iam.update_access_key()
        .user_name("rita")
        .access_key_id(second.access_key().unwrap().access_key_id())
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    iam.create_user().user_name("idle").send().await.unwrap();
    sts_with(&s, &akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();

    let started = iam.generate_credential_report().send().await.unwrap();
    assert_eq!(
        started.state(),
        Some(&aws_sdk_iam::types::ReportStateType::Complete)
    );
    let report = iam.get_credential_report().send().await.unwrap();
    assert_eq!(
        report.report_format(),
        Some(&aws_sdk_iam::types::ReportFormatType::TextCsv)
    );
    let csv = String::from_utf8(report.content().unwrap().as_ref().to_vec()).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let header = &rows[0];
    let col = |row: &Vec<&str>, name: &str| -> String {
        row[header.iter().position(|h| *h == name).unwrap()].to_string()
    };
    assert_eq!(header.len(), 22);
    assert_eq!(rows[1][0], "<root_account>");
    assert_eq!(col(&rows[1], "arn"), format!("arn:aws:iam::{ACCOUNT}:root"));
    assert_eq!(col(&rows[1], "access_key_1_active"), "true");
    let rita = rows.iter().find(|r| r[0] == "rita").unwrap();
    assert_eq!(
        col(rita, "arn"),
        format!("arn:aws:iam::{ACCOUNT}:user/ops/rita")
    );
    assert_eq!(col(rita, "password_enabled"), "false");
    assert_eq!(col(rita, "access_key_1_active"), "true");
    assert!(col(rita, "access_key_1_last_rotated").ends_with("+00:00"));
    assert_eq!(col(rita, "access_key_1_last_used_service"), "sts");
    assert_eq!(col(rita, "access_key_1_last_used_region"), "us-east-1");
    assert_eq!(
        col(rita, "access_key_2_active"),
        "false",
        "the second key is inactive"
    );
    assert_eq!(col(rita, "access_key_2_last_used_date"), "N/A");
    let idle = rows.iter().find(|r| r[0] == "idle").unwrap();
    assert_eq!(col(idle, "access_key_1_active"), "false");
    assert_eq!(col(idle, "access_key_1_last_rotated"), "N/A");

    // Within four hours the same report is served, even when asked to generate again.
    iam.create_user().user_name("late").send().await.unwrap();
    iam.generate_credential_report().send().await.unwrap();
    let again = iam.get_credential_report().send().await.unwrap();
    assert_eq!(again.generated_time(), report.generated_time());
    // After four hours it is expired, and the next one has the new user.
    s.clock.advance(Duration::from_secs(4 * 3600 + 1));
    let e = iam.get_credential_report().send().await.unwrap_err();
    assert_eq!(err_code(&e), "ReportExpired");
    iam.generate_credential_report().send().await.unwrap();
    let fresh = iam.get_credential_report().send().await.unwrap();
    let csv = String::from_utf8(fresh.content().unwrap().as_ref().to_vec()).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("late,")), "{csv}");

    // An IAM action like any other.
    let e = iam_with(&s, &akid, &secret, None)
        .get_credential_report()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
}

#[tokio::test]
async fn the_account_summary_counts_entities_and_states_the_enforced_quotas() {
    use aws_sdk_iam::types::SummaryKeyType as K;
    let s = TestServer::dev().await;
    let iam = iam(&s);
    user_with_key(&iam, "one", "/").await;
    user_with_key(&iam, "two", "/").await;
    iam.create_group().group_name("g").send().await.unwrap();
    let arn = crate::iam_util::managed_policy(
        &iam,
        "P",
        &[r#"{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}"#],
    )
    .await;
    iam.attach_user_policy()
        .user_name("one")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    iam.attach_group_policy()
        .group_name("g")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    let out = iam.get_account_summary().send().await.unwrap();
    let m = out.summary_map().unwrap();
    assert_eq!(m[&K::Users], 2);
    assert_eq!(m[&K::Groups], 1);
    assert_eq!(m[&K::Roles], 0);
    assert_eq!(m[&K::Policies], 1);
    assert_eq!(m[&K::PolicyVersionsInUse], 2);
    assert_eq!(m[&K::AccountAccessKeysPresent], 1, "the dev root has a key");
    assert_eq!(m[&K::AccountMfaEnabled], 0);
    assert_eq!(m[&K::AccessKeysPerUserQuota], 2);
    assert_eq!(m[&K::AttachedPoliciesPerRoleQuota], 10);
    // Quotas Coffer does not enforce are not claimed.
    assert!(!m.contains_key(&K::UsersQuota));
    // The quota it states is the one a write hits: a second key, then no third.
    iam.create_access_key()
        .user_name("one")
        .send()
        .await
        .unwrap();
    let e = iam
        .create_access_key()
        .user_name("one")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "LimitExceeded");
}
