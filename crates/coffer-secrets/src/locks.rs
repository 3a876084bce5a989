//! Per-secret write serialization within one node.
//!
//! Correctness never depends on these locks: every write is an optimistically checked batch.
//! They keep concurrent writers of one secret on this node from turning into a storm of
//! conflicts and retries (each waits for the previous writer's commit instead), while writers of
//! different secrets proceed in parallel and still share group commits. Conflicts that remain
//! (another node, or two SecretId spellings landing on different stripes) are retried.

use std::hash::{BuildHasher, Hash, Hasher};

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

pub(crate) struct WriteLocks {
    stripes: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl WriteLocks {
    pub fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }

    /// Locks the stripe of the secret `secret_id` names (a name, full ARN or partial ARN) in
    /// `account`/`region`.
    pub async fn lock(&self, account: &str, region: &str, secret_id: &str) -> MutexGuard<'_, ()> {
        let mut h = self.hasher.build_hasher();
        (account, region, name_of(secret_id)).hash(&mut h);
        self.stripes[(h.finish() as usize) % STRIPES].lock().await
    }
}

/// The secret name a SecretId most likely refers to: ARNs lose their prefix and, when present,
/// the `-XXXXXX` suffix, so a name and its ARNs usually share a stripe.
fn name_of(secret_id: &str) -> &str {
    let Some((_, name)) = secret_id.split_once(":secret:") else {
        return secret_id;
    };
    match name.len().checked_sub(7) {
        Some(cut) if name.as_bytes()[cut] == b'-' && name.is_char_boundary(cut) => &name[..cut],
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_share_a_name() {
        let full = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf";
        let partial = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db";
        assert_eq!(name_of(full), "prod/db");
        assert_eq!(name_of("prod/db"), "prod/db");
        // A partial ARN keeps its (short) name; only a `-` seven from the end is a suffix.
        assert_eq!(name_of(partial), "prod/db");
        assert_eq!(name_of("arn:aws:secretsmanager:r:a:secret:x"), "x");
    }

    #[tokio::test]
    async fn same_secret_serializes_other_secrets_do_not() {
        let locks = WriteLocks::new();
        let g = locks.lock("a", "r", "prod/db").await;
        let full = "arn:aws:secretsmanager:r:a:secret:prod/db-AbCdEf";
        assert!(
            tokio::time::timeout(
                std::time::Duration::from_millis(20),
                locks.lock("a", "r", full)
            )
            .await
            .is_err(),
            "the ARN form did not wait for the name form"
        );
        // Other secrets do not wait (some of 16 names surely land on other stripes).
        let free = (0..16).filter(|i| {
            let mut h = locks.hasher.build_hasher();
            ("a", "r", format!("other-{i}").as_str()).hash(&mut h);
            locks.stripes[(h.finish() as usize) % STRIPES]
                .try_lock()
                .is_ok()
        });
        assert!(free.count() >= 15);
        drop(g);
    }
}
