//! One request, end to end: read the body, authenticate, find the operation in the table, call
//! the service, and encode the answer or the error as AWS does.

use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use coffer_core::{RequestContext, ServiceError};
use coffer_crypto::RootKey;
use coffer_kms::{Keyring, KmsService};
use coffer_parameters::{EventLog, EventSink, ParametersService};
use coffer_secrets::SecretsService;
use coffer_store::Store;
use coffer_wire::error::ErrorEnvelope;
use coffer_wire::sigv4::RequestParts;

use crate::ServerConfig;
use crate::auth::Credentials;
use crate::bootstrap::Bootstrap;
use crate::root_guard::{RootGuard, SealHeld};

const JSON_11: &str = "application/x-amz-json-1.1";

/// What outlives sealing: the store, configuration and the sinks. The services, and with them
/// every copy of the root key, exist only while unsealed (see [`Services`]).
pub(crate) struct AppState {
    pub account_id: String,
    pub deps: ServiceDeps,
    /// The audit trail lives outside [`Services`]: appending needs no root key, so calls made
    /// while sealed (refused with ServiceUnavailable) are recorded too. Only its digest signer
    /// is loaded at unseal and dropped at seal.
    pub audit: Arc<coffer_audit::AuditLog>,
    pub audit_retention: Option<std::time::Duration>,
    /// The periodic digest is skipped while the last one (any node's) is younger than this
    /// (half the job interval), so nodes sharing a store make one per interval between them.
    pub digest_gap: std::time::Duration,
    pub parameter_events: Arc<EventLog>,
    pub sealer: crate::seal::Sealer,
    /// `Some` exactly while unsealed. Requests clone the `Arc` (a brief read lock) and hold it
    /// for their duration; sealing takes it out and waits for those clones to drop, so once
    /// sealing returns no request still holds the root key.
    services: RwLock<Option<Arc<Services>>>,
    /// Notified when sealing starts: long background work (rotations) holding the services stops
    /// rather than keep the root key alive.
    pub sealing: tokio::sync::Notify,
    /// Wakes the seal watcher (`seal::follow_root_rotation`) when the services find their root
    /// key stale (rotated through another node).
    pub seal_kick: Arc<tokio::sync::Notify>,
    /// One run of the periodic jobs at a time on this node: the periodic loop and an explicit
    /// run (tests, the startup run) would otherwise interleave, and one run's digest could land
    /// between another's purge and the sweep that chains its service event.
    pub jobs_pass: tokio::sync::Mutex<()>,
}

/// Everything [`Services::new`] needs besides the root key.
pub(crate) struct ServiceDeps {
    /// The store the services write through (under their `RootGuard`): the audit log's view,
    /// which adds each mutating call's write-ahead intent to the call's own batches (fail
    /// closed).
    pub audited_store: Arc<dyn Store>,
    /// Actions the server takes on its own (purges, parameter policies) are recorded here;
    /// `None` with auditing off (benchmark baseline).
    pub service_events: Option<Arc<dyn coffer_service::audit::ServiceEventLog>>,
    pub audit: Arc<coffer_audit::AuditLog>,
    pub account_id: String,
    pub clock: coffer_core::SharedClock,
    pub parameter_limits: crate::ParameterLimits,
    pub event_sinks: Vec<Arc<dyn EventSink>>,
    /// Root credentials the operator configured (or the dev ones): stored on unseal if absent.
    pub wanted_root_credentials: Option<crate::RootCredentials>,
    pub rotation: crate::rotation::RotationDeps,
    /// Fetches OpenID Connect issuers' keys for AssumeRoleWithWebIdentity.
    pub issuer_keys: Arc<dyn coffer_iam::web_identity::IssuerKeys>,
}

/// The services of an unsealed server; built from the root key, dropped (and the key with them)
/// on seal. A new service is one more field here, built in [`Services::new`].
pub(crate) struct Services {
    /// Kept for rotate-root (it rewraps from this key); zeroized when the services drop.
    root: RootKey,
    /// The store every service writes through: root-sealed writes are checked against the seal
    /// record this root key came from (see `crate::root_guard`).
    pub guard: Arc<RootGuard>,
    /// Authenticates through IAM: root's and IAM users' keys, STS session credentials.
    pub credentials: Credentials,
    /// IAM and STS (Query protocol); holds the root key (it seals secret access keys).
    pub iam: Arc<coffer_iam::Iam>,
    /// Decides every operation's access requests (identity policies from IAM + resource
    /// policies). Here rather than on [`AppState`]: its identity source is IAM, which holds the
    /// root key.
    pub authorizer: Arc<coffer_authz::PolicyAuthorizer>,
    #[allow(dead_code)] // shared with the services below; the KMS API serves from it
    pub keys: Arc<Keyring>,
    pub secrets: Arc<SecretsService>,
    pub parameters: ParametersService,
    pub kms: KmsService,
    pub cloudtrail: coffer_audit::CloudTrailService,
    pub rotation: Arc<coffer_rotation::Scheduler>,
    pub lambda: Arc<coffer_lambda::LambdaService>,
}

