//! Cost of presenting a leaf: a cache hit (every connection after the first
//! to a host) against a miss (keygen + signature for a new host).

use std::sync::atomic::{AtomicU64, Ordering};

use cordon_tls::{CertAuthority, LeafOptions};
use criterion::{Criterion, criterion_group, criterion_main};

fn leaf(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = CertAuthority::load_or_create_with(
        dir.path(),
        LeafOptions {
            cache_capacity: 1_000_000,
            ..LeafOptions::default()
        },
    )
    .expect("CA");
    ca.leaf_for("api.github.com").expect("warm entry");

    let mut group = c.benchmark_group("leaf");
    group.bench_function("cache_hit", |b| {
        b.iter(|| {
            ca.leaf_for(std::hint::black_box("api.github.com"))
                .expect("hit")
        })
    });
    let counter = AtomicU64::new(0);
    group.bench_function("cache_miss_mint", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            ca.leaf_for(&format!("host-{n}.example.com")).expect("mint")
        })
    });
    group.finish();
}

criterion_group!(benches, leaf);
criterion_main!(benches);
