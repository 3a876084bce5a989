use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use coffer_store::memory::MemoryStore;
use coffer_store::{Result as StoreResult, prefix_end};

use super::*;

const ACCT: &str = "123456789012";
const REGION: &str = "us-east-1";

fn keyring() -> (Arc<MemoryStore>, Keyring) {
    let store = Arc::new(MemoryStore::new());
    let kr = Keyring::new(store.clone(), RootKey::from_bytes([9u8; 32]));
    (store, kr)
}

fn ctx<'a>(arn: &'a str, ver: &'a str) -> [(&'a str, &'a str); 2] {
    [("SecretARN", arn), ("SecretVersionId", ver)]
}

async fn keys_in(store: &dyn Store, account: &str, region: &str) -> usize {
    let p = format!("kms/key/{account}/{region}/").into_bytes();
    store
        .scan(&p, &prefix_end(&p), usize::MAX)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn roundtrip_and_managed_key_created_once() {
    let (store, kr) = keyring();
    let c = ctx("arn:x", "v1");
    let blob = kr
        .encrypt(ACCT, REGION, SECRETS_MANAGER_ALIAS, b"hunter2", &c)
        .await
        .unwrap();
    assert!(!blob.windows(7).any(|w| w == b"hunter2"));
    let pt = kr.decrypt(ACCT, REGION, &blob, &c).await.unwrap();
    assert_eq!(pt.as_slice(), b"hunter2");
    // Context order does not matter, as in AWS.
    let reversed = [c[1], c[0]];
    assert_eq!(
        kr.decrypt(ACCT, REGION, &blob, &reversed)
            .await
            .unwrap()
            .as_slice(),
        b"hunter2"
    );
    kr.encrypt(ACCT, REGION, SECRETS_MANAGER_ALIAS, b"x", &c)
        .await
        .unwrap();
    kr.encrypt(ACCT, REGION, SSM_ALIAS, b"x", &c).await.unwrap();
    assert_eq!(keys_in(&*store, ACCT, REGION).await, 2);

    // A fresh keyring over the same store (restart: cold caches) decrypts it.
    let kr2 = Keyring::new(store.clone(), RootKey::from_bytes([9u8; 32]));
    assert_eq!(
        kr2.decrypt(ACCT, REGION, &blob, &c)
            .await
            .unwrap()
            .as_slice(),
        b"hunter2"
    );
    // A different root key cannot unwrap the material: a storage-level fault, not plaintext.
    let kr3 = Keyring::new(store.clone(), RootKey::from_bytes([8u8; 32]));
    assert!(matches!(
        kr3.decrypt(ACCT, REGION, &blob, &c).await,
        Err(KeyError::Store(StoreError::Internal(_)))
    ));
}

#[tokio::test]
async fn context_mismatch_and_tampering_fail() {
    let (_s, kr) = keyring();
    let c = ctx("arn:a", "v1");
    let blob = kr
        .encrypt(ACCT, REGION, SECRETS_MANAGER_ALIAS, b"value", &c)
        .await
        .unwrap();
    for bad in [
        &ctx("arn:a", "v2")[..],
        &ctx("arn:b", "v1")[..],
        &c[..1],
        &[][..],
        &[("SecretARN", "arn:a"), ("SecretVersionId", "v1"), ("x", "")][..],
    ] {
        assert!(matches!(
            kr.decrypt(ACCT, REGION, &blob, bad).await,
            Err(KeyError::InvalidCiphertext)
        ));
    }
    // Every single bit flip is rejected, never panics.
    for i in 0..blob.len() * 8 {
        let mut b = blob.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert!(kr.decrypt(ACCT, REGION, &b, &c).await.is_err(), "bit {i}");
    }
    // Truncations too.
    for n in 0..blob.len() {
        assert!(kr.decrypt(ACCT, REGION, &blob[..n], &c).await.is_err());
    }
}

#[tokio::test]
async fn blob_moved_to_other_account_or_region_fails() {
    let (_s, kr) = keyring();
    let c = ctx("arn:a", "v1");
    let blob = kr
        .encrypt(ACCT, REGION, SECRETS_MANAGER_ALIAS, b"value", &c)
        .await
        .unwrap();
    // Even once those scopes have their own managed keys (and warm caches).
    for (a, r) in [("210987654321", REGION), (ACCT, "eu-west-1")] {
        assert!(matches!(
            kr.decrypt(a, r, &blob, &c).await,
            Err(KeyError::InvalidCiphertext)
        ));
        kr.encrypt(a, r, SECRETS_MANAGER_ALIAS, b"v", &c)
            .await
            .unwrap();
        assert!(matches!(
            kr.decrypt(a, r, &blob, &c).await,
            Err(KeyError::InvalidCiphertext)
        ));
    }
}

#[tokio::test]
async fn resolve_forms() {
    let (_s, kr) = keyring();
    let k = kr
        .resolve(ACCT, REGION, SECRETS_MANAGER_ALIAS)
        .await
        .unwrap();
    assert_eq!(
        k.arn,
        format!("arn:aws:kms:{REGION}:{ACCT}:key/{}", k.key_id)
    );
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCT}:alias/aws/secretsmanager");
    for r in [k.key_id.as_str(), k.arn.as_str(), alias_arn.as_str()] {
        assert_eq!(kr.resolve(ACCT, REGION, r).await.unwrap(), k, "{r}");
    }
    let rec = kr.describe(ACCT, REGION, &k.key_id).await.unwrap();
    assert_eq!(rec.key_manager, KeyManager::Aws);
    assert_eq!(rec.key_state, KeyState::Enabled);
    assert!(!format!("{rec:?}").contains(&rec.materials[0].wrapped));

    let other_region_arn = k.arn.replace(REGION, "us-west-2");
    let upper = k.key_id.to_uppercase();
    for bad in [
        "alias/mine",
        "alias/aws/unknown",
        "alias/",
        "",
        "nope",
        "key/whatever",
        upper.as_str(),
        "00000000-0000-0000-0000-000000000000",
        other_region_arn.as_str(),
        "arn:aws:kms:us-east-1:123456789012:alias/mine",
        "arn:aws:s3:::bucket",
        "arn:",
    ] {
        assert!(
            matches!(
                kr.resolve(ACCT, REGION, bad).await,
                Err(KeyError::NotFound(_))
            ),
            "{bad}"
        );
    }
    // Scopes that could break out of their store prefix are refused.
    assert!(matches!(
        kr.resolve("1/2", REGION, SSM_ALIAS).await,
        Err(KeyError::NotFound(_))
    ));
    // China partition ARN.
    let cn = kr.resolve(ACCT, "cn-north-1", SSM_ALIAS).await.unwrap();
    assert!(cn.arn.starts_with("arn:aws-cn:kms:cn-north-1:"));
}

