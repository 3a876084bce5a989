//! Service tests: SecretsService on MemoryStore + a real Keyring + ManualClock.

use std::sync::Arc;
use std::time::Duration;

use coffer_core::ManualClock;
use coffer_kms::Keyring;
use coffer_secrets::SecretsService;
use coffer_store::Store;
use coffer_store::memory::MemoryStore;
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const DAY: Duration = Duration::from_secs(86_400);

struct Env {
    svc: SecretsService,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn env() -> Env {
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn Store> = store.clone();
    let keys = Arc::new(Keyring::new(
        dyn_store.clone(),
        coffer_crypto::RootKey::from_bytes([7; 32]),
    ));
    let clock = ManualClock::new();
    let svc = SecretsService::new(dyn_store, keys, clock.clone());
    Env { svc, store, clock }
}

impl Env {
    coffer_service::json_test_calls!(svc, account = ACCOUNT, region = "us-east-1");

    async fn value(&self, id: &str) -> String {
        self.ok("GetSecretValue", json!({"SecretId": id})).await["SecretString"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    async fn stages(&self, id: &str) -> serde_json::Map<String, Value> {
        let d = self.ok("DescribeSecret", json!({"SecretId": id})).await;
        d["VersionIdsToStages"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }
}

fn tok(c: char) -> String {
    std::iter::repeat_n(c, 36).collect()
}

#[tokio::test]
async fn create_get_describe() {
    let e = env();
    let c = e
        .ok("CreateSecret", json!({"Name": "prod/db", "SecretString": "s3cr3t", "Description": "d", "Tags": [{"Key": "env", "Value": "prod"}]}))
        .await;
    let arn = c["ARN"].as_str().unwrap();
    let prefix = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-");
    assert!(arn.starts_with(&prefix), "{arn}");
    let suffix = &arn[prefix.len()..];
    assert!(suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(c["Name"], "prod/db");
    let vid = c["VersionId"].as_str().unwrap().to_owned();

    // By name, full ARN and partial ARN.
    let partial = &arn[..arn.len() - 7];
    for id in ["prod/db", arn, partial] {
        let g = e.ok("GetSecretValue", json!({"SecretId": id})).await;
        assert_eq!(g["SecretString"], "s3cr3t");
        assert_eq!(g["VersionId"], vid.as_str());
        assert_eq!(g["VersionStages"], json!(["AWSCURRENT"]));
        assert!(g["CreatedDate"].is_number());
        assert!(g.get("SecretBinary").is_none());
    }
    let wrong_suffix = format!("{partial}-zzzzzz");
    assert_eq!(
        e.code("GetSecretValue", json!({"SecretId": wrong_suffix}))
            .await,
        "ResourceNotFoundException"
    );
    let other_region = arn.replace("us-east-1", "us-west-2");
    assert_eq!(
        e.code("GetSecretValue", json!({"SecretId": other_region}))
            .await,
        "ResourceNotFoundException"
    );

    let d = e.ok("DescribeSecret", json!({"SecretId": "prod/db"})).await;
    assert_eq!(d["ARN"], arn);
    assert_eq!(d["Description"], "d");
    assert!(d.get("KmsKeyId").is_none(), "default key is omitted");
    assert_eq!(d["Tags"], json!([{"Key": "env", "Value": "prod"}]));
    assert_eq!(
        d["VersionIdsToStages"],
        json!({vid.clone(): ["AWSCURRENT"]})
    );
    assert!(d["CreatedDate"].is_number() && d["LastChangedDate"].is_number());
    assert!(d.get("DeletedDate").is_none() && d.get("PrimaryRegion").is_none());

    // Binary values come back base64.
    e.ok(
        "CreateSecret",
        json!({"Name": "bin", "SecretBinary": "AAEC/w=="}),
    )
    .await;
    let g = e.ok("GetSecretValue", json!({"SecretId": "bin"})).await;
    assert_eq!(g["SecretBinary"], "AAEC/w==");
    assert!(g.get("SecretString").is_none());

    // A secret without a value has no AWSCURRENT version.
    let c = e.ok("CreateSecret", json!({"Name": "empty"})).await;
    assert!(c.get("VersionId").is_none());
    let (code, msg) = e.err("GetSecretValue", json!({"SecretId": "empty"})).await;
    assert_eq!(code, "ResourceNotFoundException");
    assert!(msg.contains("AWSCURRENT"));
}

#[tokio::test]
async fn create_errors() {
    let e = env();
    let big = "x".repeat(65_537);
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "ValidationException"),
        (json!({"Name": "bad name"}), "InvalidParameterException"),
        (json!({"Name": "a".repeat(513)}), "ValidationException"),
        (
            json!({"Name": "x", "SecretString": "a", "SecretBinary": "AA=="}),
            "InvalidParameterException",
        ),
        (
            json!({"Name": "x", "SecretString": big}),
            "ValidationException",
        ),
        (
            json!({"Name": "x", "SecretString": ""}),
            "ValidationException",
        ),
        (
            json!({"Name": "x", "SecretBinary": "!!notbase64"}),
            "SerializationException",
        ),
        (
            json!({"Name": "x", "ClientRequestToken": "short"}),
            "ValidationException",
        ),
        (
            json!({"Name": "x", "Description": "d".repeat(2049)}),
            "ValidationException",
        ),
        (
            json!({"Name": "x", "Tags": [{"Key": "aws:x", "Value": "1"}]}),
            "InvalidParameterException",
        ),
        (
            json!({"Name": "x", "Tags": (0..51).map(|i| json!({"Key": format!("k{i}"), "Value": ""})).collect::<Vec<_>>()}),
            "InvalidParameterException",
        ),
        (
            json!({"Name": "x", "KmsKeyId": "alias/does-not-exist"}),
            "ResourceNotFoundException",
        ),
        (
            json!({"Name": "x", "AddReplicaRegions": [{"Region": "us-east-1"}]}),
            "InvalidParameterException",
        ),
        (json!({"Name": 5}), "SerializationException"),
    ];
    for (body, want) in cases {
        let got = e.call("CreateSecret", body.clone()).await;
        assert_eq!(
            got.as_ref().err().map(|x| x.0.as_str()),
            Some(want),
            "{body}"
        );
    }
    // Nothing was created by the failures.
    let l = e.ok("ListSecrets", json!({})).await;
    assert_eq!(l["SecretList"], json!([]));

    e.ok("CreateSecret", json!({"Name": "dup", "SecretString": "v"}))
        .await;
    let (code, msg) = e
        .err("CreateSecret", json!({"Name": "dup", "SecretString": "v"}))
        .await;
    assert_eq!(code, "ResourceExistsException");
    assert_eq!(
        msg,
        "The operation failed because the secret dup already exists."
    );
}

#[tokio::test]
async fn client_request_token_idempotency() {
    let e = env();
    let t = tok('a');
    let c1 = e
        .ok(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": t}),
        )
        .await;
    // A retried create with the same token and value succeeds with the same result.
    let c2 = e
        .ok(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": t}),
        )
        .await;
    assert_eq!(c1, c2);
    assert_eq!(c1["VersionId"], t.as_str());
    assert_eq!(
        e.code(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "v2", "ClientRequestToken": t})
        )
        .await,
        "ResourceExistsException"
    );

