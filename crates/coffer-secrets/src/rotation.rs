//! RotateSecret and CancelRotateSecret, and the durable side of the rotation scheduler
//! ([`RotationHost`]): each secret's rotation configuration and state live in its record, and a
//! time index (`sm/rotation/{due_ms}/...`, see [`crate::model`]) holds one entry per secret with
//! a scheduled rotation, written in the same batch as the record. The scheduler in
//! `coffer-rotation` scans that index up to "now" and calls back here to begin and finish.
//!
//! AWS's behaviour kept here: RotateSecret creates the new version (id = ClientRequestToken)
//! staged AWSPENDING without a value, for the function's createSecret step to fill; a failed
//! rotation leaves that version staged, so the next attempt resumes it, and further RotateSecret
//! calls are refused until it completes; after a successful finishSecret AWSPENDING is removed.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use coffer_core::authz::ConditionKey;
use coffer_core::{Caller, RequestContext};
use coffer_rotation::registry::FunctionCheck;
use coffer_rotation::schedule::{self, Rules, Schedule};
use coffer_rotation::{ApiError, Begun, Due, Failure, Host, SecretsApi};
use coffer_service::lease::Lease;
use coffer_service::opctx::OpCtx;
use coffer_store::WriteBatch;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::SecretsError;
use crate::model::*;
use crate::ops::{Obj, arn_name, required, ts};
use crate::{SecretsService, retry, validate};

/// A secret's rotation configuration and the scheduler's state for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RotationState {
    pub enabled: bool,
    pub lambda_arn: Option<String>,
    pub rules: Option<Rules>,
    pub last_rotated_ms: Option<i64>,
    /// Start of the next rotation window (DescribeSecret's NextRotationDate).
    pub next_ms: Option<i64>,
    /// When the scheduler runs the next rotation: the time of this secret's index entry.
    pub due_ms: Option<i64>,
    /// The version being rotated in (AWSPENDING) while a rotation is under way or failed.
    pub token: Option<String>,
    pub last_attempt_ms: Option<i64>,
    pub last_failure: Option<FailureRecord>,
    #[serde(default)]
    pub consecutive_failures: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FailureRecord {
    pub step: String,
    pub message: String,
    pub at_ms: i64,
}

/// What the server gives the service so RotateSecret can check functions and start rotations.
pub struct RotationHooks {
    pub functions: Arc<dyn FunctionCheck>,
    pub kick: Arc<tokio::sync::Notify>,
}

