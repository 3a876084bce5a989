//! Imported key material (BYOK) through the SDK: a key of origin EXTERNAL waits for its
//! material, which is wrapped with the RSA key GetParametersForImport hands out; it then works
//! like any other key (Secrets Manager included) until the material is deleted, and only the
//! same material brings it back.

use std::time::Duration;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, KeyState, OriginType, WrappingKeySpec,
};

use crate::harness::TestServer;
use crate::kms_keys::{assert_code, state};

/// Import parameters for `key`: (public key, import token).
async fn parameters(kms: &Client, key: &str) -> (Vec<u8>, Blob) {
    let p = kms
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    (
        p.public_key().unwrap().as_ref().to_vec(),
        p.import_token().unwrap().clone(),
    )
}

/// `material` wrapped with RSAES-OAEP-SHA-256 under the DER public key `public`.
fn wrap(public: &[u8], material: &[u8]) -> Blob {
    let key = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(public).unwrap()).unwrap();
    let mut out = vec![0u8; key.ciphertext_size()];
    let wrapped = key
        .encrypt(&OAEP_SHA256_MGF1SHA256, material, &mut out, None)
        .unwrap();
    Blob::new(wrapped.to_vec())
}

async fn import(kms: &Client, key: &str, material: &[u8]) -> Result<(), String> {
    let (public, token) = parameters(kms, key).await;
    kms.import_key_material()
        .key_id(key)
        .import_token(token)
        .encrypted_key_material(wrap(&public, material))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| crate::harness::code(&e))
}

#[tokio::test]
async fn imported_key_material_protects_secrets_until_deleted() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let created = kms
        .create_key()
        .origin(OriginType::External)
        .description("byok")
        .send()
        .await
        .unwrap();
    let meta = created.key_metadata().unwrap();
    assert_eq!(meta.origin(), Some(&OriginType::External));
    assert_eq!(meta.key_state(), Some(&KeyState::PendingImport));
    let key = meta.key_id().to_string();
    let e = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_code(&e, "KMSInvalidStateException");

    let material = [7u8; 32];
    import(&kms, &key, &material).await.unwrap();
    assert_eq!(state(&kms, &key).await, KeyState::Enabled);
    let described = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().expiration_model(),
        Some(&ExpirationModelType::KeyMaterialDoesNotExpire)
    );
    let blob = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("hello"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let sm = s.sm();
    sm.create_secret()
        .name("byok/secret")
        .kms_key_id(&key)
        .secret_string("v1")
        .send()
        .await
        .unwrap();

    // Deleting the material makes everything under the key unreadable.
    kms.delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
    let e = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err();
    assert_code(&e, "KMSInvalidStateException");
    assert!(
        sm.get_secret_value()
            .secret_id("byok/secret")
            .send()
            .await
            .is_err()
    );

    // Only the same material comes back in.
    assert_eq!(
        import(&kms, &key, &[8u8; 32]).await.unwrap_err(),
        "IncorrectKeyMaterialException"
    );
    assert_eq!(
        import(&kms, &key, &[7u8; 16]).await.unwrap_err(),
        "IncorrectKeyMaterialException"
    );
    import(&kms, &key, &material).await.unwrap();
    let plain = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"hello");
    let got = sm
        .get_secret_value()
        .secret_id("byok/secret")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("v1"));
}

#[tokio::test]
async fn import_tokens_and_unsupported_requests_are_refused() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let external = |kms: Client| async move {
        kms.create_key()
            .origin(OriginType::External)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string()
    };
    let (a, b) = (external(kms.clone()).await, external(kms.clone()).await);
    let (public, token_for_a) = parameters(&kms, &a).await;
    let e = kms
        .import_key_material()
        .key_id(&b)
        .import_token(token_for_a.clone())
        .encrypted_key_material(wrap(&public, &[1u8; 32]))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert_code(&e, "InvalidImportTokenException");
    let e = kms
        .import_key_material()
        .key_id(&a)
        .import_token(token_for_a.clone())
        .encrypted_key_material(wrap(&public, &[1u8; 32]))
        .expiration_model(ExpirationModelType::KeyMaterialExpires)
        .valid_to(aws_smithy_types::DateTime::from_secs(4_000_000_000))
        .send()
        .await
        .unwrap_err();
    assert_code(&e, "UnsupportedOperationException");
    // Parameters are good for 24 hours.
    s.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let e = kms
        .import_key_material()
        .key_id(&a)
        .import_token(token_for_a)
        .encrypted_key_material(wrap(&public, &[1u8; 32]))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert_code(&e, "ExpiredImportTokenException");

    // A key with its own material takes none; imported material is not rotated.
    let own = crate::kms_keys::new_key(&kms).await;
    let e = kms
        .get_parameters_for_import()
        .key_id(&own)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_code(&e, "UnsupportedOperationException");
    import(&kms, &a, &[2u8; 32]).await.unwrap();
    let e = kms
        .enable_key_rotation()
        .key_id(&a)
        .send()
        .await
        .unwrap_err();
    assert_code(&e, "UnsupportedOperationException");
    // The key can still be disabled and enabled like any other.
    kms.disable_key().key_id(&a).send().await.unwrap();
    kms.enable_key().key_id(&a).send().await.unwrap();
    assert_eq!(state(&kms, &a).await, KeyState::Enabled);
    // A key pending import cannot be enabled.
    let e = kms.enable_key().key_id(&b).send().await.unwrap_err();
    assert_code(&e, "KMSInvalidStateException");
}