impl Services {
    pub async fn new(
        deps: &ServiceDeps,
        root: RootKey,
        guard: Arc<RootGuard>,
    ) -> Result<Self, crate::StartError> {
        if let Some(creds) = &deps.wanted_root_credentials {
            // Stored once (a no-op when the key id is already there): the configured or dev
            // credentials of a server initialized without them.
            coffer_iam::store_root_access_key(
                &*guard,
                &root,
                &deps.account_id,
                &creds.access_key_id,
                &creds.secret_access_key,
                coffer_core::Clock::now_millis(&*deps.clock),
            )
            .await
            .map_err(|e| {
                crate::StartError::Config(format!("storing the root credentials: {e:?}"))
            })?;
        }
        // IAM writes carry the call's audit intent like every other service's; every service
        // writes through the guard.
        let store: Arc<dyn Store> = guard.clone();
        let iam = Arc::new(
            coffer_iam::Iam::new(store.clone(), &root, deps.clock.clone())
                .with_issuer_keys(deps.issuer_keys.clone()),
        );
        let authorizer = coffer_authz::PolicyAuthorizer::new(iam.clone(), deps.clock.clone());
        let keys = Arc::new(Keyring::new(
            store.clone(),
            RootKey::from_bytes(*root.as_bytes()),
        ));
        let mut secrets = SecretsService::new(store.clone(), keys.clone(), deps.clock.clone());
        if let Some(log) = &deps.service_events {
            secrets = secrets.with_service_events(log.clone());
        }
        let secrets = Arc::new(secrets);
        let rotation = crate::rotation::scheduler(deps, &store, &secrets, &iam);
        let lambda = crate::lambda::service(deps, &store, &keys, &iam);
        let reader = Arc::new(crate::secret_reader::SecretsReader(secrets.clone()));
        let mut parameters = ParametersService::new(store, keys.clone(), deps.clock.clone())
            .with_secret_reader(reader)
            .with_limits(deps.parameter_limits)
            .with_event_sinks(deps.event_sinks.clone());
        if let Some(log) = &deps.service_events {
            parameters = parameters.with_service_events(log.clone());
        }
        // NextTokens are sealed under a key derived from the root key, so they work across
        // restarts and nodes.
        let cloudtrail = coffer_audit::CloudTrailService::new(
            deps.audit.clone(),
            &keys.derive_key("cloudtrail/next-token"),
        );
        let kms = KmsService::new(keys.clone(), deps.clock.clone());
        Ok(Self {
            root,
            guard,
            credentials: Credentials::new(iam.clone(), deps.account_id.clone()),
            iam,
            authorizer,
            kms,
            cloudtrail,
            keys,
            secrets,
            parameters,
            rotation,
            lambda,
        })
    }
}

impl Services {
    /// The root key and the seal record it came from, for a rotation that has taken the
    /// services down.
    pub fn take_root(self) -> (RootKey, SealHeld) {
        (self.root, self.guard.held())
    }
}

