//! KMS authorization through the SDK, as an IAM user: key policies take part (IAM policies
//! count only where the key policy delegates to the account), and Parameter Store reads of
//! SecureStrings and Secrets Manager reads check kms:Decrypt on the value's key with its policy.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_ssm::types::ParameterType;

use crate::harness::{TestServer, code};
use crate::iam_util::{ACCOUNT, iam, policy, user_with_key};

#[tokio::test]
async fn key_policies_decide_with_iam_for_an_iam_user() {
    let s = TestServer::dev().await;
    let root_kms = s.kms();
    let ssm = s.ssm();
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "kuser", "/").await;
    iam.put_user_policy()
        .user_name("kuser")
        .policy_name("p")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":["ssm:GetParameter","secretsmanager:GetSecretValue","secretsmanager:PutSecretValue","kms:Decrypt","kms:Encrypt","kms:GenerateDataKey"],"Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    let kms = s.kms_with("us-east-1", &akid, &secret);
    let user_ssm = s.ssm_with("us-east-1", &akid, &secret);

    let open_key = root_kms.create_key().send().await.unwrap();
    let open_key = open_key.key_metadata().unwrap().key_id().to_string();
    let other = format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/other"}},"Action":"kms:*","Resource":"*"}}"#
    );
    let closed = root_kms
        .create_key()
        .policy(policy(&[&other]))
        .send()
        .await
        .unwrap();
    let closed = closed.key_metadata().unwrap().key_id().to_string();

    let encrypt = |key: String| {
        let kms = kms.clone();
        async move {
            kms.encrypt()
                .key_id(key)
                .plaintext(Blob::new("hi"))
                .send()
                .await
        }
    };
    encrypt(open_key.clone()).await.unwrap();
    let err = encrypt(closed.clone()).await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let msg = err
        .as_service_error()
        .and_then(|e| e.meta().message())
        .unwrap();
    assert!(
        msg.ends_with("because no resource-based policy allows the kms:Encrypt action"),
        "{msg}"
    );

    // SecureStrings: under alias/aws/ssm, under a key delegating to IAM, and under a key
    // whose policy leaves the user out.
    for (name, key) in [
        ("/managed", None),
        ("/open", Some(&open_key)),
        ("/closed", Some(&closed)),
    ] {
        ssm.put_parameter()
            .name(name)
            .value("s3cr3t")
            .r#type(ParameterType::SecureString)
            .set_key_id(key.cloned())
            .send()
            .await
            .unwrap();
    }
    let read = |name: &'static str| {
        let c = user_ssm.clone();
        async move {
            c.get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
        }
    };
    for name in ["/managed", "/open"] {
        let out = read(name).await.unwrap();
        assert_eq!(out.parameter().unwrap().value(), Some("s3cr3t"));
    }
    let err = read("/closed").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");

    // Secrets Manager alike: aws/secretsmanager lets the account use it through the service;
    // the closed key's policy leaves the user out.
    let sm = s.sm();
    let user_sm = s.sm_with("us-east-1", &akid, &secret);
    for (name, key) in [("managed", None), ("closed", Some(&closed))] {
        sm.create_secret()
            .name(name)
            .secret_string("s3cr3t")
            .set_kms_key_id(key.cloned())
            .send()
            .await
            .unwrap();
    }
    let value = user_sm.get_secret_value().secret_id("managed").send().await;
    assert_eq!(value.unwrap().secret_string(), Some("s3cr3t"));
    let err = user_sm
        .get_secret_value()
        .secret_id("closed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let msg = err
        .as_service_error()
        .and_then(|e| e.meta().message())
        .unwrap();
    assert!(msg.contains("kms:Decrypt"), "{msg}");
    assert!(!msg.contains("s3cr3t"), "{msg}");
    // Writing a value needs kms:GenerateDataKey on the secret's key, key policy included.
    let put = |id: &'static str| {
        user_sm
            .put_secret_value()
            .secret_id(id)
            .secret_string("n3w")
            .send()
    };
    put("managed").await.unwrap();
    let err = put("closed").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let msg = err
        .as_service_error()
        .and_then(|e| e.meta().message())
        .unwrap();
    assert!(msg.contains("kms:GenerateDataKey"), "{msg}");

    // Naming the user in the key policy lets it in without IAM's say.
    let named = format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/kuser"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}"#
    );
    root_kms
        .put_key_policy()
        .key_id(&closed)
        .policy(policy(&[&other, &named]))
        .send()
        .await
        .unwrap();
    encrypt(closed.clone()).await.unwrap();
    assert_eq!(
        read("/closed").await.unwrap().parameter().unwrap().value(),
        Some("s3cr3t")
    );
    let value = user_sm.get_secret_value().secret_id("closed").send().await;
    assert_eq!(value.unwrap().secret_string(), Some("s3cr3t"));
    // The statement naming the user grants Encrypt and Decrypt only.
    let err = put("closed").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
}
