//! Service tests: ParametersService on MemoryStore + a real Keyring + ManualClock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use coffer_core::{ManualClock, RequestContext};
use coffer_kms::Keyring;
use coffer_parameters::{
    Limits, ParametersService, ReferencedSecret, SecretReadError, SecretReader,
};
use coffer_service::testkit::root_ctx;
use coffer_store::memory::MemoryStore;
use coffer_store::{Entry, Store, WriteBatch, prefix_end};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const DAY: Duration = Duration::from_secs(86_400);

/// Counts the keys every read returns, to prove listings cost O(page).
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    keys_read: AtomicUsize,
}

#[async_trait]
impl Store for Counting {
    async fn get(&self, key: &[u8]) -> coffer_store::Result<Option<Entry>> {
        self.keys_read.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> coffer_store::Result<Vec<(Vec<u8>, Entry)>> {
        let r = self.inner.scan(start, end, limit).await?;
        self.keys_read.fetch_add(r.len(), Ordering::SeqCst);
        Ok(r)
    }
    async fn commit(&self, batch: WriteBatch) -> coffer_store::Result<u64> {
        self.inner.commit(batch).await
    }
}

struct Env {
    svc: ParametersService,
    store: Arc<Counting>,
    clock: Arc<ManualClock>,
}

fn env_with(f: impl FnOnce(ParametersService) -> ParametersService) -> Env {
    let store = Arc::new(Counting::default());
    let dyn_store: Arc<dyn Store> = store.clone();
    let keys = Arc::new(Keyring::new(
        dyn_store.clone(),
        coffer_crypto::RootKey::from_bytes([7; 32]),
    ));
    let clock = ManualClock::new();
    let svc = f(ParametersService::new(dyn_store, keys, clock.clone()));
    Env { svc, store, clock }
}

fn env() -> Env {
    env_with(|s| s)
}

impl Env {
    coffer_service::json_test_calls!(svc, account = ACCOUNT, region = "us-east-1");

    async fn put(&self, name: &str, value: &str) -> Value {
        self.ok(
            "PutParameter",
            json!({"Name": name, "Value": value, "Type": "String"}),
        )
        .await
    }
    async fn get(&self, name: &str) -> Value {
        self.ok(
            "GetParameter",
            json!({"Name": name, "WithDecryption": true}),
        )
        .await["Parameter"]
            .clone()
    }
    fn reads(&self) -> usize {
        self.store.keys_read.load(Ordering::SeqCst)
    }
    async fn all_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, e) in self
            .store
            .inner
            .scan(b"", &[0xff], usize::MAX)
            .await
            .unwrap()
        {
            out.extend_from_slice(&k);
            out.extend_from_slice(&e.value);
        }
        out
    }
}

fn names(v: &Value) -> Vec<String> {
    v["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn seed_secure_string_roundtrip() {
    let e = env();
    let put = e
        .ok(
            "PutParameter",
            json!({"Name": "/prod/db/password", "Value": "mysecret123", "Type": "SecureString", "KeyId": "alias/aws/ssm"}),
        )
        .await;
    assert_eq!(put, json!({"Version": 1, "Tier": "Standard"}));
    let p = e.get("/prod/db/password").await;
    assert_eq!(p["Value"], "mysecret123");
    assert_eq!(p["Type"], "SecureString");
    assert_eq!(
        p["ARN"],
        format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/prod/db/password")
    );
    assert_eq!(p["DataType"], "text");
    // Without decryption: base64 of the stored blob, never the plaintext.
    let raw = e
        .ok("GetParameter", json!({"Name": "/prod/db/password"}))
        .await["Parameter"]["Value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(raw, "mysecret123");
    let blob = base64::engine::general_purpose::STANDARD
        .decode(&raw)
        .unwrap();
    assert!(blob.len() > 40 && !blob.windows(11).any(|w| w == b"mysecret123"));
    // Plaintext is nowhere in the store.
    let all = e.all_bytes().await;
    assert!(!all.windows(11).any(|w| w == b"mysecret123"));
    // Default key when none is named; DescribeParameters shows it.
    e.ok(
        "PutParameter",
        json!({"Name": "/prod/other", "Value": "x", "Type": "SecureString"}),
    )
    .await;
    let d = e
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": ["/prod/other"]}]}),
        )
        .await;
    assert_eq!(d["Parameters"][0]["KeyId"], "alias/aws/ssm");
    // An unknown key.
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/k", "Value": "x", "Type": "SecureString", "KeyId": "alias/nope"})
        )
        .await,
        "InvalidKeyId"
    );
    assert_eq!(
        e.code("GetParameter", json!({"Name": "/k"})).await,
        "ParameterNotFound"
    );
}

#[tokio::test]
async fn ciphertext_is_bound_to_the_parameter_arn() {
    let e = env();
    for n in ["/a", "/b"] {
        e.ok(
            "PutParameter",
            json!({"Name": n, "Value": format!("v{n}"), "Type": "SecureString"}),
        )
        .await;
    }
    // Move /a's stored record under /b's key: decryption must fail, not return /a's value.
    let ka = format!("ps/{ACCOUNT}/us-east-1/n//a").into_bytes();
    let kb = format!("ps/{ACCOUNT}/us-east-1/n//b").into_bytes();
    let a = e.store.inner.get(&ka).await.unwrap().unwrap();
    let mut rec: Value = serde_json::from_slice(&a.value).unwrap();
    rec["name"] = json!("/b");
    let mut batch = WriteBatch::new();
    batch.put(kb, serde_json::to_vec(&rec).unwrap());
    e.store.inner.commit(batch).await.unwrap();
    let r = e
        .call(
            "GetParameter",
            json!({"Name": "/b", "WithDecryption": true}),
        )
        .await;
    assert!(matches!(r, Err((c, _, 500)) if c == "InternalServerError"));
}