impl AppState {
    pub fn new(
        config: &ServerConfig,
        boot: &Bootstrap,
        webhook: Option<crate::webhook::Webhook>,
        audit: Arc<coffer_audit::AuditLog>,
        rotation: crate::rotation::RotationDeps,
        issuer_keys: Arc<dyn coffer_iam::web_identity::IssuerKeys>,
    ) -> Self {
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
        let mut event_sinks: Vec<Arc<dyn EventSink>> = vec![parameter_events.clone()];
        if let Some(w) = webhook {
            event_sinks.push(Arc::new(w));
        }
        let service_events: Option<Arc<dyn coffer_service::audit::ServiceEventLog>> =
            (!audit.is_noop()).then(|| audit.clone() as _);
        Self {
            account_id: boot.account_id.clone(),
            audit_retention: config.audit.retention,
            digest_gap: config.task_interval / 2,
            deps: ServiceDeps {
                audited_store: audit.services_store(),
                service_events,
                audit: audit.clone(),
                account_id: boot.account_id.clone(),
                clock: config.clock.clone(),
                parameter_limits: config.parameter_limits,
                event_sinks,
                wanted_root_credentials: boot.wanted_root_credentials.clone(),
                rotation,
                issuer_keys,
            },
            audit,
            parameter_events,
            sealer: crate::seal::Sealer::new(
                boot.store.clone(),
                config.data_dir.clone(),
                crate::seal::dev_kek_for(config),
            ),
            services: RwLock::new(None),
            sealing: tokio::sync::Notify::new(),
            seal_kick: Arc::new(tokio::sync::Notify::new()),
            jobs_pass: tokio::sync::Mutex::new(()),
        }
    }

    /// The services, or the sealed error every data call gets.
    pub fn services(&self) -> Result<Arc<Services>, ErrorEnvelope> {
        self.services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(sealed_error)
    }

    pub fn is_unsealed(&self) -> bool {
        self.services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Builds the services from `root`, which came from the seal record `held`, and starts
    /// serving data.
    pub async fn unseal(&self, root: RootKey, held: SealHeld) -> Result<(), crate::StartError> {
        let guard = Arc::new(RootGuard::new(
            self.deps.audited_store.clone(),
            held,
            self.seal_kick.clone(),
        ));
        // The digest signing key is sealed under the root key (listed in root_wrapped::RECORDS).
        self.audit
            .load_signer_through(&*guard, &coffer_crypto::AeadKey::new(root.as_bytes()))
            .await
            .map_err(|e| crate::StartError::Config(format!("audit signing key: {e}")))?;
        let services = Arc::new(Services::new(&self.deps, root, guard).await?);
        *self.services.write().unwrap_or_else(|p| p.into_inner()) = Some(services);
        Ok(())
    }

    /// Stops serving data and drops the services (and every copy of the root key) once the
    /// requests still using them finish. Returns whether the server was unsealed.
    pub async fn seal(&self) -> bool {
        self.take_services().await.is_some()
    }

    /// Stops serving data and hands over the services once no request uses them any more.
    pub async fn take_services(&self) -> Option<Services> {
        let taken = self
            .services
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut services = taken?;
        self.sealing.notify_waiters();
        self.audit.forget_signer();
        // In-flight requests hold clones; wait for them so the key is ours alone.
        loop {
            match Arc::try_unwrap(services) {
                Ok(s) => return Some(s),
                Err(still_shared) => {
                    services = still_shared;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
        }
    }
}

/// What every data call gets while the server is sealed (documented in README): AWS's
/// framework `ServiceUnavailable`, HTTP 503, which SDKs treat as retryable.
pub(crate) fn sealed_error() -> ErrorEnvelope {
    ErrorEnvelope::service_unavailable(
        "Coffer is sealed: it serves no data until an operator unseals it (coffer operator unseal).",
    )
}

/// A call that failed (5xx) on services whose root key was rotated through another node gets
/// what a sealed node answers, the retryable `ServiceUnavailable`: the failure may come from
/// records sealed under the new key, and the node is about to re-key (or seal). Reads the seal
/// record once unless the staleness is known already.
pub(crate) async fn unless_root_stale<T>(
    services: &Services,
    result: Result<T, ErrorEnvelope>,
) -> Result<T, ErrorEnvelope> {
    match result {
        Err(e) if e.status >= 500 && services.guard.check_stale().await => {
            Err(ErrorEnvelope::service_unavailable(
                "Coffer's root key was rotated through another node: this node is unsealing \
                 again with the new key, or is sealed until an operator unseals it. Retry.",
            ))
        }
        other => other,
    }
}

/// The services served on `POST /`, by `X-Amz-Target` prefix and SigV4 signing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    SecretsManager,
    Ssm,
    Kms,
    /// AWS Query protocol services, routed by signing name and `Action`.
    Iam,
    Sts,
    CloudTrail,
}

impl Service {
    fn from_target_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "secretsmanager" => Some(Service::SecretsManager),
            "AmazonSSM" => Some(Service::Ssm),
            "TrentService" => Some(Service::Kms),
            coffer_audit::lookup::TARGET_PREFIX | coffer_audit::lookup::TARGET_PREFIX_SHORT => {
                Some(Service::CloudTrail)
            }
            _ => None,
        }
    }
    fn signing_name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
            Service::Kms => "kms",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::CloudTrail => "cloudtrail",
        }
    }
    /// The operation's row in its service's table (JSON-protocol services only; IAM and STS
    /// are routed by `Action` in [`handle_query`]).
    fn operation(self, op: &str) -> Option<&'static coffer_service::OperationSpec> {
        let table = match self {
            Service::SecretsManager => SecretsService::operations(),
            Service::Ssm => ParametersService::operations(),
            Service::Kms => KmsService::operations(),
            Service::CloudTrail => coffer_audit::CloudTrailService::operations(),
            Service::Iam | Service::Sts => return None,
        };
        table.iter().find(|o| o.name == op)
    }
}

