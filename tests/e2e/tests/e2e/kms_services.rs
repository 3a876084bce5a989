//! Secrets Manager and Parameter Store on customer KMS keys: values encrypted under the key,
//! reads failing with AWS's errors while the key is disabled or pending deletion and working
//! again once it is enabled, rotation keeping old values readable.

use aws_sdk_ssm::types::ParameterType;

use crate::harness::{TestServer, code};
use crate::kms_keys::new_key;

#[tokio::test]
async fn secrets_manager_on_a_customer_key() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let sm = s.sm();
    let id = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/secrets")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("db")
        .kms_key_id("alias/secrets")
        .secret_string("s3cr3t")
        .send()
        .await
        .unwrap();
    let get = || async { sm.get_secret_value().secret_id("db").send().await };
    assert_eq!(get().await.unwrap().secret_string(), Some("s3cr3t"));

    // Rotation of the key keeps the value readable; new versions use the new material.
    kms.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    assert_eq!(get().await.unwrap().secret_string(), Some("s3cr3t"));
    sm.put_secret_value()
        .secret_id("db")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    assert_eq!(get().await.unwrap().secret_string(), Some("v2"));

    kms.disable_key().key_id(&id).send().await.unwrap();
    let err = get().await.unwrap_err();
    assert_eq!(code(&err), "DecryptionFailure");
    let msg = err
        .as_service_error()
        .and_then(|e| e.meta().message())
        .unwrap();
    assert!(msg.contains("is disabled"), "{msg}");
    assert!(!msg.contains("v2"));
    // Writing under a disabled key fails too, and changes nothing.
    let err = sm
        .put_secret_value()
        .secret_id("db")
        .secret_string("v3")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "EncryptionFailure");

    kms.enable_key().key_id(&id).send().await.unwrap();
    assert_eq!(get().await.unwrap().secret_string(), Some("v2"));

    kms.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let err = get().await.unwrap_err();
    assert_eq!(code(&err), "DecryptionFailure");
    kms.cancel_key_deletion().key_id(&id).send().await.unwrap();
    kms.enable_key().key_id(&id).send().await.unwrap();
    assert_eq!(get().await.unwrap().secret_string(), Some("v2"));

    // Secrets on the AWS managed key are unaffected throughout.
    sm.create_secret()
        .name("plain")
        .secret_string("x")
        .send()
        .await
        .unwrap();
    kms.disable_key().key_id(&id).send().await.unwrap();
    let v = sm
        .get_secret_value()
        .secret_id("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("x"));
}

#[tokio::test]
async fn parameter_store_on_a_customer_key() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let ssm = s.ssm();
    let id = new_key(&kms).await;
    ssm.put_parameter()
        .name("/app/pw")
        .value("hunter2")
        .r#type(ParameterType::SecureString)
        .key_id(&id)
        .send()
        .await
        .unwrap();
    let get = || async {
        ssm.get_parameter()
            .name("/app/pw")
            .with_decryption(true)
            .send()
            .await
    };
    assert_eq!(
        get().await.unwrap().parameter().unwrap().value(),
        Some("hunter2")
    );
    kms.disable_key().key_id(&id).send().await.unwrap();
    let err = get().await.unwrap_err();
    assert_eq!(code(&err), "InvalidKeyId");
    let msg = err
        .as_service_error()
        .and_then(|e| e.meta().message())
        .unwrap();
    assert!(msg.contains("is disabled"), "{msg}");
    // Without decryption the (encrypted) parameter is still described.
    let raw = ssm.get_parameter().name("/app/pw").send().await.unwrap();
    assert_ne!(raw.parameter().unwrap().value(), Some("hunter2"));

    kms.enable_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        get().await.unwrap().parameter().unwrap().value(),
        Some("hunter2")
    );
    kms.schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    let err = get().await.unwrap_err();
    assert_eq!(code(&err), "InvalidKeyId");
    let err = ssm
        .put_parameter()
        .name("/app/pw2")
        .value("x")
        .r#type(ParameterType::SecureString)
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidKeyId");
}
