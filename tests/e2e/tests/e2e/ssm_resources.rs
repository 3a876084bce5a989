//! Tags, resource policies, service settings, parameter policies (Expiration firing on the
//! server's manual clock) and `/aws/reference/secretsmanager/...`.

use std::time::Duration;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterTier, ParameterType, ResourceTypeForTagging};
use aws_smithy_types::date_time::{DateTime, Format};
use coffer_core::Clock;

use crate::harness::{TestServer, code};
use crate::ssm_util::{arn, assert_code, client, put_advanced, put_string, tag, value};

const HOUR: Duration = Duration::from_secs(60 * 60);

async fn tags_of(ssm: &Client, name: &str) -> Vec<(String, String)> {
    let out = ssm
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .send()
        .await
        .unwrap();
    let mut v: Vec<(String, String)> = out
        .tag_list()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    v.sort();
    v
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[tokio::test]
async fn tags_add_overwrite_list_remove() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/t/x", "v").await;
    ssm.add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id("/t/x")
        .tags(tag("env", "prod"))
        .tags(tag("team", "db"))
        .send()
        .await
        .unwrap();
    ssm.add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id("/t/x")
        .tags(tag("env", "staging"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&ssm, "/t/x").await,
        [pair("env", "staging"), pair("team", "db")]
    );
    ssm.remove_tags_from_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id("/t/x")
        .tag_keys("env")
        .tag_keys("absent")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&ssm, "/t/x").await, [pair("team", "db")]);

    // Unknown parameter.
    let err = ssm
        .add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id("/t/none")
        .tags(tag("k", "v"))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidResourceId");
    let err = ssm
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id("/t/none")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidResourceId");
    let err = ssm
        .remove_tags_from_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id("/t/none")
        .tag_keys("k")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidResourceId");

    // More than 50 tags on one resource.
    let mut req = ssm
        .add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id("/t/x");
    for i in 0..50 {
        req = req.tags(tag(&format!("k{i}"), "v"));
    }
    let err = req.send().await.unwrap_err();
    assert_code(&err, "TooManyTagsError");
    assert_eq!(tags_of(&ssm, "/t/x").await, [pair("team", "db")]);

    // A resource type outside the enum.
    let err = ssm
        .add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::from("Bucket"))
        .resource_id("/t/x")
        .tags(tag("k", "v"))
        .send()
        .await
        .unwrap_err();
    let c = code(&err);
    assert!(
        c == "InvalidResourceType" || c == "ValidationException",
        "{c}"
    );
}

fn sharing_policy(resource: &str, action: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "Share",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": [action],
            "Resource": resource,
        }]
    })
    .to_string()
}

#[tokio::test]
async fn resource_policies_put_get_update_delete() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_advanced(&ssm, "/shared/x", "v").await;
    let res = arn("/shared/x");
    let p1 = sharing_policy(&res, "ssm:GetParameter");
    let put = ssm
        .put_resource_policy()
        .resource_arn(&res)
        .policy(&p1)
        .send()
        .await
        .unwrap();
    let id = put.policy_id().unwrap().to_string();
    let hash1 = put.policy_hash().unwrap().to_string();

    let got = ssm
        .get_resource_policies()
        .resource_arn(&res)
        .send()
        .await
        .unwrap();
    assert_eq!(got.policies().len(), 1);
    let e = &got.policies()[0];
    assert_eq!(e.policy_id(), Some(id.as_str()));
    assert_eq!(e.policy_hash(), Some(hash1.as_str()));
    let stored: serde_json::Value = serde_json::from_str(e.policy().unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::from_str::<serde_json::Value>(&p1).unwrap()
    );

    // Update with the current hash → new hash; the stale hash now conflicts.
    let p2 = sharing_policy(&res, "ssm:GetParameters");
    let upd = ssm
        .put_resource_policy()
        .resource_arn(&res)
        .policy(&p2)
        .policy_id(&id)
        .policy_hash(&hash1)
        .send()
        .await
        .unwrap();
    assert_eq!(upd.policy_id(), Some(id.as_str()));
    let hash2 = upd.policy_hash().unwrap().to_string();
    assert_ne!(hash2, hash1);
    let err = ssm
        .put_resource_policy()
        .resource_arn(&res)
        .policy(&p1)
        .policy_id(&id)
        .policy_hash(&hash1)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ResourcePolicyConflictException");
    let err = ssm
        .delete_resource_policy()
        .resource_arn(&res)
        .policy_id(&id)
        .policy_hash(&hash1)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ResourcePolicyConflictException");

    ssm.delete_resource_policy()
        .resource_arn(&res)
        .policy_id(&id)
        .policy_hash(&hash2)
        .send()
        .await
        .unwrap();
    let got = ssm
        .get_resource_policies()
        .resource_arn(&res)
        .send()
        .await
        .unwrap();
    assert!(got.policies().is_empty());
    let err = ssm
        .delete_resource_policy()
        .resource_arn(&res)
        .policy_id(&id)
        .policy_hash(&hash2)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ResourcePolicyNotFoundException");
}

