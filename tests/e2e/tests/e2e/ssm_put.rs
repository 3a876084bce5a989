//! PutParameter: types, SecureString keys, Overwrite, AllowedPattern, DataType, tiers and value
//! limits, name rules — each refusal with AWS's error and nothing written.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use base64::Engine;

use crate::harness::{TestServer, code};
use crate::ssm_util::{arn, assert_code, client, filter, overwrite, put_string, tag, value};

/// Asserts `name` does not exist (a refused write left nothing behind).
async fn assert_absent(ssm: &Client, name: &str) {
    let err = ssm.get_parameter().name(name).send().await.unwrap_err();
    assert_code(&err, "ParameterNotFound");
}

/// DescribeParameters metadata of one parameter.
async fn describe_one(ssm: &Client, name: &str) -> aws_sdk_ssm::types::ParameterMetadata {
    let out = ssm
        .describe_parameters()
        .parameter_filters(filter("Name", Some("Equals"), &[name]))
        .send()
        .await
        .unwrap();
    assert_eq!(out.parameters().len(), 1, "{name}");
    out.parameters()[0].clone()
}

#[tokio::test]
async fn seed_secure_string_decrypts_only_with_decryption() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let put = ssm
        .put_parameter()
        .name("/prod/db/password")
        .value("mysecret123")
        .r#type(ParameterType::SecureString)
        .key_id("alias/aws/ssm")
        .send()
        .await
        .unwrap();
    assert_eq!(put.version(), 1);
    assert_eq!(put.tier(), Some(&ParameterTier::Standard));

    let got = ssm
        .get_parameter()
        .name("/prod/db/password")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let p = got.parameter().unwrap();
    assert_eq!(p.name(), Some("/prod/db/password"));
    assert_eq!(p.value(), Some("mysecret123"));
    assert_eq!(p.r#type(), Some(&ParameterType::SecureString));
    assert_eq!(p.version(), 1);
    assert_eq!(p.arn(), Some(arn("/prod/db/password").as_str()));
    assert_eq!(p.data_type(), Some("text"));
    assert!(p.last_modified_date().is_some());

    for with in [None, Some(false)] {
        let got = ssm
            .get_parameter()
            .name("/prod/db/password")
            .set_with_decryption(with)
            .send()
            .await
            .unwrap();
        let v = got.parameter().unwrap().value().unwrap();
        assert_ne!(v, "mysecret123");
        assert!(!v.contains("mysecret123"));
        let blob = base64::engine::general_purpose::STANDARD
            .decode(v)
            .unwrap_or_else(|_| panic!("ciphertext is base64: {v}"));
        assert!(blob.len() > "mysecret123".len());
        assert!(!blob.windows(11).any(|w| w == b"mysecret123"));
    }

    let meta = describe_one(&ssm, "/prod/db/password").await;
    assert_eq!(meta.key_id(), Some("alias/aws/ssm"));
    assert_eq!(meta.r#type(), Some(&ParameterType::SecureString));
}

#[tokio::test]
async fn secure_string_without_key_id_uses_the_default_alias() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    crate::ssm_util::put_secure(&ssm, "/k/default", "v").await;
    assert_eq!(
        describe_one(&ssm, "/k/default").await.key_id(),
        Some("alias/aws/ssm")
    );
    assert_eq!(value(&ssm, "/k/default").await, "v");
    // String parameters carry no key.
    put_string(&ssm, "/k/plain", "v").await;
    assert_eq!(describe_one(&ssm, "/k/plain").await.key_id(), None);
}

#[tokio::test]
async fn unknown_kms_key_is_invalid_key_id_and_writes_nothing() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let err = ssm
        .put_parameter()
        .name("/k/bad")
        .value("v")
        .r#type(ParameterType::SecureString)
        .key_id("alias/does-not-exist")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidKeyId");
    assert_absent(&ssm, "/k/bad").await;
}

#[tokio::test]
async fn string_list_round_trips() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    ssm.put_parameter()
        .name("/list/hosts")
        .value("a.example,b.example,c.example")
        .r#type(ParameterType::StringList)
        .send()
        .await
        .unwrap();
    let got = ssm
        .get_parameter()
        .name("/list/hosts")
        .send()
        .await
        .unwrap();
    let p = got.parameter().unwrap();
    assert_eq!(p.r#type(), Some(&ParameterType::StringList));
    assert_eq!(p.value(), Some("a.example,b.example,c.example"));
}

