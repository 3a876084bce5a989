//! Unseal's crypto path with shares: decode and checksum T share texts, combine them (GF(256)
//! Lagrange interpolation of a 32-byte key) and open the sealed root key, for 3 of 5 and 10 of 16.
//! The server adds one store read and rebuilding the services (see BENCHMARKS.md).

use std::hint::black_box;

use coffer_crypto::RootKey;
use coffer_crypto::root_wrapped::{unwrap_root, wrap_root};
use coffer_crypto::shamir::{RawShare, Share, combine, split_into_shares};
use criterion::{Criterion, criterion_group, criterion_main};

fn unseal(c: &mut Criterion) {
    for (t, n) in [(3u8, 5u8), (10, 16)] {
        let unseal_key = [7u8; 32];
        let root = RootKey::generate();
        let wrapped = wrap_root(&unseal_key, &root).expect("wrap");
        let texts: Vec<String> = split_into_shares(&unseal_key, t, n)
            .expect("split")
            .iter()
            .map(|s| s.encode().to_string())
            .collect();
        c.bench_function(&format!("unseal_{t}_of_{n}"), |b| {
            b.iter(|| {
                let raw: Vec<RawShare> = texts[..usize::from(t)]
                    .iter()
                    .map(|s| Share::decode(black_box(s)).expect("share").raw)
                    .collect();
                let key = combine(&raw).expect("combine");
                let key: [u8; 32] = key.as_slice().try_into().expect("32 bytes");
                black_box(unwrap_root(&key, &wrapped).expect("opens"))
            })
        });
    }
}

criterion_group!(benches, unseal);
criterion_main!(benches);