#[tokio::test]
async fn resource_policy_refusals() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_advanced(&ssm, "/shared/y", "v").await;
    let res = arn("/shared/y");
    let err = ssm
        .put_resource_policy()
        .resource_arn(&res)
        .policy("{not json")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "MalformedResourcePolicyDocumentException");

    let missing = arn("/shared/missing");
    let err = ssm
        .put_resource_policy()
        .resource_arn(&missing)
        .policy(sharing_policy(&missing, "ssm:GetParameter"))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ResourceNotFoundException");
    let err = ssm
        .get_resource_policies()
        .resource_arn(&missing)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ResourceNotFoundException");

    let err = ssm
        .put_resource_policy()
        .resource_arn("not-an-arn-but-long-enough")
        .policy(sharing_policy(&res, "ssm:GetParameter"))
        .send()
        .await
        .unwrap_err();
    let c = code(&err);
    assert!(
        c == "ResourcePolicyInvalidParameterException" || c == "ValidationException",
        "{c}"
    );
    let got = ssm
        .get_resource_policies()
        .resource_arn(&res)
        .send()
        .await
        .unwrap();
    assert!(got.policies().is_empty(), "refusals stored nothing");
}

#[tokio::test]
async fn service_settings_get_update_reset() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let tier_id = "/ssm/parameter-store/default-parameter-tier";
    let tier_arn = format!("arn:aws:ssm:us-east-1:000000000000:servicesetting{tier_id}");
    let got = ssm
        .get_service_setting()
        .setting_id(tier_id)
        .send()
        .await
        .unwrap();
    let st = got.service_setting().unwrap();
    assert_eq!(st.setting_id(), Some(tier_id));
    assert_eq!(st.setting_value(), Some("Standard"));
    assert_eq!(st.status(), Some("Default"));
    assert_eq!(st.arn(), Some(tier_arn.as_str()));

    ssm.update_service_setting()
        .setting_id(tier_id)
        .setting_value("Advanced")
        .send()
        .await
        .unwrap();
    let got = ssm
        .get_service_setting()
        .setting_id(&tier_arn)
        .send()
        .await
        .unwrap();
    let st = got.service_setting().unwrap();
    assert_eq!(st.setting_value(), Some("Advanced"));
    assert_eq!(st.status(), Some("Customized"));
    // The default tier now applies to puts without a Tier.
    let put = ssm
        .put_parameter()
        .name("/st/adv")
        .value("v")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    assert_eq!(put.tier(), Some(&ParameterTier::Advanced));

    ssm.update_service_setting()
        .setting_id(&tier_arn)
        .setting_value("Intelligent-Tiering")
        .send()
        .await
        .unwrap();
    let put = ssm
        .put_parameter()
        .name("/st/it")
        .value("small")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    assert_eq!(put.tier(), Some(&ParameterTier::Standard));

    let err = ssm
        .update_service_setting()
        .setting_id(tier_id)
        .setting_value("Gold")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");

    let reset = ssm
        .reset_service_setting()
        .setting_id(tier_id)
        .send()
        .await
        .unwrap();
    let st = reset.service_setting().unwrap();
    assert_eq!(st.setting_value(), Some("Standard"));
    assert_eq!(st.status(), Some("Default"));
    let put = ssm
        .put_parameter()
        .name("/st/std")
        .value("v")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    assert_eq!(put.tier(), Some(&ParameterTier::Standard));

    let ht = "/ssm/parameter-store/high-throughput-enabled";
    let got = ssm
        .get_service_setting()
        .setting_id(ht)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.service_setting().unwrap().setting_value(),
        Some("false")
    );
    let upd = ssm
        .update_service_setting()
        .setting_id(ht)
        .setting_value("true")
        .send()
        .await;
    assert!(upd.is_ok(), "{:?}", upd.err().map(|e| code(&e)));
    let got = ssm
        .get_service_setting()
        .setting_id(ht)
        .send()
        .await
        .unwrap();
    assert_eq!(got.service_setting().unwrap().setting_value(), Some("true"));
    let err = ssm
        .update_service_setting()
        .setting_id(ht)
        .setting_value("maybe")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");

    for id in ["/ssm/parameter-store/no-such-setting", "/nope"] {
        let err = ssm
            .get_service_setting()
            .setting_id(id)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "ServiceSettingNotFound");
    }
}

