//! The parameter-policy runner.
//!
//! - `Expiration` deletes the parameter once its time has come (index `ps/expire/{due}`) and
//!   emits an `Expiration` event in the same batch.
//! - `ExpirationNotification` (due `Before` ahead of the expiration) and `NoChangeNotification`
//!   (due `After` past the last change; every new version re-arms it) emit an event at their
//!   time (index `ps/notify/{due}`), once: the batch that enqueues the event deletes the index
//!   entry, guarded by checks on it and on the parameter record.
//!
//! Both indexes are ordered by due time, so each run reads only what is due, and they live in
//! the store, so whatever fell due while the server was down fires on the next run after start.
//! Events are then delivered to the configured sinks (see `events`).
//!
//! ```text
//! ps/notify/{ms:020}/{account}/{region}/{policy type}/{canon}   notification due at ms (empty)
//! ```

use coffer_store::{WriteBatch, prefix_end};

use crate::ParametersService;
use crate::error::ParametersError as E;
use crate::events::{self, Fired, Queued};
use crate::model::{EXPIRE_PREFIX, Param, expire_key, parse_expire_key};
use crate::ops::{decode_record, encode};

pub(crate) const NOTIFY_PREFIX: &str = "ps/notify/";
const NOTIFICATION_KINDS: &[&str] = &["ExpirationNotification", "NoChangeNotification"];
/// Keys read per scan page.
const PAGE: usize = 256;
/// How long a node's claim on a queued event holds before other nodes may deliver it: well past
/// one delivery (the webhook gives up after 10 s).
const CLAIM_MS: i64 = 60_000;

pub(crate) fn notify_key(due_ms: i64, account: &str, region: &str, kind: &str, c: &str) -> Vec<u8> {
    format!(
        "{NOTIFY_PREFIX}{:020}/{account}/{region}/{kind}/{c}",
        due_ms.max(0)
    )
    .into_bytes()
}

/// `(account, region, policy type, canon)` of a notification index key.
fn parse_notify_key(key: &[u8]) -> Option<(String, String, String, String)> {
    let s = std::str::from_utf8(key).ok()?;
    let mut it = s.strip_prefix(NOTIFY_PREFIX)?.splitn(5, '/');
    let _due = it.next()?;
    let account = it.next()?;
    let region = it.next()?;
    let kind = it.next()?;
    let canon = it.next()?;
    Some((account.into(), region.into(), kind.into(), canon.into()))
}

/// The armed notification policies of `p`: `(type, due)`.
fn notifications(p: &Param) -> Vec<(&str, i64)> {
    p.current
        .policies
        .iter()
        .filter(|x| NOTIFICATION_KINDS.contains(&x.kind.as_str()))
        .filter_map(|x| Some((x.kind.as_str(), x.due_ms?)))
        .collect()
}

/// Re-arms `NoChangeNotification` on `new` (due `After` past its current version) and adds to
/// `batch` the notification-index changes from `old` to `new` (`None` = no parameter). An
/// unchanged due time is left alone, so a notification that already fired stays fired.
pub(crate) fn schedule(
    batch: &mut WriteBatch,
    account: &str,
    region: &str,
    c: &str,
    old: Option<&Param>,
    new: Option<&mut Param>,
) {
    let new = new.map(|p| {
        let modified = p.current.modified_ms;
        for x in &mut p.current.policies {
            if x.kind == "NoChangeNotification"
                && let Some(after) = after_ms(&x.text)
            {
                x.due_ms = Some(modified.saturating_add(after));
            }
        }
        &*p
    });
    let before = old.map(notifications).unwrap_or_default();
    let after = new.map(notifications).unwrap_or_default();
    for (kind, due) in &before {
        if !after.contains(&(kind, *due)) {
            batch.delete(notify_key(*due, account, region, kind, c));
        }
    }
    for (kind, due) in &after {
        if !before.contains(&(kind, *due)) {
            batch.put(notify_key(*due, account, region, kind, c), Vec::new());
        }
    }
}

/// A `NoChangeNotification`'s `After` in milliseconds, from its (validated) text.
fn after_ms(text: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    crate::validate::amount(v.get("Attributes")?.as_object()?, "After").ok()
}

/// `[prefix, prefix + due ≤ now]` as a scan range.
fn due_range(prefix: &str, now: i64) -> (Vec<u8>, Vec<u8>) {
    let start = prefix.as_bytes().to_vec();
    let end = format!("{prefix}{:020}", now.saturating_add(1).max(0)).into_bytes();
    let end = end.min(prefix_end(&start));
    (start, end)
}