pub(crate) type Hooks = OnceLock<RotationHooks>;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RulesIn {
    automatically_after_days: Option<i64>,
    duration: Option<String>,
    schedule_expression: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotateSecretIn {
    secret_id: Option<String>,
    client_request_token: Option<String>,
    #[serde(rename = "RotationLambdaARN")]
    rotation_lambda_arn: Option<String>,
    rotation_rules: Option<RulesIn>,
    rotate_immediately: Option<bool>,
    external_secret_rotation_metadata: Option<Value>,
    external_secret_rotation_role_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CancelIn {
    secret_id: Option<String>,
}

fn rotation_in_progress() -> SecretsError {
    SecretsError::InvalidRequest(
        "A previous rotation isn't complete. That rotation will be reattempted.".into(),
    )
}

/// The version a rotation is filling, if one is staged AWSPENDING apart from AWSCURRENT.
fn pending_version(meta: &SecretMeta) -> Option<String> {
    let pending = meta.version_with_stage(AWSPENDING)?;
    (meta.version_with_stage(AWSCURRENT) != Some(pending)).then(|| pending.to_owned())
}

/// The rules checked against the model's constraints (ValidationException), then as a schedule
/// (InvalidParameterException).
fn check_rules(r: &RulesIn) -> Result<(Rules, Schedule), SecretsError> {
    validate::range(
        "rotationRules.automaticallyAfterDays",
        r.automatically_after_days,
        1,
        1000,
    )?;
    validate::opt_length("rotationRules.duration", r.duration.as_deref(), 2, 3)?;
    validate::opt_length(
        "rotationRules.scheduleExpression",
        r.schedule_expression.as_deref(),
        1,
        256,
    )?;
    if r.duration
        .as_deref()
        .is_some_and(|d| !d.ends_with('h') || !d[..d.len() - 1].bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(SecretsError::validation(
            "rotationRules.duration",
            "Member must satisfy regular expression pattern: [0-9]+h",
        ));
    }
    if r.schedule_expression.as_deref().is_some_and(|e| {
        !e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"()#?*-/, ".contains(&b))
    }) {
        return Err(SecretsError::validation(
            "rotationRules.scheduleExpression",
            "Member must satisfy regular expression pattern: [0-9A-Za-z\\(\\)#\\?\\*\\-\\/, ]+",
        ));
    }
    let rules = Rules {
        automatically_after_days: r.automatically_after_days,
        schedule_expression: r.schedule_expression.clone(),
        duration: r.duration.clone(),
    };
    let schedule = Schedule::parse(&rules).map_err(|e| SecretsError::InvalidParameter(e.0))?;
    Ok((rules, schedule))
}

/// The next scheduled rotation after `base`: (window start, the moment in it this secret runs).
fn next_due(rules: Option<&Rules>, base: i64, arn: &str) -> Option<(i64, i64)> {
    let s = Schedule::parse(rules?).ok()?;
    let start = s.next_window(base)?;
    Some((start, schedule::spread(start, s.window_ms(start), arn)))
}

/// Moves the secret's index entry from `old` to `new` in `batch`.
fn move_index(
    batch: &mut WriteBatch,
    account: &str,
    meta: &SecretMeta,
    old: Option<i64>,
    new: Option<i64>,
) {
    if old == new {
        return;
    }
    if let Some(o) = old {
        batch.delete(rotation_key(o, account, &meta.region, &meta.name));
    }
    if let Some(n) = new {
        batch.put(
            rotation_key(n, account, &meta.region, &meta.name),
            Vec::new(),
        );
    }
}

/// Adds version `vid` staged AWSPENDING without a value (AWS's rotation start), unless it exists;
/// an existing version gets the AWSPENDING label.
fn stage_pending(meta: &mut SecretMeta, vid: &str, now: i64) {
    if !meta.versions.contains_key(vid) {
        meta.insert_version(vid, now, true);
    }
    meta.attach_stages(vid, &[AWSPENDING.to_owned()]);
}

impl SecretsService {
    /// Installs what RotateSecret needs from the server (once; later calls are ignored).
    pub fn set_rotation_hooks(&self, hooks: RotationHooks) {
        let _ = self.rotation.set(hooks);
    }

    fn hooks(&self) -> Result<&RotationHooks, SecretsError> {
        self.rotation.get().ok_or_else(|| {
            SecretsError::InternalServiceError("Rotation is not available on this server.".into())
        })
    }

    pub(crate) async fn rotate_secret(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: RotateSecretIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        validate::client_request_token(input.client_request_token.as_deref())?;
        validate::opt_length(
            "rotationLambdaARN",
            input.rotation_lambda_arn.as_deref(),
            0,
            2048,
        )?;
        if input.external_secret_rotation_metadata.is_some()
            || input.external_secret_rotation_role_arn.is_some()
        {
            return Err(SecretsError::InvalidRequest(
                "Managed external secret rotation is not supported by this server; use RotationLambdaARN."
                    .into(),
            ));
        }
        let new_rules = input.rotation_rules.as_ref().map(check_rules).transpose()?;
        let immediately = input.rotate_immediately.unwrap_or(true);
        let account = ctx.account_id();
        let hooks = self.hooks()?;
        let lambda_in = input
            .rotation_lambda_arn
            .as_deref()
            .filter(|a| !a.is_empty());
        // secretsmanager:RotationLambdaARN: the function the request names.
        let keys: Vec<ConditionKey<'_>> = ctx
            .keys
            .iter()
            .cloned()
            .chain(lambda_in.map(|a| ConditionKey::str("secretsmanager:RotationLambdaARN", a)))
            .collect();
        let ctx = &ctx.with_keys(&keys);
        let out = retry!(
            self,
            ctx,
            id,
            async {
                let mut l = self.resolve_writable(ctx, id).await?;
                // The function is checked once the caller is authorized (so nobody learns which
                // functions exist without rights on the secret), before anything is written.
                if let Some(arn) = lambda_in {
                    hooks
                        .functions
                        .check(account, &ctx.region, arn)
                        .await
                        .map_err(|m| SecretsError::Wire {
                            code: "AccessDeniedException",
                            message: m,
                        })?;
                }
                let mut state = l.meta.rotation.clone().unwrap_or_default();
                let lambda = lambda_in
                    .map(str::to_owned)
                    .or_else(|| state.lambda_arn.clone())
                    .ok_or_else(|| {
                        SecretsError::InvalidRequest(
                            "No Lambda rotation function ARN is associated with this secret."
                                .into(),
                        )
                    })?;
                let token = input
                    .client_request_token
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                if let Some(p) = pending_version(&l.meta) {
                    // A retried call with the same token answers as the first did.
                    if immediately && input.client_request_token.as_deref() == Some(p.as_str()) {
                        let mut o = arn_name(&l.meta);
                        o.insert("VersionId".into(), json!(p));
                        return Ok(o);
                    }
                    return Err(rotation_in_progress());
                }
                if immediately
                    && let Some(v) = l.meta.versions.get(&token)
                    && !v.stages.iter().any(|s| s == AWSPENDING)
                {
                    return Err(SecretsError::ResourceExists(
                        "A version with this ClientRequestToken already exists.".into(),
                    ));
                }
                let now = self.now();
                let old_due = state.due_ms;
                state.enabled = true;
                state.lambda_arn = Some(lambda);
                if let Some((rules, _)) = &new_rules {
                    state.rules = Some(rules.clone());
                }
                let mut o = arn_name(&l.meta);
                if immediately {
                    stage_pending(&mut l.meta, &token, now);
                    state.token = Some(token.clone());
                    state.next_ms = next_due(state.rules.as_ref(), now, &l.meta.arn).map(|n| n.0);
                    state.due_ms = Some(now);
                    o.insert("VersionId".into(), json!(token));
                } else {
                    let base = state.last_rotated_ms.unwrap_or(now);
                    let next = next_due(state.rules.as_ref(), base, &l.meta.arn);
                    state.next_ms = next.map(|n| n.0);
                    state.due_ms = next.map(|n| n.1);
                }
                let new_due = state.due_ms;
                l.meta.rotation = Some(state);
                l.meta.changed_ms = now;
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                move_index(&mut batch, account, &l.meta, old_due, new_due);
                self.write_secret(&mut batch, account, &l.meta, &[], &[], &[])
                    .await?;
                self.store.commit(batch).await?;
                Ok(o)
            }
            .await
        )?;
        if immediately {
            hooks.kick.notify_one();
        }
        Ok(out)
    }

    pub(crate) async fn cancel_rotate_secret(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: CancelIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::secret_id(id)?;
        let account = ctx.account_id();
        retry!(
            self,
            ctx,
            id,
            async {
                let mut l = self.resolve_writable(ctx, id).await?;
                let mut o = arn_name(&l.meta);
                // AWS answers with the version a cancelled rotation was creating; it stays staged
                // AWSPENDING for the caller to clean up, as AWS documents.
                if let Some(p) = pending_version(&l.meta) {
                    o.insert("VersionId".into(), json!(p));
                }
                let Some(mut state) = l.meta.rotation.clone() else {
                    return Ok(o);
                };
                let old_due = state.due_ms.take();
                state.enabled = false;
                state.next_ms = None;
                state.token = None;
                l.meta.rotation = Some(state);
                l.meta.changed_ms = self.now();
                let mut batch = WriteBatch::new();
                batch.check(l.key.clone(), Some(&l.entry));
                move_index(&mut batch, account, &l.meta, old_due, None);
                self.write_secret(&mut batch, account, &l.meta, &[], &[], &[])
                    .await?;
                self.store.commit(batch).await?;
                Ok(o)
            }
            .await
        )
    }
}

/// DescribeSecret's and ListSecrets' rotation members.
pub(crate) fn rotation_json(o: &mut Obj, meta: &SecretMeta) {
    let Some(r) = &meta.rotation else { return };
    o.insert("RotationEnabled".into(), json!(r.enabled));
    if let Some(a) = &r.lambda_arn {
        o.insert("RotationLambdaARN".into(), json!(a));
    }
    if let Some(rules) = &r.rules {
        let mut m = Obj::new();
        // AWS reports the interval in days where the schedule has one.
        let days = rules.automatically_after_days.or_else(|| {
            Schedule::parse(rules)
                .ok()
                .and_then(|s| s.automatically_after_days())
        });
        if let Some(d) = days {
            m.insert("AutomaticallyAfterDays".into(), json!(d));
        }
        if let Some(d) = &rules.duration {
            m.insert("Duration".into(), json!(d));
        }
        if let Some(e) = &rules.schedule_expression {
            m.insert("ScheduleExpression".into(), json!(e));
        }
        o.insert("RotationRules".into(), Value::Object(m));
    }
    if let Some(t) = r.last_rotated_ms {
        o.insert("LastRotatedDate".into(), ts(t));
    }
    if r.enabled
        && let Some(n) = r.next_ms
    {
        o.insert("NextRotationDate".into(), ts(n));
    }
}

/// DescribeSecret's extra member (not in AWS's model; SDKs ignore it): the last attempt's outcome,
/// so a failed rotation is visible without reading logs. Messages are free of secret values.
pub(crate) fn rotation_status_json(o: &mut Obj, meta: &SecretMeta) {
    let Some(r) = &meta.rotation else { return };
    let mut m = Obj::new();
    if let Some(t) = r.last_attempt_ms {
        m.insert("LastAttemptDate".into(), ts(t));
    }
    if let Some(t) = &r.token {
        m.insert("PendingVersionId".into(), json!(t));
    }
    if let Some(f) = &r.last_failure {
        m.insert("LastFailureStep".into(), json!(f.step));
        m.insert("LastFailureMessage".into(), json!(f.message));
        m.insert("LastFailureDate".into(), ts(f.at_ms));
    }
    m.insert("ConsecutiveFailures".into(), json!(r.consecutive_failures));
    o.insert("CofferRotationStatus".into(), Value::Object(m));
}

/// The rotation scheduler's view of the service.
pub struct RotationHost(pub Arc<SecretsService>);

/// Secrets Manager in process for rotation functions: JSON in, JSON out, AWS error codes, as over
/// HTTP. Calls run as the account's root principal (no execution role is modelled for
/// functions; out-of-process ones call back with root session credentials likewise).
pub struct InProcessApi {
    svc: Arc<SecretsService>,
    ctx: RequestContext,
}

impl InProcessApi {
    pub fn new(svc: Arc<SecretsService>, account: &str, region: &str) -> Self {
        Self {
            svc,
            ctx: RequestContext::new(Caller::root(account, "coffer-rotation"), region, "rotation"),
        }
    }
}

#[async_trait]
impl SecretsApi for InProcessApi {
    async fn call(&self, operation: &str, input: Value) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(&input).unwrap_or_default();
        let mut ctx = self.ctx.clone();
        ctx.request_id = uuid::Uuid::new_v4().to_string();
        match self.svc.call(&ctx, operation, &body).await {
            Ok(out) => serde_json::from_slice(&out).map_err(|e| ApiError {
                code: "InternalServiceError".into(),
                message: e.to_string(),
            }),
            Err(e) => Err(ApiError {
                code: coffer_core::ServiceError::code(&e).to_owned(),
                message: e.to_string(),
            }),
        }
    }
}

