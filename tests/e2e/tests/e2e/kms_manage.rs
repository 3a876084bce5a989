//! KMS key administration through the SDK: rotation (Enable/Disable/GetKeyRotationStatus with
//! RotationPeriodInDays, automatic rotation in the background job, RotateKeyOnDemand,
//! ListKeyRotations), tags, key policies and grants.

use std::time::Duration;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantOperation, RotationType, Tag};

use crate::harness::TestServer;
use crate::kms_keys::{assert_code, new_key};

const DAY: Duration = Duration::from_secs(86_400);

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().unwrap()
}

#[tokio::test]
async fn rotation_status_automatic_and_on_demand() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    let st = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(!st.key_rotation_enabled());
    assert!(st.rotation_period_in_days().is_none());

    let err = kms
        .enable_key_rotation()
        .key_id(&id)
        .rotation_period_in_days(89)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    kms.enable_key_rotation()
        .key_id(&id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let st = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(st.key_rotation_enabled());
    assert_eq!(st.rotation_period_in_days(), Some(90));
    assert!(st.next_rotation_date().is_some());

    let old = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("before"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    // Nothing rotates early; after 90 days the job adds a material version.
    s.clock.advance(89 * DAY);
    s.server.run_background_jobs().await;
    let r = kms.list_key_rotations().key_id(&id).send().await.unwrap();
    assert!(r.rotations().is_empty());
    s.clock.advance(DAY + Duration::from_secs(1));
    s.server.run_background_jobs().await;
    let r = kms.list_key_rotations().key_id(&id).send().await.unwrap();
    assert_eq!(r.rotations().len(), 1);
    assert_eq!(
        r.rotations()[0].rotation_type(),
        Some(&RotationType::Automatic)
    );

    kms.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    let r = kms.list_key_rotations().key_id(&id).send().await.unwrap();
    let kinds: Vec<_> = r
        .rotations()
        .iter()
        .filter_map(|x| x.rotation_type())
        .collect();
    assert_eq!(kinds, [&RotationType::Automatic, &RotationType::OnDemand]);
    let d = kms.decrypt().ciphertext_blob(old).send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"before");

    kms.disable_key_rotation().key_id(&id).send().await.unwrap();
    let st = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(!st.key_rotation_enabled());

    // A disabled key cannot be rotated.
    kms.disable_key().key_id(&id).send().await.unwrap();
    let err = kms
        .rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "DisabledException");
    let err = kms
        .enable_key_rotation()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "DisabledException");
}

#[tokio::test]
async fn tags_on_keys() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    kms.tag_resource()
        .key_id(&id)
        .tags(tag("a", "1"))
        .tags(tag("b", "2"))
        .send()
        .await
        .unwrap();
    kms.tag_resource()
        .key_id(&id)
        .tags(tag("a", "3"))
        .send()
        .await
        .unwrap();
    let t = kms.list_resource_tags().key_id(&id).send().await.unwrap();
    let got: Vec<(&str, &str)> = t
        .tags()
        .iter()
        .map(|t| (t.tag_key(), t.tag_value()))
        .collect();
    assert_eq!(got, [("a", "3"), ("b", "2")]);
    kms.untag_resource()
        .key_id(&id)
        .tag_keys("a")
        .send()
        .await
        .unwrap();
    let t = kms.list_resource_tags().key_id(&id).send().await.unwrap();
    assert_eq!(t.tags().len(), 1);

    let err = kms
        .tag_resource()
        .key_id(&id)
        .tags(tag("aws:reserved", "x"))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "TagException");
    let mut req = kms.tag_resource().key_id(&id);
    for i in 0..50 {
        req = req.tags(tag(&format!("k{i}"), "v"));
    }
    let err = req.send().await.unwrap_err();
    assert_code(&err, "LimitExceededException");
    let t = kms.list_resource_tags().key_id(&id).send().await.unwrap();
    assert_eq!(t.tags().len(), 1, "refused tagging changed nothing");
}

#[tokio::test]
async fn key_policies_are_stored_and_validated() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    let p = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert_eq!(p.policy_name(), Some("default"));
    assert!(
        p.policy()
            .unwrap()
            .contains("arn:aws:iam::000000000000:root")
    );
    let names = kms.list_key_policies().key_id(&id).send().await.unwrap();
    assert_eq!(names.policy_names(), ["default"]);

    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"x","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}"#;
    kms.put_key_policy()
        .key_id(&id)
        .policy_name("default")
        .policy(doc)
        .send()
        .await
        .unwrap();
    let p = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    assert_eq!(p.policy(), Some(doc));

    for bad in [
        "{",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
    ] {
        let err = kms
            .put_key_policy()
            .key_id(&id)
            .policy_name("default")
            .policy(bad)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "MalformedPolicyDocumentException");
    }
    let err = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("other")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");
    let p = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert_eq!(p.policy(), Some(doc), "refused policies changed nothing");
}

