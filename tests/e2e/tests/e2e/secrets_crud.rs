//! CreateSecret, GetSecretValue, PutSecretValue, UpdateSecret, DescribeSecret: identifiers,
//! ARNs, value limits, name rules, dates, KMS keys.

use std::time::Duration;

use aws_sdk_secretsmanager::primitives::Blob;

use crate::harness::{TestServer, code};
use crate::secrets_util::{
    ACCOUNT, DAY, INVALID, assert_code_in, client, now_secs, secs, tag, token, version_with,
};

const ALNUM: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

#[tokio::test]
async fn create_returns_an_aws_shaped_arn_and_a_first_version() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let out = sm
        .create_secret()
        .name("prod/db/password")
        .secret_string("s3cr3t")
        .send()
        .await
        .unwrap();
    assert_eq!(out.name(), Some("prod/db/password"));
    let arn = out.arn().unwrap();
    let prefix = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db/password-");
    assert!(arn.starts_with(&prefix), "{arn}");
    let suffix = &arn[prefix.len()..];
    assert_eq!(suffix.len(), 6, "{arn}");
    assert!(suffix.chars().all(|c| ALNUM.contains(c)), "{arn}");
    let version = out.version_id().expect("a value creates a version");
    assert!((32..=64).contains(&version.len()));

    let got = sm
        .get_secret_value()
        .secret_id("prod/db/password")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("s3cr3t"));
    assert_eq!(got.secret_binary(), None);
    assert_eq!(got.arn(), Some(arn));
    assert_eq!(got.name(), Some("prod/db/password"));
    assert_eq!(got.version_id(), Some(version));
    assert_eq!(got.version_stages(), ["AWSCURRENT".to_string()]);
    assert!((secs(got.created_date()) - now_secs(&s)).abs() <= 5);

    // A second secret with the same name is refused; another name gets another suffix.
    let err = sm
        .create_secret()
        .name("prod/db/password")
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceExistsException");
}

#[tokio::test]
async fn secret_id_accepts_name_full_arn_and_partial_arn() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let arn = sm
        .create_secret()
        .name("app/key")
        .secret_string("v1")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let partial = &arn[..arn.len() - 7];
    assert!(partial.ends_with(":secret:app/key"), "{partial}");

    for id in ["app/key", arn.as_str(), partial] {
        let got = sm.get_secret_value().secret_id(id).send().await.unwrap();
        assert_eq!(got.secret_string(), Some("v1"), "id {id}");
        assert_eq!(got.arn(), Some(arn.as_str()));
        let d = sm.describe_secret().secret_id(id).send().await.unwrap();
        assert_eq!(d.arn(), Some(arn.as_str()), "id {id}");
    }
    // Writes resolve the same way.
    sm.put_secret_value()
        .secret_id(partial)
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    sm.update_secret()
        .secret_id(arn.as_str())
        .description("d")
        .send()
        .await
        .unwrap();
    let got = sm
        .get_secret_value()
        .secret_id("app/key")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("v2"));

    // An ARN with another suffix, another account or another name is not this secret.
    let wrong_suffix = format!("{partial}-zzzzzz");
    let other_account = arn.replace(ACCOUNT, "111122223333");
    for id in [
        wrong_suffix.as_str(),
        other_account.as_str(),
        "app/ke",
        "app/key/",
    ] {
        let err = sm
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "ResourceNotFoundException", "id {id}");
    }
}

