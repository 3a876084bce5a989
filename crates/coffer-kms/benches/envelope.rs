//! Envelope encryption hot path: `Keyring::encrypt`/`decrypt` of a 1 KiB value with warm caches
//! (managed key already created, material unwrapped) over the in-memory store.

use std::hint::black_box;
use std::sync::Arc;

use coffer_crypto::RootKey;
use coffer_kms::{Keyring, SECRETS_MANAGER_ALIAS};
use coffer_store::memory::MemoryStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ACCT: &str = "123456789012";
const REGION: &str = "us-east-1";

fn envelope(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let keyring = Keyring::new(Arc::new(MemoryStore::new()), RootKey::generate());
    let ctx = [
        (
            "SecretARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-AbCdEf",
        ),
        ("SecretVersionId", "5f0c7b3e-8d6a-4d1e-9a57-2b8f0e4c1d90"),
    ];
    let value = vec![0x5au8; 1024];
    // Warm up: creates the managed key and caches its material.
    let blob = rt
        .block_on(keyring.encrypt(ACCT, REGION, SECRETS_MANAGER_ALIAS, &value, &ctx))
        .expect("encrypt");

    let mut g = c.benchmark_group("envelope_1KiB");
    g.throughput(Throughput::Bytes(value.len() as u64));
    g.bench_function("encrypt", |b| {
        b.iter(|| {
            rt.block_on(keyring.encrypt(
                ACCT,
                REGION,
                SECRETS_MANAGER_ALIAS,
                black_box(&value),
                &ctx,
            ))
            .expect("encrypt")
        })
    });
    g.bench_function("decrypt", |b| {
        b.iter(|| {
            rt.block_on(keyring.decrypt(ACCT, REGION, black_box(&blob), &ctx))
                .expect("decrypt")
        })
    });
    g.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