#[tokio::test]
async fn put_rules_and_errors() {
    let e = env();
    e.put("/app/x", "1").await;
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/app/x", "Value": "2", "Type": "String"})
        )
        .await,
        "ParameterAlreadyExists"
    );
    let v = e
        .ok(
            "PutParameter",
            json!({"Name": "/app/x", "Value": "2", "Overwrite": true}),
        )
        .await;
    assert_eq!(v["Version"], 2);
    assert_eq!(e.get("/app/x").await["Value"], "2");
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/app/x", "Value": "3", "Type": "SecureString", "Overwrite": true})
        )
        .await,
        "HierarchyTypeMismatchException"
    );
    assert_eq!(
        e.code("PutParameter", json!({"Name": "/new", "Value": "3"}))
            .await,
        "ValidationException"
    );
    for bad in ["a/b", "/a/", "/a b", "/aws/x", "SSM-x", "/a//b", "/x:y", ""] {
        assert_eq!(
            e.code(
                "PutParameter",
                json!({"Name": bad, "Value": "v", "Type": "String"})
            )
            .await,
            "ValidationException",
            "{bad}"
        );
    }
    let deep = "/l".repeat(16);
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": deep, "Value": "v", "Type": "String"})
        )
        .await,
        "HierarchyLevelLimitExceededException"
    );
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/t", "Value": "v", "Type": "String", "Overwrite": true, "Tags": [{"Key": "a", "Value": "b"}]})
        )
        .await,
        "ValidationException"
    );
    // AllowedPattern: enforced on the first write and on every later one.
    e.ok(
        "PutParameter",
        json!({"Name": "/num", "Value": "123", "Type": "String", "AllowedPattern": "^\\d+$"}),
    )
    .await;
    let (c, m, _) = e
        .call(
            "PutParameter",
            json!({"Name": "/num", "Value": "12a-secret", "Overwrite": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(c, "ParameterPatternMismatchException");
    assert!(!m.contains("12a-secret"));
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/re", "Value": "x", "Type": "String", "AllowedPattern": "("})
        )
        .await,
        "InvalidAllowedPatternException"
    );
    // StringList and data types.
    e.ok(
        "PutParameter",
        json!({"Name": "/list", "Value": "a,b,c", "Type": "StringList"}),
    )
    .await;
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/list2", "Value": "a,,c", "Type": "StringList"})
        )
        .await,
        "ValidationException"
    );
    e.ok(
        "PutParameter",
        json!({"Name": "/ami", "Value": "ami-0123456789abcdef0", "Type": "String", "DataType": "aws:ec2:image"}),
    )
    .await;
    assert_eq!(e.get("/ami").await["DataType"], "aws:ec2:image");
    for (v, dt, t) in [
        ("ami-xyz", "aws:ec2:image", "String"),
        ("x", "Text", "String"),
        ("ami-0123456789abcdef0", "aws:ec2:image", "SecureString"),
    ] {
        assert_eq!(
            e.code(
                "PutParameter",
                json!({"Name": "/dt", "Value": v, "Type": t, "DataType": dt})
            )
            .await,
            "ValidationException"
        );
    }
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/kid", "Value": "v", "Type": "String", "KeyId": "alias/aws/ssm"})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/ty", "Value": "v", "Type": "Text"})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/empty", "Value": "", "Type": "String"})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code("PutParameter", json!({"Name": "/n", "Value": 5}))
            .await,
        "SerializationException"
    );
    assert_eq!(
        e.code("NoSuchOperation", json!({})).await,
        "UnknownOperationException"
    );
    // Nothing of the refused writes exists.
    for n in [
        "/new", "/t", "/re", "/list2", "/dt", "/kid", "/ty", "/empty",
    ] {
        assert_eq!(
            e.code("GetParameter", json!({"Name": n})).await,
            "ParameterNotFound"
        );
    }
}