#[tokio::test]
async fn unknown_secret_is_resource_not_found_everywhere() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let id = "does/not/exist";
    let e = sm
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm.describe_secret().secret_id(id).send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .put_secret_value()
        .secret_id(id)
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .update_secret()
        .secret_id(id)
        .description("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .list_secret_version_ids()
        .secret_id(id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .tag_resource()
        .secret_id(id)
        .tags(tag("k", "v"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .untag_resource()
        .secret_id(id)
        .tag_keys("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm.restore_secret().secret_id(id).send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .get_resource_policy()
        .secret_id(id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .update_secret_version_stage()
        .secret_id(id)
        .version_stage("L")
        .move_to_version_id(token(1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn binary_secrets_round_trip() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let bytes: Vec<u8> = (0..=255u8).collect();
    sm.create_secret()
        .name("bin")
        .secret_binary(Blob::new(bytes.clone()))
        .send()
        .await
        .unwrap();
    let got = sm.get_secret_value().secret_id("bin").send().await.unwrap();
    assert_eq!(
        got.secret_binary().map(|b| b.as_ref()),
        Some(bytes.as_slice())
    );
    assert_eq!(got.secret_string(), None);

    // A string version can follow a binary one: each version holds exactly one kind.
    sm.put_secret_value()
        .secret_id("bin")
        .secret_string("now text")
        .send()
        .await
        .unwrap();
    let got = sm.get_secret_value().secret_id("bin").send().await.unwrap();
    assert_eq!(got.secret_string(), Some("now text"));
    assert_eq!(got.secret_binary(), None);
    let prev = sm
        .get_secret_value()
        .secret_id("bin")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(
        prev.secret_binary().map(|b| b.as_ref()),
        Some(bytes.as_slice())
    );
}

#[tokio::test]
async fn exactly_one_of_secret_string_and_secret_binary() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let err = sm
        .create_secret()
        .name("both")
        .secret_string("a")
        .secret_binary(Blob::new(b"b".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    // Nothing was created by the refused call.
    let err = sm
        .describe_secret()
        .secret_id("both")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");

    sm.create_secret()
        .name("one")
        .secret_string("a")
        .send()
        .await
        .unwrap();
    let err = sm
        .put_secret_value()
        .secret_id("one")
        .secret_string("a")
        .secret_binary(Blob::new(b"b".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    let err = sm
        .update_secret()
        .secret_id("one")
        .secret_string("a")
        .secret_binary(Blob::new(b"b".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    // PutSecretValue without any value has nothing to store.
    let err = sm
        .put_secret_value()
        .secret_id("one")
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &err,
        &[
            "InvalidParameterException",
            "InvalidRequestException",
            "ValidationException",
        ],
    );
    assert_eq!(
        sm.list_secret_version_ids()
            .secret_id("one")
            .send()
            .await
            .unwrap()
            .versions()
            .len(),
        1
    );
}

#[tokio::test]
async fn values_up_to_65536_bytes_are_accepted_and_no_more() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let max = "x".repeat(65_536);
    sm.create_secret()
        .name("big")
        .secret_string(max.clone())
        .send()
        .await
        .unwrap();
    let got = sm.get_secret_value().secret_id("big").send().await.unwrap();
    assert_eq!(got.secret_string().map(str::len), Some(65_536));

    let over = "x".repeat(65_537);
    let err = sm
        .create_secret()
        .name("too-big")
        .secret_string(over.clone())
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let err = sm
        .put_secret_value()
        .secret_id("big")
        .secret_string(over.clone())
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let err = sm
        .update_secret()
        .secret_id("big")
        .secret_string(over)
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);

    // Multi-byte characters count in bytes: 21,846 three-byte characters are 65,538 bytes.
    let wide = "€".repeat(21_846);
    assert_eq!(wide.len(), 65_538);
    let err = sm
        .put_secret_value()
        .secret_id("big")
        .secret_string(wide)
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);

    let bin_max = vec![7u8; 65_536];
    sm.create_secret()
        .name("big-bin")
        .secret_binary(Blob::new(bin_max.clone()))
        .send()
        .await
        .unwrap();
    let got = sm
        .get_secret_value()
        .secret_id("big-bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_binary().map(|b| b.as_ref().len()), Some(65_536));
    let bin_over = vec![7u8; 65_537];
    let err = sm
        .put_secret_value()
        .secret_id("big-bin")
        .secret_binary(Blob::new(bin_over.clone()))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let err = sm
        .create_secret()
        .name("big-bin-2")
        .secret_binary(Blob::new(bin_over))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);

    // The refused writes left one version each.
    assert_eq!(
        sm.list_secret_version_ids()
            .secret_id("big")
            .send()
            .await
            .unwrap()
            .versions()
            .len(),
        1
    );
    assert_eq!(
        sm.list_secret_version_ids()
            .secret_id("big-bin")
            .send()
            .await
            .unwrap()
            .versions()
            .len(),
        1
    );
}

#[tokio::test]
async fn name_rules() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    // Every documented character: ASCII letters, digits and /_+=.@-
    let ok = "Az09/_+=.@-name";
    sm.create_secret()
        .name(ok)
        .secret_string("v")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sm.get_secret_value()
            .secret_id(ok)
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v")
    );
    let longest = "n".repeat(512);
    sm.create_secret()
        .name(longest.clone())
        .secret_string("v")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sm.describe_secret()
            .secret_id(longest.as_str())
            .send()
            .await
            .unwrap()
            .name(),
        Some(longest.as_str())
    );

    for bad in [
        "has space",
        "semi;colon",
        "star*",
        "quote\"",
        "hash#",
        "percent%",
        "ünicode",
        "tab\tname",
    ] {
        let err = sm
            .create_secret()
            .name(bad)
            .secret_string("v")
            .send()
            .await
            .unwrap_err();
        assert_code_in(&err, INVALID);
    }
    let too_long = "n".repeat(513);
    let err = sm
        .create_secret()
        .name(too_long)
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let err = sm
        .create_secret()
        .name("")
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);

    let listed = sm.list_secrets().send().await.unwrap();
    assert_eq!(
        listed.secret_list().len(),
        2,
        "refused names must not have been created"
    );
}

#[tokio::test]
async fn client_request_token_length_is_checked() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let err = sm
        .create_secret()
        .name("t")
        .secret_string("v")
        .client_request_token("short")
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let err = sm
        .create_secret()
        .name("t")
        .secret_string("v")
        .client_request_token("a".repeat(65))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let t = "b".repeat(32);
    let out = sm
        .create_secret()
        .name("t")
        .secret_string("v")
        .client_request_token(t.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some(t.as_str()));
}

#[tokio::test]
async fn secret_without_a_value_has_no_current_version_until_put() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let out = sm
        .create_secret()
        .name("empty")
        .description("later")
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), None);
    let d = sm
        .describe_secret()
        .secret_id("empty")
        .send()
        .await
        .unwrap();
    assert!(d.version_ids_to_stages().is_none_or(|m| m.is_empty()));
    let err = sm
        .get_secret_value()
        .secret_id("empty")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    assert!(
        sm.list_secret_version_ids()
            .secret_id("empty")
            .send()
            .await
            .unwrap()
            .versions()
            .is_empty()
    );

    let put = sm
        .put_secret_value()
        .secret_id("empty")
        .secret_string("first")
        .send()
        .await
        .unwrap();
    assert_eq!(put.version_stages(), ["AWSCURRENT".to_string()]);
    let d = sm
        .describe_secret()
        .secret_id("empty")
        .send()
        .await
        .unwrap();
    let stages = d.version_ids_to_stages().unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(
        stages.get(put.version_id().unwrap()).unwrap(),
        &vec!["AWSCURRENT".to_string()]
    );
}

