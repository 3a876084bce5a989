//! TagResource/UntagResource with their limits, and the resource-policy operations:
//! Put/Get/Delete/Validate/ListResourcePolicies, malformed and public policies.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;

use crate::harness::{TestServer, code};
use crate::secrets_util::{INVALID, assert_code_in, client, tag};

async fn tags_of(sm: &Client, id: &str) -> HashMap<String, String> {
    let d = sm.describe_secret().secret_id(id).send().await.unwrap();
    d.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn tag_and_untag() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("t")
        .secret_string("v")
        .tags(tag("a", "1"))
        .send()
        .await
        .unwrap();
    sm.tag_resource()
        .secret_id("t")
        .tags(tag("b", "2"))
        .tags(tag("A", "upper"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&sm, "t").await,
        map(&[("a", "1"), ("b", "2"), ("A", "upper")]),
        "keys are case-sensitive"
    );
    // Tagging an existing key replaces its value.
    sm.tag_resource()
        .secret_id("t")
        .tags(tag("a", "one"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&sm, "t").await,
        map(&[("a", "one"), ("b", "2"), ("A", "upper")])
    );
    // An empty value is allowed.
    sm.tag_resource()
        .secret_id("t")
        .tags(tag("empty", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&sm, "t").await.get("empty").map(String::as_str),
        Some("")
    );

    sm.untag_resource()
        .secret_id("t")
        .tag_keys("a")
        .tag_keys("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&sm, "t").await, map(&[("b", "2"), ("A", "upper")]));
    // Removing a key that is not there is a no-op.
    sm.untag_resource()
        .secret_id("t")
        .tag_keys("zzz")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&sm, "t").await, map(&[("b", "2"), ("A", "upper")]));

    // Tags by ARN; ListSecrets reflects them.
    let arn = sm
        .describe_secret()
        .secret_id("t")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    sm.tag_resource()
        .secret_id(&arn)
        .tags(tag("via", "arn"))
        .send()
        .await
        .unwrap();
    let listed = sm.list_secrets().send().await.unwrap();
    let e = listed
        .secret_list()
        .iter()
        .find(|e| e.name() == Some("t"))
        .unwrap();
    assert!(
        e.tags()
            .iter()
            .any(|t| t.key() == Some("via") && t.value() == Some("arn"))
    );

    // Tags are not part of a version: tagging made none.
    assert_eq!(
        sm.list_secret_version_ids()
            .secret_id("t")
            .send()
            .await
            .unwrap()
            .versions()
            .len(),
        1
    );
}

#[tokio::test]
async fn tag_limits() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("lim")
        .secret_string("v")
        .send()
        .await
        .unwrap();

    let k128 = "k".repeat(128);
    let v256 = "v".repeat(256);
    sm.tag_resource()
        .secret_id("lim")
        .tags(tag(&k128, &v256))
        .send()
        .await
        .unwrap();
    let err = sm
        .tag_resource()
        .secret_id("lim")
        .tags(tag(&"k".repeat(129), "v"))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let err = sm
        .tag_resource()
        .secret_id("lim")
        .tags(tag("k", &"v".repeat(257)))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let err = sm
        .tag_resource()
        .secret_id("lim")
        .tags(tag("", "v"))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    // The aws: prefix is reserved.
    let err = sm
        .tag_resource()
        .secret_id("lim")
        .tags(tag("aws:owner", "me"))
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &err,
        &[
            "InvalidParameterException",
            "ValidationException",
            "InvalidRequestException",
        ],
    );

    // At most 50 tags per secret: 49 more fit, the 51st does not.
    let mut req = sm.tag_resource().secret_id("lim");
    for i in 0..49 {
        req = req.tags(tag(&format!("key{i}"), "v"));
    }
    req.send().await.unwrap();
    assert_eq!(tags_of(&sm, "lim").await.len(), 50);
    let err = sm
        .tag_resource()
        .secret_id("lim")
        .tags(tag("one-too-many", "v"))
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &err,
        &[
            "InvalidParameterException",
            "ValidationException",
            "LimitExceededException",
            "InvalidRequestException",
        ],
    );
    assert_eq!(tags_of(&sm, "lim").await.len(), 50);
    // Replacing a value at the limit is fine.
    sm.tag_resource()
        .secret_id("lim")
        .tags(tag("key0", "new"))
        .send()
        .await
        .unwrap();

    // CreateSecret enforces the same limit.
    let mut req = sm.create_secret().name("lim2").secret_string("v");
    for i in 0..51 {
        req = req.tags(tag(&format!("key{i}"), "v"));
    }
    let err = req.send().await.unwrap_err();
    assert_code_in(
        &err,
        &[
            "InvalidParameterException",
            "ValidationException",
            "LimitExceededException",
            "InvalidRequestException",
        ],
    );
    assert_eq!(
        code(
            &sm.describe_secret()
                .secret_id("lim2")
                .send()
                .await
                .unwrap_err()
        ),
        "ResourceNotFoundException"
    );
}