#[tokio::test]
async fn overwrite_is_required_to_replace_a_value() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    assert_eq!(put_string(&ssm, "/ow/x", "one").await, 1);
    let err = ssm
        .put_parameter()
        .name("/ow/x")
        .value("two")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterAlreadyExists");
    assert_eq!(value(&ssm, "/ow/x").await, "one");

    // Type is optional when updating.
    assert_eq!(overwrite(&ssm, "/ow/x", "two").await, 2);
    assert_eq!(value(&ssm, "/ow/x").await, "two");
    let got = ssm.get_parameter().name("/ow/x").send().await.unwrap();
    assert_eq!(got.parameter().unwrap().version(), 2);
    assert_eq!(
        got.parameter().unwrap().r#type(),
        Some(&ParameterType::String)
    );
}

#[tokio::test]
async fn creating_requires_a_type() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let err = ssm
        .put_parameter()
        .name("/no/type")
        .value("v")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_absent(&ssm, "/no/type").await;
}

#[tokio::test]
async fn allowed_pattern_is_enforced_and_kept() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let err = ssm
        .put_parameter()
        .name("/pat/port")
        .value("eighty")
        .r#type(ParameterType::String)
        .allowed_pattern(r"^\d+$")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterPatternMismatchException");
    assert_absent(&ssm, "/pat/port").await;

    ssm.put_parameter()
        .name("/pat/port")
        .value("80")
        .r#type(ParameterType::String)
        .allowed_pattern(r"^\d+$")
        .send()
        .await
        .unwrap();
    assert_eq!(
        describe_one(&ssm, "/pat/port").await.allowed_pattern(),
        Some(r"^\d+$")
    );

    // An update under the same pattern is checked too and leaves the value alone.
    let err = ssm
        .put_parameter()
        .name("/pat/port")
        .value("8o8o")
        .allowed_pattern(r"^\d+$")
        .overwrite(true)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterPatternMismatchException");
    assert_eq!(value(&ssm, "/pat/port").await, "80");

    let err = ssm
        .put_parameter()
        .name("/pat/broken")
        .value("x")
        .r#type(ParameterType::String)
        .allowed_pattern("([a-z")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidAllowedPatternException");
    assert_absent(&ssm, "/pat/broken").await;
}

#[tokio::test]
async fn data_types_text_and_ec2_image() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    ssm.put_parameter()
        .name("/ami/latest")
        .value("ami-0123456789abcdef0")
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .send()
        .await
        .unwrap();
    let got = ssm
        .get_parameter()
        .name("/ami/latest")
        .send()
        .await
        .unwrap();
    assert_eq!(got.parameter().unwrap().data_type(), Some("aws:ec2:image"));
    assert_eq!(
        describe_one(&ssm, "/ami/latest").await.data_type(),
        Some("aws:ec2:image")
    );

    ssm.put_parameter()
        .name("/ami/text")
        .value("anything at all")
        .r#type(ParameterType::String)
        .data_type("text")
        .send()
        .await
        .unwrap();

    let err = ssm
        .put_parameter()
        .name("/ami/bad")
        .value("not-an-image-id")
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_absent(&ssm, "/ami/bad").await;

    let err = ssm
        .put_parameter()
        .name("/ami/unknown-type")
        .value("x")
        .r#type(ParameterType::String)
        .data_type("Text")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_absent(&ssm, "/ami/unknown-type").await;
}

#[tokio::test]
async fn value_limits_follow_the_tier() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let put = |name: &'static str, len: usize, tier: Option<ParameterTier>| {
        ssm.put_parameter()
            .name(name)
            .value("x".repeat(len))
            .r#type(ParameterType::String)
            .set_tier(tier)
            .send()
    };
    // Standard: 4 KB.
    put("/size/std-max", 4096, None).await.unwrap();
    let err = put("/size/std-over", 4097, Some(ParameterTier::Standard))
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_absent(&ssm, "/size/std-over").await;
    // Advanced: 8 KB.
    let out = put("/size/adv-max", 8192, Some(ParameterTier::Advanced))
        .await
        .unwrap();
    assert_eq!(out.tier(), Some(&ParameterTier::Advanced));
    let err = put("/size/adv-over", 8193, Some(ParameterTier::Advanced))
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_absent(&ssm, "/size/adv-over").await;
    // Intelligent-Tiering picks Advanced only when the request needs it.
    let small = put(
        "/size/it-small",
        10,
        Some(ParameterTier::IntelligentTiering),
    )
    .await
    .unwrap();
    assert_eq!(small.tier(), Some(&ParameterTier::Standard));
    let big = put(
        "/size/it-big",
        5000,
        Some(ParameterTier::IntelligentTiering),
    )
    .await
    .unwrap();
    assert_eq!(big.tier(), Some(&ParameterTier::Advanced));
    assert_eq!(
        describe_one(&ssm, "/size/it-big").await.tier(),
        Some(&ParameterTier::Advanced)
    );
}