#[tokio::test]
async fn names_with_and_without_leading_slash_are_one_parameter() {
    let e = env();
    e.put("foo", "1").await;
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/foo", "Value": "2", "Type": "String"})
        )
        .await,
        "ParameterAlreadyExists"
    );
    let p = e.get("/foo").await;
    assert_eq!(p["Name"], "foo");
    assert_eq!(
        p["ARN"],
        format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/foo")
    );
    // Root-level parameters are a one-level listing of "/".
    e.put("/bar/baz", "3").await;
    let l = e.ok("GetParametersByPath", json!({"Path": "/"})).await;
    assert_eq!(names(&l), vec!["foo"]);
    // By ARN.
    let arn = format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/bar/baz");
    assert_eq!(e.get(&arn).await["Value"], "3");
    let other = format!("arn:aws:ssm:us-west-2:{ACCOUNT}:parameter/bar/baz");
    assert_eq!(
        e.code("GetParameter", json!({"Name": other})).await,
        "ParameterNotFound"
    );
    // Regions are separate.
    assert!(
        e.call_in("eu-west-1", "GetParameter", json!({"Name": "foo"}))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn selectors_versions_labels_and_history() {
    let e = env();
    for i in 1..=3 {
        e.ok(
            "PutParameter",
            json!({"Name": "/v", "Value": format!("s{i}"), "Type": "SecureString", "Overwrite": true, "Description": format!("d{i}")}),
        )
        .await;
    }
    assert_eq!(e.get("/v:1").await["Value"], "s1");
    assert_eq!(e.get("/v:1").await["Selector"], ":1");
    assert_eq!(e.get("/v:3").await["Version"], 3);
    assert_eq!(
        e.code("GetParameter", json!({"Name": "/v:9"})).await,
        "ParameterVersionNotFound"
    );
    let l = e
        .ok(
            "LabelParameterVersion",
            json!({"Name": "/v", "ParameterVersion": 1, "Labels": ["prod", "1bad", "awsx", "ok_2"]}),
        )
        .await;
    assert_eq!(l["InvalidLabels"], json!(["1bad", "awsx"]));
    assert_eq!(l["ParameterVersion"], 1);
    assert_eq!(e.get("/v:prod").await["Value"], "s1");
    assert_eq!(
        e.code("GetParameter", json!({"Name": "/v:nolabel"})).await,
        "ParameterVersionNotFound"
    );
    // The label moves to the latest version when no version is given.
    e.ok(
        "LabelParameterVersion",
        json!({"Name": "/v", "Labels": ["prod"]}),
    )
    .await;
    assert_eq!(e.get("/v:prod").await["Value"], "s3");
    assert_eq!(
        e.code(
            "LabelParameterVersion",
            json!({"Name": "/v", "ParameterVersion": 7, "Labels": ["x"]})
        )
        .await,
        "ParameterVersionNotFound"
    );
    assert_eq!(
        e.code(
            "LabelParameterVersion",
            json!({"Name": "/nope", "Labels": ["x"]})
        )
        .await,
        "ParameterNotFound"
    );
    // At most 10 labels per version.
    let ten: Vec<String> = (0..9).map(|i| format!("l{i}")).collect();
    e.ok(
        "LabelParameterVersion",
        json!({"Name": "/v", "ParameterVersion": 2, "Labels": ten}),
    )
    .await;
    assert_eq!(
        e.code(
            "LabelParameterVersion",
            json!({"Name": "/v", "ParameterVersion": 2, "Labels": ["l9", "l10"]})
        )
        .await,
        "ParameterVersionLabelLimitExceeded"
    );
    let u = e
        .ok(
            "UnlabelParameterVersion",
            json!({"Name": "/v", "ParameterVersion": 2, "Labels": ["l0", "prod"]}),
        )
        .await;
    assert_eq!(u["RemovedLabels"], json!(["l0"]));
    assert_eq!(u["InvalidLabels"], json!(["prod"]));

    // History: oldest first, with labels; SecureString values encrypted unless asked.
    let h = e
        .ok(
            "GetParameterHistory",
            json!({"Name": "/v", "MaxResults": 2}),
        )
        .await;
    let ps = h["Parameters"].as_array().unwrap();
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[0]["Version"], 1);
    assert_eq!(ps[0]["Labels"], json!(["ok_2"]));
    assert_eq!(ps[0]["Description"], "d1");
    assert_eq!(ps[0]["KeyId"], "alias/aws/ssm");
    assert_ne!(ps[0]["Value"], "s1");
    let token = h["NextToken"].as_str().unwrap();
    let h2 = e
        .ok(
            "GetParameterHistory",
            json!({"Name": "/v", "MaxResults": 2, "NextToken": token, "WithDecryption": true}),
        )
        .await;
    assert_eq!(h2["Parameters"][0]["Version"], 3);
    assert_eq!(h2["Parameters"][0]["Value"], "s3");
    assert_eq!(h2["Parameters"][0]["Labels"], json!(["prod"]));
    assert!(h2.get("NextToken").is_none());
    assert_eq!(
        e.code(
            "GetParameterHistory",
            json!({"Name": "/other", "NextToken": token})
        )
        .await,
        "ParameterNotFound"
    );
    e.put("/other", "x").await;
    assert_eq!(
        e.code(
            "GetParameterHistory",
            json!({"Name": "/other", "NextToken": token})
        )
        .await,
        "InvalidNextToken"
    );
    assert_eq!(
        e.code(
            "GetParameterHistory",
            json!({"Name": "/v", "MaxResults": 51})
        )
        .await,
        "ValidationException"
    );
}

#[tokio::test]
async fn history_is_capped_at_100_and_labelled_oldest_blocks() {
    let e = env();
    for i in 1..=100 {
        e.ok(
            "PutParameter",
            json!({"Name": "/cap", "Value": format!("{i}"), "Type": "String", "Overwrite": true}),
        )
        .await;
    }
    e.ok(
        "LabelParameterVersion",
        json!({"Name": "/cap", "ParameterVersion": 1, "Labels": ["keep"]}),
    )
    .await;
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/cap", "Value": "101", "Overwrite": true})
        )
        .await,
        "ParameterMaxVersionLimitExceeded"
    );
    e.ok(
        "LabelParameterVersion",
        json!({"Name": "/cap", "ParameterVersion": 50, "Labels": ["keep"]}),
    )
    .await;
    let v = e
        .ok(
            "PutParameter",
            json!({"Name": "/cap", "Value": "101", "Overwrite": true}),
        )
        .await;
    assert_eq!(v["Version"], 101);
    assert_eq!(
        e.code("GetParameter", json!({"Name": "/cap:1"})).await,
        "ParameterVersionNotFound"
    );
    assert_eq!(e.get("/cap:2").await["Value"], "2");
    let mut n = 0;
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"Name": "/cap", "MaxResults": 50});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let h = e.ok("GetParameterHistory", body).await;
        n += h["Parameters"].as_array().unwrap().len();
        match h["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(n, 100);
}