const ACCOUNT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
const PUBLIC_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
const PUBLIC_AWS_STAR: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:*","Resource":"*"}]}"#;

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).expect("policy is JSON")
}

#[tokio::test]
async fn put_get_delete_resource_policy() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let arn = sm
        .create_secret()
        .name("pol")
        .secret_string("v")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();

    let empty = sm
        .get_resource_policy()
        .secret_id("pol")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.resource_policy(), None);
    assert_eq!(empty.name(), Some("pol"));
    assert_eq!(empty.arn(), Some(arn.as_str()));

    let out = sm
        .put_resource_policy()
        .secret_id("pol")
        .resource_policy(ACCOUNT_POLICY)
        .send()
        .await
        .unwrap();
    assert_eq!(out.arn(), Some(arn.as_str()));
    assert_eq!(out.name(), Some("pol"));
    let got = sm
        .get_resource_policy()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json(got.resource_policy().expect("policy")),
        json(ACCOUNT_POLICY)
    );

    // Putting again replaces it.
    let other = ACCOUNT_POLICY.replace("GetSecretValue", "DescribeSecret");
    sm.put_resource_policy()
        .secret_id("pol")
        .resource_policy(&other)
        .send()
        .await
        .unwrap();
    let got = sm
        .get_resource_policy()
        .secret_id("pol")
        .send()
        .await
        .unwrap();
    assert_eq!(json(got.resource_policy().unwrap()), json(&other));

    let del = sm
        .delete_resource_policy()
        .secret_id("pol")
        .send()
        .await
        .unwrap();
    assert_eq!(del.name(), Some("pol"));
    assert_eq!(del.arn(), Some(arn.as_str()));
    assert_eq!(
        sm.get_resource_policy()
            .secret_id("pol")
            .send()
            .await
            .unwrap()
            .resource_policy(),
        None
    );
    // Deleting when there is none is fine.
    sm.delete_resource_policy()
        .secret_id("pol")
        .send()
        .await
        .unwrap();
    let e = sm
        .delete_resource_policy()
        .secret_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn malformed_policies_are_rejected() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("pol")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    for bad in [
        "not json at all",
        r#"{"Version":"2012-10-17"}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"secretsmanager:*","Resource":"*"}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"secretsmanager:*","Resource":"*"}]}"#,
        r#"["an array"]"#,
    ] {
        let e = sm
            .put_resource_policy()
            .secret_id("pol")
            .resource_policy(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "MalformedPolicyDocumentException", "policy {bad}");
        let e = sm
            .validate_resource_policy()
            .secret_id("pol")
            .resource_policy(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "MalformedPolicyDocumentException", "policy {bad}");
    }
    assert_eq!(
        sm.get_resource_policy()
            .secret_id("pol")
            .send()
            .await
            .unwrap()
            .resource_policy(),
        None
    );
    let too_big = format!(
        r#"{{"Version":"2012-10-17","Statement":[],"Id":"{}"}}"#,
        "x".repeat(20_480)
    );
    let e = sm
        .put_resource_policy()
        .secret_id("pol")
        .resource_policy(too_big)
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &e,
        &[
            "InvalidParameterException",
            "ValidationException",
            "MalformedPolicyDocumentException",
            "LimitExceededException",
        ],
    );
}

#[tokio::test]
async fn block_public_policy() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("pub")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    for public in [PUBLIC_POLICY, PUBLIC_AWS_STAR] {
        let e = sm
            .put_resource_policy()
            .secret_id("pub")
            .resource_policy(public)
            .block_public_policy(true)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "PublicPolicyException", "{public}");
    }
    assert_eq!(
        sm.get_resource_policy()
            .secret_id("pub")
            .send()
            .await
            .unwrap()
            .resource_policy(),
        None
    );
    // A policy limited to the account passes the check.
    sm.put_resource_policy()
        .secret_id("pub")
        .resource_policy(ACCOUNT_POLICY)
        .block_public_policy(true)
        .send()
        .await
        .unwrap();
    // Without the flag, a public policy is stored.
    sm.put_resource_policy()
        .secret_id("pub")
        .resource_policy(PUBLIC_POLICY)
        .send()
        .await
        .unwrap();
    let got = sm
        .get_resource_policy()
        .secret_id("pub")
        .send()
        .await
        .unwrap();
    assert_eq!(json(got.resource_policy().unwrap()), json(PUBLIC_POLICY));
}

