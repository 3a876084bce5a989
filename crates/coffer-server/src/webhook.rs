//! The HTTP(S) webhook sink for parameter-policy events: one `POST` of the event JSON per event
//! (`content-type: application/json`); any 2xx is delivered, anything else (or no answer within
//! the timeout) is retried later by the policy runner with exponential backoff. `https://` URLs
//! are verified against the system's trusted roots (rustls, aws-lc-rs provider).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use coffer_parameters::EventSink;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long one delivery may take (connect + TLS + request + response head).
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Webhook {
    host: String,
    port: u16,
    /// `host[:port]` as the `Host` header carries it.
    authority: String,
    path_and_query: String,
    /// `Some` for `https://`.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

/// The URL may carry a token in its query: show only where it points.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        write!(f, "Webhook({scheme}://{})", self.authority)
    }
}

impl Webhook {
    /// Accepts `http(s)://host[:port][/path][?query]`; https trusts the system's roots.
    pub fn new(url: &str) -> Result<Self, String> {
        Self::build(url, system_roots)
    }

    fn build(
        url: &str,
        roots: impl FnOnce() -> Result<rustls::RootCertStore, String>,
    ) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| "the parameter events webhook is not a valid URL".to_string())?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(
                    "the parameter events webhook must be an http:// or https:// URL".into(),
                );
            }
        };
        let authority = uri
            .authority()
            .ok_or("the parameter events webhook URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("the parameter events webhook URL must not carry user information".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err("the parameter events webhook URL has no host".into());
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
                .map_err(|_| "the parameter events webhook host is not a valid TLS name")?;
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

    pub(crate) async fn post(&self, body: &str) -> Result<(), String> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => self.send(stream, body).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                self.send(stream, body).await
            }
        }
    }

    async fn send<S>(&self, io: S, body: &str) -> Result<(), String>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        let driver = tokio::spawn(conn);
        let req = http::Request::post(self.path_and_query.as_str())
            .header(http::header::HOST, self.authority.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "coffer-parameter-events")
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| format!("building the request: {e}"))?;
        let result = sender.send_request(req).await;
        driver.abort();
        let resp = result.map_err(|e| format!("sending: {e}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the webhook answered HTTP {}",
                resp.status().as_u16()
            ))
        }
    }
}

fn system_roots() -> Result<rustls::RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("no trusted root certificates found for the https:// webhook".into());
    }
    Ok(roots)
}

#[async_trait]
impl EventSink for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn deliver(&self, event: &str) -> Result<(), String> {
        tokio::time::timeout(TIMEOUT, self.post(event))
            .await
            .map_err(|_| "the webhook did not answer in time".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn no_roots() -> Result<rustls::RootCertStore, String> {
        Ok(rustls::RootCertStore::empty())
    }

    #[test]
    fn urls() {
        let w = Webhook::build("http://127.0.0.1:9000/hooks/ssm?token=x", no_roots).unwrap();
        assert_eq!((w.host.as_str(), w.port), ("127.0.0.1", 9000));
        assert_eq!(w.path_and_query, "/hooks/ssm?token=x");
        assert!(!format!("{w:?}").contains("token"));
        let w = Webhook::build("http://example.com", no_roots).unwrap();
        assert_eq!((w.port, w.path_and_query.as_str()), (80, "/"));
        let w = Webhook::build("https://example.com/e", no_roots).unwrap();
        assert_eq!((w.port, w.tls.is_some()), (443, true));
        let w = Webhook::build("http://[::1]:8080/x", no_roots).unwrap();
        assert_eq!(w.host, "::1");
        for bad in ["", "example.com/x", "ftp://h/x", "http://u:p@h/x"] {
            assert!(Webhook::build(bad, no_roots).is_err(), "{bad}");
        }
    }

    /// An https receiver with a self-signed certificate, trusted by this webhook only.
    #[tokio::test]
    async fn https_delivery_verifies_the_certificate() {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = ck.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    let _ = tx.send(None);
                    continue;
                };
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !String::from_utf8_lossy(&got).contains("{\"e\":1}") {
                    let Ok(n) = tls.read(&mut buf).await else {
                        break;
                    };
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
                let _ = tx.send(Some(String::from_utf8_lossy(&got).to_string()));
            }
        });
        let url = format!("https://localhost:{port}/in");
        let trusting = Webhook::build(&url, || {
            let mut r = rustls::RootCertStore::empty();
            r.add(cert.clone()).map_err(|e| e.to_string())?;
            Ok(r)
        })
        .unwrap();
        trusting.deliver(r#"{"e":1}"#).await.unwrap();
        let req = rx.recv().await.flatten().expect("request received");
        assert!(req.starts_with("POST /in HTTP/1.1\r\n"), "{req}");

        // Not trusted: the TLS handshake fails and the event stays undelivered.
        let stranger = Webhook::build(&url, no_roots).unwrap();
        let err = stranger.deliver(r#"{"e":1}"#).await.unwrap_err();
        assert!(err.starts_with("TLS"), "{err}");
    }
}