#[tokio::test]
async fn get_parameters_and_deletes() {
    let e = env();
    e.put("/a", "1").await;
    e.put("/b", "2").await;
    let g = e
        .ok(
            "GetParameters",
            json!({"Names": ["/a", "/b:1", "/missing", "/a:5", "/b"]}),
        )
        .await;
    assert_eq!(names(&g), vec!["/a", "/b", "/b"]);
    assert_eq!(g["InvalidParameters"], json!(["/missing", "/a:5"]));
    let eleven: Vec<String> = (0..11).map(|i| format!("/p{i}")).collect();
    assert_eq!(
        e.code("GetParameters", json!({"Names": eleven})).await,
        "ValidationException"
    );
    assert_eq!(
        e.code("GetParameters", json!({"Names": []})).await,
        "ValidationException"
    );
    e.ok("DeleteParameter", json!({"Name": "/a"})).await;
    assert_eq!(
        e.code("DeleteParameter", json!({"Name": "/a"})).await,
        "ParameterNotFound"
    );
    // Recreated: versions start again at 1.
    assert_eq!(e.put("/a", "x").await["Version"], 1);
    let d = e
        .ok("DeleteParameters", json!({"Names": ["/a", "/b", "/zzz"]}))
        .await;
    assert_eq!(d["DeletedParameters"], json!(["/a", "/b"]));
    assert_eq!(d["InvalidParameters"], json!(["/zzz"]));
    // Deleting removes every key of the parameter (history, index, count goes back to 0).
    let left: Vec<String> = e
        .store
        .inner
        .scan(b"ps/", &prefix_end(b"ps/"), usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
        .collect();
    assert_eq!(left, vec![format!("ps/{ACCOUNT}/us-east-1/count/Standard")]);
}

#[tokio::test]
async fn paths_one_level_recursive_and_filters() {
    let e = env();
    for n in [
        "/app/a",
        "/app/b",
        "/app/sub/c",
        "/app/sub/deep/d",
        "/apple",
        "/other/x",
    ] {
        e.put(n, "v").await;
    }
    e.ok(
        "PutParameter",
        json!({"Name": "/app/s", "Value": "sec", "Type": "SecureString", "Tags": [{"Key": "team", "Value": "core"}]}),
    )
    .await;
    let one = e.ok("GetParametersByPath", json!({"Path": "/app"})).await;
    assert_eq!(names(&one), vec!["/app/a", "/app/b", "/app/s"]);
    let rec = e
        .ok(
            "GetParametersByPath",
            json!({"Path": "/app/", "Recursive": true, "WithDecryption": true}),
        )
        .await;
    assert_eq!(
        names(&rec),
        vec![
            "/app/a",
            "/app/b",
            "/app/s",
            "/app/sub/c",
            "/app/sub/deep/d"
        ]
    );
    assert_eq!(rec["Parameters"][2]["Value"], "sec");
    let enc = e.ok("GetParametersByPath", json!({"Path": "/app"})).await;
    assert_ne!(enc["Parameters"][2]["Value"], "sec");
    let f = e
        .ok(
            "GetParametersByPath",
            json!({"Path": "/app", "Recursive": true, "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}]}),
        )
        .await;
    assert_eq!(names(&f), vec!["/app/s"]);
    // AWS: tag, DataType, Name, Path and Tier are not GetParametersByPath filters.
    for (filters, code) in [
        (
            json!([{"Key": "tag:team", "Values": ["core"]}]),
            "InvalidFilterKey",
        ),
        (
            json!([{"Key": "DataType", "Values": ["text"]}]),
            "InvalidFilterKey",
        ),
        (
            json!([{"Key": "Name", "Values": ["x"]}]),
            "InvalidFilterKey",
        ),
        (
            json!([{"Key": "Tier", "Values": ["Standard"]}]),
            "InvalidFilterKey",
        ),
        (
            json!([{"Key": "Type", "Option": "Contains", "Values": ["String"]}]),
            "InvalidFilterOption",
        ),
        (
            json!([{"Key": "Type", "Values": ["Nope"]}]),
            "InvalidFilterValue",
        ),
        (
            json!([{"Key": "Bogus", "Values": ["x"]}]),
            "InvalidFilterKey",
        ),
    ] {
        assert_eq!(
            e.code(
                "GetParametersByPath",
                json!({"Path": "/app", "ParameterFilters": filters})
            )
            .await,
            code
        );
    }
    assert_eq!(
        e.code("GetParametersByPath", json!({"Path": "app"})).await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "GetParametersByPath",
            json!({"Path": "/app", "MaxResults": 11})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "GetParametersByPath",
            json!({"Path": "/app", "NextToken": "forged.token"})
        )
        .await,
        "InvalidNextToken"
    );
}

#[tokio::test]
async fn thousands_paginate_by_path_at_o_page_cost() {
    let e = env();
    // 3,000 under /big (1,500 one level down, 1,500 two levels down) and 2,000 elsewhere.
    for i in 0..1500 {
        e.put(&format!("/big/p{i:05}"), "v").await;
        e.put(&format!("/big/sub/q{i:05}"), "v").await;
    }
    for i in 0..2000 {
        e.put(&format!("/noise/n{i:05}"), "v").await;
    }
    for (recursive, expected) in [(false, 1500usize), (true, 3000)] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut max_reads = 0;
        loop {
            let mut body = json!({"Path": "/big", "Recursive": recursive, "MaxResults": 10});
            if let Some(t) = &token {
                body["NextToken"] = json!(t);
            }
            let before = e.reads();
            let page = e.ok("GetParametersByPath", body).await;
            max_reads = max_reads.max(e.reads() - before);
            seen.extend(names(&page));
            match page["NextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), expected, "recursive={recursive}");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), expected, "no duplicates");
        assert!(seen.iter().all(|n| n.starts_with("/big/")));
        // A page reads its 10 parameters (+1 look-ahead; one-level adds one index entry each)
        // and a settings-free constant, never the 5,000 parameters in the store.
        assert!(max_reads <= 25, "a page read {max_reads} keys");
    }
    // The first page costs the same in a store ten times smaller.
    let small = env();
    for i in 0..300 {
        small.put(&format!("/big/p{i:05}"), "v").await;
    }
    let before = small.reads();
    small
        .ok(
            "GetParametersByPath",
            json!({"Path": "/big", "Recursive": true}),
        )
        .await;
    let small_cost = small.reads() - before;
    let before = e.reads();
    e.ok(
        "GetParametersByPath",
        json!({"Path": "/big", "Recursive": true}),
    )
    .await;
    assert_eq!(e.reads() - before, small_cost);
}

#[tokio::test]
async fn filtered_listing_examines_a_bounded_number_of_records() {
    let e = env();
    for i in 0..1000 {
        e.put(&format!("/f/p{i:04}"), "v").await;
    }
    e.ok(
        "PutParameter",
        json!({"Name": "/f/zz", "Value": "v", "Type": "StringList"}),
    )
    .await;
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    let mut calls = 0;
    loop {
        let mut body =
            json!({"Path": "/f", "ParameterFilters": [{"Key": "Type", "Values": ["StringList"]}]});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let before = e.reads();
        let page = e.ok("GetParametersByPath", body).await;
        assert!(
            e.reads() - before < 600,
            "one call read {}",
            e.reads() - before
        );
        calls += 1;
        found.extend(names(&page));
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(found, vec!["/f/zz"]);
    assert!(
        calls > 1,
        "the scan budget split the walk into several calls"
    );
}

#[tokio::test]
async fn describe_parameters_filters() {
    let e = env();
    e.put("/d/a", "1").await;
    e.ok(
        "PutParameter",
        json!({"Name": "/d/b", "Value": "2", "Type": "SecureString", "Description": "bee", "Tags": [{"Key": "env", "Value": "prod"}]}),
    )
    .await;
    e.ok(
        "PutParameter",
        json!({"Name": "/d/deep/c", "Value": "3", "Type": "StringList", "Tier": "Advanced"}),
    )
    .await;
    e.put("rootname", "4").await;
    e.ok(
        "LabelParameterVersion",
        json!({"Name": "/d/a", "Labels": ["golden"]}),
    )
    .await;
    let q = |f: Value| json!({"ParameterFilters": f});
    let cases = [
        (
            q(json!([{"Key": "Path", "Values": ["/d"]}])),
            vec!["/d/a", "/d/b"],
        ),
        (
            q(json!([{"Key": "Path", "Option": "Recursive", "Values": ["/d"]}])),
            vec!["/d/a", "/d/b", "/d/deep/c"],
        ),
        (
            q(json!([{"Key": "Path", "Values": ["/"]}])),
            vec!["rootname"],
        ),
        (
            q(json!([{"Key": "Name", "Option": "BeginsWith", "Values": ["/d/d"]}])),
            vec!["/d/deep/c"],
        ),
        (
            q(json!([{"Key": "Name", "Option": "Contains", "Values": ["ootn"]}])),
            vec!["rootname"],
        ),
        (
            q(json!([{"Key": "Type", "Values": ["SecureString"]}])),
            vec!["/d/b"],
        ),
        (
            q(json!([{"Key": "Tier", "Values": ["Advanced"]}])),
            vec!["/d/deep/c"],
        ),
        (q(json!([{"Key": "tag:env"}])), vec!["/d/b"]),
        (
            q(json!([{"Key": "KeyId", "Values": ["alias/aws/ssm"]}])),
            vec!["/d/b"],
        ),
        (
            q(json!([{"Key": "DataType", "Values": ["text"]}])).clone(),
            vec!["/d/a", "/d/b", "/d/deep/c", "rootname"],
        ),
        (
            json!({"Filters": [{"Key": "Type", "Values": ["StringList"]}]}),
            vec!["/d/deep/c"],
        ),
    ];
    for (body, want) in cases {
        let d = e.ok("DescribeParameters", body.clone()).await;
        assert_eq!(names(&d), want, "{body}");
    }
    let d = e
        .ok(
            "DescribeParameters",
            q(json!([{"Key": "Name", "Values": ["/d/b"]}])),
        )
        .await;
    let m = &d["Parameters"][0];
    assert_eq!(m["Description"], "bee");
    assert_eq!(m["Tier"], "Standard");
    assert_eq!(m["Version"], 1);
    assert_eq!(
        m["LastModifiedUser"],
        format!("arn:aws:iam::{ACCOUNT}:root")
    );
    assert!(m.get("Value").is_none());
    assert_eq!(
        e.code(
            "DescribeParameters",
            json!({"Filters": [{"Key": "Name", "Values": ["x"]}], "ParameterFilters": []})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "DescribeParameters",
            q(json!([{"Key": "Path", "Option": "Equals", "Values": ["/d"]}]))
        )
        .await,
        "InvalidFilterOption"
    );
    assert_eq!(
        e.code(
            "DescribeParameters",
            q(json!([{"Key": "Path", "Values": ["d"]}]))
        )
        .await,
        "InvalidFilterValue"
    );
    assert_eq!(
        e.code("DescribeParameters", json!({"MaxResults": 51}))
            .await,
        "ValidationException"
    );
    // Paging through everything, 1 at a time.
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 1});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let d = e.ok("DescribeParameters", body).await;
        all.extend(names(&d));
        match d["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(all, vec!["/d/a", "/d/b", "/d/deep/c", "rootname"]);
}

#[tokio::test]
async fn tiers_and_quotas() {
    let e = env_with(|s| {
        s.with_limits(Limits {
            standard_parameters: 2,
            advanced_parameters: 1,
        })
    });
    let big = "x".repeat(5000);
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/big", "Value": big, "Type": "String"})
        )
        .await,
        "ValidationException"
    );
    let r = e
        .ok(
            "PutParameter",
            json!({"Name": "/big", "Value": big, "Type": "String", "Tier": "Intelligent-Tiering"}),
        )
        .await;
    assert_eq!(r["Tier"], "Advanced");
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/huge", "Value": "x".repeat(8193), "Type": "String", "Tier": "Advanced"})
        )
        .await,
        "ValidationException"
    );
    // No way back to Standard.
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/big", "Value": "small", "Overwrite": true, "Tier": "Standard"})
        )
        .await,
        "ValidationException"
    );
    // Overwrite without a tier keeps Advanced.
    let r = e
        .ok(
            "PutParameter",
            json!({"Name": "/big", "Value": "small", "Overwrite": true}),
        )
        .await;
    assert_eq!(r["Tier"], "Advanced");
    // Quotas: 1 advanced (taken), 2 standard.
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/adv2", "Value": "v", "Type": "String", "Tier": "Advanced"})
        )
        .await,
        "ParameterLimitExceeded"
    );
    e.put("/s1", "v").await;
    e.put("/s2", "v").await;
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/s3", "Value": "v", "Type": "String"})
        )
        .await,
        "ParameterLimitExceeded"
    );
    // Standard → Advanced is allowed when the quota has room; deleting frees room.
    e.ok("DeleteParameter", json!({"Name": "/big"})).await;
    let r = e
        .ok(
            "PutParameter",
            json!({"Name": "/s1", "Value": "v2", "Overwrite": true, "Tier": "Advanced"}),
        )
        .await;
    assert_eq!(r["Tier"], "Advanced");
    e.put("/s3", "v").await;
    // Policies need Advanced.
    let pol = r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"1","Unit":"Days"}}]"#;
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/s3", "Value": "v", "Overwrite": true, "Tier": "Standard", "Policies": pol})
        )
        .await,
        "ValidationException"
    );
}

