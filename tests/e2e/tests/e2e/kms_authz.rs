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

#[tokio::test]
async fn key_policy_lockout_safety_check() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "keyadmin", "/").await;
    iam.put_user_policy()
        .user_name("keyadmin")
        .policy_name("p")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    let kms = s.kms_with("us-east-1", &akid, &secret);
    let other = policy(&[&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/other"}},"Action":"kms:*","Resource":"*"}}"#
    )]);
    fn expect_lockout<E, R>(e: &aws_sdk_kms::error::SdkError<E, R>)
    where
        E: aws_sdk_kms::error::ProvideErrorMetadata,
    {
        assert_eq!(
            crate::kms_keys::message(e),
            "The new key policy will not allow you to update the key policy in the future."
        );
        let code = e.as_service_error().and_then(|e| e.code());
        assert_eq!(code, Some("MalformedPolicyDocumentException"));
    }
    // The default key policy passes; one leaving the caller out does not, unless bypassed.
    let key = kms.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let e = kms.create_key().policy(&other).send().await.unwrap_err();
    expect_lockout(&e);
    kms.create_key()
        .policy(&other)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();
    let e = kms
        .put_key_policy()
        .key_id(&key)
        .policy(&other)
        .send()
        .await
        .unwrap_err();
    expect_lockout(&e);
    kms.put_key_policy()
        .key_id(&key)
        .policy(&other)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();
    // Now the caller cannot change the policy back.
    let e = kms
        .put_key_policy()
        .key_id(&key)
        .policy(&other)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
}

#[tokio::test]
async fn grants_let_their_grantee_use_the_key_until_revoked() {
    use aws_sdk_kms::types::{GrantConstraints, GrantOperation};
    let s = TestServer::dev().await;
    let root_kms = s.kms();
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "grantee", "/").await;
    let grantee = format!("arn:aws:iam::{ACCOUNT}:user/grantee");
    // Secrets Manager reads are allowed by IAM; nothing allows any KMS action.
    iam.put_user_policy()
        .user_name("grantee")
        .policy_name("p")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    let kms = s.kms_with("us-east-1", &akid, &secret);
    let key = root_kms.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let blob = root_kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("granted"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let decrypt = || kms.decrypt().ciphertext_blob(blob.clone()).send();
    let e = decrypt().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");

    let g = root_kms
        .create_grant()
        .key_id(&key)
        .grantee_principal(&grantee)
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    let out = decrypt().await.unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"granted");
    // Secrets Manager's kms:Decrypt check on the secret's key sees the grant too.
    let sm = s.sm();
    sm.create_secret()
        .name("granted")
        .secret_string("s3cr3t")
        .kms_key_id(&key)
        .send()
        .await
        .unwrap();
    let user_sm = s.sm_with("us-east-1", &akid, &secret);
    let read = || user_sm.get_secret_value().secret_id("granted").send();
    assert_eq!(read().await.unwrap().secret_string(), Some("s3cr3t"));
    // Only the granted operation.
    let e = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");

    root_kms
        .revoke_grant()
        .key_id(&key)
        .grant_id(g.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    let e = decrypt().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    let e = read().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");

    // A grant constrained to one encryption context allows no other.
    root_kms
        .create_grant()
        .key_id(&key)
        .grantee_principal(&grantee)
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_equals("app", "billing")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let under = |app: &'static str| {
        let root_kms = root_kms.clone();
        let key = key.clone();
        async move {
            root_kms
                .encrypt()
                .key_id(key)
                .plaintext(Blob::new("ctx"))
                .encryption_context("app", app)
                .send()
                .await
                .unwrap()
                .ciphertext_blob()
                .unwrap()
                .clone()
        }
    };
    let open = |blob: Blob, app: &'static str| {
        kms.decrypt()
            .ciphertext_blob(blob)
            .encryption_context("app", app)
            .send()
    };
    open(under("billing").await, "billing").await.unwrap();
    let e = open(under("payroll").await, "payroll").await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    let e = decrypt().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
}

#[tokio::test]
async fn encryption_context_condition_keys_reach_kms_own_operations() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let (akid, secret) = user_with_key(&iam, "ctxuser", "/").await;
    // Encrypt/Decrypt only with the encryption context app=billing.
    iam.put_user_policy()
        .user_name("ctxuser")
        .policy_name("p")
        .policy_document(policy(&[
            r#"{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":"billing"}}}"#,
        ]))
        .send()
        .await
        .unwrap();
    let key = s.kms().create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let kms = s.kms_with("us-east-1", &akid, &secret);
    let encrypt = |app: Option<&'static str>| {
        let (kms, key) = (kms.clone(), key.clone());
        async move {
            let mut r = kms.encrypt().key_id(key).plaintext(Blob::new("hi"));
            if let Some(app) = app {
                r = r.encryption_context("app", app);
            }
            r.send().await
        }
    };
    let blob = encrypt(Some("billing")).await.unwrap();
    for refused in [Some("payroll"), None] {
        let err = encrypt(refused).await.unwrap_err();
        assert_eq!(code(&err), "AccessDeniedException", "context {refused:?}");
    }
    let plain = kms
        .decrypt()
        .ciphertext_blob(blob.ciphertext_blob().unwrap().clone())
        .encryption_context("app", "billing")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"hi");
}
