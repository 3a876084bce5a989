//! Per-resource write serialization within one node.
//!
//! Correctness never depends on these locks: every write is an optimistically checked batch.
//! They keep concurrent writers of one resource on this node from turning into a storm of
//! conflicts and retries (each waits for the previous writer's commit instead), while writers of
//! different resources proceed in parallel and still share group commits. Conflicts that remain
//! (another node, or two spellings of one resource landing on different stripes) are retried.

use std::hash::BuildHasher;

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

pub struct WriteLocks {
    stripes: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for WriteLocks {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for WriteLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteLocks").finish_non_exhaustive()
    }
}

impl WriteLocks {
    pub fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }

    fn stripe(&self, account: &str, region: &str, resource: &str) -> usize {
        (self.hasher.hash_one((account, region, resource)) as usize) % STRIPES
    }

    /// Locks the stripe of `resource` (the service's canonical name for it) in
    /// `account`/`region`.
    pub async fn lock(&self, account: &str, region: &str, resource: &str) -> MutexGuard<'_, ()> {
        self.stripes[self.stripe(account, region, resource)]
            .lock()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_resource_serializes_others_do_not() {
        let locks = WriteLocks::new();
        let g = locks.lock("a", "r", "prod/db").await;
        assert!(
            tokio::time::timeout(
                std::time::Duration::from_millis(20),
                locks.lock("a", "r", "prod/db")
            )
            .await
            .is_err(),
            "a second writer of the same resource did not wait"
        );
        // Other resources do not wait (some of 16 names surely land on other stripes).
        let free = (0..16).filter(|i| {
            locks.stripes[locks.stripe("a", "r", &format!("other-{i}"))]
                .try_lock()
                .is_ok()
        });
        assert!(free.count() >= 15);
        drop(g);
    }
}