    let t2 = tok('b');
    let p1 = e
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": t2}),
        )
        .await;
    let p2 = e
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": t2}),
        )
        .await;
    assert_eq!(p1, p2);
    assert_eq!(e.stages("s").await.len(), 2, "no extra version");
    let (code, msg) = e
        .err(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "other", "ClientRequestToken": t2}),
        )
        .await;
    assert_eq!(code, "ResourceExistsException");
    assert_eq!(
        msg,
        "You can't modify an existing version, you can only create a new version."
    );
    // Same bytes but binary instead of string is a different value.
    assert_eq!(
        e.code(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretBinary": "djI=", "ClientRequestToken": t2})
        )
        .await,
        "ResourceExistsException"
    );
    assert_eq!(
        e.code(
            "UpdateSecret",
            json!({"SecretId": "s", "SecretString": "zz", "ClientRequestToken": t2})
        )
        .await,
        "ResourceExistsException"
    );
    assert_eq!(
        e.code(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "x", "ClientRequestToken": "a".repeat(65)})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code("PutSecretValue", json!({"SecretId": "s"})).await,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn staging_labels_move_atomically() {
    let e = env();
    let v1 = e
        .ok("CreateSecret", json!({"Name": "s", "SecretString": "1"}))
        .await["VersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let v2 = e
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "2"}),
        )
        .await;
    assert_eq!(v2["VersionStages"], json!(["AWSCURRENT"]));
    let v2 = v2["VersionId"].as_str().unwrap().to_owned();
    let v3 = e
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "3"}),
        )
        .await["VersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let st = e.stages("s").await;
    assert_eq!(st[&v3], json!(["AWSCURRENT"]));
    assert_eq!(st[&v2], json!(["AWSPREVIOUS"]));
    assert!(
        !st.contains_key(&v1),
        "v1 lost its labels and is deprecated"
    );
    assert_eq!(
        e.ok(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"})
        )
        .await["SecretString"],
        "2"
    );
    assert_eq!(
        e.ok("GetSecretValue", json!({"SecretId": "s", "VersionId": v1}))
            .await["SecretString"],
        "1"
    );
    assert_eq!(
        e.code(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionId": v1, "VersionStage": "AWSCURRENT"})
        )
        .await,
        "ResourceNotFoundException"
    );
    assert_eq!(
        e.code(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "NOPE"})
        )
        .await,
        "ResourceNotFoundException"
    );

    // Custom labels: PutSecretValue with VersionStages leaves AWSCURRENT alone.
    let p = e
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "4", "VersionStages": ["AWSPENDING", "blue"]}),
        )
        .await;
    let v4 = p["VersionId"].as_str().unwrap().to_owned();
    assert_eq!(e.value("s").await, "3");
    // A label moves from the version that had it.
    let v5 = e
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "5", "VersionStages": ["blue"]}),
        )
        .await["VersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let st = e.stages("s").await;
    assert_eq!(st[&v4], json!(["AWSPENDING"]));
    assert_eq!(st[&v5], json!(["blue"]));

    // UpdateSecretVersionStage: roll back AWSCURRENT to v2.
    let usvs = |body: Value| e.call("UpdateSecretVersionStage", body);
    let r =
        usvs(json!({"SecretId": "s", "VersionStage": "AWSCURRENT", "MoveToVersionId": v2})).await;
    assert_eq!(
        r.unwrap_err().0,
        "InvalidParameterException",
        "must name the current holder"
    );
    let r = usvs(json!({"SecretId": "s", "VersionStage": "AWSCURRENT", "MoveToVersionId": v2, "RemoveFromVersionId": v1})).await;
    assert_eq!(r.unwrap_err().0, "InvalidParameterException");
    usvs(json!({"SecretId": "s", "VersionStage": "AWSCURRENT", "MoveToVersionId": v2, "RemoveFromVersionId": v3})).await.unwrap();
    let st = e.stages("s").await;
    assert_eq!(st[&v2], json!(["AWSCURRENT"]));
    assert_eq!(st[&v3], json!(["AWSPREVIOUS"]));
    assert_eq!(e.value("s").await, "2");
    // AWSCURRENT can't be removed outright; other labels can.
    let r = usvs(json!({"SecretId": "s", "VersionStage": "AWSCURRENT", "RemoveFromVersionId": v2}))
        .await;
    assert_eq!(r.unwrap_err().0, "InvalidParameterException");
    usvs(json!({"SecretId": "s", "VersionStage": "blue", "RemoveFromVersionId": v5}))
        .await
        .unwrap();
    assert!(!e.stages("s").await.contains_key(&v5));
    let r =
        usvs(json!({"SecretId": "s", "VersionStage": "blue", "MoveToVersionId": "f".repeat(32)}))
            .await;
    assert_eq!(r.unwrap_err().0, "ResourceNotFoundException");
    // Too many labels on one version.
    let labels: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
    let r = e
        .call(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "6", "VersionStages": labels}),
        )
        .await
        .unwrap();
    let v6 = r["VersionId"].as_str().unwrap().to_owned();
    let r =
        usvs(json!({"SecretId": "s", "VersionStage": "one-too-many", "MoveToVersionId": v6})).await;
    assert_eq!(r.unwrap_err().0, "LimitExceededException");

    // ListSecretVersionIds hides deprecated versions unless asked.
    let l = e.ok("ListSecretVersionIds", json!({"SecretId": "s"})).await;
    let ids: Vec<&str> = l["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VersionId"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&v1.as_str()) && !ids.contains(&v5.as_str()) && ids.contains(&v2.as_str())
    );
    let l = e
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true}),
        )
        .await;
    assert_eq!(l["Versions"].as_array().unwrap().len(), 6);
    assert_eq!(
        l["Versions"][0]["KmsKeyIds"],
        json!(["DefaultEncryptionKey"])
    );
    let p1 = e
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true, "MaxResults": 4}),
        )
        .await;
    assert_eq!(p1["Versions"].as_array().unwrap().len(), 4);
    let t = p1["NextToken"].as_str().unwrap();
    let p2 = e
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true, "MaxResults": 4, "NextToken": t}),
        )
        .await;
    assert_eq!(p2["Versions"].as_array().unwrap().len(), 2);
    assert!(p2.get("NextToken").is_none());
    assert_eq!(
        e.code(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "NextToken": t})
        )
        .await,
        "InvalidNextTokenException"
    );
}