#[tokio::test]
async fn describe_reports_metadata_and_dates() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let created_at = now_secs(&s);
    sm.create_secret()
        .name("meta")
        .description("the description")
        .secret_string("v1")
        .tags(tag("team", "payments"))
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    let d = sm.describe_secret().secret_id("meta").send().await.unwrap();
    assert_eq!(d.name(), Some("meta"));
    assert_eq!(d.description(), Some("the description"));
    assert!((secs(d.created_date()) - created_at).abs() <= 5);
    assert!(secs(d.last_changed_date()) >= secs(d.created_date()) - 1);
    assert_eq!(d.last_accessed_date(), None, "never read yet");
    assert_eq!(d.deleted_date(), None);
    assert_eq!(d.kms_key_id(), None, "the default key is not reported");
    assert_ne!(d.rotation_enabled(), Some(true));
    let mut tags: Vec<(String, String)> = d
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        vec![
            ("env".into(), "prod".into()),
            ("team".into(), "payments".into())
        ]
    );
    let stages = d.version_ids_to_stages().unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(
        stages.values().next().unwrap(),
        &vec!["AWSCURRENT".to_string()]
    );
}

#[tokio::test]
async fn last_accessed_date_is_the_day_of_the_last_read() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("acc")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    sm.get_secret_value().secret_id("acc").send().await.unwrap();
    let today_midnight = now_secs(&s) / 86_400 * 86_400;
    let d = sm.describe_secret().secret_id("acc").send().await.unwrap();
    let accessed = secs(d.last_accessed_date());
    assert_eq!(accessed % 86_400, 0, "day resolution: midnight UTC");
    assert_eq!(accessed, today_midnight);

    // Two days later, a read moves it; describing does not.
    s.clock.advance(2 * DAY + Duration::from_secs(60));
    sm.describe_secret().secret_id("acc").send().await.unwrap();
    let d = sm.describe_secret().secret_id("acc").send().await.unwrap();
    assert_eq!(secs(d.last_accessed_date()), today_midnight);
    sm.get_secret_value().secret_id("acc").send().await.unwrap();
    let d = sm.describe_secret().secret_id("acc").send().await.unwrap();
    assert_eq!(secs(d.last_accessed_date()), now_secs(&s) / 86_400 * 86_400);
    assert!(secs(d.last_accessed_date()) > today_midnight);
}

#[tokio::test]
async fn last_changed_date_follows_put_and_update() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("chg")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let d0 = sm.describe_secret().secret_id("chg").send().await.unwrap();
    let created = secs(d0.created_date());
    let changed0 = secs(d0.last_changed_date());

    s.clock.advance(Duration::from_secs(3600));
    sm.put_secret_value()
        .secret_id("chg")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    let d1 = sm.describe_secret().secret_id("chg").send().await.unwrap();
    let changed1 = secs(d1.last_changed_date());
    assert!(changed1 >= changed0 + 3590, "{changed0} -> {changed1}");
    assert_eq!(secs(d1.created_date()), created, "CreatedDate never moves");

    s.clock.advance(Duration::from_secs(3600));
    sm.update_secret()
        .secret_id("chg")
        .description("new")
        .send()
        .await
        .unwrap();
    let d2 = sm.describe_secret().secret_id("chg").send().await.unwrap();
    assert!(secs(d2.last_changed_date()) >= changed1 + 3590);
    assert_eq!(d2.description(), Some("new"));

    // Reading is not changing.
    s.clock.advance(Duration::from_secs(3600));
    sm.get_secret_value().secret_id("chg").send().await.unwrap();
    let d3 = sm.describe_secret().secret_id("chg").send().await.unwrap();
    assert_eq!(secs(d3.last_changed_date()), secs(d2.last_changed_date()));
}

