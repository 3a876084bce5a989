//! The HTTP(S) webhook sink for parameter-policy events: one `POST` of the event JSON per event
//! (`content-type: application/json`); any 2xx is delivered, anything else (or no answer within
//! the timeout) is retried later by the policy runner with exponential backoff. `https://` URLs
//! are verified against the system's trusted roots (rustls, aws-lc-rs provider).

use std::time::Duration;

use async_trait::async_trait;
use coffer_parameters::EventSink;

use crate::outbound::{Endpoint, system_roots};

/// How long one delivery may take (connect + TLS + request + response head).
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Webhook {
    endpoint: Endpoint,
}

/// The URL may carry a token in its query: show only where it points.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({:?})", self.endpoint)
    }
}

impl Webhook {
    /// Accepts `http(s)://host[:port][/path][?query]`; https trusts the system's roots.
    pub fn new(url: &str) -> Result<Self, String> {
        Self::build(url, || system_roots("the https:// webhook"))
    }

    fn build(
        url: &str,
        roots: impl FnOnce() -> Result<rustls::RootCertStore, String>,
    ) -> Result<Self, String> {
        Ok(Self {
            endpoint: Endpoint::parse(url, "the parameter events webhook", roots)?,
        })
    }

    pub(crate) async fn post(&self, body: &str) -> Result<(), String> {
        let (status, _) = self
            .endpoint
            .request(
                http::Method::POST,
                Some("application/json"),
                body.as_bytes().to_vec(),
                "coffer-parameter-events",
                0,
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered HTTP {}", status.as_u16()))
        }
    }
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
    use std::sync::Arc;

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn no_roots() -> Result<rustls::RootCertStore, String> {
        Ok(rustls::RootCertStore::empty())
    }

    #[test]
    fn urls() {
        let w = Webhook::build("http://127.0.0.1:9000/hooks/ssm?token=x", no_roots).unwrap();
        let e = &w.endpoint;
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 9000));
        assert_eq!(e.path_and_query, "/hooks/ssm?token=x");
        assert!(!format!("{w:?}").contains("token"));
        let w = Webhook::build("http://example.com", no_roots).unwrap();
        assert_eq!(
            (w.endpoint.port, w.endpoint.path_and_query.as_str()),
            (80, "/")
        );
        let w = Webhook::build("https://example.com/e", no_roots).unwrap();
        assert_eq!((w.endpoint.port, w.endpoint.tls.is_some()), (443, true));
        let w = Webhook::build("http://[::1]:8080/x", no_roots).unwrap();
        assert_eq!(w.endpoint.host, "::1");
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