/// A request id: a call id (see [`coffer_audit::record::new_call_id`]), like the event id its
/// record gets.
pub(crate) fn new_request_id() -> String {
    coffer_audit::record::new_call_id()
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
    let mut call = crate::audit::Call::begin(
        state,
        &parts.headers,
        transport.map(|t| t.source_ip),
        &request_id,
    );
    if let Some(service) = query_service(&parts.headers, &parts.uri) {
        let route = QueryRoute::Signed(service);
        return handle_query(state, &parts, &body, &request_id, route, transport, call).await;
    }
    if let Some(params) = unsigned_web_identity(&parts, &body) {
        let route = QueryRoute::WebIdentity(params);
        return handle_query(state, &parts, &body, &request_id, route, transport, call).await;
    }
    let result = handle_inner(state, &parts, &body, &request_id, transport, &mut call).await;
    // Exactly one audit record per call, whatever happened above; fail closed. The request is
    // freed before the wait for the record's commit (see `Call::finish`).
    let committed = call.finish(state, &parts.headers, &body, result);
    let target = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| target_of(&parts.headers).to_string())
        .unwrap_or_default();
    drop((parts, body));
    match committed.await {
        Ok(payload) => {
            tracing::debug!(request_id, target, "ok");
            json_response(StatusCode::OK, payload, &request_id)
        }
        Err(env) => {
            // Code only: messages are AWS-shaped and value-free, but the log needs none of them.
            tracing::debug!(request_id, target, code = %env.code, "failed");
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

/// Authenticates a request of either protocol and tells the audit record who called. Sealed:
/// nothing to authenticate against (access keys are root-sealed) and nothing to serve.
pub(crate) async fn authenticate(
    state: &AppState,
    http: &axum::http::request::Parts,
    body: &[u8],
    call: &mut crate::audit::Call,
) -> Result<
    (
        Arc<Services>,
        coffer_core::Caller,
        coffer_wire::sigv4::Verified,
    ),
    ErrorEnvelope,
> {
    let parts = RequestParts {
        method: http.method.as_str(),
        path: http.uri.path(),
        query: http.uri.query().unwrap_or(""),
        headers: &http.headers,
    };
    // Signature freshness is judged against real time, like AWS's front ends; the injectable clock
    // drives the domain (deletion windows, dates), so tests can move it without breaking signing.
    let now = coffer_core::Clock::now_secs(&coffer_core::SystemClock);
    let services = state.services()?;
    let authenticated = services.credentials.authenticate(&parts, body, now).await;
    let (caller, verified) = unless_root_stale(&services, authenticated).await?;
    call.authenticated(&caller, &verified.region);
    Ok((services, caller, verified))
}

/// The request's context. The caller's identity policies are resolved once, before the
/// operation runs (the account root skips the lookup); every decision of the operation uses them.
pub(crate) async fn request_context(
    services: &Services,
    caller: coffer_core::Caller,
    verified: coffer_wire::sigv4::Verified,
    request_id: &str,
    transport: Option<crate::listener::Transport>,
) -> RequestContext {
    let authorizer = services.authorizer.for_caller(&caller).await;
    let ctx = RequestContext::new(caller, verified.region, request_id).with_authorizer(authorizer);
    transported(ctx, transport)
}

/// What the transport tells the request's condition keys (`aws:SourceIp`, `aws:SecureTransport`).
fn transported(
    ctx: RequestContext,
    transport: Option<crate::listener::Transport>,
) -> RequestContext {
    ctx.with_transport(
        transport.map(|t| t.source_ip),
        transport.is_some_and(|t| t.tls),
    )
}

// The request's parts as the HTTP layer hands them over, plus the audit record being filled.
async fn handle_inner(
    state: &AppState,
    http: &axum::http::request::Parts,
    body: &[u8],
    request_id: &str,
    transport: Option<crate::listener::Transport>,
    call: &mut crate::audit::Call,
) -> Result<Vec<u8>, ErrorEnvelope> {
    let (services, caller, verified) = authenticate(state, http, body, call).await?;
    let target = target_of(&http.headers);
    // CloudTrail's prefix has dots of its own: the operation is after the last one.
    let (prefix, operation) = target.rsplit_once('.').unwrap_or((target, ""));
    let (service, spec) = Service::from_target_prefix(prefix)
        .and_then(|s| Some((s, s.operation(operation)?)))
        .ok_or_else(|| ErrorEnvelope::unknown_operation(String::new()))?;
    if verified.service != service.signing_name() {
        let expected = service.signing_name().to_string();
        return Err(coffer_wire::sigv4::AuthError::WrongService { expected }.envelope());
    }
    let ctx = request_context(&services, caller, verified, request_id, transport).await;
    // KMS calls are recorded like the others (eventSource kms.amazonaws.com).
    call.operation(service.signing_name(), spec.read_only);
    let run = async {
        match service {
            Service::SecretsManager => services
                .secrets
                .call(&ctx, operation, body)
                .await
                .map_err(envelope),
            Service::Ssm => services
                .parameters
                .call(&ctx, operation, body)
                .await
                .map_err(envelope),
            Service::Kms => services
                .kms
                .call(&ctx, operation, body)
                .await
                .map_err(envelope),
            Service::CloudTrail => services
                .cloudtrail
                .call(&ctx, operation, body)
                .await
                .map_err(envelope),
            Service::Iam | Service::Sts => Err(ErrorEnvelope::unknown_operation(String::new())),
        }
    };
    let result = call.run(state, body, run).await;
    unless_root_stale(&services, result).await
}

/// The signing name of a request's credential scope (`Credential=AKID/DATE/REGION/SERVICE/...`
/// in the Authorization header, or `X-Amz-Credential` when presigned).
fn scope_service<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    let credential = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(auth) => auth.split("Credential=").nth(1)?,
        None => uri
            .query()?
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Credential="))?,
    };
    let credential = credential.split([',', '&', ' ']).next()?;
    let sep = if credential.contains("%2F") {
        "%2F"
    } else {
        "/"
    };
    credential.split(sep).nth(3)
}