#[tokio::test]
async fn default_tier_setting_and_service_settings() {
    let e = env();
    let id = "/ssm/parameter-store/default-parameter-tier";
    let g = e.ok("GetServiceSetting", json!({"SettingId": id})).await;
    assert_eq!(g["ServiceSetting"]["SettingValue"], "Standard");
    assert_eq!(g["ServiceSetting"]["Status"], "Default");
    e.ok(
        "UpdateServiceSetting",
        json!({"SettingId": id, "SettingValue": "Advanced"}),
    )
    .await;
    let arn = format!("arn:aws:ssm:us-east-1:{ACCOUNT}:servicesetting{id}");
    let g = e.ok("GetServiceSetting", json!({"SettingId": arn})).await;
    assert_eq!(g["ServiceSetting"]["SettingValue"], "Advanced");
    assert_eq!(g["ServiceSetting"]["Status"], "Customized");
    assert_eq!(g["ServiceSetting"]["ARN"], arn);
    assert_eq!(e.put("/t", "v").await["Tier"], "Advanced");
    let r = e.ok("ResetServiceSetting", json!({"SettingId": id})).await;
    assert_eq!(r["ServiceSetting"]["SettingValue"], "Standard");
    assert_eq!(e.put("/u", "v").await["Tier"], "Standard");
    assert_eq!(
        e.code(
            "UpdateServiceSetting",
            json!({"SettingId": id, "SettingValue": "Bogus"})
        )
        .await,
        "ValidationException"
    );
    let ht = "/ssm/parameter-store/high-throughput-enabled";
    e.ok(
        "UpdateServiceSetting",
        json!({"SettingId": ht, "SettingValue": "true"}),
    )
    .await;
    assert_eq!(
        e.ok("GetServiceSetting", json!({"SettingId": ht})).await["ServiceSetting"]["SettingValue"],
        "true"
    );
    assert_eq!(
        e.code("GetServiceSetting", json!({"SettingId": "/ssm/nope"}))
            .await,
        "ServiceSettingNotFound"
    );
}

