//! KMS keys through the SDK: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription,
//! EnableKey/DisableKey, ScheduleKeyDeletion/CancelKeyDeletion (the waiting period ends in the
//! background job, on the test clock), and the AWS managed keys' protections.

use std::time::Duration;

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyManagerType, KeySpec, KeyState, KeyUsageType, Tag};

use crate::harness::{TestServer, code};

const DAY: Duration = Duration::from_secs(86_400);

/// Asserts an SDK error carries AWS error code `want`.
pub fn assert_code<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>, want: &str)
where
    E: aws_sdk_kms::error::ProvideErrorMetadata,
{
    assert_eq!(code(err), want, "{}", message(err));
}

/// The message of a service error.
pub fn message<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.message())
        .unwrap_or_default()
        .to_string()
}

/// A new customer managed key; returns its id.
pub async fn new_key(kms: &Client) -> String {
    kms.create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
}

pub async fn state(kms: &Client, key: &str) -> KeyState {
    kms.describe_key()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn create_describe_list_and_update_description() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let created = kms
        .create_key()
        .description("orders")
        .key_usage(KeyUsageType::EncryptDecrypt)
        .key_spec(KeySpec::SymmetricDefault)
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("pay")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let md = created.key_metadata().unwrap();
    let id = md.key_id().to_string();
    let arn = format!("arn:aws:kms:us-east-1:000000000000:key/{id}");
    assert_eq!(md.arn(), Some(arn.as_str()));
    assert_eq!(md.aws_account_id(), Some("000000000000"));
    assert_eq!(md.description(), Some("orders"));
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert!(md.enabled());
    assert_eq!(md.key_manager(), Some(&KeyManagerType::Customer));
    assert_eq!(md.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(md.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert!(md.creation_date().is_some());

    // DescribeKey by id and by ARN.
    for k in [id.as_str(), arn.as_str()] {
        let d = kms.describe_key().key_id(k).send().await.unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), id);
    }
    kms.update_key_description()
        .key_id(&id)
        .description("orders v2")
        .send()
        .await
        .unwrap();
    let d = kms.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().description(), Some("orders v2"));

    // ListKeys pages through every key with Marker/Truncated.
    let mut ids = vec![id.clone()];
    for _ in 0..4 {
        ids.push(new_key(&kms).await);
    }
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_keys()
            .limit(2)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        assert!(page.keys().len() <= 2);
        for k in page.keys() {
            assert_eq!(
                k.key_arn().unwrap(),
                format!(
                    "arn:aws:kms:us-east-1:000000000000:key/{}",
                    k.key_id().unwrap()
                )
            );
            seen.push(k.key_id().unwrap().to_string());
        }
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_string);
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);

    // Keys are regional.
    let other = s.kms_in("eu-west-1");
    let err = other.describe_key().key_id(&id).send().await.unwrap_err();
    assert_code(&err, "NotFoundException");
    assert!(other.list_keys().send().await.unwrap().keys().is_empty());
}

#[tokio::test]
async fn unknown_keys_and_bad_input_are_refused() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let missing = "11111111-2222-3333-4444-555555555555";
    let err = kms.describe_key().key_id(missing).send().await.unwrap_err();
    assert_code(&err, "NotFoundException");
    assert_eq!(
        message(&err),
        format!("Key 'arn:aws:kms:us-east-1:000000000000:key/{missing}' does not exist")
    );
    let err = kms
        .describe_key()
        .key_id("alias/nope")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");
    let err = kms
        .describe_key()
        .key_id("arn:aws:kms:us-east-1:999999999999:key/11111111-2222-3333-4444-555555555555")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "NotFoundException");

    // Unsupported specs and invalid enum values change nothing.
    let err = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "UnsupportedOperationException");
    let err = kms
        .create_key()
        .key_usage(KeyUsageType::from("NOPE"))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    let err = kms
        .create_key()
        .policy("{not json")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "MalformedPolicyDocumentException");
    let err = kms
        .create_key()
        .tags(
            Tag::builder()
                .tag_key("aws:x")
                .tag_value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "TagException");
    let err = kms
        .create_key()
        .description("d".repeat(8193))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    assert!(
        kms.list_keys().send().await.unwrap().keys().is_empty(),
        "refused CreateKey calls created nothing"
    );
}

