//! Lambda's REST-JSON API on the same endpoint (signing name `lambda`, paths under
//! `/2015-03-31/functions`): authenticated and recorded like every other call, answered with
//! AWS's REST-JSON error shape (`x-amzn-ErrorType` + `{"Type", "message"}`).

use std::sync::{Arc, RwLock, Weak};

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_lambda::{LambdaService, Roles};
use coffer_rotation::{CallbackEnv, RotationFunction};
use coffer_wire::error::ErrorEnvelope;

use crate::dispatch::{AppState, ServiceDeps};

/// Execution roles through IAM: invocations run as `assumed-role/ROLE/FUNCTION`.
struct IamRoles(Arc<coffer_iam::Iam>);

#[async_trait::async_trait]
impl Roles for IamRoles {
    async fn trusts_lambda(
        &self,
        account: &str,
        role_arn: &str,
        function_arn: &str,
    ) -> Result<bool, String> {
        self.0
            .service_trusted(
                account,
                role_arn,
                coffer_lambda::SERVICE_PRINCIPAL,
                function_arn,
            )
            .await
            .map_err(|e| e.to_string())
    }
    async fn session(
        &self,
        account: &str,
        role_arn: &str,
        function_arn: &str,
        session_name: &str,
        secs: i64,
    ) -> Result<Option<CallbackEnv>, String> {
        let service = coffer_lambda::SERVICE_PRINCIPAL;
        let s = self
            .0
            .service_role_session(account, role_arn, service, function_arn, session_name, secs)
            .await
            .map_err(|e| e.to_string())?;
        Ok(
            s.map(|(access_key_id, secret_access_key, token)| CallbackEnv {
                endpoint: String::new(),
                access_key_id,
                secret_access_key,
                session_token: Some(token),
            }),
        )
    }
}

/// The Lambda service of an unsealed server, made visible to the rotation registry (which
/// outlives sealing, so it holds the service weakly: sealed, no deployed function resolves).
pub(crate) fn service(
    deps: &ServiceDeps,
    store: &Arc<dyn coffer_store::Store>,
    keys: &Arc<coffer_kms::Keyring>,
    iam: &Arc<coffer_iam::Iam>,
) -> Arc<LambdaService> {
    let r = &deps.rotation;
    let service = Arc::new(LambdaService::new(
        store.clone(),
        keys.clone(),
        deps.clock.clone(),
        Arc::new(IamRoles(iam.clone())),
        r.lambda_runtime.clone(),
        r.endpoint.clone(),
    ));
    *r.deployed.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(&service);
    service
}

/// The registry's view of deployed functions.
#[derive(Default)]
pub(crate) struct DeployedFunctions(RwLock<Weak<LambdaService>>);

#[async_trait::async_trait]
impl coffer_rotation::registry::Deployed for DeployedFunctions {
    async fn function(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Option<Arc<dyn RotationFunction>> {
        let service = self.0.read().unwrap_or_else(|p| p.into_inner()).upgrade()?;
        service.rotation_function(account, region, name).await
    }
}

fn rest_error(env: &ErrorEnvelope, request_id: &str) -> Response {
    let status = StatusCode::from_u16(env.status).unwrap_or(StatusCode::BAD_REQUEST);
    let kind = if env.status >= 500 { "Service" } else { "User" };
    let body = serde_json::json!({"Type": kind, "message": env.message}).to_string();
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&env.code) {
        h.insert("x-amzn-errortype", v);
    }
    crate::dispatch::add_request_id(&mut resp, request_id);
    resp
}

pub(crate) async fn handle(
    state: &AppState,
    parts: axum::http::request::Parts,
    body: Bytes,
    request_id: String,
) -> Response {
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
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let outcome = async {
        let (services, caller, verified) =
            crate::dispatch::authenticate(state, &parts, &body, &mut call).await?;
        let (spec, function) = coffer_lambda::route(parts.method.as_str(), parts.uri.path())
            .ok_or_else(|| ErrorEnvelope::unknown_operation(String::new()))?;
        if verified.service != coffer_lambda::SIGNING_NAME {
            let expected = coffer_lambda::SIGNING_NAME.to_string();
            return Err(coffer_wire::sigv4::AuthError::WrongService { expected }.envelope());
        }
        // The record names the operation and the function, never the body (code, environment,
        // an invocation's event). Request parameters are redacted by the service's model, and
        // coffer-audit has no Lambda model yet: until it has, they are left out.
        let mut form = format!("Action={}", spec.name);
        if let Some(f) = &function {
            form.push_str("&FunctionName=");
            form.extend(percent_encoding::utf8_percent_encode(
                f,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        }
        let params = coffer_wire::query::QueryParams::parse(form.as_bytes())
            .map_err(|e| ErrorEnvelope::internal_failure(e.to_string()))?;
        call.query_operation(coffer_lambda::SIGNING_NAME, &params, spec.read_only);
        let ctx =
            crate::dispatch::request_context(&services, caller, verified, &request_id, transport)
                .await;
        let req = coffer_lambda::Request {
            operation: spec,
            function,
            query: parts.uri.query().unwrap_or(""),
            invocation_type: header("x-amz-invocation-type"),
            log_type: header("x-amz-log-type"),
            body: &body,
        };
        let run = async {
            services
                .lambda
                .call(&ctx, req)
                .await
                .map_err(crate::dispatch::envelope)
        };
        call.run(state, b"", run).await
    }
    .await;
    // The audit record takes the JSON answer; Invoke's payload is the function's, so the
    // record gets none of it.
    let (recorded, answer) = match outcome {
        Ok(r) => (Ok(Vec::new()), Some(r)),
        Err(e) => (Err(e), None),
    };
    match (
        call.finish(state, &parts.headers, b"", recorded).await,
        answer,
    ) {
        (Ok(_), Some(r)) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
            let mut resp = (status, r.body).into_response();
            let h = resp.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/json"));
            for (k, v) in r.headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            }
            crate::dispatch::add_request_id(&mut resp, &request_id);
            resp
        }
        (Err(env), _) => {
            tracing::debug!(request_id, code = %env.code, "lambda request failed");
            rest_error(&env, &request_id)
        }
        (Ok(_), None) => rest_error(
            &ErrorEnvelope::internal_failure("An internal error occurred."),
            &request_id,
        ),
    }
}

/// The Lambda runtime's settings and the registry's handle on deployed functions.
pub(crate) fn runtime(config: &crate::ServerConfig) -> coffer_lambda::Runtime {
    let cache = match &config.data_dir {
        Some(d) => d.join("lambda-code"),
        None => std::env::temp_dir().join(format!("coffer-lambda-{}", std::process::id())),
    };
    coffer_lambda::Runtime::new(config.lambda_python.clone(), cache)
}
