//! `coffer operator` over HTTP: reserved paths under `/coffer/operator/` on the same listener.
//!
//! Authentication, by what each action risks:
//! - `GET status`: none (says only whether the server is initialised and sealed, as `/health`).
//! - `init`: none, and only while the data directory is uninitialised (as Vault's init): the
//!   first caller gets the shares and the root credentials. Keep an uninitialised server on
//!   loopback until it is initialised.
//! - `unseal`, `rekey`: the shares are the authentication (rekey takes a quorum of them).
//! - `seal`, `rotate-root`: a SigV4 signature by the account's root credentials (any service
//!   name and region), since both act on an unsealed server; `rotate-root` on a shares server
//!   also takes a quorum of shares, as the new root key is sealed under their key.
//!
//! Bodies are JSON; errors are `{"__type","message"}` like every other Coffer error.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use coffer_wire::error::ErrorEnvelope;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::dispatch::{self, AppState};
use crate::seal::{self, InitMethod, KekSource, SealError};

const MAX_BODY: usize = 64 * 1024;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/coffer/operator/status", get(status))
        .route("/coffer/operator/init", post(init))
        .route("/coffer/operator/unseal", post(unseal))
        .route("/coffer/operator/seal", post(seal))
        .route("/coffer/operator/rekey", post(rekey))
        .route("/coffer/operator/rotate-root", post(rotate_root))
}

fn ok(v: Value) -> Response {
    let mut resp = (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response();
    dispatch::add_request_id(&mut resp, &dispatch::new_request_id());
    resp
}

fn fail(env: ErrorEnvelope) -> Response {
    let status = StatusCode::from_u16(env.status).unwrap_or(StatusCode::BAD_REQUEST);
    dispatch::error_response(&env, &dispatch::new_request_id(), status)
}

fn seal_error(e: SealError) -> Response {
    if e.status() >= 500 {
        tracing::error!(error = %e, "operator action failed");
    }
    fail(ErrorEnvelope::new(e.code(), e.to_string(), e.status()))
}

fn answer<T: serde::Serialize>(r: Result<T, SealError>) -> Response {
    match r {
        Ok(v) => ok(serde_json::to_value(v).unwrap_or(Value::Null)),
        Err(e) => seal_error(e),
    }
}

async fn read(req: Request) -> Result<(axum::http::request::Parts, Bytes), Response> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| fail(ErrorEnvelope::validation("request body too large")))?;
    Ok((parts, body))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ErrorEnvelope> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ErrorEnvelope::validation(format!("invalid request body: {e}")))
}

/// Verifies the request is signed with the account's root credentials.
async fn require_root(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<(), ErrorEnvelope> {
    let services = state.services()?;
    let req = coffer_wire::sigv4::RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
    };
    let now = coffer_core::Clock::now_secs(&coffer_core::SystemClock);
    let (caller, _) = services.credentials.authenticate(&req, body, now).await?;
    let root = coffer_core::Caller::root(&state.account_id, &caller.access_key_id);
    if caller.principal_arn != root.principal_arn {
        return Err(ErrorEnvelope::access_denied(
            "Only the account's root credentials may seal the server or rotate its root key.",
        ));
    }
    Ok(())
}

async fn status(State(state): State<Arc<AppState>>) -> Response {
    answer(seal::status(&state).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitBody {
    key_shares: Option<u8>,
    key_threshold: Option<u8>,
    auto_unseal_file: Option<std::path::PathBuf>,
    auto_unseal_env: Option<String>,
}

async fn init(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (_, body) = match read(req).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let b: InitBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let method = match (
        b.key_shares,
        b.key_threshold,
        b.auto_unseal_file,
        b.auto_unseal_env,
    ) {
        (Some(shares), Some(threshold), None, None) => InitMethod::Shares { shares, threshold },
        (None, None, Some(path), None) => InitMethod::Auto(KekSource::File(path)),
        (None, None, None, Some(var)) => InitMethod::Auto(KekSource::Env(var)),
        _ => {
            return fail(ErrorEnvelope::validation(
                "give key_shares and key_threshold, or auto_unseal_file, or auto_unseal_env",
            ));
        }
    };
    match seal::init(&state, method).await {
        Ok(out) => {
            let shares: Vec<&str> = out.shares.iter().map(|s| s.as_str()).collect();
            let creds = out.root_credentials.as_ref().map(|c| {
                json!({"access_key_id": c.access_key_id, "secret_access_key": c.secret_access_key})
            });
            let status = seal::status(&state).await.ok();
            ok(json!({"shares": shares, "root_credentials": creds, "status": status}))
        }
        Err(e) => seal_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsealBody {
    share: Option<String>,
    #[serde(default)]
    reset: bool,
}

async fn unseal(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (_, body) = match read(req).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let b: UnsealBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    answer(seal::unseal(&state, b.share.as_deref(), b.reset).await)
}

async fn seal(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = match read(req).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(e) = require_root(&state, &parts, &body).await {
        return fail(e);
    }
    answer(seal::seal(&state).await)
}

/// Step one: `{"shares": current quorum, "key_shares", "key_threshold"}` → the new shares.
/// Step two: `{"verify": new quorum}` puts them in force.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RekeyBody {
    #[serde(default)]
    shares: Vec<String>,
    key_shares: Option<u8>,
    key_threshold: Option<u8>,
    verify: Option<Vec<String>>,
}

async fn rekey(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (_, body) = match read(req).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let b: RekeyBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let (key_shares, key_threshold) = match (b.verify, b.key_shares, b.key_threshold) {
        (Some(new), None, None) if b.shares.is_empty() => {
            return match seal::rekey_verify(&state, &new).await {
                Ok(()) => answer(seal::status(&state).await),
                Err(e) => seal_error(e),
            };
        }
        (None, Some(n), Some(t)) => (n, t),
        _ => {
            return fail(ErrorEnvelope::validation(
                "give shares, key_shares and key_threshold, or verify",
            ));
        }
    };
    match seal::rekey(&state, &b.shares, key_shares, key_threshold).await {
        Ok(shares) => {
            let shares: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
            ok(json!({"shares": shares}))
        }
        Err(e) => seal_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    shares: Vec<String>,
}

async fn rotate_root(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = match read(req).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(e) = require_root(&state, &parts, &body).await {
        return fail(e);
    }
    let b: RotateBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    match seal::rotate_root(&state, &b.shares).await {
        Ok(n) => ok(json!({"rewrapped_records": n})),
        Err(e) => seal_error(e),
    }
}
