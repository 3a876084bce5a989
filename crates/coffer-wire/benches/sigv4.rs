//! SigV4 verification cost with a warm derived-key cache and with a cold one.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;

use coffer_wire::sigv4::{SigningSecret, Verifier};
use common::{AKID, SECRET, Spec, T0, sign_request};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let req = sign_request(&Spec::default());
    let secret = Arc::new(SigningSecret::new(SECRET));
    let lookup = |akid: &str| (akid == AKID).then(|| secret.clone());

    let warm = Verifier::new();
    if warm.verify(&req.parts(), &req.body, T0, lookup).is_err() {
        panic!("bench request must verify");
    }
    c.bench_function("sigv4_verify_warm", |b| {
        b.iter(|| warm.verify(black_box(&req.parts()), black_box(&req.body), T0, lookup))
    });
    c.bench_function("sigv4_verify_cold", |b| {
        b.iter(|| {
            let v = Verifier::new();
            v.verify(black_box(&req.parts()), black_box(&req.body), T0, lookup)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