#[tokio::test]
async fn standard_can_move_up_to_advanced_but_not_back() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/tier/x", "v1").await;
    let up = ssm
        .put_parameter()
        .name("/tier/x")
        .value("v2")
        .overwrite(true)
        .tier(ParameterTier::Advanced)
        .send()
        .await
        .unwrap();
    assert_eq!(up.tier(), Some(&ParameterTier::Advanced));
    let err = ssm
        .put_parameter()
        .name("/tier/x")
        .value("v3")
        .overwrite(true)
        .tier(ParameterTier::Standard)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_eq!(value(&ssm, "/tier/x").await, "v2");
    assert_eq!(
        describe_one(&ssm, "/tier/x").await.tier(),
        Some(&ParameterTier::Advanced)
    );
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let bad = [
        "awsconfig",
        "AWS-thing",
        "ssm-thing",
        "SsmThing",
        "/aws/mine",
        "/ssm/mine",
        "/AWS/mine",
        "has space",
        "/a/b c",
        "star*name",
        "/dollar/$x",
        "/semi;colon",
        "/ünicode",
    ];
    for name in bad {
        let err = ssm
            .put_parameter()
            .name(name)
            .value("v")
            .r#type(ParameterType::String)
            .send()
            .await
            .unwrap_err();
        let c = code(&err);
        // AWS answers the reserved `/aws/` namespace with AccessDeniedException.
        assert!(
            c == "ValidationException" || (name == "/aws/mine" && c == "AccessDeniedException"),
            "{name}: {c}"
        );
        let e = ssm
            .describe_parameters()
            .send()
            .await
            .unwrap()
            .parameters()
            .len();
        assert_eq!(e, 0, "{name} left something behind");
    }

    // A name longer than the model's 2,048 characters.
    let long = format!("/{}", "n".repeat(2048));
    let err = ssm
        .put_parameter()
        .name(&long)
        .value("v")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");

    // Allowed: letters, digits, `_.-`, slashes; a prefix that merely contains aws/ssm later.
    for name in [
        "/Dev/DBServer/MySQL/db-string13",
        "my_param.v-2",
        "/app/awsconfig",
    ] {
        put_string(&ssm, name, "ok").await;
        assert_eq!(value(&ssm, name).await, "ok");
    }
}

#[tokio::test]
async fn hierarchies_are_limited_to_fifteen_levels() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let path = |levels: usize| -> String { (1..=levels).map(|i| format!("/l{i}")).collect() };
    let ok = path(14);
    put_string(&ssm, &ok, "deep").await;
    assert_eq!(value(&ssm, &ok).await, "deep");
    for levels in [16, 20] {
        let name = path(levels);
        let err = ssm
            .put_parameter()
            .name(&name)
            .value("v")
            .r#type(ParameterType::String)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "HierarchyLevelLimitExceededException");
    }
    let all = ssm.describe_parameters().send().await.unwrap();
    assert_eq!(
        all.parameters().len(),
        1,
        "only the 14-level parameter exists"
    );
}

#[tokio::test]
async fn surrounding_spaces_in_names_are_removed() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "  /trim/me ", "v").await;
    assert_eq!(value(&ssm, "/trim/me").await, "v");
    assert_eq!(value(&ssm, " /trim/me").await, "v");
}

#[tokio::test]
async fn nested_parameter_references_are_refused_in_values() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    let err = ssm
        .put_parameter()
        .name("/nest/x")
        .value("{{ssm:/other/param}}")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_absent(&ssm, "/nest/x").await;
}

#[tokio::test]
async fn tags_on_create_but_not_with_overwrite() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    ssm.put_parameter()
        .name("/tagged/x")
        .value("v")
        .r#type(ParameterType::String)
        .tags(tag("env", "prod"))
        .tags(tag("team", "db"))
        .send()
        .await
        .unwrap();
    let tags = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id("/tagged/x")
        .send()
        .await
        .unwrap();
    let mut got: Vec<(String, String)> = tags
        .tag_list()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [("env".into(), "prod".into()), ("team".into(), "db".into())]
    );

    // AWS: "tags and overwrite can't be used together".
    let err = ssm
        .put_parameter()
        .name("/tagged/x")
        .value("v2")
        .overwrite(true)
        .tags(tag("env", "dev"))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_eq!(value(&ssm, "/tagged/x").await, "v");
}

#[tokio::test]
async fn description_is_stored_and_limited() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    ssm.put_parameter()
        .name("/desc/x")
        .value("v")
        .r#type(ParameterType::String)
        .description("the x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        describe_one(&ssm, "/desc/x").await.description(),
        Some("the x")
    );
    let err = ssm
        .put_parameter()
        .name("/desc/y")
        .value("v")
        .r#type(ParameterType::String)
        .description("d".repeat(1025))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert_absent(&ssm, "/desc/y").await;
}
