//! One request, end to end: read the body, authenticate, find the operation in the table, call
//! the service, and encode the answer or the error as AWS does.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use coffer_core::{RequestContext, ServiceError};
use coffer_kms::Keyring;
use coffer_parameters::{EventLog, EventSink, ParametersService};
use coffer_secrets::SecretsService;
use coffer_wire::error::ErrorEnvelope;
use coffer_wire::sigv4::RequestParts;

use crate::ServerConfig;
use crate::auth::Credentials;
use crate::bootstrap::Bootstrap;

const JSON_11: &str = "application/x-amz-json-1.1";

pub(crate) struct AppState {
    pub account_id: String,
    pub credentials: Credentials,
    pub secrets: Arc<SecretsService>,
    pub parameters: ParametersService,
    pub parameter_events: Arc<EventLog>,
    /// Decides every operation's access requests (identity policies + resource policies).
    pub authorizer: Arc<coffer_authz::PolicyAuthorizer>,
    pub clock: coffer_core::SharedClock,
    pub rotation: Arc<coffer_rotation::Scheduler>,
}

impl AppState {
    pub fn new(
        config: &ServerConfig,
        boot: Bootstrap,
        webhook: Option<crate::webhook::Webhook>,
    ) -> Result<Self, crate::StartError> {
        let keys = Arc::new(Keyring::new(boot.store.clone(), boot.root));
        let secrets = Arc::new(SecretsService::new(
            boot.store.clone(),
            keys.clone(),
            config.clock.clone(),
        ));
        let rotation = crate::rotation::scheduler(config, &secrets, boot.store.clone())?;
        let reader = Arc::new(crate::secret_reader::SecretsReader(secrets.clone()));
        let log_file = config.parameter_events_log.clone().or_else(|| {
            config
                .data_dir
                .as_ref()
                .map(|d| d.join(coffer_parameters::EVENT_LOG_FILE))
        });
        let parameter_events = Arc::new(match log_file {
            Some(path) => EventLog::file(path),
            None => EventLog::memory(),
        });
        let mut sinks: Vec<Arc<dyn EventSink>> = vec![parameter_events.clone()];
        if let Some(w) = webhook {
            sinks.push(Arc::new(w));
        }
        let parameters = ParametersService::new(boot.store.clone(), keys, config.clock.clone())
            .with_secret_reader(reader)
            .with_limits(config.parameter_limits)
            .with_event_sinks(sinks);
        Ok(Self {
            account_id: boot.account_id.clone(),
            credentials: Credentials::new(&boot.access_keys),
            secrets,
            parameters,
            parameter_events,
            authorizer: coffer_authz::PolicyAuthorizer::new(
                Arc::new(coffer_authz::NoIdentityPolicies),
                config.clock.clone(),
            ),
            clock: config.clock.clone(),
            rotation,
        })
    }
}

/// The services served on `POST /`, by `X-Amz-Target` prefix and SigV4 signing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    SecretsManager,
    Ssm,
}

impl Service {
    fn from_target_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "secretsmanager" => Some(Service::SecretsManager),
            "AmazonSSM" => Some(Service::Ssm),
            _ => None,
        }
    }
    fn signing_name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
        }
    }
    fn has_operation(self, op: &str) -> bool {
        match self {
            Service::SecretsManager => SecretsService::operations().iter().any(|o| o.name == op),
            Service::Ssm => ParametersService::operations().iter().any(|o| o.name == op),
        }
    }
}

/// Per-process random high half of every request id, drawn once.
static REQUEST_ID_PREFIX: LazyLock<u64> = LazyLock::new(|| u64::from_be_bytes(random_bytes()));
/// Low half: starts at a random value so ids of successive processes do not line up.
static REQUEST_ID_COUNTER: LazyLock<AtomicU64> =
    LazyLock::new(|| AtomicU64::new(u64::from_be_bytes(random_bytes())));

fn random_bytes() -> [u8; 8] {
    coffer_crypto::random_bytes()
}

