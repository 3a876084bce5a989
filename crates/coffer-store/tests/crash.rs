//! Crash safety of the embedded engine: a child process commits batches as fast as it can and is
//! killed with SIGKILL mid-stream; the reopened store must hold every acknowledged batch and no
//! partial batch.
//!
//! The child is this same test binary re-executed with `COFFER_CRASH_CHILD_DIR` set, running only
//! `crash_child` (which does nothing in a normal test run).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coffer_store::embedded::EmbeddedStore;
use coffer_store::{Store, WriteBatch, prefix_end};

const DIR_ENV: &str = "COFFER_CRASH_CHILD_DIR";
const BASE_ENV: &str = "COFFER_CRASH_CHILD_BASE";

fn payload(i: u64) -> Vec<u8> {
    // Sizes vary up to a few pages so one transaction spans many pages.
    let mut v = format!("{i}:").into_bytes();
    v.resize(v.len() + (i as usize * 37) % 6000 + 1, b'x');
    v
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let base: u64 = std::env::var(BASE_ENV).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(EmbeddedStore::open(std::path::Path::new(&dir)).unwrap());
        let next = Arc::new(AtomicU64::new(base));
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                let next = next.clone();
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let mut b = WriteBatch::new();
                        b.check(format!("a/{i:012}").into_bytes(), None)
                            .put(format!("a/{i:012}").into_bytes(), payload(i))
                            .put(format!("b/{i:012}").into_bytes(), payload(i));
                        store.commit(b).await.unwrap();
                        // Raw stdout (not println!) so the test harness cannot capture it.
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "acked {i}")
                            .and_then(|_| out.flush())
                            .is_err()
                        {
                            // Parent gone: stop.
                            std::process::exit(0);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaves_every_batch_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked = BTreeSet::new();

    for round in 0..3u64 {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, dir.path())
            .env(BASE_ENV, (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let threshold = 300 + 97 * round as usize;
        let (enough_tx, enough_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("acked ") {
                    seen.push(n.parse::<u64>().unwrap());
                    if seen.len() == threshold {
                        let _ = enough_tx.send(());
                    }
                }
            }
            seen
        });
        // Kill mid-stream as soon as enough batches were acknowledged.
        let waited =
            tokio::task::spawn_blocking(move || enough_rx.recv_timeout(Duration::from_secs(50)));
        assert!(waited.await.unwrap().is_ok(), "child made no progress");
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let seen = reader.join().unwrap();
        assert!(seen.len() >= 300, "round {round}: only {} acks", seen.len());
        acked.extend(seen);

        let store = EmbeddedStore::open(dir.path()).unwrap();
        let a = store
            .scan(b"a/", &prefix_end(b"a/"), usize::MAX)
            .await
            .unwrap();
        let b = store
            .scan(b"b/", &prefix_end(b"b/"), usize::MAX)
            .await
            .unwrap();
        assert_eq!(a.len(), b.len(), "a partial batch survived the crash");
        let mut present = BTreeSet::new();
        for ((ka, ea), (kb, eb)) in a.iter().zip(&b) {
            assert_eq!(ka[2..], kb[2..], "batch keys differ");
            assert_eq!(ea, eb, "a batch's two keys differ in value or version");
            let i: u64 = std::str::from_utf8(&ka[2..]).unwrap().parse().unwrap();
            assert_eq!(&ea.value[..], &payload(i)[..]);
            present.insert(i);
        }
        eprintln!(
            "round {round}: {} acknowledged in total, {} batches on disk",
            acked.len(),
            present.len()
        );
        let missing: Vec<_> = acked.difference(&present).take(5).collect();
        assert!(missing.is_empty(), "acknowledged batches lost: {missing:?}");
        // Versions are unique per batch, and the engine continues above them.
        let versions: BTreeSet<u64> = a.iter().map(|(_, e)| e.version).collect();
        assert_eq!(versions.len(), a.len());
        let mut probe = WriteBatch::new();
        probe.put(b"probe".to_vec(), b"x".to_vec());
        let seq = store.commit(probe).await.unwrap();
        assert!(seq > *versions.last().unwrap());
    }
}