fn host_err(e: SecretsError) -> String {
    e.to_string()
}

#[async_trait]
impl Host for RotationHost {
    async fn due(&self, now: i64, limit: usize) -> Result<Vec<Due>, String> {
        let start = ROTATION_PREFIX.as_bytes().to_vec();
        let end = format!("{ROTATION_PREFIX}{:020}", now.saturating_add(1).max(0)).into_bytes();
        let page = self
            .0
            .store
            .scan(&start, &end, limit)
            .await
            .map_err(|e| e.to_string())?;
        Ok(page
            .iter()
            .filter_map(|(k, _)| parse_rotation_key(k))
            .map(|(due_ms, account, region, name)| Due {
                account,
                region,
                name,
                due_ms,
            })
            .collect())
    }

    async fn begin(&self, due: &Due, lease: &Lease) -> Result<Option<Begun>, String> {
        let svc = &self.0;
        let (account, region, name) = (&due.account, &due.region, &due.name);
        let key = rotation_key(due.due_ms, account, region, name);
        retry!(
            svc,
            account,
            region,
            name,
            async {
                let l = svc.load(account, region, name).await?;
                let mut batch = WriteBatch::new();
                lease.fence(&mut batch);
                let current = l.as_ref().and_then(|l| {
                    let r = l.meta.rotation.as_ref()?;
                    (r.enabled && r.due_ms == Some(due.due_ms)).then_some(l)
                });
                let Some(l) = current else {
                    // Stale: cancelled, rescheduled, or the secret is gone.
                    batch.delete(key.clone());
                    svc.store.commit(batch).await?;
                    return Ok(None);
                };
                let mut meta = l.meta.clone();
                let now = svc.now();
                let mut state = meta.rotation.clone().unwrap_or_default();
                if meta.is_deleted() {
                    // A secret scheduled for deletion is not rotated; its schedule goes on.
                    let next = next_due(state.rules.as_ref(), now, &meta.arn);
                    state.next_ms = next.map(|n| n.0);
                    state.due_ms = next.map(|n| n.1);
                    let new_due = state.due_ms;
                    meta.rotation = Some(state);
                    batch.check(l.key.clone(), Some(&l.entry));
                    move_index(&mut batch, account, &meta, Some(due.due_ms), new_due);
                    svc.write_secret(&mut batch, account, &meta, &[], &[], &[])
                        .await?;
                    svc.store.commit(batch).await?;
                    return Ok(None);
                }
                // Resume the version a failed attempt left, else the one RotateSecret staged,
                // else a new one.
                let token = pending_version(&meta)
                    .or_else(|| state.token.clone())
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                if meta.version_with_stage(AWSCURRENT) != Some(token.as_str()) {
                    stage_pending(&mut meta, &token, now);
                }
                state.token = Some(token.clone());
                state.last_attempt_ms = Some(now);
                let function_arn = state.lambda_arn.clone().unwrap_or_default();
                meta.rotation = Some(state);
                batch.check(l.key.clone(), Some(&l.entry));
                svc.write_secret(&mut batch, account, &meta, &[], &[], &[])
                    .await?;
                svc.service_event(
                    &mut batch,
                    account,
                    &meta,
                    "RotationStarted",
                    now,
                    json!({"versionId": token, "rotationLambdaARN": function_arn}),
                );
                svc.store.commit(batch).await?;
                Ok(Some(Begun {
                    arn: meta.arn.clone(),
                    token,
                    function_arn,
                }))
            }
            .await
        )
        .map_err(host_err)
    }

