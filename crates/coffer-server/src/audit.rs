//! The audit hook of the request path: every call handled by `dispatch::handle` (success,
//! client error, failed authentication, denial, server error) leaves exactly one record, written
//! before the answer goes out. A call whose record cannot be written is answered with
//! InternalFailure instead of its result (fail closed); a mutating call also carries its
//! write-ahead intent in every batch it commits (see `coffer_audit::log`).
//!
//! Both request paths (JSON in `handle_inner`, Query-protocol IAM/STS in `handle_query`) fill
//! the fields of [`Call`] they learn (`authenticated`, `operation` / `query_operation`) and run
//! the service through [`Call::run`].

use std::future::Future;
use std::net::IpAddr;

use axum::http::HeaderMap;
use coffer_audit::record::{ApiCall, new_call_id};
use coffer_audit::redact::Side;
use coffer_core::Caller;
use coffer_wire::error::ErrorEnvelope;
use serde_json::Value;

use crate::dispatch::AppState;

/// What is known about one call so far.
pub(crate) struct Call {
    time_ms: i64,
    request_id: String,
    event_id: String,
    source_ip: String,
    user_agent: String,
    target: String,
    caller: Option<Caller>,
    region: Option<String>,
    /// Signing name of the service the call was routed to.
    service: Option<&'static str>,
    read_only: bool,
    request: Option<Value>,
    /// The request as a JSON object when the body is not JSON (Query protocol).
    parsed: Option<Value>,
    intent_key: Option<Vec<u8>>,
}

/// Longest user agent kept in a record (CloudTrail truncates too).
const MAX_USER_AGENT: usize = 1024;