/// A UUID-shaped (version 4 layout) request id: a per-process random prefix plus a counter, so
/// ids are unique without a system call per request. Request ids are correlation handles, not
/// secrets, so they need not be unpredictable.
pub(crate) fn new_request_id() -> String {
    let n = REQUEST_ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&REQUEST_ID_PREFIX.to_be_bytes());
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

pub(crate) fn add_request_id(resp: &mut Response, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
}

fn json_response(status: StatusCode, payload: Vec<u8>, request_id: &str) -> Response {
    let mut resp = (status, payload).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON_11));
    add_request_id(&mut resp, request_id);
    resp
}

/// `status` overrides the envelope's own when the HTTP layer knows better (413, 404).
pub(crate) fn error_response(
    env: &ErrorEnvelope,
    request_id: &str,
    status: StatusCode,
) -> Response {
    json_response(status, env.to_json(), request_id)
}

pub(crate) async fn handle(
    state: &AppState,
    mut parts: axum::http::request::Parts,
    body: Bytes,
    request_id: String,
) -> Response {
    // HTTP/2 carries the host as `:authority`; SigV4 signs it as `host`. The request is ours, so
    // the header is added in place rather than on a copy of the map.
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(http::header::HOST, v);
    }
    let transport = parts
        .extensions
        .get::<crate::listener::Transport>()
        .copied();
    match handle_inner(
        state,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
        &request_id,
        transport,
    )
    .await
    {
        Ok(payload) => {
            tracing::debug!(request_id, target = target_of(&parts.headers), "ok");
            json_response(StatusCode::OK, payload, &request_id)
        }
        Err(env) => {
            // Code only: messages are AWS-shaped and value-free, but the log needs none of them.
            tracing::debug!(request_id, target = target_of(&parts.headers), code = %env.code, "failed");
            let status = StatusCode::from_u16(env.status).unwrap_or(StatusCode::BAD_REQUEST);
            error_response(&env, &request_id, status)
        }
    }
}

fn target_of(headers: &HeaderMap) -> &str {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn handle_inner(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
    transport: Option<crate::listener::Transport>,
) -> Result<Vec<u8>, ErrorEnvelope> {
    let parts = RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers,
    };
    // Signature freshness is judged against real time, like AWS's front ends; the injectable clock
    // drives the domain (deletion windows, dates), so tests can move it without breaking signing.
    let now = coffer_core::Clock::now_secs(&coffer_core::SystemClock);
    let (caller, verified) = state.credentials.authenticate(&parts, body, now)?;

    let target = target_of(headers);
    let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
    let service = Service::from_target_prefix(prefix)
        .filter(|s| s.has_operation(operation))
        .ok_or_else(|| ErrorEnvelope::unknown_operation(String::new()))?;
    if verified.service != service.signing_name() {
        let expected = service.signing_name().to_string();
        return Err(coffer_wire::sigv4::AuthError::WrongService { expected }.envelope());
    }
    // The caller's identity policies are resolved once, before the operation runs (the account
    // root skips the lookup); every decision of the operation uses them.
    let authorizer = state.authorizer.for_caller(&caller).await;
    let ctx = RequestContext::new(caller, verified.region, request_id)
        .with_authorizer(authorizer)
        .with_transport(
            transport.map(|t| t.source_ip),
            transport.is_some_and(|t| t.tls),
        );
    match service {
        Service::SecretsManager => state
            .secrets
            .call(&ctx, operation, body)
            .await
            .map_err(envelope),
        Service::Ssm => state
            .parameters
            .call(&ctx, operation, body)
            .await
            .map_err(envelope),
    }
}

/// The one place a service error becomes AWS's error envelope.
fn envelope<E: ServiceError>(e: E) -> ErrorEnvelope {
    if e.status() >= 500 {
        tracing::error!(code = e.code(), error = %e, "operation failed");
    }
    ErrorEnvelope::new(e.code(), e.to_string(), e.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_uuid_shaped_v4() {
        let ids: Vec<String> = (0..1000).map(|_| new_request_id()).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            let u = uuid::Uuid::parse_str(id).expect("UUID-shaped");
            assert_eq!(u.get_version_num(), 4, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id, &u.hyphenated().to_string(), "lowercase hyphenated");
        }
    }
}