impl ParametersService {
    /// One run: notifications first (so an ExpirationNotification precedes its Expiration after
    /// downtime), then expirations, then delivery of queued events. Returns how many policies
    /// fired.
    pub(crate) async fn run_due_policies(&self, now: i64) -> Result<usize, E> {
        let _one_run = self.run_lock.lock().await;
        let notified = self.notify(now).await?;
        let deleted = self.expire(now).await?;
        self.deliver(now).await;
        Ok(notified + deleted)
    }

    /// Queues the event for `f` for every sink, in `batch`.
    fn enqueue(&self, batch: &mut WriteBatch, f: &Fired<'_>) -> Result<(), E> {
        tracing::info!(
            parameter = %f.param.name,
            policy = %f.policy.kind,
            region = f.region,
            "parameter policy fired"
        );
        if let Some(log) = &self.service_events {
            let partition = coffer_core::arn::partition_for_region(f.region);
            let (k, v) = log.record(&coffer_service::audit::ServiceAction {
                service: "ssm",
                event_name: match f.policy.kind.as_str() {
                    "Expiration" => "Expiration",
                    "ExpirationNotification" => "ExpirationNotification",
                    "NoChangeNotification" => "NoChangeNotification",
                    _ => "ParameterPolicy",
                },
                account_id: f.account,
                region: f.region,
                time_ms: f.now_ms,
                resource_arn: crate::model::param_arn(partition, f.region, f.account, f.canon),
                resource_type: "AWS::SSM::Parameter",
                details: serde_json::json!({
                    "policyType": f.policy.kind,
                    "parameterName": f.param.name,
                    "actionStatus": "Success",
                }),
            });
            batch.put(k, v);
        }
        if self.sinks.is_empty() {
            return Ok(());
        }
        let id = uuid::Uuid::new_v4().to_string();
        let event = events::policy_event(f, &id);
        let queued = encode(&Queued { attempts: 0, event })?;
        // Entries of one due time are delivered in emission order.
        let entry = format!("{:016x}-{id}", events::next_seq());
        for sink in &self.sinks {
            batch.put(
                events::outbox_key(sink.name(), f.now_ms, &entry),
                queued.clone(),
            );
        }
        Ok(())
    }

