//! Signs requests with the `aws-sigv4` crate (the AWS SDK's signer), the oracle for our verifier.

#![allow(dead_code)]

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use coffer_wire::sigv4::RequestParts;
use http::{HeaderMap, HeaderValue};

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const HOST: &str = "secretsmanager.us-east-1.amazonaws.com";
/// 2015-08-30T12:36:00Z
pub const T0: i64 = 1_440_938_160;

/// A request as the server sees it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
        }
    }
}

/// What to sign.
#[derive(Clone, Debug)]
pub struct Spec {
    pub method: String,
    /// Already percent-encoded path and optional `?query`.
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub akid: String,
    pub secret: String,
    pub token: Option<String>,
    pub region: String,
    pub service: String,
    pub time: i64,
    /// `Some(expires)` presigns into the query.
    pub presign: Option<u64>,
    pub content_sha256_header: bool,
    /// Sign `UNSIGNED-PAYLOAD` instead of the body's hash.
    pub unsigned_payload: bool,
    pub exclude: Vec<&'static str>,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            method: "POST".into(),
            path_and_query: "/".into(),
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                (
                    "x-amz-target".into(),
                    "secretsmanager.GetSecretValue".into(),
                ),
            ],
            body: br#"{"SecretId":"prod/db"}"#.to_vec(),
            akid: AKID.into(),
            secret: SECRET.into(),
            token: None,
            region: "us-east-1".into(),
            service: "secretsmanager".into(),
            time: T0,
            presign: None,
            content_sha256_header: false,
            unsigned_payload: false,
            exclude: Vec::new(),
        }
    }
}

pub fn sign_request(spec: &Spec) -> Received {
    let identity: Identity = Credentials::new(
        spec.akid.clone(),
        spec.secret.clone(),
        spec.token.clone(),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    if let Some(exp) = spec.presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(exp));
    }
    if spec.content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if !spec.exclude.is_empty() {
        let mut ex = settings.excluded_headers.clone().unwrap_or_default();
        ex.extend(spec.exclude.iter().map(|s| Cow::Borrowed(*s)));
        settings.excluded_headers = Some(ex);
    }
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(spec.time).expect("positive time"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&spec.region)
        .name(&spec.service)
        .time(time)
        .settings(settings)
        .build()
        .expect("params")
        .into();

    let uri = format!("https://{HOST}{}", spec.path_and_query);
    let mut all_headers: Vec<(String, String)> = vec![("host".into(), HOST.into())];
    all_headers.extend(spec.headers.iter().cloned());
    let signable = SignableRequest::new(
        &spec.method,
        uri.clone(),
        all_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        if spec.unsigned_payload {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(&spec.body)
        },
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();

    let mut req = http::Request::builder()
        .method(spec.method.as_str())
        .uri(&uri)
        .body(())
        .expect("request");
    for (k, v) in &all_headers {
        req.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    instructions.apply_to_request_http1x(&mut req);
    Received {
        method: spec.method.clone(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or("").to_owned(),
        headers: req.headers().clone(),
        body: spec.body.clone(),
    }
}