/// An ISO 8601 timestamp `after` from the server clock.
fn at(s: &TestServer, after: Duration) -> String {
    let ms = s.clock.now_millis() + after.as_millis() as i64;
    DateTime::from_millis(ms).fmt(Format::DateTime).unwrap()
}

fn expiration(ts: &str) -> String {
    format!(r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{ts}"}}}}]"#)
}

#[tokio::test]
async fn expiration_policy_deletes_the_parameter_when_due() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let soon = at(&s, 2 * HOUR);
    let later = at(&s, 48 * HOUR);
    for (name, ts) in [("/exp/soon", &soon), ("/exp/later", &later)] {
        ssm.put_parameter()
            .name(name)
            .value("v")
            .r#type(ParameterType::String)
            .tier(ParameterTier::Advanced)
            .policies(expiration(ts))
            .send()
            .await
            .unwrap();
    }
    let out = ssm
        .describe_parameters()
        .parameter_filters(crate::ssm_util::filter(
            "Name",
            Some("Equals"),
            &["/exp/soon"],
        ))
        .send()
        .await
        .unwrap();
    let pol = out.parameters()[0].policies();
    assert_eq!(pol.len(), 1);
    assert_eq!(pol[0].policy_type(), Some("Expiration"));
    assert_eq!(pol[0].policy_status(), Some("Pending"));
    assert!(pol[0].policy_text().unwrap().contains(&soon));

    // Not due yet: nothing happens.
    s.server.run_background_jobs().await;
    assert_eq!(value(&ssm, "/exp/soon").await, "v");

    s.clock.advance(3 * HOUR);
    s.server.run_background_jobs().await;
    assert_code(
        &ssm.get_parameter()
            .name("/exp/soon")
            .send()
            .await
            .unwrap_err(),
        "ParameterNotFound",
    );
    assert_eq!(value(&ssm, "/exp/later").await, "v");

    s.clock.advance(48 * HOUR);
    s.server.run_background_jobs().await;
    assert_code(
        &ssm.get_parameter()
            .name("/exp/later")
            .send()
            .await
            .unwrap_err(),
        "ParameterNotFound",
    );
}