#[tokio::test]
async fn tags() {
    let e = env();
    e.ok(
        "PutParameter",
        json!({"Name": "/tg", "Value": "v", "Type": "String", "Tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await;
    let base = json!({"ResourceType": "Parameter", "ResourceId": "/tg"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    e.ok(
        "AddTagsToResource",
        with(json!({"Tags": [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "9"}]})),
    )
    .await;
    let l = e.ok("ListTagsForResource", base.clone()).await;
    assert_eq!(
        l["TagList"],
        json!([{"Key": "a", "Value": "9"}, {"Key": "b", "Value": "2"}])
    );
    e.ok("RemoveTagsFromResource", with(json!({"TagKeys": ["a"]})))
        .await;
    assert_eq!(
        e.ok("ListTagsForResource", base.clone()).await["TagList"],
        json!([{"Key": "b", "Value": "2"}])
    );
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    assert_eq!(
        e.code("AddTagsToResource", with(json!({"Tags": many})))
            .await,
        "TooManyTagsError"
    );
    assert_eq!(
        e.code(
            "AddTagsToResource",
            with(json!({"Tags": [{"Key": "aws:x", "Value": "v"}]}))
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "AddTagsToResource",
            with(json!({"Tags": [{"Key": "semi;colon", "Value": "v"}]}))
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "ListTagsForResource",
            json!({"ResourceType": "Document", "ResourceId": "/tg"})
        )
        .await,
        "InvalidResourceType"
    );
    assert_eq!(
        e.code(
            "ListTagsForResource",
            json!({"ResourceType": "Bogus", "ResourceId": "/tg"})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/none"})
        )
        .await,
        "InvalidResourceId"
    );
}

#[tokio::test]
async fn resource_policies() {
    let e = env();
    e.ok(
        "PutParameter",
        json!({"Name": "/shared", "Value": "v", "Type": "String", "Tier": "Advanced"}),
    )
    .await;
    e.put("/std", "v").await;
    let arn = format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/shared");
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"ssm:GetParameter","Resource":"*"}]}"#;
    let p = e
        .ok(
            "PutResourcePolicy",
            json!({"ResourceArn": arn, "Policy": doc}),
        )
        .await;
    let (id, hash) = (
        p["PolicyId"].as_str().unwrap().to_owned(),
        p["PolicyHash"].as_str().unwrap().to_owned(),
    );
    let g = e
        .ok("GetResourcePolicies", json!({"ResourceArn": arn}))
        .await;
    assert_eq!(
        g["Policies"],
        json!([{"PolicyId": id, "PolicyHash": hash, "Policy": doc}])
    );
    assert_eq!(
        e.code(
            "PutResourcePolicy",
            json!({"ResourceArn": arn, "Policy": doc})
        )
        .await,
        "ResourcePolicyLimitExceededException"
    );
    assert_eq!(
        e.code(
            "PutResourcePolicy",
            json!({"ResourceArn": arn, "Policy": doc, "PolicyId": id, "PolicyHash": "stale"})
        )
        .await,
        "ResourcePolicyConflictException"
    );
    assert_eq!(
        e.code(
            "PutResourcePolicy",
            json!({"ResourceArn": arn, "Policy": "not json"})
        )
        .await,
        "MalformedResourcePolicyDocumentException"
    );
    let std_arn = format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/std");
    assert_eq!(
        e.code(
            "PutResourcePolicy",
            json!({"ResourceArn": std_arn, "Policy": doc})
        )
        .await,
        "ResourcePolicyInvalidParameterException"
    );
    let none_arn = format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/none");
    assert_eq!(
        e.code("GetResourcePolicies", json!({"ResourceArn": none_arn}))
            .await,
        "ResourceNotFoundException"
    );
    assert_eq!(
        e.code(
            "DeleteResourcePolicy",
            json!({"ResourceArn": arn, "PolicyId": "nope", "PolicyHash": hash})
        )
        .await,
        "ResourcePolicyNotFoundException"
    );
    e.ok(
        "DeleteResourcePolicy",
        json!({"ResourceArn": arn, "PolicyId": id, "PolicyHash": hash}),
    )
    .await;
    assert_eq!(
        e.ok("GetResourcePolicies", json!({"ResourceArn": arn}))
            .await["Policies"],
        json!([])
    );
}

#[tokio::test]
async fn expiration_policy_fires_on_the_clock() {
    let e = env();
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let ts = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let pol =
        format!(r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{ts}"}}}}]"#);
    e.ok(
        "PutParameter",
        json!({"Name": "/exp", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": pol}),
    )
    .await;
    e.ok(
        "PutParameter",
        json!({"Name": "/exp2", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": pol}),
    )
    .await;
    // A policy replaced by an empty list no longer fires.
    e.ok(
        "PutParameter",
        json!({"Name": "/exp2", "Value": "v2", "Overwrite": true, "Policies": "[]"}),
    )
    .await;
    let d = e
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": ["/exp"]}]}),
        )
        .await;
    assert_eq!(
        d["Parameters"][0]["Policies"][0]["PolicyType"],
        "Expiration"
    );
    assert_eq!(d["Parameters"][0]["Policies"][0]["PolicyStatus"], "Pending");
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    e.clock.advance(DAY);
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    e.get("/exp").await;
    e.clock.advance(DAY + Duration::from_secs(60));
    assert_eq!(e.svc.run_policies().await.unwrap(), 1);
    assert_eq!(
        e.code("GetParameter", json!({"Name": "/exp"})).await,
        "ParameterNotFound"
    );
    e.get("/exp2").await;
    assert_eq!(e.svc.run_policies().await.unwrap(), 0);
    // Bad policy documents are refused with the modelled errors, writing nothing.
    for (p, code) in [
        (
            r#"[{"Type":"Bogus","Version":"1.0","Attributes":{}}]"#,
            "InvalidPolicyTypeException",
        ),
        (
            r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"yesterday"}}]"#,
            "InvalidPolicyAttributeException",
        ),
        (
            r#"[{"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"1","Unit":"Days"}}]"#,
            "IncompatiblePolicyException",
        ),
    ] {
        assert_eq!(
            e.code(
                "PutParameter",
                json!({"Name": "/bad", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": p})
            )
            .await,
            code
        );
    }
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"1","Unit":"Days"}}))
        .collect();
    assert_eq!(
        e.code(
            "PutParameter",
            json!({"Name": "/bad", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": Value::Array(eleven).to_string()})
        )
        .await,
        "PoliciesLimitExceededException"
    );
    assert_eq!(
        e.code("GetParameter", json!({"Name": "/bad"})).await,
        "ParameterNotFound"
    );
}

struct FakeSecrets;

#[async_trait]
impl SecretReader for FakeSecrets {
    async fn read_secret(
        &self,
        _ctx: &RequestContext,
        secret_id: &str,
        version: Option<&str>,
    ) -> Result<ReferencedSecret, SecretReadError> {
        match (secret_id, version) {
            ("prod/db", None | Some("AWSCURRENT")) => Ok(ReferencedSecret {
                arn: format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-AbCdEf"),
                value: zeroize::Zeroizing::new("hunter2".into()),
                created_ms: 1_700_000_000_000,
                source_result: "{}".into(),
            }),
            _ => Err(SecretReadError::NotFound),
        }
    }
}

#[tokio::test]
async fn secrets_manager_references() {
    let e = env_with(|s| s.with_secret_reader(Arc::new(FakeSecrets)));
    let p = e.get("/aws/reference/secretsmanager/prod/db").await;
    assert_eq!(p["Value"], "hunter2");
    assert_eq!(p["Type"], "SecureString");
    assert_eq!(p["Name"], "/aws/reference/secretsmanager/prod/db");
    assert!(p["ARN"].as_str().unwrap().contains(":secret:prod/db-"));
    assert_eq!(
        e.get("/aws/reference/secretsmanager/prod/db:AWSCURRENT")
            .await["Selector"],
        ":AWSCURRENT"
    );
    assert_eq!(
        e.code(
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/prod/db"})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        e.code(
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/nope", "WithDecryption": true})
        )
        .await,
        "ParameterNotFound"
    );
    let g = e
        .ok(
            "GetParameters",
            json!({"Names": ["/aws/reference/secretsmanager/prod/db", "/aws/reference/secretsmanager/nope"], "WithDecryption": true}),
        )
        .await;
    assert_eq!(g["Parameters"][0]["Value"], "hunter2");
    assert_eq!(
        g["InvalidParameters"],
        json!(["/aws/reference/secretsmanager/nope"])
    );
    // Without a reader the reference namespace is empty; and it can't be written.
    let plain = env();
    assert_eq!(
        plain
            .code(
                "GetParameter",
                json!({"Name": "/aws/reference/secretsmanager/prod/db", "WithDecryption": true})
            )
            .await,
        "ParameterNotFound"
    );
    assert_eq!(
        plain
            .code(
                "PutParameter",
                json!({"Name": "/aws/reference/secretsmanager/x", "Value": "v", "Type": "String"})
            )
            .await,
        "ValidationException"
    );
}

#[tokio::test]
async fn concurrent_creates_and_overwrites_all_succeed() {
    let e = Arc::new(env());
    let mut tasks = Vec::new();
    for i in 0..32 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            e.call(
                "PutParameter",
                json!({"Name": format!("/c/p{i}"), "Value": "v", "Type": "String"}),
            )
            .await
            .map(|_| ())?;
            e.call(
                "PutParameter",
                json!({"Name": "/c/shared", "Value": format!("{i}"), "Type": "String", "Overwrite": true}),
            )
            .await
            .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(e.get("/c/shared").await["Version"], 32);
    let d = e
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Path", "Values": ["/c"]}]}),
        )
        .await;
    assert_eq!(names(&d).len(), 33);
}

#[test]
fn operation_table() {
    let ops = ParametersService::operations();
    assert_eq!(ops.len(), 19);
    let get = ops.iter().find(|o| o.name == "GetParameter").unwrap();
    assert_eq!(get.action, "ssm:GetParameter");
    assert!(get.read_only);
    assert!(
        !ops.iter()
            .find(|o| o.name == "PutParameter")
            .unwrap()
            .read_only
    );
}

/// GetParameter and GetParametersByPath write their bodies directly; they must be byte for byte
/// what serialising the map form (still used by GetParameters) gives.
#[tokio::test]
async fn direct_bodies_match_the_map_form() {
    let e = env();
    e.clock.advance(Duration::from_millis(1_700_000_000_123));
    e.put("/d/a", "plain \"quoted\" \\ \u{e9} \u{1}").await;
    e.ok(
        "PutParameter",
        json!({"Name": "/d/a", "Value": "second", "Type": "String", "Overwrite": true}),
    )
    .await;
    e.ok(
        "PutParameter",
        json!({"Name": "/d/b", "Value": "s3cr\u{e9}t\n", "Type": "SecureString"}),
    )
    .await;
    e.ok(
        "PutParameter",
        json!({"Name": "/d/c", "Value": "x,y", "Type": "StringList"}),
    )
    .await;
    e.put("rootname", "r").await;
    e.ok(
        "LabelParameterVersion",
        json!({"Name": "/d/a", "ParameterVersion": 1, "Labels": ["old"]}),
    )
    .await;
    let raw = |op: &'static str, body: Value| {
        let svc = &e.svc;
        async move {
            let body = serde_json::to_vec(&body).unwrap();
            svc.call(&root_ctx(ACCOUNT, "us-east-1"), op, &body)
                .await
                .unwrap()
        }
    };
    let map_form = |name: &'static str, decrypt: bool| {
        let raw = &raw;
        async move {
            let v: Value = serde_json::from_slice(
                &raw(
                    "GetParameters",
                    json!({"Names": [name], "WithDecryption": decrypt}),
                )
                .await,
            )
            .unwrap();
            assert_eq!(v["InvalidParameters"], json!([]), "{name}");
            v["Parameters"][0].clone()
        }
    };
    for name in [
        "/d/a",
        "/d/a:1",
        "/d/a:old",
        "/d/a:2",
        "/d/b",
        "/d/c",
        "rootname",
        "/rootname",
    ] {
        for decrypt in [false, true] {
            let direct = raw(
                "GetParameter",
                json!({"Name": name, "WithDecryption": decrypt}),
            )
            .await;
            let expected =
                serde_json::to_vec(&json!({"Parameter": map_form(name, decrypt).await})).unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
    for decrypt in [false, true] {
        let first = raw(
            "GetParametersByPath",
            json!({"Path": "/d", "MaxResults": 2, "WithDecryption": decrypt}),
        )
        .await;
        let first_v: Value = serde_json::from_slice(&first).unwrap();
        let token = first_v["NextToken"].as_str().unwrap().to_owned();
        let expected = json!({
            "NextToken": token,
            "Parameters": [map_form("/d/a", decrypt).await, map_form("/d/b", decrypt).await],
        });
        assert_eq!(first, serde_json::to_vec(&expected).unwrap());
        let second = raw(
            "GetParametersByPath",
            json!({"Path": "/d", "MaxResults": 2, "WithDecryption": decrypt, "NextToken": token}),
        )
        .await;
        let expected = json!({"Parameters": [map_form("/d/c", decrypt).await]});
        assert_eq!(second, serde_json::to_vec(&expected).unwrap());
    }
    let empty = raw("GetParametersByPath", json!({"Path": "/none"})).await;
    assert_eq!(empty, b"{\"Parameters\":[]}");
}
