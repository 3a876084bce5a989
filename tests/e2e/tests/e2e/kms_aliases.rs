//! KMS aliases through the SDK: CreateAlias, UpdateAlias, DeleteAlias, ListAliases (with the AWS
//! managed aliases, listed before and after their first use), and the refusals.

use crate::harness::TestServer;
use crate::kms_keys::{assert_code, new_key};

async fn alias_names(kms: &aws_sdk_kms::Client) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_aliases()
            .limit(2)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        for a in page.aliases() {
            out.push((
                a.alias_name().unwrap().to_string(),
                a.target_key_id().map(str::to_string),
            ));
        }
        if !page.truncated() {
            return out;
        }
        marker = page.next_marker().map(str::to_string);
    }
}

#[tokio::test]
async fn create_update_delete_and_list() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let a = new_key(&kms).await;
    let b = new_key(&kms).await;

    // Before any use the AWS managed aliases are listed without a target.
    let listed = alias_names(&kms).await;
    assert_eq!(
        listed,
        vec![
            ("alias/aws/lambda".to_string(), None),
            ("alias/aws/secretsmanager".to_string(), None),
            ("alias/aws/ssm".to_string(), None)
        ]
    );

    for name in ["alias/a1", "alias/zz", "alias/m/n"] {
        kms.create_alias()
            .alias_name(name)
            .target_key_id(&a)
            .send()
            .await
            .unwrap();
    }
    let err = kms
        .create_alias()
        .alias_name("alias/a1")
        .target_key_id(&b)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "AlreadyExistsException");

    // Using alias/aws/ssm creates its key; then it has a target.
    kms.describe_key()
        .key_id("alias/aws/ssm")
        .send()
        .await
        .unwrap();
    let listed = alias_names(&kms).await;
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "alias/a1",
            "alias/aws/lambda",
            "alias/aws/secretsmanager",
            "alias/aws/ssm",
            "alias/m/n",
            "alias/zz"
        ]
    );
    assert!(listed[3].1.is_some(), "alias/aws/ssm has its key now");
    assert!(listed[2].1.is_none());

    // UpdateAlias points it at another key; ListAliases by KeyId filters.
    kms.update_alias()
        .alias_name("alias/zz")
        .target_key_id(&b)
        .send()
        .await
        .unwrap();
    let d = kms.describe_key().key_id("alias/zz").send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().key_id(), b);
    let for_a = kms.list_aliases().key_id(&a).send().await.unwrap();
    let names: Vec<&str> = for_a
        .aliases()
        .iter()
        .filter_map(|x| x.alias_name())
        .collect();
    assert_eq!(names, ["alias/a1", "alias/m/n"]);
    let e = &for_a.aliases()[0];
    assert_eq!(
        e.alias_arn(),
        Some("arn:aws:kms:us-east-1:000000000000:alias/a1")
    );
    assert_eq!(e.target_key_id(), Some(a.as_str()));
    assert!(e.creation_date().is_some());

    kms.delete_alias()
        .alias_name("alias/a1")
        .send()
        .await
        .unwrap();
    let err = kms
        .describe_key()
        .key_id("alias/a1")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");
    let err = kms
        .delete_alias()
        .alias_name("alias/a1")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");
    let err = kms
        .update_alias()
        .alias_name("alias/nope")
        .target_key_id(&a)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");
}

#[tokio::test]
async fn invalid_aliases_are_refused_and_change_nothing() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let a = new_key(&kms).await;
    for (name, want) in [
        ("alias/aws/mine", "InvalidAliasNameException"),
        ("alias/aws/secretsmanager", "InvalidAliasNameException"),
        ("noprefix", "InvalidAliasNameException"),
        ("alias/bad name", "ValidationException"),
        ("alias/", "InvalidAliasNameException"),
    ] {
        let err = kms
            .create_alias()
            .alias_name(name)
            .target_key_id(&a)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, want);
    }
    // An alias must point at a key, not at another alias; unknown targets are not found.
    kms.create_alias()
        .alias_name("alias/real")
        .target_key_id(&a)
        .send()
        .await
        .unwrap();
    let err = kms
        .create_alias()
        .alias_name("alias/chain")
        .target_key_id("alias/real")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    let err = kms
        .create_alias()
        .alias_name("alias/ghost")
        .target_key_id("11111111-2222-3333-4444-555555555555")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");
    // AWS managed aliases cannot be moved or deleted.
    let err = kms
        .update_alias()
        .alias_name("alias/aws/ssm")
        .target_key_id(&a)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "AccessDeniedException");
    let err = kms
        .delete_alias()
        .alias_name("alias/aws/ssm")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "AccessDeniedException");

    let listed = kms.list_aliases().send().await.unwrap();
    let names: Vec<&str> = listed
        .aliases()
        .iter()
        .filter_map(|x| x.alias_name())
        .collect();
    assert_eq!(
        names,
        [
            "alias/aws/lambda",
            "alias/aws/secretsmanager",
            "alias/aws/ssm",
            "alias/real"
        ],
        "only the valid alias was created"
    );
}