#[tokio::test]
async fn disable_enable_and_states() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    kms.disable_key().key_id(&id).send().await.unwrap();
    assert_eq!(state(&kms, &id).await, KeyState::Disabled);
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "DisabledException");
    assert_eq!(
        message(&err),
        format!("arn:aws:kms:us-east-1:000000000000:key/{id} is disabled.")
    );
    kms.enable_key().key_id(&id).send().await.unwrap();
    assert_eq!(state(&kms, &id).await, KeyState::Enabled);
    kms.encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn schedule_cancel_and_deletion_when_the_window_passes() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    let id = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/doomed")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let blob = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("payload"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();

    // Window outside 7..=30 is refused and changes nothing.
    for days in [6, 31] {
        let err = kms
            .schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(days)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "ValidationException");
    }
    assert_eq!(state(&kms, &id).await, KeyState::Enabled);

    let out = kms
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(out.pending_window_in_days(), Some(7));
    assert!(out.key_id().unwrap().ends_with(&id));
    let md = kms.describe_key().key_id(&id).send().await.unwrap();
    let md = md.key_metadata().unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::PendingDeletion));
    assert!(md.deletion_date().is_some());
    assert_eq!(md.pending_deletion_window_in_days(), Some(7));

    // Pending deletion: no use, no second schedule, no enable.
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "KMSInvalidStateException");
    assert!(message(&err).ends_with("is pending deletion."));
    let err = kms
        .schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "KMSInvalidStateException");
    let err = kms.enable_key().key_id(&id).send().await.unwrap_err();
    assert_code(&err, "KMSInvalidStateException");

    // Cancel: back, disabled (as AWS does); enable; the old ciphertext decrypts again.
    let c = kms.cancel_key_deletion().key_id(&id).send().await.unwrap();
    assert!(c.key_id().unwrap().ends_with(&id));
    assert_eq!(state(&kms, &id).await, KeyState::Disabled);
    let err = kms
        .cancel_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "KMSInvalidStateException");
    kms.enable_key().key_id(&id).send().await.unwrap();
    let pt = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"payload");

    // Schedule again; the job deletes nothing before the window passes, then the key and its
    // alias are gone.
    kms.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    s.clock.advance(6 * DAY);
    s.server.run_background_jobs().await;
    assert_eq!(state(&kms, &id).await, KeyState::PendingDeletion);
    s.clock.advance(DAY + Duration::from_secs(1));
    s.server.run_background_jobs().await;
    let err = kms.describe_key().key_id(&id).send().await.unwrap_err();
    assert_code(&err, "NotFoundException");
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(
        aliases
            .aliases()
            .iter()
            .all(|a| a.alias_name() != Some("alias/doomed")),
        "the deleted key's alias went with it"
    );
    let err = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidCiphertextException");
}

#[tokio::test]
async fn aws_managed_keys_cannot_be_disabled_deleted_or_repolicied() {
    let s = TestServer::dev().await;
    let kms = s.kms();
    // First use creates the AWS managed key, as AWS does.
    let md = kms
        .describe_key()
        .key_id("alias/aws/secretsmanager")
        .send()
        .await
        .unwrap();
    let md = md.key_metadata().unwrap();
    assert_eq!(md.key_manager(), Some(&KeyManagerType::Aws));
    let id = md.key_id().to_string();

    let err = kms.disable_key().key_id(&id).send().await.unwrap_err();
    assert_code(&err, "AccessDeniedException");
    let err = kms
        .schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "AccessDeniedException");
    let err = kms
        .put_key_policy()
        .key_id(&id)
        .policy_name("default")
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "AccessDeniedException");
    assert_eq!(state(&kms, &id).await, KeyState::Enabled);
    let policy = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert!(
        policy
            .policy()
            .unwrap()
            .contains("secretsmanager.us-east-1.amazonaws.com")
    );
    let rot = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(rot.key_rotation_enabled());
}
