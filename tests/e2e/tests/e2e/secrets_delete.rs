//! DeleteSecret and RestoreSecret: recovery windows, forced deletion, the purge after the
//! window, and what a secret scheduled for deletion refuses.

use std::time::Duration;

use aws_sdk_secretsmanager::Client;

use crate::harness::{TestServer, code};
use crate::secrets_util::{DAY, client, now_secs, secs, tag};

async fn with_secret(s: &TestServer, name: &str) -> Client {
    let sm = client(s);
    sm.create_secret()
        .name(name)
        .secret_string("value")
        .send()
        .await
        .unwrap();
    sm
}

#[tokio::test]
async fn default_recovery_window_is_thirty_days() {
    let s = TestServer::dev().await;
    let sm = with_secret(&s, "d30").await;
    let now = now_secs(&s);
    let out = sm.delete_secret().secret_id("d30").send().await.unwrap();
    assert_eq!(out.name(), Some("d30"));
    assert!(out.arn().is_some_and(|a| a.contains(":secret:d30-")));
    let deletion = secs(out.deletion_date());
    assert!(
        (deletion - (now + 30 * 86_400)).abs() <= 5,
        "DeletionDate {deletion}, now {now}"
    );
    let d = sm.describe_secret().secret_id("d30").send().await.unwrap();
    assert!(
        d.deleted_date().is_some(),
        "DescribeSecret still answers, with DeletedDate"
    );
}

#[tokio::test]
async fn recovery_window_bounds_are_seven_to_thirty_days() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    for name in ["w6", "w7", "w30", "w31", "w0", "wneg"] {
        sm.create_secret()
            .name(name)
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    for (name, days) in [("w6", 6), ("w31", 31), ("w0", 0), ("wneg", -1)] {
        let err = sm
            .delete_secret()
            .secret_id(name)
            .recovery_window_in_days(days)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidParameterException", "{days} days");
        // Refused: still readable.
        sm.get_secret_value().secret_id(name).send().await.unwrap();
    }
    for (name, days) in [("w7", 7i64), ("w30", 30)] {
        let now = now_secs(&s);
        let out = sm
            .delete_secret()
            .secret_id(name)
            .recovery_window_in_days(days)
            .send()
            .await
            .unwrap();
        let deletion = secs(out.deletion_date());
        assert!(
            (deletion - (now + days * 86_400)).abs() <= 5,
            "{days} days: {deletion} vs {now}"
        );
    }
}

#[tokio::test]
async fn force_delete_and_recovery_window_together_is_invalid() {
    let s = TestServer::dev().await;
    let sm = with_secret(&s, "both").await;
    let err = sm
        .delete_secret()
        .secret_id("both")
        .force_delete_without_recovery(true)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    assert_eq!(
        sm.get_secret_value()
            .secret_id("both")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("value")
    );
}