    async fn finish(
        &self,
        due: &Due,
        begun: &Begun,
        outcome: &Result<(), Failure>,
        lease: &Lease,
    ) -> Result<(), String> {
        let svc = &self.0;
        let (account, region, name) = (&due.account, &due.region, &due.name);
        retry!(
            svc,
            account,
            region,
            name,
            async {
                let Some(l) = svc.load(account, region, name).await? else {
                    return Ok(());
                };
                if l.meta.arn != begun.arn {
                    return Ok(());
                }
                let mut meta = l.meta.clone();
                let Some(mut state) = meta.rotation.clone() else {
                    return Ok(());
                };
                let now = svc.now();
                match outcome {
                    Ok(()) => {
                        state.last_rotated_ms = Some(now);
                        state.last_failure = None;
                        state.consecutive_failures = 0;
                        state.token = None;
                    }
                    Err(f) => {
                        state.last_failure = Some(FailureRecord {
                            step: f.step.clone(),
                            message: f.message.clone(),
                            at_ms: now,
                        });
                        state.consecutive_failures += 1;
                    }
                }
                let mut batch = WriteBatch::new();
                lease.fence(&mut batch);
                batch.check(l.key.clone(), Some(&l.entry));
                // Reschedule only if nobody changed the schedule meanwhile (RotateSecret again,
                // CancelRotateSecret): theirs stands.
                if state.enabled && state.due_ms == Some(due.due_ms) {
                    let next = next_due(state.rules.as_ref(), now, &meta.arn);
                    state.next_ms = next.map(|n| n.0);
                    state.due_ms = next.map(|n| n.1);
                    move_index(&mut batch, account, &meta, Some(due.due_ms), state.due_ms);
                }
                meta.rotation = Some(state);
                svc.write_secret(&mut batch, account, &meta, &[], &[], &[])
                    .await?;
                // The failure's message stays in the secret's record: it is scrubbed of values,
                // but function output is not ours to vouch for in the audit trail.
                let (event, details) = match outcome {
                    Ok(()) => ("RotationSucceeded", json!({"versionId": begun.token})),
                    Err(f) => (
                        "RotationFailed",
                        json!({"versionId": begun.token, "failedStep": f.step}),
                    ),
                };
                svc.service_event(&mut batch, account, &meta, event, now, details);
                svc.store.commit(batch).await?;
                Ok(())
            }
            .await
        )
        .map_err(host_err)
    }

    fn api(&self, account: &str, region: &str) -> Arc<dyn SecretsApi> {
        Arc::new(InProcessApi::new(self.0.clone(), account, region))
    }
}