#[tokio::test]
async fn grants_created_listed_retired_and_revoked() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    let grantee = "arn:aws:iam::000000000000:role/app";
    let g1 = kms
        .create_grant()
        .key_id(&id)
        .grantee_principal(grantee)
        .operations(GrantOperation::Decrypt)
        .operations(GrantOperation::Encrypt)
        .name("g1")
        .send()
        .await
        .unwrap();
    let g1_id = g1.grant_id().unwrap().to_string();
    // Same name and parameters: the same grant.
    let again = kms
        .create_grant()
        .key_id(&id)
        .grantee_principal(grantee)
        .operations(GrantOperation::Decrypt)
        .operations(GrantOperation::Encrypt)
        .name("g1")
        .send()
        .await
        .unwrap();
    assert_eq!(again.grant_id(), Some(g1_id.as_str()));
    let g2 = kms
        .create_grant()
        .key_id(&id)
        .grantee_principal("arn:aws:iam::000000000000:role/other")
        .operations(GrantOperation::GenerateDataKey)
        .send()
        .await
        .unwrap();

    let l = kms.list_grants().key_id(&id).send().await.unwrap();
    assert_eq!(l.grants().len(), 2);
    let l = kms
        .list_grants()
        .key_id(&id)
        .grantee_principal(grantee)
        .send()
        .await
        .unwrap();
    assert_eq!(l.grants().len(), 1);
    let g = &l.grants()[0];
    assert_eq!(g.grant_id(), Some(g1_id.as_str()));
    assert_eq!(g.name(), Some("g1"));
    assert_eq!(
        g.operations(),
        [GrantOperation::Decrypt, GrantOperation::Encrypt]
    );

    kms.retire_grant()
        .grant_token(g1.grant_token().unwrap())
        .send()
        .await
        .unwrap();
    let err = kms
        .retire_grant()
        .grant_token("forged-token")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidGrantTokenException");
    kms.revoke_grant()
        .key_id(&id)
        .grant_id(g2.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    let err = kms
        .revoke_grant()
        .key_id(&id)
        .grant_id(g2.grant_id().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");
    assert!(
        kms.list_grants()
            .key_id(&id)
            .send()
            .await
            .unwrap()
            .grants()
            .is_empty()
    );

    // Grants need an enabled key and a grantee.
    let err = kms
        .create_grant()
        .key_id(&id)
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    kms.disable_key().key_id(&id).send().await.unwrap();
    let err = kms
        .create_grant()
        .key_id(&id)
        .grantee_principal(grantee)
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "DisabledException");
}

#[tokio::test]
async fn retirable_grants_are_listed_across_keys() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let ops = "arn:aws:iam::000000000000:role/ops";
    let (k1, k2) = (new_key(&kms).await, new_key(&kms).await);
    let mut ids = Vec::new();
    for (key, retiring) in [(&k1, Some(ops)), (&k2, Some(ops)), (&k2, None)] {
        let g = kms
            .create_grant()
            .key_id(key)
            .grantee_principal("arn:aws:iam::000000000000:role/app")
            .operations(GrantOperation::Decrypt)
            .set_retiring_principal(retiring.map(String::from))
            .send()
            .await
            .unwrap();
        ids.push(g.grant_id().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = kms
            .list_retirable_grants()
            .retiring_principal(ops)
            .limit(1)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        for g in page.grants() {
            assert_eq!(g.retiring_principal(), Some(ops));
            let key_id = g.key_id().unwrap().rsplit('/').next().unwrap().to_string();
            seen.push((key_id, g.grant_id().unwrap().to_string()));
        }
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(String::from);
    }
    seen.sort();
    let mut expected = vec![(k1.clone(), ids[0].clone()), (k2.clone(), ids[1].clone())];
    expected.sort();
    assert_eq!(seen, expected);
    let none = kms
        .list_retirable_grants()
        .retiring_principal("arn:aws:iam::000000000000:role/nobody")
        .send()
        .await
        .unwrap();
    assert!(none.grants().is_empty());
    let err = kms.list_retirable_grants().send().await.unwrap_err();
    assert_code(&err, "ValidationException");
}

#[tokio::test]
async fn key_material_ids_follow_rotation() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    let current = || async {
        kms.describe_key()
            .key_id(&id)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .current_key_material_id()
            .unwrap()
            .to_owned()
    };
    let data_key = || async {
        kms.generate_data_key()
            .key_id(&id)
            .number_of_bytes(32)
            .send()
            .await
            .unwrap()
            .key_material_id()
            .unwrap()
            .to_owned()
    };
    let first = current().await;
    assert_eq!(first.len(), 64, "{first}");
    assert!(
        first
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    );
    assert_eq!(data_key().await, first);
    let blob = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("m"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let decrypt = || async {
        kms.decrypt()
            .ciphertext_blob(blob.clone())
            .send()
            .await
            .unwrap()
            .key_material_id()
            .unwrap()
            .to_owned()
    };
    assert_eq!(decrypt().await, first);

    // A rotation brings new material with a new id; the old ciphertext keeps naming its own.
    kms.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    let second = current().await;
    assert_eq!(second.len(), 64);
    assert_ne!(second, first);
    assert_eq!(data_key().await, second);
    assert_eq!(decrypt().await, first);
    let re = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .destination_key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(re.source_key_material_id(), Some(first.as_str()));
    assert_eq!(re.destination_key_material_id(), Some(second.as_str()));

    use aws_sdk_kms::types::{IncludeKeyMaterial, KeyMaterialState};
    let r = kms.list_key_rotations().key_id(&id).send().await.unwrap();
    let [rot] = r.rotations() else {
        panic!("{r:?}")
    };
    assert_eq!(rot.key_material_id(), Some(second.as_str()));
    assert_eq!(rot.key_material_state(), Some(&KeyMaterialState::Current));
    let all = kms
        .list_key_rotations()
        .key_id(&id)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    let [orig, rot] = all.rotations() else {
        panic!("{all:?}")
    };
    assert_eq!(orig.key_material_id(), Some(first.as_str()));
    assert_eq!(
        orig.key_material_state(),
        Some(&KeyMaterialState::NonCurrent)
    );
    assert!(orig.rotation_date().is_none() && orig.rotation_type().is_none());
    assert_eq!(rot.key_material_id(), Some(second.as_str()));
    assert_eq!(rot.rotation_type(), Some(&RotationType::OnDemand));
}