#[tokio::test]
async fn a_secret_scheduled_for_deletion_refuses_reads_and_writes() {
    let s = TestServer::dev().await;
    let sm = with_secret(&s, "gone").await;
    let v1 = sm.describe_secret().secret_id("gone").send().await.unwrap();
    let v1 = v1
        .version_ids_to_stages()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    sm.delete_secret()
        .secret_id("gone")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();

    let e = sm
        .get_secret_value()
        .secret_id("gone")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = sm
        .put_secret_value()
        .secret_id("gone")
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = sm
        .update_secret()
        .secret_id("gone")
        .description("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = sm
        .update_secret()
        .secret_id("gone")
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = sm
        .update_secret_version_stage()
        .secret_id("gone")
        .version_stage("X")
        .move_to_version_id(&v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = sm
        .tag_resource()
        .secret_id("gone")
        .tags(tag("k", "v"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = sm
        .untag_resource()
        .secret_id("gone")
        .tag_keys("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let e = sm
        .put_resource_policy()
        .secret_id("gone")
        .resource_policy(policy)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    // Deleting again is refused; so is reusing the name.
    let e = sm
        .delete_secret()
        .secret_id("gone")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = sm
        .create_secret()
        .name("gone")
        .secret_string("new")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    // Batch reads report it as an error, not a value.
    let b = sm
        .batch_get_secret_value()
        .secret_id_list("gone")
        .send()
        .await
        .unwrap();
    assert!(b.secret_values().is_empty());
    assert_eq!(b.errors().len(), 1);

    // Metadata stays visible.
    let d = sm.describe_secret().secret_id("gone").send().await.unwrap();
    assert!(d.deleted_date().is_some());
}

#[tokio::test]
async fn restore_cancels_the_deletion() {
    let s = TestServer::dev().await;
    let sm = with_secret(&s, "back").await;
    sm.delete_secret().secret_id("back").send().await.unwrap();
    s.clock.advance(10 * DAY);
    let out = sm.restore_secret().secret_id("back").send().await.unwrap();
    assert_eq!(out.name(), Some("back"));
    assert!(out.arn().is_some_and(|a| a.contains(":secret:back-")));
    let d = sm.describe_secret().secret_id("back").send().await.unwrap();
    assert_eq!(d.deleted_date(), None);
    assert_eq!(
        sm.get_secret_value()
            .secret_id("back")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("value")
    );
    sm.put_secret_value()
        .secret_id("back")
        .secret_string("again")
        .send()
        .await
        .unwrap();

    // The purge that would have happened at day 30 no longer applies.
    s.clock.advance(25 * DAY);
    s.server.run_background_jobs().await;
    assert_eq!(
        sm.get_secret_value()
            .secret_id("back")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("again")
    );
}

#[tokio::test]
async fn purge_happens_after_the_window_and_frees_the_name() {
    let s = TestServer::dev().await;
    let sm = with_secret(&s, "purge").await;
    let old_arn = sm
        .describe_secret()
        .secret_id("purge")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    sm.delete_secret()
        .secret_id("purge")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();

    // Inside the window nothing is purged.
    s.clock.advance(6 * DAY);
    s.server.run_background_jobs().await;
    assert!(
        sm.describe_secret()
            .secret_id("purge")
            .send()
            .await
            .unwrap()
            .deleted_date()
            .is_some()
    );

    // Past it, the secret is gone for good.
    s.clock.advance(DAY + Duration::from_secs(60));
    s.server.run_background_jobs().await;
    for id in ["purge", old_arn.as_str()] {
        let e = sm.describe_secret().secret_id(id).send().await.unwrap_err();
        assert_eq!(code(&e), "ResourceNotFoundException");
        let e = sm
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ResourceNotFoundException");
        let e = sm.restore_secret().secret_id(id).send().await.unwrap_err();
        assert_eq!(code(&e), "ResourceNotFoundException");
    }
    let listed = sm
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap();
    assert!(listed.secret_list().is_empty());

    // The name can be used again, as a new secret.
    let out = sm
        .create_secret()
        .name("purge")
        .secret_string("new life")
        .send()
        .await
        .unwrap();
    assert_ne!(out.arn(), Some(old_arn.as_str()));
    assert_eq!(
        sm.get_secret_value()
            .secret_id("purge")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("new life")
    );
    let versions = sm
        .list_secret_version_ids()
        .secret_id("purge")
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        1,
        "no version of the old secret survives"
    );
    // The old ARN does not reach the new secret.
    let e = sm
        .get_secret_value()
        .secret_id(old_arn.as_str())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn default_window_purge_after_thirty_days() {
    let s = TestServer::dev().await;
    let sm = with_secret(&s, "p30").await;
    sm.delete_secret().secret_id("p30").send().await.unwrap();
    s.clock.advance(29 * DAY);
    s.server.run_background_jobs().await;
    sm.restore_secret().secret_id("p30").send().await.unwrap();
    sm.delete_secret().secret_id("p30").send().await.unwrap();
    s.clock.advance(30 * DAY + Duration::from_secs(1));
    s.server.run_background_jobs().await;
    let e = sm
        .describe_secret()
        .secret_id("p30")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn force_delete_without_recovery() {
    let s = TestServer::dev().await;
    let sm = with_secret(&s, "now").await;
    let out = sm
        .delete_secret()
        .secret_id("now")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    assert_eq!(out.name(), Some("now"));
    assert!(out.deletion_date().is_some());
    s.server.run_background_jobs().await;
    let e = sm
        .describe_secret()
        .secret_id("now")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .restore_secret()
        .secret_id("now")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    sm.create_secret()
        .name("now")
        .secret_string("reborn")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sm.get_secret_value()
            .secret_id("now")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("reborn")
    );

    // Forcing the deletion of a secret that does not exist is not an error.
    sm.delete_secret()
        .secret_id("never-existed")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    // Without force it is.
    let e = sm
        .delete_secret()
        .secret_id("never-existed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn force_delete_of_a_secret_already_scheduled() {
    let s = TestServer::dev().await;
    let sm = with_secret(&s, "twice").await;
    sm.delete_secret().secret_id("twice").send().await.unwrap();
    sm.delete_secret()
        .secret_id("twice")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    let e = sm
        .describe_secret()
        .secret_id("twice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}