/// IAM and STS speak the Query protocol: no `X-Amz-Target`, routed by the signing name.
fn query_service(headers: &HeaderMap, uri: &Uri) -> Option<Service> {
    if headers.contains_key("x-amz-target") {
        return None;
    }
    match scope_service(headers, uri)? {
        "iam" => Some(Service::Iam),
        "sts" => Some(Service::Sts),
        _ => None,
    }
}

fn xml_response(status: StatusCode, payload: Vec<u8>, request_id: &str) -> Response {
    let mut resp = (status, payload).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    add_request_id(&mut resp, request_id);
    resp
}

/// How a Query-protocol request is taken.
enum QueryRoute {
    /// Signed with SigV4 for this service (IAM or STS).
    Signed(Service),
    /// STS AssumeRoleWithWebIdentity, which AWS's SDKs send unsigned: the caller has no
    /// credentials yet, only an identity provider's token. Its form, already parsed.
    WebIdentity(coffer_wire::query::QueryParams),
}

/// The region unsigned STS calls are recorded in (STS's global endpoint is us-east-1's).
const STS_GLOBAL_REGION: &str = "us-east-1";

/// The form of an unsigned POST whose `Action` is AssumeRoleWithWebIdentity. Anything signed
/// (an `Authorization` header or a presigned query) goes the signed way.
fn unsigned_web_identity(
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Option<coffer_wire::query::QueryParams> {
    let unsigned = parts.method == Method::POST
        && !parts.headers.contains_key("authorization")
        && !parts.headers.contains_key("x-amz-target")
        && !parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Credential"));
    if !unsigned {
        return None;
    }
    coffer_wire::query::QueryParams::parse(body)
        .ok()
        .filter(|q| q.get("Action") == Some("AssumeRoleWithWebIdentity"))
}

/// The context of an unsigned AssumeRoleWithWebIdentity: a web identity as its token claims
/// (recorded so; the operation verifies the token), allowed nothing by any policy.
fn web_identity_context(
    state: &AppState,
    params: &coffer_wire::query::QueryParams,
    request_id: &str,
    transport: Option<crate::listener::Transport>,
    call: &mut crate::audit::Call,
) -> Result<(Arc<Services>, RequestContext), ErrorEnvelope> {
    use coffer_iam::web_identity::{claimed, role_account};
    let services = state.services()?;
    let account = params
        .get("RoleArn")
        .and_then(role_account)
        .unwrap_or(&state.account_id);
    let caller = match params.get("WebIdentityToken").and_then(claimed) {
        Some(c) => coffer_core::Caller::web_identity(account, &c.provider, &c.audience, &c.subject),
        None => coffer_core::Caller::web_identity(account, "", "", ""),
    };
    call.authenticated(&caller, STS_GLOBAL_REGION);
    let ctx = RequestContext::new(caller, STS_GLOBAL_REGION, request_id)
        .with_authorizer(coffer_core::authz::root_only());
    Ok((services, transported(ctx, transport)))
}

/// One Query-protocol request (IAM, STS): form parameters in, XML out, errors in the Query
/// envelope with the Query spelling of framework errors.
async fn handle_query(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
    request_id: &str,
    route: QueryRoute,
    transport: Option<crate::listener::Transport>,
    mut call: crate::audit::Call,
) -> Response {
    let (service, unsigned_form) = match route {
        QueryRoute::Signed(s) => (s, None),
        QueryRoute::WebIdentity(params) => (Service::Sts, Some(params)),
    };
    let namespace = match service {
        Service::Sts => coffer_iam::STS_NAMESPACE,
        _ => coffer_iam::IAM_NAMESPACE,
    };
    // Errors before the operation runs are the framework's (authentication, the form) and take
    // the Query spelling; the operation's own are already spelled as its model has them (STS's
    // ExpiredTokenException is not the framework's ExpiredToken).
    let ran = std::sync::atomic::AtomicBool::new(false);
    let outcome = async {
        // Sealed: the ServiceUnavailable every data call gets (in the Query envelope).
        let (signed, params) = match unsigned_form {
            Some(params) => (None, params),
            None => {
                let signed = authenticate(state, parts, body, &mut call).await?;
                let form = if parts.method == Method::GET {
                    parts.uri.query().unwrap_or("").as_bytes()
                } else {
                    body
                };
                let params = coffer_wire::query::QueryParams::parse(form)
                    .map_err(|e| ErrorEnvelope::new("MalformedQueryString", e.to_string(), 400))?;
                (Some(signed), params)
            }
        };
        let action = params
            .get("Action")
            .ok_or_else(|| ErrorEnvelope::new("MissingAction", "Missing Action", 400))?;
        call.query_operation(
            service.signing_name(),
            &params,
            coffer_iam::is_read_only(action),
        );
        let (services, ctx) = match signed {
            Some((services, caller, verified)) => {
                let ctx = request_context(&services, caller, verified, request_id, transport).await;
                (services, ctx)
            }
            None => web_identity_context(state, &params, request_id, transport, &mut call)?,
        };
        let run = async {
            match service {
                Service::Sts => services.iam.call_sts(&ctx, action, &params).await,
                _ => services.iam.call_iam(&ctx, action, &params).await,
            }
            .map_err(envelope)
        };
        ran.store(true, std::sync::atomic::Ordering::Relaxed);
        let result = call.run(state, body, run).await;
        unless_root_stale(&services, result).await
    }
    .await;
    // Exactly one audit record per call, as on the JSON path; fail closed.
    match call.finish(state, &parts.headers, body, outcome).await {
        Ok(xml) => xml_response(StatusCode::OK, xml, request_id),
        Err(env) => {
            tracing::debug!(request_id, code = %env.code, "query request failed");
            let env = if ran.load(std::sync::atomic::Ordering::Relaxed) {
                env
            } else {
                coffer_wire::query::framework_error(&env)
            };
            let status = StatusCode::from_u16(env.status).unwrap_or(StatusCode::BAD_REQUEST);
            let xml = coffer_wire::query::error_response(&env, namespace, request_id);
            xml_response(status, xml, request_id)
        }
    }
}

/// The one place a service error becomes AWS's error envelope.
pub(crate) fn envelope<E: ServiceError>(e: E) -> ErrorEnvelope {
    if e.status() >= 500 {
        tracing::error!(code = e.code(), error = %e, "operation failed");
    }
    ErrorEnvelope::new(e.code(), e.to_string(), e.status())
}