#[tokio::test]
async fn validate_resource_policy() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("val")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let ok = sm
        .validate_resource_policy()
        .secret_id("val")
        .resource_policy(ACCOUNT_POLICY)
        .send()
        .await
        .unwrap();
    assert!(ok.policy_validation_passed());
    assert!(ok.validation_errors().is_empty());
    // SecretId is optional.
    let ok = sm
        .validate_resource_policy()
        .resource_policy(ACCOUNT_POLICY)
        .send()
        .await
        .unwrap();
    assert!(ok.policy_validation_passed());

    let public = sm
        .validate_resource_policy()
        .secret_id("val")
        .resource_policy(PUBLIC_POLICY)
        .send()
        .await
        .unwrap();
    assert!(!public.policy_validation_passed());
    assert!(!public.validation_errors().is_empty());
    assert!(
        public
            .validation_errors()
            .iter()
            .all(|e| e.error_message().is_some())
    );
    // Validation stores nothing.
    assert_eq!(
        sm.get_resource_policy()
            .secret_id("val")
            .send()
            .await
            .unwrap()
            .resource_policy(),
        None
    );

    let e = sm
        .validate_resource_policy()
        .secret_id("missing")
        .resource_policy(ACCOUNT_POLICY)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn list_resource_policies_and_policy_names() {
    // ListResourcePolicies and PolicyName are newer than the SDK in use: raw signed requests.
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("lrp")
        .secret_string("v")
        .send()
        .await
        .unwrap();

    let (status, body, _) = s
        .raw_post(
            Some("secretsmanager.ListResourcePolicies"),
            br#"{"SecretId":"lrp"}"#,
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ResourcePolicies"], serde_json::json!([]));

    sm.put_resource_policy()
        .secret_id("lrp")
        .resource_policy(ACCOUNT_POLICY)
        .send()
        .await
        .unwrap();
    let (status, body, _) = s
        .raw_post(
            Some("secretsmanager.ListResourcePolicies"),
            br#"{"SecretId":"lrp"}"#,
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["ResourcePolicies"],
        serde_json::json!([{"PolicyName": "default"}])
    );

    // GetResourcePolicy reports the name; asking for "default" explicitly is the same policy.
    let (status, body, _) = s
        .raw_post(
            Some("secretsmanager.GetResourcePolicy"),
            br#"{"SecretId":"lrp","PolicyName":"default"}"#,
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["PolicyName"], "default");
    assert_eq!(
        json(body["ResourcePolicy"].as_str().unwrap()),
        json(ACCOUNT_POLICY)
    );
    // Another name is not found on Get, and refused on Put and Delete.
    let (status, body, _) = s
        .raw_post(
            Some("secretsmanager.GetResourcePolicy"),
            br#"{"SecretId":"lrp","PolicyName":"other"}"#,
            true,
        )
        .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ResourceNotFoundException"))
    );
    let put = serde_json::json!({"SecretId": "lrp", "PolicyName": "other", "ResourcePolicy": ACCOUNT_POLICY});
    let (status, body, _) = s
        .raw_post(
            Some("secretsmanager.PutResourcePolicy"),
            put.to_string().as_bytes(),
            true,
        )
        .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    let (status, body, _) = s
        .raw_post(
            Some("secretsmanager.DeleteResourcePolicy"),
            br#"{"SecretId":"lrp","PolicyName":"other"}"#,
            true,
        )
        .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );

    sm.delete_resource_policy()
        .secret_id("lrp")
        .send()
        .await
        .unwrap();
    let (_, body, _) = s
        .raw_post(
            Some("secretsmanager.ListResourcePolicies"),
            br#"{"SecretId":"lrp"}"#,
            true,
        )
        .await;
    assert_eq!(body["ResourcePolicies"], serde_json::json!([]));

    let (status, body, _) = s
        .raw_post(
            Some("secretsmanager.ListResourcePolicies"),
            br#"{"SecretId":"nope"}"#,
            true,
        )
        .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ResourceNotFoundException"))
    );
}