impl Call {
    pub fn begin(
        state: &AppState,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        request_id: &str,
    ) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let mut user_agent = header("user-agent").to_string();
        if user_agent.len() > MAX_USER_AGENT {
            let mut cut = MAX_USER_AGENT;
            while !user_agent.is_char_boundary(cut) {
                cut -= 1;
            }
            user_agent.truncate(cut);
        }
        Self {
            time_ms: state.audit.now_millis(),
            request_id: request_id.to_string(),
            event_id: new_call_id(),
            source_ip: peer.map(|p| p.to_string()).unwrap_or_default(),
            user_agent,
            target: header("x-amz-target").to_string(),
            caller: None,
            region: None,
            service: None,
            read_only: false,
            request: None,
            parsed: None,
            intent_key: None,
        }
    }

    pub fn authenticated(&mut self, caller: &Caller, region: &str) {
        self.caller = Some(caller.clone());
        self.region = Some(region.to_string());
    }

    /// The call was routed to `operation` (from the target) of `service` (its signing name).
    pub fn operation(&mut self, service: &'static str, read_only: bool) {
        self.service = Some(service);
        self.read_only = read_only;
    }

    /// A Query-protocol call (IAM, STS): routed by its `Action`. Its top-level scalar parameters
    /// stand for the request (redacted by the model like JSON members); flattened lists and maps
    /// are left out, and so is the XML response.
    pub fn query_operation(
        &mut self,
        service: &'static str,
        params: &coffer_wire::query::QueryParams,
        read_only: bool,
    ) {
        self.target = params.get("Action").unwrap_or_default().to_string();
        self.operation(service, read_only);
        let members = params
            .scalars()
            .filter(|(k, _)| !matches!(*k, "Action" | "Version"))
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        self.parsed = Some(Value::Object(members));
    }

    fn operation_name(&self) -> &str {
        self.target
            .rsplit_once('.')
            .map_or(self.target.as_str(), |(_, op)| op)
    }

    /// Runs the service call; a mutating one with its intent attached to every batch it
    /// commits.
    pub async fn run<F, T>(&mut self, state: &AppState, body: &[u8], call: F) -> T
    where
        F: Future<Output = T>,
    {
        if self.read_only || state.audit.is_noop() {
            return call.await;
        }
        let request = self.redacted_request(&self.parsed_request(body));
        let key = state.audit.intent_key(&self.request_id);
        let intent = self.api_call(
            state,
            self.caller.clone(),
            request.clone(),
            Value::Null,
            None,
            Vec::new(),
        );
        self.request = Some(request);
        self.intent_key = Some(key.clone());
        state.audit.with_intent(key, intent.canonical(), call).await
    }

    /// The request as JSON: the Query parameters, or the parsed body (`Null` when it is not
    /// JSON).
    fn parsed_request(&self, body: &[u8]) -> Value {
        if let Some(p) = &self.parsed {
            p.clone()
        } else if body.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(body).unwrap_or(Value::Null)
        }
    }

    fn redacted_request(&self, parsed: &Value) -> Value {
        let (Some(service), Some(_)) = (self.service, &self.caller) else {
            return Value::Null;
        };
        let Some(model) = coffer_audit::redact::model(service) else {
            return Value::Null;
        };
        if parsed.is_null() {
            return Value::Null;
        }
        model
            .redact(self.operation_name(), Side::Input, parsed)
            .unwrap_or(Value::Null)
    }

    fn api_call(
        &self,
        state: &AppState,
        caller: Option<Caller>,
        request: Value,
        response: Value,
        error: Option<&ErrorEnvelope>,
        resources: Vec<coffer_audit::record::Resource>,
    ) -> ApiCall {
        let region = self.region.clone().unwrap_or_default();
        let source = match self.service {
            Some(s) => format!("{s}.amazonaws.com"),
            None => source_for_target(&self.target),
        };
        ApiCall {
            event_time_ms: self.time_ms,
            event_source: source,
            event_name: self.operation_name().to_string(),
            region,
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            caller,
            claimed_access_key_id: None,
            request_parameters: request,
            response_elements: response,
            error: error.map(|e| (e.code.clone(), e.message.clone())),
            request_id: self.request_id.clone(),
            event_id: self.event_id.clone(),
            read_only: self.read_only,
            resources,
            recipient_account_id: state.account_id.clone(),
        }
    }

    /// Records the call; the returned future resolves to what to answer: its result, or
    /// InternalFailure when the record could not be written. The record is built and queued
    /// here, and the future holds only the result: whatever the record was built from is freed
    /// before the call waits for the record's commit.
    pub fn finish(
        mut self,
        state: &AppState,
        headers: &HeaderMap,
        body: &[u8],
        result: Result<Vec<u8>, ErrorEnvelope>,
    ) -> impl Future<Output = Result<Vec<u8>, ErrorEnvelope>> + Send + 'static {
        let committed = (!state.audit.is_noop()).then(|| {
            let record = self.record(state, headers, body, &result);
            state.audit.append(record, self.intent_key.take())
        });
        let request_id = std::mem::take(&mut self.request_id);
        drop(self);
        async move {
            let Some(committed) = committed else {
                return result;
            };
            match committed.await {
                Ok(()) => result,
                Err(e) => {
                    tracing::error!(error = %e, request_id = %request_id, "audit record not written; failing the call");
                    Err(ErrorEnvelope::internal_failure(
                        "An internal error occurred.",
                    ))
                }
            }
        }
    }

    /// The call's record in canonical form.
    fn record(
        &mut self,
        state: &AppState,
        headers: &HeaderMap,
        body: &[u8],
        result: &Result<Vec<u8>, ErrorEnvelope>,
    ) -> Vec<u8> {
        let parsed =
            (self.request.is_none() || self.caller.is_some()).then(|| self.parsed_request(body));
        let request = match self.request.take() {
            Some(r) => r,
            None => self.redacted_request(parsed.as_ref().unwrap_or(&Value::Null)),
        };
        let (response, error) = match result {
            Ok(payload) if !self.read_only => {
                let out = self
                    .service
                    .and_then(coffer_audit::redact::model)
                    .zip(serde_json::from_slice::<Value>(payload).ok())
                    .and_then(|(m, v)| m.redact(self.operation_name(), Side::Output, &v));
                (out.unwrap_or(Value::Null), None)
            }
            Ok(_) => (Value::Null, None),
            Err(e) => (Value::Null, Some(e)),
        };
        let resources = match (self.service, &self.caller) {
            (Some(service), Some(_)) => {
                // Query-protocol bodies are not JSON: resources come from the result alone.
                let raw = match (&self.parsed, &parsed) {
                    (None, Some(p)) => p,
                    _ => &Value::Null,
                };
                coffer_audit::resources::resources(
                    service,
                    &state.account_id,
                    self.region.as_deref().unwrap_or_default(),
                    raw,
                    result.as_ref().ok().map(Vec::as_slice),
                )
            }
            _ => Vec::new(),
        };
        // The record owns the caller from here (no second copy per call).
        let caller = self.caller.take();
        let mut call = self.api_call(state, caller, request, response, error, resources);
        if call.caller.is_none()
            && let Some((akid, region)) = claimed_scope(headers)
        {
            call.claimed_access_key_id = Some(akid);
            if call.region.is_empty() {
                call.region = region;
            }
        }
        call.canonical()
    }
}

/// `secretsmanager.amazonaws.com`-style source for a target no service claimed.
fn source_for_target(target: &str) -> String {
    let prefix = target.rsplit_once('.').map_or("", |(p, _)| p);
    match prefix {
        "secretsmanager" => "secretsmanager.amazonaws.com".into(),
        "AmazonSSM" => "ssm.amazonaws.com".into(),
        "TrentService" => "kms.amazonaws.com".into(),
        coffer_audit::lookup::TARGET_PREFIX | coffer_audit::lookup::TARGET_PREFIX_SHORT => {
            "cloudtrail.amazonaws.com".into()
        }
        _ => "unknown".into(),
    }
}

/// Access key id and region an unauthenticated request claimed in its credential scope.
fn claimed_scope(headers: &HeaderMap) -> Option<(String, String)> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    let cred = cred.split([',', ' ']).next()?;
    let mut parts = cred.split('/');
    let akid = parts.next()?;
    let _date = parts.next()?;
    let region = parts.next()?;
    // An access key id is 16-128 word characters; anything else is not worth keeping.
    let plausible = |s: &str| {
        (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    (plausible(akid) && plausible(region)).then(|| (akid.to_string(), region.to_string()))
}
