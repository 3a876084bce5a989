//! The HTTP webhook sink for parameter-policy events: one `POST` of the event JSON per event
//! (`content-type: application/json`); any 2xx is delivered, anything else (or no answer within
//! the timeout) is retried later by the policy runner with exponential backoff.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use coffer_parameters::EventSink;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

/// How long one delivery may take (connect + request + response head).
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Webhook {
    host: String,
    port: u16,
    /// `host[:port]` as the `Host` header carries it.
    authority: String,
    path_and_query: String,
}

/// The URL may carry a token in its query: show only where it points.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook(http://{})", self.authority)
    }
}

impl Webhook {
    /// Accepts `http://host[:port][/path][?query]`.
    pub fn new(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| "the parameter events webhook is not a valid URL".to_string())?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(
                    "the parameter events webhook must be an http:// URL (https is not supported yet)"
                        .into(),
                );
            }
            _ => return Err("the parameter events webhook must be an http:// URL".into()),
        }
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
        Ok(Self {
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }

    async fn post(&self, body: &str) -> Result<(), String> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
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

    #[test]
    fn urls() {
        let w = Webhook::new("http://127.0.0.1:9000/hooks/ssm?token=x").unwrap();
        assert_eq!((w.host.as_str(), w.port), ("127.0.0.1", 9000));
        assert_eq!(w.path_and_query, "/hooks/ssm?token=x");
        assert!(!format!("{w:?}").contains("token"));
        let w = Webhook::new("http://example.com").unwrap();
        assert_eq!((w.port, w.path_and_query.as_str()), (80, "/"));
        let w = Webhook::new("http://[::1]:8080/x").unwrap();
        assert_eq!(w.host, "::1");
        for bad in [
            "",
            "example.com/x",
            "ftp://h/x",
            "https://h/x",
            "http://u:p@h/x",
        ] {
            assert!(Webhook::new(bad).is_err(), "{bad}");
        }
    }
}