/// A store that yields before every read completes, so concurrent first uses really interleave
/// (all read "absent" before anyone commits), and counts conflicts.
struct Interleaving {
    inner: MemoryStore,
    conflicts: AtomicUsize,
}

#[async_trait]
impl Store for Interleaving {
    async fn get(&self, key: &[u8]) -> StoreResult<Option<Entry>> {
        tokio::task::yield_now().await;
        self.inner.get(key).await
    }
    async fn scan(&self, s: &[u8], e: &[u8], l: usize) -> StoreResult<Vec<(Vec<u8>, Entry)>> {
        self.inner.scan(s, e, l).await
    }
    async fn commit(&self, batch: WriteBatch) -> StoreResult<u64> {
        tokio::task::yield_now().await;
        let r = self.inner.commit(batch).await;
        if matches!(r, Err(StoreError::Conflict)) {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_use_creates_one_key() {
    let store = Arc::new(Interleaving {
        inner: MemoryStore::new(),
        conflicts: AtomicUsize::new(0),
    });
    // Separate keyrings (as separate nodes would be) so no in-process cache hides the race.
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let kr = Keyring::new(store.clone(), RootKey::from_bytes([9u8; 32]));
            tokio::spawn(async move {
                let c = [("n", "1")];
                let blob = kr
                    .encrypt(ACCT, REGION, SECRETS_MANAGER_ALIAS, &[i as u8], &c)
                    .await
                    .unwrap();
                (
                    kr.resolve(ACCT, REGION, SECRETS_MANAGER_ALIAS)
                        .await
                        .unwrap(),
                    blob,
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert!(results.iter().all(|(k, _)| *k == results[0].0));
    assert_eq!(keys_in(&*store, ACCT, REGION).await, 1);
    assert!(
        store.conflicts.load(Ordering::Relaxed) > 0,
        "race not exercised"
    );
    // Every blob decrypts with any keyring.
    let kr = Keyring::new(store.clone(), RootKey::from_bytes([9u8; 32]));
    for (i, (_, blob)) in results.iter().enumerate() {
        let pt = kr.decrypt(ACCT, REGION, blob, &[("n", "1")]).await.unwrap();
        assert_eq!(pt.as_slice(), &[i as u8]);
    }
}

#[test]
fn canonical_context_is_unambiguous() {
    assert_ne!(
        canonical_context(&[("a", "bc")]),
        canonical_context(&[("ab", "c")])
    );
    assert_ne!(
        canonical_context(&[("a", "")]),
        canonical_context(&[("a", ""), ("", "")])
    );
    assert_eq!(
        canonical_context(&[("a", "1"), ("b", "2")]),
        canonical_context(&[("b", "2"), ("a", "1")])
    );
}

#[test]
fn canonical_context_sorts_large_contexts_too() {
    let names: Vec<String> = (0..12).map(|i| format!("k{i:02}")).collect();
    let forward: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let mut backward = forward.clone();
    backward.reverse();
    assert_eq!(canonical_context(&forward), canonical_context(&backward));
    assert_eq!(&canonical_context(&forward)[..8], &12u64.to_be_bytes());
}

#[test]
fn in_place_aad_matches_formatted_aad() {
    let uuid = Uuid::parse_str("5f0c7b3e-8d6a-4d1e-9a57-2b8f0e4c1d90").unwrap();
    let header = [7u8; BLOB_HEADER_LEN];
    for region in [REGION, "cn-north-1", "us-gov-west-1"] {
        let c = ctx("arn:a", "v1");
        let arn = key_arn(
            partition_for_region(region),
            region,
            ACCT,
            &uuid.hyphenated().to_string(),
        );
        assert_eq!(
            blob_aad_for(&header, ACCT, region, &uuid, &c),
            blob_aad(&header, &arn, &c)
        );
    }
}

#[tokio::test]
async fn warm_data_key_cache_changes_nothing_that_fails() {
    let (_s, kr) = keyring();
    let c = ctx("arn:a", "v1");
    let blob = kr
        .encrypt(ACCT, REGION, SECRETS_MANAGER_ALIAS, b"value", &c)
        .await
        .unwrap();
    // Twice: the second decrypt is served by the cached data key.
    for _ in 0..2 {
        assert_eq!(
            kr.decrypt(ACCT, REGION, &blob, &c)
                .await
                .unwrap()
                .as_slice(),
            b"value"
        );
    }
    assert_eq!(kr.data_keys.read().unwrap().len(), 1);
    // With the data key cached, another context, scope or any bit flip still fails.
    for bad in [&ctx("arn:a", "v2")[..], &ctx("arn:b", "v1")[..], &c[..1]] {
        assert!(matches!(
            kr.decrypt(ACCT, REGION, &blob, bad).await,
            Err(KeyError::InvalidCiphertext)
        ));
    }
    for (a, r) in [("210987654321", REGION), (ACCT, "eu-west-1")] {
        assert!(matches!(
            kr.decrypt(a, r, &blob, &c).await,
            Err(KeyError::InvalidCiphertext)
        ));
    }
    for i in 0..blob.len() * 8 {
        let mut b = blob.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert!(kr.decrypt(ACCT, REGION, &b, &c).await.is_err(), "bit {i}");
    }
    // Forgetting the key drops its data keys as well as its material.
    let arn = kr
        .resolve(ACCT, REGION, SECRETS_MANAGER_ALIAS)
        .await
        .unwrap()
        .arn;
    kr.forget_key(&arn);
    assert!(kr.data_keys.read().unwrap().is_empty());
    assert_eq!(
        kr.decrypt(ACCT, REGION, &blob, &c)
            .await
            .unwrap()
            .as_slice(),
        b"value"
    );
}