    async fn notify(&self, now: i64) -> Result<usize, E> {
        let (mut from, end) = due_range(NOTIFY_PREFIX, now);
        let mut fired = 0;
        loop {
            let page = self.store.scan(&from, &end, PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (key, _) in &page {
                let Some((account, region, kind, c)) = parse_notify_key(key) else {
                    continue;
                };
                let done = coffer_service::retry_on_conflict!(
                    lock: self.locks.lock(&account, &region, &c),
                    conflict: E::Conflict,
                    exhausted: E::TooManyUpdates("concurrent updates".into()),
                    self.notify_one(&account, &region, &kind, &c, key, now).await
                );
                match done {
                    Ok(true) => fired += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "a parameter notification failed; will retry")
                    }
                }
            }
        }
        Ok(fired)
    }

    /// Emits the notification `index_key` records if the parameter still has it armed for that
    /// time; a stale entry (policy changed, parameter gone, fired by another node) goes away.
    async fn notify_one(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        c: &str,
        index_key: &[u8],
        now: i64,
    ) -> Result<bool, E> {
        let Some(index) = self.store.get(index_key).await? else {
            return Ok(false);
        };
        let mut batch = WriteBatch::new();
        batch.check(index_key.to_vec(), Some(&index));
        batch.delete(index_key.to_vec());
        let l = self.load(account, region, c).await?;
        let policy = l.as_ref().and_then(|l| {
            l.param.current.policies.iter().find(|p| {
                p.kind == kind
                    && p.due_ms.is_some_and(|d| {
                        d <= now && notify_key(d, account, region, kind, c) == index_key
                    })
            })
        });
        let fired = match (&l, policy) {
            (Some(l), Some(policy)) => {
                batch.check(l.key.clone(), Some(&l.entry));
                self.enqueue(
                    &mut batch,
                    &Fired {
                        account,
                        region,
                        canon: c,
                        param: &l.param,
                        policy,
                        now_ms: now,
                    },
                )?;
                true
            }
            _ => false,
        };
        self.store.commit(batch).await?;
        Ok(fired)
    }

    pub(crate) async fn expire(&self, now: i64) -> Result<usize, E> {
        let (mut from, end) = due_range(EXPIRE_PREFIX, now);
        let mut deleted = 0;
        loop {
            let page = self.store.scan(&from, &end, PAGE).await?;
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
    /// due, queueing the Expiration event in the same batch; a stale index entry (policy
    /// changed, parameter gone) is just removed.
    async fn expire_one(
        &self,
        account: &str,
        region: &str,
        c: &str,
        index_key: &[u8],
        now: i64,
    ) -> Result<bool, E> {
        let l = self.load(account, region, c).await?;
        let policy = l.as_ref().and_then(|l| {
            l.param.current.policies.iter().find(|p| {
                p.kind == "Expiration"
                    && p.due_ms
                        .is_some_and(|d| d <= now && expire_key(d, account, region, c) == index_key)
            })
        });
        match (&l, policy) {
            (Some(l), Some(policy)) => {
                let mut extra = WriteBatch::new();
                self.enqueue(
                    &mut extra,
                    &Fired {
                        account,
                        region,
                        canon: c,
                        param: &l.param,
                        policy,
                        now_ms: now,
                    },
                )?;
                self.erase_with(account, region, c, Some(&l.entry), extra)
                    .await
            }
            _ => {
                let mut batch = WriteBatch::new();
                batch.delete(index_key.to_vec());
                self.store.commit(batch).await?;
                Ok(false)
            }
        }
    }

    /// Delivers what is queued and due for every sink. A failed delivery is rescheduled with
    /// backoff and ends this run for that sink (the rest waits for the next run), so an
    /// unreachable webhook costs one attempt per run, not one per event.
    async fn deliver(&self, now: i64) {
        for sink in &self.sinks {
            let prefix = events::outbox_prefix(sink.name());
            if let Err(e) = self.deliver_to(sink.as_ref(), &prefix, now).await {
                tracing::warn!(sink = sink.name(), error = %e, "delivering parameter events failed; will retry");
            }
        }
    }

    async fn deliver_to(
        &self,
        sink: &dyn events::EventSink,
        prefix: &str,
        now: i64,
    ) -> Result<(), E> {
        let (mut from, end) = due_range(prefix, now);
        loop {
            let page = self.store.scan(&from, &end, PAGE).await?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            from = last.clone();
            from.push(0);
            for (key, entry) in &page {
                let Ok(mut q) = decode_record::<Queued>(&entry.value) else {
                    // Undeliverable for good: drop it rather than block the queue.
                    let mut batch = WriteBatch::new();
                    batch.check(key.clone(), Some(entry)).delete(key.clone());
                    self.commit_ignoring_conflict(batch).await?;
                    continue;
                };
                let name = key.rsplit(|b| *b == b'/').next().unwrap_or_default();
                let name = String::from_utf8_lossy(name).into_owned();
                // Claim the entry before delivering it: it moves to CLAIM_MS from now in a batch
                // checked against the entry as read, so of several nodes sharing the queue one
                // delivers it; if that node dies, the entry falls due again for the others.
                let until = self.clock.now_millis().saturating_add(CLAIM_MS);
                let claim = events::outbox_key(sink.name(), until, &name);
                let mut batch = WriteBatch::new();
                batch
                    .check(key.clone(), Some(entry))
                    .delete(key.clone())
                    .put(claim.clone(), entry.value.clone());
                let claimed = match self.store.commit(batch).await {
                    Ok(version) => version,
                    Err(coffer_store::StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                };
                let mut batch = WriteBatch::new();
                batch.checks.push((claim.clone(), Some(claimed)));
                batch.delete(claim);
                match sink.deliver(&q.event).await {
                    Ok(()) => self.commit_ignoring_conflict(batch).await?,
                    Err(msg) => {
                        q.attempts = q.attempts.saturating_add(1);
                        let next = now.saturating_add(events::backoff_ms(q.attempts));
                        batch.put(events::outbox_key(sink.name(), next, &name), encode(&q)?);
                        self.commit_ignoring_conflict(batch).await?;
                        tracing::warn!(
                            sink = sink.name(),
                            attempts = q.attempts,
                            error = %msg,
                            "parameter event delivery failed; retrying with backoff"
                        );
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Another node handling the same queue entry concurrently is not an error.
    async fn commit_ignoring_conflict(&self, batch: WriteBatch) -> Result<(), E> {
        match self.store.commit(batch).await {
            Ok(_) | Err(coffer_store::StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_keys_round_trip_and_sort_by_time() {
        let k = notify_key(5, "1", "r", "NoChangeNotification", "/a/b");
        assert_eq!(
            parse_notify_key(&k),
            Some((
                "1".into(),
                "r".into(),
                "NoChangeNotification".into(),
                "/a/b".into()
            ))
        );
        assert!(k < notify_key(10, "0", "a", "ExpirationNotification", "/a"));
        let (start, end) = due_range(NOTIFY_PREFIX, 5);
        assert!(k >= start && k < end);
        assert!(notify_key(6, "1", "r", "X", "/a") >= end);
        assert_eq!(
            after_ms(
                r#"{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"3","Unit":"Hours"}}"#
            ),
            Some(3 * 3_600_000)
        );
    }
}
