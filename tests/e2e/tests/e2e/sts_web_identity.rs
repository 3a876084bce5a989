//! OpenID Connect providers through aws-sdk-iam, and the web identities they vouch for.

use aws_sdk_iam::error::ProvideErrorMetadata as _;

use crate::harness::TestServer;
use crate::iam_util::{ACCOUNT, err_code, iam};

#[tokio::test]
async fn oidc_providers_are_created_listed_changed_and_deleted() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let tag = |k: &str, v: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .unwrap()
    };
    let created = iam
        .create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com")
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list("6938fd4d98bab03faadb97b34396831e3780aea1")
        .tags(tag("ci", "github"))
        .send()
        .await
        .unwrap();
    let arn = created.open_id_connect_provider_arn().unwrap().to_string();
    assert_eq!(
        arn,
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com")
    );
    let dup = iam
        .create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&dup), "EntityAlreadyExists");
    let bad = iam
        .create_open_id_connect_provider()
        .url("http://plain.example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&bad), "InvalidInput");
    let bad = iam
        .create_open_id_connect_provider()
        .url("https://x.example.com")
        .thumbprint_list("too-short")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&bad), "ValidationError");

    iam.add_client_id_to_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("my-app")
        .send()
        .await
        .unwrap();
    iam.update_open_id_connect_provider_thumbprint()
        .open_id_connect_provider_arn(&arn)
        .thumbprint_list("1111111111111111111111111111111111111111")
        .send()
        .await
        .unwrap();
    let got = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.url(), Some("token.actions.githubusercontent.com"));
    assert_eq!(got.client_id_list(), ["sts.amazonaws.com", "my-app"]);
    assert_eq!(
        got.thumbprint_list(),
        ["1111111111111111111111111111111111111111"]
    );
    assert_eq!(got.tags()[0].key(), "ci");
    iam.remove_client_id_from_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("sts.amazonaws.com")
        .send()
        .await
        .unwrap();
    iam.untag_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .tag_keys("ci")
        .send()
        .await
        .unwrap();
    let got = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.client_id_list(), ["my-app"]);
    assert!(got.tags().is_empty());

    let listed = iam.list_open_id_connect_providers().send().await.unwrap();
    let arns: Vec<&str> = listed
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn())
        .collect();
    assert_eq!(arns, [arn.as_str()]);
    iam.delete_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap();
    let e = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    assert_eq!(
        e.message(),
        Some(format!("OpenIDConnect Provider not found for arn {arn}").as_str())
    );
}
