//! The server's outbound HTTP(S) requests (the parameter-events webhook, OpenID Connect issuers'
//! keys): one request per connection over hyper's HTTP/1.1 client; `https://` verified with
//! rustls (aws-lc-rs provider) against the roots the caller gives.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where requests go: `http(s)://host[:port][/path][?query]`.
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `host[:port]` as the `Host` header carries it.
    authority: String,
    pub(crate) path_and_query: String,
    /// `Some` for `https://`.
    pub(crate) tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

/// The URL may carry a token in its query: show only where it points.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority)
    }
}

impl Endpoint {
    /// Parses `url` (`what` names it in errors); `https://` trusts the certificates `roots`
    /// gives.
    pub(crate) fn parse(
        url: &str,
        what: &str,
        roots: impl FnOnce() -> Result<rustls::RootCertStore, String>,
    ) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| format!("{what} is not a valid URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("{what} must be an http:// or https:// URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{what} URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("{what} URL must not carry user information"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{what} URL has no host"));
        }
        let tls = if https {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots()?)
                .with_no_client_auth();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.to_owned())
                .map_err(|_| format!("{what} host is not a valid TLS name"))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(cfg)), name))
        } else {
            None
        };
        Ok(Self {
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            tls,
        })
    }

    /// One request; the answer's status and at most `max_body` bytes of its body (`0`: the
    /// body is not read).
    pub(crate) async fn request(
        &self,
        method: http::Method,
        content_type: Option<&str>,
        body: Vec<u8>,
        user_agent: &str,
        max_body: usize,
    ) -> Result<(http::StatusCode, Bytes), String> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => {
                self.send(stream, method, content_type, body, user_agent, max_body)
                    .await
            }
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                self.send(stream, method, content_type, body, user_agent, max_body)
                    .await
            }
        }
    }

    async fn send<S>(
        &self,
        io: S,
        method: http::Method,
        content_type: Option<&str>,
        body: Vec<u8>,
        user_agent: &str,
        max_body: usize,
    ) -> Result<(http::StatusCode, Bytes), String>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        let driver = tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(self.path_and_query.as_str())
            .header(http::header::HOST, self.authority.as_str())
            .header(http::header::USER_AGENT, user_agent);
        if let Some(t) = content_type {
            req = req.header(http::header::CONTENT_TYPE, t);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("building the request: {e}"))?;
        let result = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("sending: {e}"))?;
            let status = resp.status();
            if max_body == 0 {
                return Ok((status, Bytes::new()));
            }
            let body = Limited::new(resp.into_body(), max_body)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok((status, body))
        }
        .await;
        driver.abort();
        result
    }
}

/// The system's trusted root certificates (`what` names their use in the error).
pub(crate) fn system_roots(what: &str) -> Result<rustls::RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!("no trusted root certificates found for {what}"));
    }
    Ok(roots)
}
