//! The parameter-policy runner: `Expiration` deletes a parameter once its time has come.
//! Due expirations are found through the `ps/expire/{due}` index, so each run reads only what
//! is due. Notification events (ExpirationNotification, NoChangeNotification) are not emitted yet.

use coffer_store::prefix_end;

use crate::ParametersService;
use crate::error::ParametersError as E;
use crate::model::{EXPIRE_PREFIX, expire_key, parse_expire_key};

impl ParametersService {
    pub(crate) async fn expire(&self, now: i64) -> Result<usize, E> {
        let start = EXPIRE_PREFIX.as_bytes().to_vec();
        let end = format!("{EXPIRE_PREFIX}{:020}", now.saturating_add(1).max(0)).into_bytes();
        let end = end.min(prefix_end(&start));
        let mut deleted = 0;
        let mut from = start;
        loop {
            let page = self.store.scan(&from, &end, 256).await?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (key, _) in &page {
                let Some((account, region, c)) = parse_expire_key(key) else {
                    continue;
                };
                let done = coffer_service::retry_on_conflict!(
                    lock: self.locks.lock(&account, &region, &c),
                    conflict: E::Conflict,
                    exhausted: E::TooManyUpdates("concurrent updates".into()),
                    self.expire_one(&account, &region, &c, key, now).await
                );
                match done {
                    Ok(true) => deleted += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "expiring a parameter failed"),
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes the parameter if its current Expiration is the one `index_key` records and is
    /// due; a stale index entry (policy changed, parameter gone) is just removed.
    async fn expire_one(
        &self,
        account: &str,
        region: &str,
        c: &str,
        index_key: &[u8],
        now: i64,
    ) -> Result<bool, E> {
        let l = self.load(account, region, c).await?;
        let due = l
            .as_ref()
            .and_then(|l| l.param.expiration_ms())
            .filter(|d| *d <= now && expire_key(*d, account, region, c) == index_key);
        match (l, due) {
            (Some(l), Some(_)) => self.erase(account, region, c, Some(&l.entry)).await,
            _ => {
                let mut batch = coffer_store::WriteBatch::new();
                batch.delete(index_key.to_vec());
                self.store.commit(batch).await?;
                Ok(false)
            }
        }
    }
}
