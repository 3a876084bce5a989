//! The HTTP(S) listener: accept loop, TLS, routes, body limit, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use coffer_wire::error::ErrorEnvelope;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::dispatch::{self, AppState};
use crate::{MAX_BODY_BYTES, StartError, StartReport};

/// A started server. Dropping it does not stop it: call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub addr: SocketAddr,
    pub tls: bool,
    pub report: StartReport,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    tasks: JoinHandle<()>,
}

impl RunningServer {
    /// `http://ADDR` or `https://ADDR`.
    pub fn endpoint(&self) -> String {
        endpoint(self.tls, self.addr)
    }

    pub fn account_id(&self) -> &str {
        &self.state.account_id
    }

    /// Runs the background jobs once, now (tests advance the clock, then call this).
    pub async fn run_background_jobs(&self) {
        crate::tasks::run_rotations(&self.state).await;
        crate::tasks::run_once(&self.state).await;
    }

    /// The parameter-policy event log so far (one JSON event per entry, oldest first).
    pub fn parameter_events(&self) -> std::io::Result<Vec<String>> {
        self.state.parameter_events.events()
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), stops background jobs,
    /// and seals the audit chain with a last digest.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.tasks.abort();
        let _ = self.accept.await;
        if let Err(e) = self.state.audit.seal("shutdown").await {
            tracing::warn!(error = %e, "could not seal the audit chain at shutdown");
        }
        self.state.audit.stop().await;
    }

    /// The audit log (tests read, verify and seal the trail through it).
    pub fn audit(&self) -> &coffer_audit::AuditLog {
        &self.state.audit
    }

    /// Waits until the server stops (it only stops through [`RunningServer::shutdown`]).
    pub async fn wait(self) {
        let _ = self.accept.await;
    }
}

pub(crate) async fn serve(
    addr: SocketAddr,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    report: StartReport,
    tasks: JoinHandle<()>,
) -> Result<RunningServer, StartError> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/health", get(health))
        .route("/", post(api))
        .route("/2015-03-31/{*rest}", any(lambda_api))
        .merge(crate::operator_api::routes())
        .fallback(not_found)
        // The body limit is enforced while reading, so the answer can be AWS-shaped.
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state.clone());
    let (stop, stop_rx) = watch::channel(false);
    let is_tls = tls.is_some();
    // Before the first request: RotateSecret may start a rotation whose function calls back.
    let _ = state.deps.rotation.endpoint.set(endpoint(is_tls, addr));
    let accept = tokio::spawn(accept_loop(listener, app, tls, stop_rx));
    Ok(RunningServer {
        addr,
        tls: is_tls,
        report,
        state,
        stop,
        accept,
        tasks,
    })
}

fn endpoint(tls: bool, addr: SocketAddr) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}

/// The connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transport {
    pub source_ip: std::net::IpAddr,
    pub tls: bool,
}

/// `{"status":"ok"}` (200) while unsealed; `{"status":"sealed"}` (503) otherwise, so a load
/// balancer routes around a sealed node.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    let (status, body) = if state.is_unsealed() {
        (StatusCode::OK, r#"{"status":"ok"}"#)
    } else if state.sealer.is_initialized().await {
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"sealed"}"#)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"uninitialized"}"#,
        )
    };
    let mut resp = (status, [("content-type", "application/json")], body).into_response();
    dispatch::add_request_id(&mut resp, &dispatch::new_request_id());
    resp
}

async fn api(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let request_id = dispatch::new_request_id();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let env = ErrorEnvelope::validation(format!(
                "Request body is larger than the maximum of {MAX_BODY_BYTES} bytes"
            ));
            return dispatch::error_response(&env, &request_id, StatusCode::PAYLOAD_TOO_LARGE);
        }
    };
    dispatch::handle(&state, parts, body, request_id).await
}

/// Lambda's REST-JSON API (its bodies carry function code: the larger limit).
async fn lambda_api(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let request_id = dispatch::new_request_id();
    let body = match axum::body::to_bytes(body, coffer_lambda::MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let env = ErrorEnvelope::new(
                "RequestTooLargeException",
                format!(
                    "Request must be smaller than {} bytes",
                    coffer_lambda::MAX_REQUEST_BYTES
                ),
                413,
            );
            return dispatch::error_response(&env, &request_id, StatusCode::PAYLOAD_TOO_LARGE);
        }
    };
    crate::lambda::handle(&state, parts, body, request_id).await
}

async fn not_found() -> Response {
    let env = ErrorEnvelope::unknown_operation(String::new());
    dispatch::error_response(&env, &dispatch::new_request_id(), StatusCode::NOT_FOUND)
}

/// A bug must not take the connection down or leak its message (it might hold input).
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    let env = ErrorEnvelope::internal_failure("An internal error occurred.");
    dispatch::error_response(
        &env,
        &dispatch::new_request_id(),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        // Each request learns its connection's peer and transport (`aws:SourceIp`,
        // `aws:SecureTransport`).
        let transport = Transport {
            source_ip: peer.ip(),
            tls: tls.is_some(),
        };
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(transport);
                req
            },
        ));
        match &tls {
            None => {
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(conn);
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await
                    else {
                        return;
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}