#[tokio::test]
async fn update_secret_metadata_only_creates_no_version() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let v1 = sm
        .create_secret()
        .name("u")
        .secret_string("v1")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let out = sm
        .update_secret()
        .secret_id("u")
        .description("only metadata")
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), None);
    assert_eq!(out.name(), Some("u"));
    assert_eq!(
        sm.list_secret_version_ids()
            .secret_id("u")
            .send()
            .await
            .unwrap()
            .versions()
            .len(),
        1
    );
    assert_eq!(
        version_with(&sm, "u", "AWSCURRENT").await.as_deref(),
        Some(v1.as_str())
    );

    // With a value it creates a version, moving AWSCURRENT and AWSPREVIOUS.
    let out = sm
        .update_secret()
        .secret_id("u")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    let v2 = out
        .version_id()
        .expect("a value makes a version")
        .to_string();
    assert_eq!(
        version_with(&sm, "u", "AWSCURRENT").await.as_deref(),
        Some(v2.as_str())
    );
    assert_eq!(
        version_with(&sm, "u", "AWSPREVIOUS").await.as_deref(),
        Some(v1.as_str())
    );
    let got = sm.get_secret_value().secret_id("u").send().await.unwrap();
    assert_eq!(got.secret_string(), Some("v2"));
    assert_eq!(
        sm.describe_secret()
            .secret_id("u")
            .send()
            .await
            .unwrap()
            .description(),
        Some("only metadata")
    );

    // UpdateSecret may not reuse an existing version's id.
    let err = sm
        .update_secret()
        .secret_id("u")
        .secret_string("v3")
        .client_request_token(v2.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceExistsException");
    assert_eq!(
        version_with(&sm, "u", "AWSCURRENT").await.as_deref(),
        Some(v2.as_str())
    );
}

#[tokio::test]
async fn kms_key_id_default_and_explicit_alias() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("k1")
        .kms_key_id("alias/aws/secretsmanager")
        .secret_string("with alias")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sm.get_secret_value()
            .secret_id("k1")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("with alias")
    );
    let err = sm
        .create_secret()
        .name("k2")
        .kms_key_id("alias/no-such-key-anywhere")
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &err,
        &[
            "ResourceNotFoundException",
            "InvalidParameterException",
            "InvalidRequestException",
            "EncryptionFailure",
            "KMSInvalidStateException",
            "NotFoundException",
        ],
    );
    assert_eq!(
        code(
            &sm.describe_secret()
                .secret_id("k2")
                .send()
                .await
                .unwrap_err()
        ),
        "ResourceNotFoundException"
    );

    // Switching an existing secret to the default alias keeps its values readable.
    sm.create_secret()
        .name("k3")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    sm.update_secret()
        .secret_id("k3")
        .kms_key_id("alias/aws/secretsmanager")
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id("k3")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    let prev = sm
        .get_secret_value()
        .secret_id("k3")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.secret_string(), Some("v"));
    assert_eq!(
        sm.get_secret_value()
            .secret_id("k3")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v2")
    );
}

#[tokio::test]
async fn description_limit() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("d")
        .description("d".repeat(2048))
        .send()
        .await
        .unwrap();
    let err = sm
        .update_secret()
        .secret_id("d")
        .description("d".repeat(2049))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let d = sm.describe_secret().secret_id("d").send().await.unwrap();
    assert_eq!(d.description().map(str::len), Some(2048));
}

#[tokio::test]
async fn durable_store_serves_the_same_semantics() {
    let s = TestServer::durable().await;
    let sm = client(&s);
    let v1 = sm
        .create_secret()
        .name("dur")
        .secret_string("one")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    sm.put_secret_value()
        .secret_id("dur")
        .secret_string("two")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sm.get_secret_value()
            .secret_id("dur")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("two")
    );
    assert_eq!(
        version_with(&sm, "dur", "AWSPREVIOUS").await.as_deref(),
        Some(v1.as_str())
    );
    sm.delete_secret()
        .secret_id("dur")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let err = sm
        .get_secret_value()
        .secret_id("dur")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidRequestException");
    sm.restore_secret().secret_id("dur").send().await.unwrap();
    assert_eq!(
        sm.get_secret_value()
            .secret_id("dur")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("two")
    );
}
