//! Service tests: KmsService on MemoryStore + a real Keyring + ManualClock.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_core::{Clock, ManualClock};
use coffer_kms::{Keyring, KmsService};
use coffer_service::testkit::root_ctx;
use coffer_store::memory::MemoryStore;
use coffer_store::{Store, prefix_end};
use serde_json::json;

const ACCOUNT: &str = "123456789012";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}"#;
const DAY: Duration = Duration::from_secs(86_400);

struct Env {
    svc: KmsService,
    keys: Arc<Keyring>,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn env() -> Env {
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn Store> = store.clone();
    let keys = Arc::new(Keyring::new(
        dyn_store,
        coffer_crypto::RootKey::from_bytes([3; 32]),
    ));
    let clock = ManualClock::new();
    let svc = KmsService::new(keys.clone(), clock.clone());
    Env {
        svc,
        keys,
        store,
        clock,
    }
}

impl Env {
    coffer_service::json_test_calls!(svc, account = ACCOUNT, region = "us-east-1");

    async fn key(&self) -> String {
        self.ok("CreateKey", json!({})).await["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    async fn encrypt(&self, key: &str, pt: &[u8]) -> String {
        self.ok(
            "Encrypt",
            json!({"KeyId": key, "Plaintext": B64.encode(pt)}),
        )
        .await["CiphertextBlob"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    async fn decrypt(&self, blob: &str) -> Vec<u8> {
        let out = self.ok("Decrypt", json!({"CiphertextBlob": blob})).await;
        B64.decode(out["Plaintext"].as_str().unwrap()).unwrap()
    }
    async fn state(&self, key: &str) -> String {
        self.ok("DescribeKey", json!({"KeyId": key})).await["KeyMetadata"]["KeyState"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    /// Every store record, for "changed nothing" assertions.
    async fn snapshot(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.store
            .scan(b"", &prefix_end(b"\xfe"), usize::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, e)| (k, e.value.to_vec()))
            .collect()
    }
}

#[tokio::test]
async fn every_operation_in_the_table_is_served() {
    let e = env();
    for op in KmsService::operations() {
        assert!(op.action.starts_with("kms:"), "{}", op.name);
        // An empty body reaches the operation (a validation error at worst, never "unknown").
        if let Err((code, _, _)) = e.call(op.name, json!({})).await {
            assert_ne!(code, "UnknownOperationException", "{}", op.name);
        }
    }
    assert_eq!(e.code("Nope", json!({})).await, "UnknownOperationException");
}

#[tokio::test]
async fn encrypt_decrypt_and_state_checks() {
    let e = env();
    let k = e.key().await;
    let blob = e.encrypt(&k, b"abc").await;
    assert_eq!(e.decrypt(&blob).await, b"abc");
    e.ok("DisableKey", json!({"KeyId": k})).await;
    assert_eq!(
        e.code("Decrypt", json!({"CiphertextBlob": blob})).await,
        "DisabledException"
    );
    e.ok("EnableKey", json!({"KeyId": k})).await;
    assert_eq!(e.decrypt(&blob).await, b"abc");
}

#[tokio::test]
async fn refused_input_changes_nothing() {
    let e = env();
    let k = e.key().await;
    e.ok(
        "CreateAlias",
        json!({"AliasName": "alias/x", "TargetKeyId": k}),
    )
    .await;
    let before = e.snapshot().await;
    let cases = [
        (
            "Encrypt",
            json!({"KeyId": k, "Plaintext": B64.encode([0u8; 4097])}),
            "ValidationException",
        ),
        ("Encrypt", json!({"KeyId": k}), "ValidationException"),
        (
            "Encrypt",
            json!({"KeyId": k, "Plaintext": "%%%"}),
            "SerializationException",
        ),
        (
            "Encrypt",
            json!({"KeyId": "alias/none", "Plaintext": "AA=="}),
            "NotFoundException",
        ),
        (
            "Decrypt",
            json!({"CiphertextBlob": B64.encode([9u8; 80])}),
            "InvalidCiphertextException",
        ),
        (
            "CreateAlias",
            json!({"AliasName": "alias/aws/x", "TargetKeyId": k}),
            "InvalidAliasNameException",
        ),
        (
            "CreateAlias",
            json!({"AliasName": "alias/x", "TargetKeyId": k}),
            "AlreadyExistsException",
        ),
        (
            "ScheduleKeyDeletion",
            json!({"KeyId": k, "PendingWindowInDays": 3}),
            "ValidationException",
        ),
        (
            "CancelKeyDeletion",
            json!({"KeyId": k}),
            "KMSInvalidStateException",
        ),
        (
            "PutKeyPolicy",
            json!({"KeyId": k, "Policy": "[]"}),
            "MalformedPolicyDocumentException",
        ),
        (
            "PutKeyPolicy",
            json!({"KeyId": k, "Policy": "{\"Statement\":\"\u{4e2d}\"}"}),
            "ValidationException",
        ),
        (
            "TagResource",
            json!({"KeyId": k, "Tags": [{"TagKey": "aws:x", "TagValue": ""}]}),
            "TagException",
        ),
        (
            "EnableKeyRotation",
            json!({"KeyId": k, "RotationPeriodInDays": 2561}),
            "ValidationException",
        ),
        (
            "ListKeys",
            json!({"Marker": "forged"}),
            "InvalidMarkerException",
        ),
        ("ListKeys", json!({"Limit": 0}), "ValidationException"),
        (
            "GenerateDataKey",
            json!({"KeyId": k, "KeySpec": "AES_256", "NumberOfBytes": 32}),
            "ValidationException",
        ),
        (
            "GenerateDataKey",
            json!({"KeyId": k, "KeySpec": "AES_512"}),
            "ValidationException",
        ),
        ("RetireGrant", json!({}), "ValidationException"),
        (
            "RevokeGrant",
            json!({"KeyId": k, "GrantId": "nope"}),
            "NotFoundException",
        ),
        ("DescribeKey", json!({"KeyId": ""}), "ValidationException"),
        (
            "DescribeKey",
            json!({"KeyId": "arn:aws:kms:us-east-1:123456789012:alias/none"}),
            "NotFoundException",
        ),
        (
            "DescribeKey",
            json!({"KeyId": k.to_uppercase()}),
            "NotFoundException",
        ),
    ];
    for (op, body, want) in cases {
        assert_eq!(e.code(op, body.clone()).await, want, "{op} {body}");
    }
    assert!(e.snapshot().await == before, "refused calls wrote nothing");
}

#[tokio::test]
async fn deletion_runs_when_the_window_passes_and_takes_aliases_and_grants() {
    let e = env();
    let k = e.key().await;
    let keep = e.key().await;
    e.ok(
        "CreateAlias",
        json!({"AliasName": "alias/gone", "TargetKeyId": k}),
    )
    .await;
    e.ok(
        "CreateAlias",
        json!({"AliasName": "alias/kept", "TargetKeyId": keep}),
    )
    .await;
    e.ok(
        "CreateGrant",
        json!({"KeyId": k, "GranteePrincipal": "arn:aws:iam::123456789012:role/r", "Operations": ["Decrypt"]}),
    )
    .await;
    let out = e
        .ok(
            "ScheduleKeyDeletion",
            json!({"KeyId": k, "PendingWindowInDays": 10}),
        )
        .await;
    let start = e.clock.now_millis() as f64 / 1000.0;
    let deletion = out["DeletionDate"].as_f64().unwrap();
    assert_eq!(
        deletion,
        start + (10 * 86_400) as f64,
        "window counted on the service clock"
    );
    e.clock.advance(10 * DAY - Duration::from_secs(1));
    assert_eq!(e.svc.run_due().await.unwrap(), (0, 0));
    assert_eq!(e.state(&k).await, "PendingDeletion");
    e.clock.advance(Duration::from_secs(1));
    assert_eq!(e.svc.run_due().await.unwrap(), (1, 0));
    assert_eq!(
        e.code("DescribeKey", json!({"KeyId": k})).await,
        "NotFoundException"
    );
    let aliases = e.ok("ListAliases", json!({})).await;
    let names: Vec<&str> = aliases["Aliases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["AliasName"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "alias/aws/lambda",
            "alias/aws/secretsmanager",
            "alias/aws/ssm",
            "alias/kept"
        ]
    );
    let grants = e
        .store
        .scan(b"kms/grant/", &prefix_end(b"kms/grant/"), 10)
        .await
        .unwrap();
    assert!(grants.is_empty(), "grants went with the key");
    let index = e
        .store
        .scan(b"kms/deletion/", &prefix_end(b"kms/deletion/"), 10)
        .await
        .unwrap();
    assert!(index.is_empty());
}

#[tokio::test]
async fn cancelled_deletion_leaves_no_due_work() {
    let e = env();
    let k = e.key().await;
    e.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": k, "PendingWindowInDays": 7}),
    )
    .await;
    e.ok("CancelKeyDeletion", json!({"KeyId": k})).await;
    e.clock.advance(30 * DAY);
    assert_eq!(e.svc.run_due().await.unwrap(), (0, 0));
    assert_eq!(e.state(&k).await, "Disabled");
}

#[tokio::test]
async fn automatic_rotation_waits_while_disabled_and_keeps_old_versions() {
    let e = env();
    let k = e.key().await;
    let old = e.encrypt(&k, b"first").await;
    let start = e.clock.now_millis() as f64 / 1000.0;
    e.ok(
        "EnableKeyRotation",
        json!({"KeyId": k, "RotationPeriodInDays": 90}),
    )
    .await;
    e.ok("DisableKey", json!({"KeyId": k})).await;
    e.clock.advance(91 * DAY);
    assert_eq!(
        e.svc.run_due().await.unwrap(),
        (0, 0),
        "disabled keys do not rotate"
    );
    e.ok("EnableKey", json!({"KeyId": k})).await;
    assert_eq!(
        e.svc.run_due().await.unwrap(),
        (0, 1),
        "rotated once enabled"
    );
    assert_eq!(
        e.svc.run_due().await.unwrap(),
        (0, 0),
        "and not again until due"
    );
    let st = e.ok("GetKeyRotationStatus", json!({"KeyId": k})).await;
    assert_eq!(
        st["NextRotationDate"].as_f64().unwrap(),
        start + ((91 + 90) * 86_400) as f64
    );
    assert_eq!(e.decrypt(&old).await, b"first");
    let new = e.encrypt(&k, b"second").await;
    assert_ne!(
        B64.decode(&old).unwrap()[17..21],
        B64.decode(&new).unwrap()[17..21]
    );
    assert_eq!(e.decrypt(&new).await, b"second");
}

#[tokio::test]
async fn on_demand_rotations_are_limited() {
    let e = env();
    let k = e.key().await;
    for _ in 0..10 {
        e.ok("RotateKeyOnDemand", json!({"KeyId": k})).await;
    }
    assert_eq!(
        e.code("RotateKeyOnDemand", json!({"KeyId": k})).await,
        "LimitExceededException"
    );
    let r = e
        .ok("ListKeyRotations", json!({"KeyId": k, "Limit": 4}))
        .await;
    assert_eq!(r["Rotations"].as_array().unwrap().len(), 4);
    assert_eq!(r["Truncated"], json!(true));
    let r2 = e
        .ok(
            "ListKeyRotations",
            json!({"KeyId": k, "Limit": 100, "Marker": r["NextMarker"]}),
        )
        .await;
    assert_eq!(r2["Rotations"].as_array().unwrap().len(), 6);
    assert_eq!(r2["Truncated"], json!(false));
}

#[tokio::test]
async fn a_state_change_through_another_node_is_seen() {
    // Two keyrings over one store stand for two nodes; the second changes the key's state.
    let e = env();
    let k = e.key().await;
    let blob = e.encrypt(&k, b"x").await;
    assert_eq!(e.decrypt(&blob).await, b"x");
    let other_keys = Arc::new(Keyring::new(
        e.keys.store().clone(),
        coffer_crypto::RootKey::from_bytes([3; 32]),
    ));
    let other = KmsService::new(other_keys, e.clock.clone());
    let body = serde_json::to_vec(&json!({"KeyId": k})).unwrap();
    other
        .call(&root_ctx(ACCOUNT, "us-east-1"), "DisableKey", &body)
        .await
        .unwrap();
    // Within the state cache's lifetime this node may still decrypt; after it, it must not.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        e.code("Decrypt", json!({"CiphertextBlob": blob})).await,
        "DisabledException"
    );
}

#[tokio::test]
async fn aws_managed_keys_refuse_management() {
    let e = env();
    let id = e.ok("DescribeKey", json!({"KeyId": "alias/aws/ssm"})).await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    for op in [
        "DisableKey",
        "EnableKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "RotateKeyOnDemand",
    ] {
        assert_eq!(
            e.code(op, json!({"KeyId": id})).await,
            "AccessDeniedException",
            "{op}"
        );
    }
    assert_eq!(
        e.code("PutKeyPolicy", json!({"KeyId": id, "Policy": POLICY}))
            .await,
        "AccessDeniedException"
    );
    assert_eq!(
        e.code(
            "CreateAlias",
            json!({"AliasName": "alias/mine", "TargetKeyId": id})
        )
        .await,
        "AccessDeniedException"
    );
    assert_eq!(e.state(&id).await, "Enabled");
}