#[tokio::test]
async fn parameter_policy_refusals_write_nothing() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let ts = at(&s, 24 * HOUR);
    let two = format!(
        r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{ts}"}}}},{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{ts}"}}}}]"#
    );
    let cases: Vec<(String, &[&str])> = vec![
        (
            r#"[{"Type":"SelfDestruct","Version":"1.0","Attributes":{}}]"#.into(),
            &["InvalidPolicyTypeException"],
        ),
        (two, &["IncompatiblePolicyException"]),
        (
            r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"next tuesday"}}]"#
                .into(),
            &["InvalidPolicyAttributeException"],
        ),
        (
            // In the past.
            expiration("2001-01-01T00:00:00Z"),
            &["InvalidPolicyAttributeException", "ValidationException"],
        ),
        (
            r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"abc","Unit":"Days"}}]"#
                .into(),
            &["InvalidPolicyAttributeException"],
        ),
    ];
    for (i, (policy, want)) in cases.into_iter().enumerate() {
        let name = format!("/pol/bad{i}");
        let err = ssm
            .put_parameter()
            .name(&name)
            .value("v")
            .r#type(ParameterType::String)
            .tier(ParameterTier::Advanced)
            .policies(&policy)
            .send()
            .await
            .unwrap_err();
        let c = code(&err);
        assert!(want.contains(&c.as_str()), "{policy}: {c}");
        assert_code(
            &ssm.get_parameter().name(&name).send().await.unwrap_err(),
            "ParameterNotFound",
        );
    }

    // Standard parameters cannot carry policies.
    let err = ssm
        .put_parameter()
        .name("/pol/std")
        .value("v")
        .r#type(ParameterType::String)
        .tier(ParameterTier::Standard)
        .policies(expiration(&ts))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_code(
        &ssm.get_parameter()
            .name("/pol/std")
            .send()
            .await
            .unwrap_err(),
        "ParameterNotFound",
    );

    // Valid notification policies are accepted on Advanced.
    ssm.put_parameter()
        .name("/pol/notify")
        .value("v")
        .r#type(ParameterType::String)
        .tier(ParameterTier::Advanced)
        .policies(format!(
            r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{ts}"}}}},{{"Type":"ExpirationNotification","Version":"1.0","Attributes":{{"Before":"2","Unit":"Hours"}}}},{{"Type":"NoChangeNotification","Version":"1.0","Attributes":{{"After":"20","Unit":"Days"}}}}]"#
        ))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn secrets_manager_references() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let sm = s.sm();
    let secret_arn = sm
        .create_secret()
        .name("prod/db/creds")
        .secret_string(r#"{"user":"admin","password":"pw-123"}"#)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let name = "/aws/reference/secretsmanager/prod/db/creds";
    let got = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let p = got.parameter().unwrap();
    assert_eq!(p.name(), Some(name));
    assert_eq!(p.value(), Some(r#"{"user":"admin","password":"pw-123"}"#));
    assert_eq!(p.r#type(), Some(&ParameterType::SecureString));
    let src: serde_json::Value = serde_json::from_str(p.source_result().unwrap()).unwrap();
    assert_eq!(src["ARN"], serde_json::json!(secret_arn));
    assert_eq!(src["Name"], serde_json::json!("prod/db/creds"));

    // Without WithDecryption AWS refuses.
    for with in [None, Some(false)] {
        let err = ssm
            .get_parameter()
            .name(name)
            .set_with_decryption(with)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "ValidationException");
    }

    let err = ssm
        .get_parameter()
        .name("/aws/reference/secretsmanager/no/such/secret")
        .with_decryption(true)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");

    // GetParameters takes references too.
    let got = ssm
        .get_parameters()
        .names(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.parameters().len(), 1);
    assert_eq!(
        got.parameters()[0].value(),
        Some(r#"{"user":"admin","password":"pw-123"}"#)
    );

    // A new secret version shows through the reference.
    sm.put_secret_value()
        .secret_id("prod/db/creds")
        .secret_string("rotated")
        .send()
        .await
        .unwrap();
    let got = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.parameter().unwrap().value(), Some("rotated"));
}