#[tokio::test]
async fn first_put_gets_awscurrent_and_old_versions_are_pruned() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "s"})).await;
    let p = e
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "v", "VersionStages": ["custom"]}),
        )
        .await;
    let mut labels: Vec<String> = serde_json::from_value(p["VersionStages"].clone()).unwrap();
    labels.sort();
    assert_eq!(labels, ["AWSCURRENT", "custom"]);
    // Versions younger than a day are kept even past 100.
    for i in 0..105 {
        e.ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": format!("v{i}")}),
        )
        .await;
    }
    let count = |v: Value| v["Versions"].as_array().unwrap().len();
    let all =
        |t: Option<String>| json!({"SecretId": "s", "IncludeDeprecated": true, "NextToken": t});
    let p1 = e.ok("ListSecretVersionIds", all(None)).await;
    let t = p1["NextToken"].as_str().map(str::to_owned);
    assert_eq!(
        count(p1) + count(e.ok("ListSecretVersionIds", all(t)).await),
        106
    );
    // After a day, the next write prunes unlabeled versions oldest first down to 100.
    e.clock.advance(DAY + Duration::from_secs(1));
    e.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "last"}),
    )
    .await;
    let p1 = e.ok("ListSecretVersionIds", all(None)).await;
    assert_eq!(count(p1.clone()), 100);
    assert!(p1.get("NextToken").is_none());
    assert_eq!(e.value("s").await, "last");
    assert_eq!(
        e.ok(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "custom"})
        )
        .await["SecretString"],
        "v"
    );
}

#[tokio::test]
async fn update_secret() {
    let e = env();
    e.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "1", "Description": "old"}),
    )
    .await;
    let u = e
        .ok(
            "UpdateSecret",
            json!({"SecretId": "s", "Description": "new"}),
        )
        .await;
    assert!(u.get("VersionId").is_none());
    assert_eq!(
        e.ok("DescribeSecret", json!({"SecretId": "s"})).await["Description"],
        "new"
    );
    let u = e
        .ok(
            "UpdateSecret",
            json!({"SecretId": "s", "SecretString": "2"}),
        )
        .await;
    let v2 = u["VersionId"].as_str().unwrap();
    assert_eq!(e.stages("s").await[v2], json!(["AWSCURRENT"]));
    assert_eq!(e.value("s").await, "2");
    assert_eq!(
        e.ok(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"})
        )
        .await["SecretString"],
        "1"
    );
    assert_eq!(
        e.code(
            "UpdateSecret",
            json!({"SecretId": "nope", "Description": "x"})
        )
        .await,
        "ResourceNotFoundException"
    );
    assert_eq!(
        e.code(
            "UpdateSecret",
            json!({"SecretId": "s", "KmsKeyId": "alias/missing"})
        )
        .await,
        "ResourceNotFoundException"
    );
    // The default key by name or empty string stays the default.
    e.ok(
        "UpdateSecret",
        json!({"SecretId": "s", "KmsKeyId": "alias/aws/secretsmanager"}),
    )
    .await;
    e.ok("UpdateSecret", json!({"SecretId": "s", "KmsKeyId": ""}))
        .await;
    assert!(
        e.ok("DescribeSecret", json!({"SecretId": "s"}))
            .await
            .get("KmsKeyId")
            .is_none()
    );
    assert_eq!(e.value("s").await, "2");
}

