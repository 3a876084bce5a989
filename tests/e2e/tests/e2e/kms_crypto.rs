//! KMS cryptographic operations through the SDK: Encrypt/Decrypt (KeyId optional: the
//! ciphertext names its key) by every kind of key reference, encryption context binding,
//! ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateRandom, rotation keeping old
//! ciphertexts readable, and bad input (oversize, malformed, wrong key) refused.

use std::collections::HashMap;

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, EncryptionAlgorithmSpec};

use crate::harness::TestServer;
use crate::kms_keys::{assert_code, new_key};

fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn encrypt(kms: &Client, key: &str, pt: &[u8], c: &[(&str, &str)]) -> Blob {
    let out = kms
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(pt))
        .set_encryption_context((!c.is_empty()).then(|| ctx(c)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    out.ciphertext_blob().unwrap().clone()
}

#[tokio::test]
async fn encrypt_decrypt_by_every_key_reference() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    let arn = format!("arn:aws:kms:us-east-1:000000000000:key/{id}");
    kms.create_alias()
        .alias_name("alias/app")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    for key in [
        id.as_str(),
        arn.as_str(),
        "alias/app",
        "arn:aws:kms:us-east-1:000000000000:alias/app",
    ] {
        let out = kms
            .encrypt()
            .key_id(key)
            .plaintext(Blob::new("hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(arn.as_str()), "{key}");
        let blob = out.ciphertext_blob().unwrap().clone();
        assert!(!blob.as_ref().windows(5).any(|w| w == b"hello"));
        // No KeyId: the ciphertext names its key.
        let d = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), b"hello");
        assert_eq!(d.key_id(), Some(arn.as_str()));
        // With the KeyId (any form) too.
        let d = kms
            .decrypt()
            .ciphertext_blob(blob)
            .key_id(key)
            .send()
            .await
            .unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), b"hello");
    }
    // The AWS managed key works for Encrypt too.
    let blob = encrypt(&kms, "alias/aws/ssm", b"m", &[]).await;
    let d = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"m");
}

#[tokio::test]
async fn encryption_context_is_bound_and_tampering_fails() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    let c = [(
        "SecretARN",
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:a-AbCdEf",
    )];
    let blob = encrypt(&kms, &id, b"bound", &c).await;
    let ok = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .set_encryption_context(Some(ctx(&c)))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.plaintext().unwrap().as_ref(), b"bound");

    // Moved to another record (other context), no context, extra pair: all fail.
    let other = [(
        "SecretARN",
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:b-XyZxYz",
    )];
    for wrong in [&other[..], &[], &[c[0], ("x", "y")]] {
        let err = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .set_encryption_context((!wrong.is_empty()).then(|| ctx(wrong)))
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "InvalidCiphertextException");
    }
    // A flipped bit anywhere fails.
    let bytes = blob.as_ref().to_vec();
    for i in [0, 5, 20, bytes.len() / 2, bytes.len() - 1] {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let err = kms
            .decrypt()
            .ciphertext_blob(Blob::new(t))
            .set_encryption_context(Some(ctx(&c)))
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "InvalidCiphertextException");
    }
    // Another region (or account) cannot decrypt it.
    let err = s
        .kms_in("eu-west-1")
        .decrypt()
        .ciphertext_blob(blob)
        .set_encryption_context(Some(ctx(&c)))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidCiphertextException");
}

#[tokio::test]
async fn bad_input_gets_aws_errors() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    let other = new_key(&kms).await;

    // Oversize plaintext: 4096 bytes is the limit.
    kms.encrypt()
        .key_id(&id)
        .plaintext(Blob::new(vec![7u8; 4096]))
        .send()
        .await
        .unwrap();
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(vec![7u8; 4097]))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert!(crate::kms_keys::message(&err).contains("'plaintext'"));

    // Unknown keys.
    let err = kms
        .encrypt()
        .key_id("alias/none")
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");
    let err = kms
        .encrypt()
        .key_id("not-a-key")
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");

    // Malformed ciphertexts.
    for junk in [
        vec![1u8],
        vec![0u8; 64],
        b"definitely not a ciphertext".to_vec(),
    ] {
        let err = kms
            .decrypt()
            .ciphertext_blob(Blob::new(junk))
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "InvalidCiphertextException");
    }
    let err = kms
        .decrypt()
        .ciphertext_blob(Blob::new(vec![1u8; 6145]))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");

    // A ciphertext under one key with another key named: IncorrectKeyException.
    let blob = encrypt(&kms, &id, b"x", &[]).await;
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .key_id(&other)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "IncorrectKeyException");

    // Asymmetric algorithms cannot be used with symmetric keys.
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidKeyUsageException");

    // DryRun answers DryRunOperationException and does nothing.
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "DryRunOperationException");
}

#[tokio::test]
async fn re_encrypt_moves_a_ciphertext_between_keys_and_contexts() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let a = new_key(&kms).await;
    let b = new_key(&kms).await;
    let blob = encrypt(&kms, &a, b"move me", &[("k", "1")]).await;
    let out = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("k", "1")
        .destination_key_id(&b)
        .destination_encryption_context("k", "2")
        .send()
        .await
        .unwrap();
    assert!(out.source_key_id().unwrap().ends_with(&a));
    assert!(out.key_id().unwrap().ends_with(&b));
    let new_blob = out.ciphertext_blob().unwrap().clone();
    let d = kms
        .decrypt()
        .ciphertext_blob(new_blob.clone())
        .encryption_context("k", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"move me");
    assert!(d.key_id().unwrap().ends_with(&b));
    // Wrong source context, wrong source key: refused.
    let err = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .destination_key_id(&b)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidCiphertextException");
    let err = kms
        .re_encrypt()
        .ciphertext_blob(blob)
        .source_encryption_context("k", "1")
        .source_key_id(&b)
        .destination_key_id(&b)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "IncorrectKeyException");
}

#[tokio::test]
async fn data_keys_and_random_bytes() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    for (spec, len) in [(DataKeySpec::Aes256, 32), (DataKeySpec::Aes128, 16)] {
        let dk = kms
            .generate_data_key()
            .key_id(&id)
            .key_spec(spec)
            .encryption_context("purpose", "test")
            .send()
            .await
            .unwrap();
        let pt = dk.plaintext().unwrap().as_ref().to_vec();
        assert_eq!(pt.len(), len);
        assert!(dk.key_id().unwrap().ends_with(&id));
        let d = kms
            .decrypt()
            .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
            .encryption_context("purpose", "test")
            .send()
            .await
            .unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), pt.as_slice());
    }
    let dk = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 64);
    let err = kms
        .generate_data_key()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    let err = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(1025)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");

    let w = kms
        .generate_data_key_without_plaintext()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let d = kms
        .decrypt()
        .ciphertext_blob(w.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref().len(), 32);

    let r1 = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let r2 = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert_eq!(r1.plaintext().unwrap().as_ref().len(), 32);
    assert_ne!(
        r1.plaintext().unwrap().as_ref(),
        r2.plaintext().unwrap().as_ref()
    );
    let err = kms
        .generate_random()
        .number_of_bytes(1025)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
}

#[tokio::test]
async fn rotation_keeps_old_ciphertexts_readable() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    let before = encrypt(&kms, &id, b"v1", &[]).await;
    kms.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    let after = encrypt(&kms, &id, b"v2", &[]).await;
    assert_ne!(
        before.as_ref()[17..21],
        after.as_ref()[17..21],
        "new material version"
    );
    for (blob, want) in [(before, b"v1"), (after, b"v2")] {
        let d = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), want);
    }
}
