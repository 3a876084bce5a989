//! Builds requests the way an AWS SDK does: AWS JSON 1.1 bodies, signed with SigV4 at send time by
//! the SDK's own signer crate (a fresh signature per request, current clock).

use std::time::SystemTime;

use anyhow::Context;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;

use crate::endpoint::Endpoint;

const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const SIGNING_NAME: &str = "secretsmanager";
const USER_AGENT: &str = concat!("coffer-load/", env!("CARGO_PKG_VERSION"));

/// Signs Secrets Manager calls for one endpoint and identity. Debug is deliberately not derived:
/// the identity holds the secret access key.
pub struct Signer {
    identity: Identity,
    region: String,
    endpoint: Endpoint,
}

impl Signer {
    pub fn new(
        endpoint: Endpoint,
        region: String,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Self {
        let creds = Credentials::new(access_key_id, secret_access_key, None, None, "coffer-load");
        Self {
            identity: creds.into(),
            region,
            endpoint,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `POST /` with `X-Amz-Target: secretsmanager.<operation>`, signed now.
    pub fn call(&self, operation: &str, body: Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
        let target = format!("secretsmanager.{operation}");
        let host = self.endpoint.authority.as_str();
        let signed_headers = [
            (header::HOST.as_str(), host),
            (header::CONTENT_TYPE.as_str(), JSON_CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
        ];
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .context("SigV4 signing parameters")?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.root_uri.as_str(),
            signed_headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .context("SigV4 signable request")?;
        let (instructions, _signature) = sign(signable, &params)
            .context("SigV4 signing")?
            .into_parts();

        let mut builder = Request::builder().method(Method::POST).uri("/");
        for (name, value) in signed_headers {
            builder = builder.header(name, value);
        }
        let mut request = builder
            .header(header::USER_AGENT, USER_AGENT)
            .body(Full::new(body))
            .context("building request")?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }

    /// `GET /health`, unsigned: the server's plain HTTP ceiling.
    pub fn health(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        Request::builder()
            .method(Method::GET)
            .uri("/health")
            .header(header::HOST, self.endpoint.authority.as_str())
            .header(header::USER_AGENT, USER_AGENT)
            .body(Full::new(Bytes::new()))
            .context("building request")
    }
}

/// JSON body helper: serde_json's `Value` serialises infallibly to bytes.
pub fn json_body(value: &serde_json::Value) -> Bytes {
    Bytes::from(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn signer() -> Signer {
        let endpoint = Endpoint {
            authority: "127.0.0.1:4700".into(),
            root_uri: "http://127.0.0.1:4700/".into(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 4700)),
        };
        Signer::new(
            endpoint,
            "us-east-1".into(),
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
    }

    #[test]
    fn call_is_signed_with_json_protocol_headers() {
        let req = signer()
            .call(
                "GetSecretValue",
                json_body(&serde_json::json!({"SecretId": "x"})),
            )
            .unwrap();
        let h = req.headers();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/");
        assert_eq!(h["x-amz-target"], "secretsmanager.GetSecretValue");
        assert_eq!(h[header::CONTENT_TYPE], JSON_CONTENT_TYPE);
        assert_eq!(h[header::HOST], "127.0.0.1:4700");
        assert!(h.contains_key("x-amz-date"));
        let auth = h[header::AUTHORIZATION].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(
            auth.contains("/us-east-1/secretsmanager/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"),
            "{auth}"
        );
        // The secret key never appears in the request.
        assert!(!format!("{h:?}").contains("EXAMPLEKEY"));
    }

    #[test]
    fn body_changes_signature() {
        let s = signer();
        let sig = |body: &str| {
            let req = s
                .call("GetSecretValue", Bytes::from(body.to_owned()))
                .unwrap();
            req.headers()[header::AUTHORIZATION]
                .to_str()
                .unwrap()
                .rsplit('=')
                .next()
                .unwrap()
                .to_owned()
        };
        // The body hash is part of the signature.
        assert_ne!(sig("{\"b\":2}"), sig("{\"c\":3}"));
    }

    #[test]
    fn health_is_unsigned() {
        let req = signer().health().unwrap();
        assert_eq!(req.uri(), "/health");
        assert!(!req.headers().contains_key(header::AUTHORIZATION));
    }
}