#[tokio::test]
async fn delete_restore_purge() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "s", "SecretString": "v"}))
        .await;
    for (body, want) in [
        (
            json!({"SecretId": "s", "RecoveryWindowInDays": 6}),
            "InvalidParameterException",
        ),
        (
            json!({"SecretId": "s", "RecoveryWindowInDays": 31}),
            "InvalidParameterException",
        ),
        (
            json!({"SecretId": "s", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}),
            "InvalidParameterException",
        ),
        (json!({"SecretId": "nope"}), "ResourceNotFoundException"),
    ] {
        assert_eq!(e.code("DeleteSecret", body.clone()).await, want, "{body}");
    }
    let before = e.clock.now_secs_f();
    let d = e.ok("DeleteSecret", json!({"SecretId": "s"})).await;
    let deletion = d["DeletionDate"].as_f64().unwrap();
    assert!(
        (deletion - before - 30.0 * 86_400.0).abs() < 2.0,
        "default window is 30 days"
    );

    let marked =
        "You can't perform this operation on the secret because it was marked for deletion.";
    for (op, body) in [
        ("GetSecretValue", json!({"SecretId": "s"})),
        (
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "x"}),
        ),
        ("UpdateSecret", json!({"SecretId": "s", "Description": "x"})),
        (
            "TagResource",
            json!({"SecretId": "s", "Tags": [{"Key": "a", "Value": "b"}]}),
        ),
        ("DeleteSecret", json!({"SecretId": "s"})),
    ] {
        let (code, msg) = e.err(op, body).await;
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("InvalidRequestException", marked),
            "{op}"
        );
    }
    let desc = e.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert!(desc["DeletedDate"].is_number());
    assert_eq!(
        e.code("CreateSecret", json!({"Name": "s", "SecretString": "v"}))
            .await,
        "InvalidRequestException"
    );
    assert_eq!(
        e.ok("ListSecrets", json!({})).await["SecretList"],
        json!([])
    );
    assert_eq!(
        e.ok("ListSecrets", json!({"IncludePlannedDeletion": true}))
            .await["SecretList"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    e.ok("RestoreSecret", json!({"SecretId": "s"})).await;
    assert_eq!(e.value("s").await, "v");
    assert!(
        e.ok("DescribeSecret", json!({"SecretId": "s"}))
            .await
            .get("DeletedDate")
            .is_none()
    );
    // Restored secrets are not purged by their old index entry.
    e.clock.advance(DAY * 31);
    assert_eq!(e.svc.purge_expired().await.unwrap(), 0);
    assert_eq!(e.value("s").await, "v");

    e.ok(
        "DeleteSecret",
        json!({"SecretId": "s", "RecoveryWindowInDays": 7}),
    )
    .await;
    e.clock.advance(DAY * 6);
    assert_eq!(e.svc.purge_expired().await.unwrap(), 0);
    e.clock.advance(DAY + Duration::from_secs(1));
    assert_eq!(e.svc.purge_expired().await.unwrap(), 1);
    assert_eq!(
        e.code("DescribeSecret", json!({"SecretId": "s"})).await,
        "ResourceNotFoundException"
    );
    let (_, _, rest) = (0, 0, e.store.scan(b"sm/", b"sm0", 100).await.unwrap());
    assert!(
        rest.iter()
            .all(|(k, _)| !String::from_utf8_lossy(k).contains("/s")),
        "everything under the secret is gone"
    );
    // The name is free again.
    e.ok("CreateSecret", json!({"Name": "s", "SecretString": "new"}))
        .await;

    // Force delete: immediate, and not an error for a missing secret.
    e.ok(
        "DeleteSecret",
        json!({"SecretId": "s", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    assert_eq!(
        e.code("GetSecretValue", json!({"SecretId": "s"})).await,
        "ResourceNotFoundException"
    );
    e.ok(
        "DeleteSecret",
        json!({"SecretId": "s", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    e.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "again"}),
    )
    .await;
    assert_eq!(e.value("s").await, "again");
}

trait SecsF {
    fn now_secs_f(&self) -> f64;
}
impl SecsF for ManualClock {
    fn now_secs_f(&self) -> f64 {
        coffer_core::Clock::now_millis(self) as f64 / 1000.0
    }
}

#[tokio::test]
async fn tags() {
    let e = env();
    e.ok(
        "CreateSecret",
        json!({"Name": "s", "Tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await;
    assert_eq!(e.ok("TagResource", json!({"SecretId": "s", "Tags": [{"Key": "a", "Value": "2"}, {"Key": "b", "Value": ""}]})).await, json!({}));
    let d = e.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(
        d["Tags"],
        json!([{"Key": "a", "Value": "2"}, {"Key": "b", "Value": ""}])
    );
    e.ok(
        "UntagResource",
        json!({"SecretId": "s", "TagKeys": ["a", "missing"]}),
    )
    .await;
    let d = e.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(d["Tags"], json!([{"Key": "b", "Value": ""}]));
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    assert_eq!(
        e.code("TagResource", json!({"SecretId": "s", "Tags": many}))
            .await,
        "InvalidParameterException"
    );
    assert_eq!(
        e.code(
            "TagResource",
            json!({"SecretId": "s", "Tags": [{"Key": "aws:k", "Value": "v"}]})
        )
        .await,
        "InvalidParameterException"
    );
    assert_eq!(
        e.code(
            "TagResource",
            json!({"SecretId": "s", "Tags": [{"Key": "k".repeat(129), "Value": "v"}]})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code("TagResource", json!({"SecretId": "s"})).await,
        "ValidationException"
    );
    assert_eq!(
        e.code("TagResource", json!({"SecretId": "nope", "Tags": []}))
            .await,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn list_secrets_filters_sorting_pagination() {
    let e = env();
    for (name, desc, tags) in [
        (
            "prod/db",
            "Main database",
            json!([{"Key": "env", "Value": "production"}]),
        ),
        (
            "prod/api",
            "API key",
            json!([{"Key": "env", "Value": "production"}, {"Key": "team", "Value": "core"}]),
        ),
        (
            "dev/db",
            "dev database",
            json!([{"Key": "env", "Value": "dev"}]),
        ),
    ] {
        e.ok(
            "CreateSecret",
            json!({"Name": name, "Description": desc, "Tags": tags, "SecretString": "x"}),
        )
        .await;
        e.clock.advance(Duration::from_secs(10));
    }
    let names = |v: &Value| -> Vec<String> {
        v["SecretList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |filters: Value| e.ok("ListSecrets", json!({"Filters": filters}));
    assert_eq!(
        names(&list(json!([{"Key": "name", "Values": ["prod"]}])).await),
        ["prod/db", "prod/api"]
    );
    assert_eq!(
        names(&list(json!([{"Key": "name", "Values": ["!prod"]}])).await),
        ["dev/db"]
    );
    assert_eq!(
        names(&list(json!([{"Key": "description", "Values": ["MAIN"]}])).await),
        ["prod/db"]
    );
    assert_eq!(
        names(&list(json!([{"Key": "tag-key", "Values": ["team"]}])).await),
        ["prod/api"]
    );
    assert_eq!(
        names(&list(json!([{"Key": "tag-value", "Values": ["dev"]}])).await),
        ["dev/db"]
    );
    assert_eq!(
        names(&list(json!([{"Key": "primary-region", "Values": ["us-east-1"]}])).await).len(),
        3
    );
    assert_eq!(
        names(&list(json!([{"Key": "owning-service", "Values": ["rds"]}])).await).len(),
        0
    );
    assert_eq!(
        names(&list(json!([{"Key": "all", "Values": ["database production"]}])).await),
        ["prod/db"]
    );
    assert_eq!(names(&list(json!([{"Key": "name", "Values": ["prod"]}, {"Key": "tag-key", "Values": ["!team"]}])).await), ["prod/db"]);
    assert_eq!(
        e.code(
            "ListSecrets",
            json!({"Filters": [{"Key": "bogus", "Values": ["x"]}]})
        )
        .await,
        "ValidationException"
    );

    let l = e.ok("ListSecrets", json!({"SortOrder": "desc"})).await;
    assert_eq!(names(&l), ["dev/db", "prod/api", "prod/db"]);
    assert!(l["SecretList"][0]["SecretVersionsToStages"].is_object());
    assert!(l["SecretList"][0].get("VersionIdsToStages").is_none());
    let l = e.ok("ListSecrets", json!({"SortBy": "name"})).await;
    assert_eq!(names(&l), ["dev/db", "prod/api", "prod/db"]);
    assert_eq!(
        e.code("ListSecrets", json!({"SortBy": "size"})).await,
        "ValidationException"
    );
    for bad in [0, 101] {
        assert_eq!(
            e.code("ListSecrets", json!({"MaxResults": bad})).await,
            "ValidationException"
        );
    }

    let p1 = e.ok("ListSecrets", json!({"MaxResults": 2})).await;
    assert_eq!(names(&p1), ["prod/db", "prod/api"]);
    let t = p1["NextToken"].as_str().unwrap().to_owned();
    let p2 = e
        .ok("ListSecrets", json!({"MaxResults": 2, "NextToken": t}))
        .await;
    assert_eq!(names(&p2), ["dev/db"]);
    assert!(p2.get("NextToken").is_none());
    // Keyset tokens: removing an item of the first page doesn't shift the second.
    e.ok("CreateSecret", json!({"Name": "tmp"})).await;
    let q1 = e.ok("ListSecrets", json!({"MaxResults": 2})).await;
    let qt = q1["NextToken"].as_str().unwrap().to_owned();
    e.ok(
        "DeleteSecret",
        json!({"SecretId": "prod/db", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    let q2 = e
        .ok("ListSecrets", json!({"MaxResults": 2, "NextToken": qt}))
        .await;
    assert_eq!(names(&q2), ["dev/db", "tmp"]);
    let mut tampered = t.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        e.code(
            "ListSecrets",
            json!({"MaxResults": 2, "NextToken": tampered})
        )
        .await,
        "InvalidNextTokenException"
    );
    // A token belongs to its query.
    assert_eq!(
        e.code(
            "ListSecrets",
            json!({"MaxResults": 2, "NextToken": t, "SortBy": "name"})
        )
        .await,
        "InvalidNextTokenException"
    );
    // Another region sees nothing.
    assert_eq!(
        e.call_in("eu-west-1", "ListSecrets", json!({}))
            .await
            .unwrap()["SecretList"],
        json!([])
    );
}

#[tokio::test]
async fn last_accessed_date_is_day_resolution_and_written_once_a_day() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "s", "SecretString": "v"}))
        .await;
    assert!(
        e.ok("DescribeSecret", json!({"SecretId": "s"}))
            .await
            .get("LastAccessedDate")
            .is_none()
    );
    e.value("s").await;
    let d = e.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    let day = d["LastAccessedDate"].as_i64().unwrap();
    assert_eq!(day % 86_400, 0);
    let now = e.clock.now_secs_f() as i64;
    assert!(day <= now && now - day < 86_400);
    let access_entry = || async {
        let all = e.store.scan(b"sm/", b"sm0", 1000).await.unwrap();
        all.into_iter()
            .find(|(k, _)| k.windows(8).any(|w| w == b"/access/"))
            .map(|(_, v)| v.version)
    };
    let v1 = access_entry().await.unwrap();
    e.value("s").await;
    e.value("s").await;
    assert_eq!(access_entry().await.unwrap(), v1, "same day: no write");
    e.clock.advance(DAY);
    e.value("s").await;
    assert!(access_entry().await.unwrap() > v1);
    let l = e.ok("ListSecretVersionIds", json!({"SecretId": "s"})).await;
    assert_eq!(
        l["Versions"][0]["LastAccessedDate"].as_i64().unwrap(),
        day + 86_400
    );
}

#[tokio::test]
async fn plaintext_never_stored_and_ciphertext_bound_to_its_record() {
    let e = env();
    let marker = "PLAINTEXT-MARKER-8c1f";
    e.ok("CreateSecret", json!({"Name": "a", "SecretString": marker}))
        .await;
    let v2 = e
        .ok(
            "PutSecretValue",
            json!({"SecretId": "a", "SecretString": "other"}),
        )
        .await["VersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    e.ok("CreateSecret", json!({"Name": "b", "SecretString": "bee"}))
        .await;
    let all = e.store.scan(b"", b"\xff", 10_000).await.unwrap();
    for (_, v) in &all {
        assert!(
            !v.value
                .windows(marker.len())
                .any(|w| w == marker.as_bytes())
        );
    }
    // Copy version 1's record over version 2's: the context (version id) no longer matches.
    let versions: Vec<_> = all
        .iter()
        .filter(|(k, _)| k.starts_with(b"sm/123456789012/us-east-1/version/a:"))
        .collect();
    let (k1, e1) = versions
        .iter()
        .find(|(k, _)| !k.ends_with(v2.as_bytes()))
        .unwrap();
    let k2 = versions
        .iter()
        .find(|(k, _)| k.ends_with(v2.as_bytes()))
        .unwrap()
        .0
        .clone();
    let _ = k1;
    let mut b = coffer_store::WriteBatch::new();
    b.put(k2, e1.value.clone());
    e.store.commit(b).await.unwrap();
    let (code, msg) = e.err("GetSecretValue", json!({"SecretId": "a"})).await;
    assert_eq!(code, "DecryptionFailure");
    assert!(!msg.contains(marker));
}

#[tokio::test]
async fn batch_get_secret_value() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "a", "SecretString": "1"}))
        .await;
    e.ok("CreateSecret", json!({"Name": "b", "SecretBinary": "Ag=="}))
        .await;
    let r = e
        .ok(
            "BatchGetSecretValue",
            json!({"SecretIdList": ["a", "b", "missing"]}),
        )
        .await;
    assert_eq!(r["SecretValues"].as_array().unwrap().len(), 2);
    assert_eq!(r["SecretValues"][0]["SecretString"], "1");
    assert_eq!(r["SecretValues"][1]["SecretBinary"], "Ag==");
    assert_eq!(
        r["Errors"],
        json!([{"SecretId": "missing", "ErrorCode": "ResourceNotFoundException", "Message": "Secrets Manager can't find the specified secret."}])
    );
    let r = e
        .ok(
            "BatchGetSecretValue",
            json!({"Filters": [{"Key": "name", "Values": ["a", "b"]}], "MaxResults": 1}),
        )
        .await;
    assert_eq!(r["SecretValues"][0]["Name"], "a");
    let t = r["NextToken"].as_str().unwrap();
    let r = e.ok("BatchGetSecretValue", json!({"Filters": [{"Key": "name", "Values": ["a", "b"]}], "MaxResults": 1, "NextToken": t})).await;
    assert_eq!(r["SecretValues"][0]["Name"], "b");
    assert!(r.get("NextToken").is_none());
    for body in [
        json!({}),
        json!({"SecretIdList": ["a"], "Filters": [{"Key": "name", "Values": ["a"]}]}),
        json!({"SecretIdList": ["a"], "MaxResults": 5}),
    ] {
        assert_eq!(
            e.code("BatchGetSecretValue", body).await,
            "InvalidParameterException"
        );
    }
    let ids: Vec<String> = (0..21).map(|i| format!("s{i}")).collect();
    assert_eq!(
        e.code("BatchGetSecretValue", json!({"SecretIdList": ids}))
            .await,
        "ValidationException"
    );
}

#[tokio::test]
async fn resource_policies() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "s"})).await;
    let private = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let g = e.ok("GetResourcePolicy", json!({"SecretId": "s"})).await;
    assert!(g.get("ResourcePolicy").is_none());
    assert_eq!(
        e.ok("ListResourcePolicies", json!({"SecretId": "s"})).await["ResourcePolicies"],
        json!([])
    );
    let p = e
        .ok(
            "PutResourcePolicy",
            json!({"SecretId": "s", "ResourcePolicy": private}),
        )
        .await;
    assert_eq!(p["PolicyName"], "default");
    assert_eq!(
        e.ok("GetResourcePolicy", json!({"SecretId": "s"})).await["ResourcePolicy"],
        private
    );
    assert_eq!(
        e.ok("ListResourcePolicies", json!({"SecretId": "s"})).await["ResourcePolicies"],
        json!([{"PolicyName": "default"}])
    );
    assert_eq!(
        e.code(
            "PutResourcePolicy",
            json!({"SecretId": "s", "ResourcePolicy": "{not json"})
        )
        .await,
        "MalformedPolicyDocumentException"
    );
    assert_eq!(
        e.code(
            "PutResourcePolicy",
            json!({"SecretId": "s", "ResourcePolicy": public, "BlockPublicPolicy": true})
        )
        .await,
        "PublicPolicyException"
    );
    assert_eq!(
        e.code(
            "PutResourcePolicy",
            json!({"SecretId": "s", "ResourcePolicy": private, "PolicyName": "other"})
        )
        .await,
        "InvalidParameterException"
    );
    assert_eq!(
        e.code(
            "GetResourcePolicy",
            json!({"SecretId": "s", "PolicyName": "other"})
        )
        .await,
        "ResourceNotFoundException"
    );
    let v = e
        .ok("ValidateResourcePolicy", json!({"ResourcePolicy": public}))
        .await;
    assert_eq!(v["PolicyValidationPassed"], false);
    assert_eq!(v["ValidationErrors"].as_array().unwrap().len(), 1);
    let v = e
        .ok(
            "ValidateResourcePolicy",
            json!({"SecretId": "s", "ResourcePolicy": private}),
        )
        .await;
    assert_eq!(v["PolicyValidationPassed"], true);
    assert_eq!(
        e.code(
            "ValidateResourcePolicy",
            json!({"SecretId": "nope", "ResourcePolicy": private})
        )
        .await,
        "ResourceNotFoundException"
    );
    e.ok("DeleteResourcePolicy", json!({"SecretId": "s"})).await;
    assert!(
        e.ok("GetResourcePolicy", json!({"SecretId": "s"}))
            .await
            .get("ResourcePolicy")
            .is_none()
    );
}

#[tokio::test]
async fn replication() {
    let e = env();
    let c = e
        .ok("CreateSecret", json!({"Name": "r", "SecretString": "v1", "AddReplicaRegions": [{"Region": "us-west-2"}]}))
        .await;
    assert_eq!(c["ReplicationStatus"][0]["Region"], "us-west-2");
    assert_eq!(c["ReplicationStatus"][0]["Status"], "InSync");
    let arn = c["ARN"].as_str().unwrap();
    let replica_arn = arn.replace("us-east-1", "us-west-2");
    let west = |op: &'static str, body: Value| e.call_in("us-west-2", op, body);

    let g = west("GetSecretValue", json!({"SecretId": "r"}))
        .await
        .unwrap();
    assert_eq!(g["SecretString"], "v1");
    assert_eq!(g["ARN"], replica_arn.as_str());
    let d = west("DescribeSecret", json!({"SecretId": replica_arn}))
        .await
        .unwrap();
    assert_eq!(d["PrimaryRegion"], "us-east-1");
    let d = e.ok("DescribeSecret", json!({"SecretId": "r"})).await;
    assert_eq!(d["PrimaryRegion"], "us-east-1");
    assert_eq!(
        d["ReplicationStatus"][0]["KmsKeyId"],
        "alias/aws/secretsmanager"
    );

    // Writes to the primary reach the replica; writes to the replica are refused.
    e.ok(
        "PutSecretValue",
        json!({"SecretId": "r", "SecretString": "v2"}),
    )
    .await;
    e.ok(
        "TagResource",
        json!({"SecretId": "r", "Tags": [{"Key": "t", "Value": "1"}]}),
    )
    .await;
    assert_eq!(
        west("GetSecretValue", json!({"SecretId": "r"}))
            .await
            .unwrap()["SecretString"],
        "v2"
    );
    assert_eq!(
        west(
            "GetSecretValue",
            json!({"SecretId": "r", "VersionStage": "AWSPREVIOUS"})
        )
        .await
        .unwrap()["SecretString"],
        "v1"
    );
    assert_eq!(
        west("DescribeSecret", json!({"SecretId": "r"}))
            .await
            .unwrap()["Tags"],
        json!([{"Key": "t", "Value": "1"}])
    );
    for (op, body) in [
        (
            "PutSecretValue",
            json!({"SecretId": "r", "SecretString": "x"}),
        ),
        ("UpdateSecret", json!({"SecretId": "r", "Description": "x"})),
        ("DeleteSecret", json!({"SecretId": "r"})),
        (
            "TagResource",
            json!({"SecretId": "r", "Tags": [{"Key": "a", "Value": "b"}]}),
        ),
    ] {
        assert_eq!(
            west(op, body).await.unwrap_err().0,
            "InvalidRequestException",
            "{op}"
        );
    }
    assert_eq!(
        e.code("DeleteSecret", json!({"SecretId": "r"})).await,
        "InvalidRequestException"
    );

    // A region where the name is taken fails unless forced.
    e.call_in(
        "eu-west-1",
        "CreateSecret",
        json!({"Name": "r", "SecretString": "theirs"}),
    )
    .await
    .unwrap();
    let rep = e
        .ok(
            "ReplicateSecretToRegions",
            json!({"SecretId": "r", "AddReplicaRegions": [{"Region": "eu-west-1"}]}),
        )
        .await;
    let eu = rep["ReplicationStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Region"] == "eu-west-1")
        .unwrap()
        .clone();
    assert_eq!(eu["Status"], "Failed");
    let eu_value = e
        .call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "r"}))
        .await
        .unwrap();
    assert_eq!(eu_value["SecretString"], "theirs");
    e.ok("ReplicateSecretToRegions", json!({"SecretId": "r", "AddReplicaRegions": [{"Region": "eu-west-1"}], "ForceOverwriteReplicaSecret": true})).await;
    let eu_value = e
        .call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "r"}))
        .await
        .unwrap();
    assert_eq!(eu_value["SecretString"], "v2");
    assert_eq!(
        e.code(
            "ReplicateSecretToRegions",
            json!({"SecretId": "r", "AddReplicaRegions": [{"Region": "eu-west-1"}]})
        )
        .await,
        "InvalidParameterException"
    );
    assert_eq!(
        e.code(
            "ReplicateSecretToRegions",
            json!({"SecretId": "r", "AddReplicaRegions": [{"Region": "Mars"}]})
        )
        .await,
        "ValidationException"
    );

    // Remove one replica; promote the other.
    e.ok(
        "RemoveRegionsFromReplication",
        json!({"SecretId": "r", "RemoveReplicaRegions": ["eu-west-1"]}),
    )
    .await;
    assert_eq!(
        e.call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "r"}))
            .await
            .unwrap_err()
            .0,
        "ResourceNotFoundException"
    );
    assert_eq!(
        e.code("StopReplicationToReplica", json!({"SecretId": "r"}))
            .await,
        "InvalidRequestException"
    );
    west("StopReplicationToReplica", json!({"SecretId": "r"}))
        .await
        .unwrap();
    west(
        "PutSecretValue",
        json!({"SecretId": "r", "SecretString": "standalone"}),
    )
    .await
    .unwrap();
    assert_eq!(e.value("r").await, "v2");
    assert!(
        e.ok("DescribeSecret", json!({"SecretId": "r"}))
            .await
            .get("ReplicationStatus")
            .is_none()
    );
    e.ok(
        "DeleteSecret",
        json!({"SecretId": "r", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    assert_eq!(
        west("GetSecretValue", json!({"SecretId": "r"}))
            .await
            .unwrap()["SecretString"],
        "standalone"
    );
}

#[tokio::test]
async fn misc_operations() {
    let e = env();
    let p = e
        .ok(
            "GetRandomPassword",
            json!({"PasswordLength": 20, "ExcludePunctuation": true}),
        )
        .await;
    let pw = p["RandomPassword"].as_str().unwrap();
    assert_eq!(pw.chars().count(), 20);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        e.code("GetRandomPassword", json!({"PasswordLength": 0}))
            .await,
        "ValidationException"
    );
    let (code, _, status) = e.call("NoSuchOperation", json!({})).await.unwrap_err();
    assert_eq!((code.as_str(), status), ("UnknownOperationException", 400));
    // RotateSecret is served (see tests/rotation.rs); without a SecretId it is a bad request.
    let (code, _, _) = e.call("RotateSecret", json!({})).await.unwrap_err();
    assert_eq!(code, "ValidationException");
    assert_eq!(
        e.call("GetSecretValue", json!({"SecretId": "x"}))
            .await
            .unwrap_err()
            .2,
        400
    );
    assert_eq!(
        e.code("DescribeSecret", json!({"SecretId": ""})).await,
        "ValidationException"
    );
    // Every listed operation is dispatched (none answers UnknownOperationException).
    for op in SecretsService::operations() {
        let r = e.call(op.name, json!({})).await;
        if let Err((code, _, _)) = r {
            assert_ne!(code, "UnknownOperationException", "{}", op.name);
        }
        assert_eq!(op.action, format!("secretsmanager:{}", op.name));
    }
}

/// Tamper test: a stored ciphertext copied onto another secret's version (or onto another
/// version of the same secret) fails to decrypt, because the keyring binds the secret's ARN and
/// version id as encryption context; the secret it came from still reads.
#[tokio::test]
async fn ciphertext_moved_to_another_secret_fails_to_decrypt() {
    let e = env();
    e.ok(
        "CreateSecret",
        json!({"Name": "a", "SecretString": "alpha"}),
    )
    .await;
    e.ok(
        "CreateSecret",
        json!({"Name": "b", "SecretString": "bravo"}),
    )
    .await;
    e.ok(
        "PutSecretValue",
        json!({"SecretId": "b", "SecretString": "bravo2"}),
    )
    .await;
    let current = |stages: &serde_json::Map<String, Value>| {
        stages
            .iter()
            .find(|(_, s)| s.as_array().unwrap().contains(&json!("AWSCURRENT")))
            .map(|(v, _)| v.clone())
            .unwrap()
    };
    let va = current(&e.stages("a").await);
    let b_stages = e.stages("b").await;
    let vb = current(&b_stages);
    let vb_prev = b_stages.keys().find(|v| **v != vb).unwrap().clone();
    let key = |name: &str, vid: &str| format!("sm/{ACCOUNT}/us-east-1/version/{name}:{vid}");
    let a_record = e
        .store
        .get(key("a", &va).as_bytes())
        .await
        .unwrap()
        .unwrap();
    let b_prev_record = e
        .store
        .get(key("b", &vb_prev).as_bytes())
        .await
        .unwrap()
        .unwrap();

    // a's ciphertext under b's current version: another SecretARN in the context.
    let mut batch = coffer_store::WriteBatch::new();
    batch.put(key("b", &vb).into_bytes(), a_record.value.clone());
    e.store.commit(batch).await.unwrap();
    assert_eq!(
        e.code("GetSecretValue", json!({"SecretId": "b"})).await,
        "DecryptionFailure"
    );
    // b's previous version's ciphertext under b's current version: another SecretVersionId.
    let mut batch = coffer_store::WriteBatch::new();
    batch.put(key("b", &vb).into_bytes(), b_prev_record.value.clone());
    e.store.commit(batch).await.unwrap();
    assert_eq!(
        e.code("GetSecretValue", json!({"SecretId": "b"})).await,
        "DecryptionFailure"
    );
    assert_eq!(e.value("a").await, "alpha");
}
