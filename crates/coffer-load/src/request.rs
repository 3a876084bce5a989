//! Builds requests the way an AWS SDK does: AWS JSON 1.1 bodies, signed with SigV4 at send time
//! (a fresh signature per request over the current clock and the body's hash). The signing key
//! comes from the SDK's own signer crate (`aws-sigv4`'s `generate_signing_key`, derived once per
//! day as SDKs cache it) and the signature from its `calculate_signature`; the canonical request
//! for our fixed header set is assembled here, which keeps the tool's own CPU per request small
//! (it shares the machine with the server it measures). A test checks the result is
//! byte-identical to `aws-sigv4`'s full request signer.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lc_rs::digest;
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;

use crate::endpoint::Endpoint;

const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const USER_AGENT: &str = concat!("coffer-load/", env!("CARGO_PKG_VERSION"));
const SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-amz-target";
const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");

/// Which AWS service the calls go to: the `X-Amz-Target` prefix and the SigV4 signing name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    SecretsManager,
    Ssm,
    Kms,
}

impl Service {
    fn target_prefix(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "AmazonSSM",
            Service::Kms => "TrentService",
        }
    }

    fn signing_name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
            Service::Kms => "kms",
        }
    }
}

/// Everything of a signature that only changes once a second (the timestamp) or once a day
/// (credential scope and signing key).
struct Second {
    unix_secs: u64,
    /// `yyyymmddThhmmssZ`.
    amz_date: String,
    amz_date_header: HeaderValue,
    /// `AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n`: the string to sign up to the request's hash.
    sts_prefix: String,
    /// `AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders=..., Signature=`.
    auth_prefix: String,
    /// `yyyymmdd/region/service/aws4_request`.
    scope: String,
    signing_key: Vec<u8>,
}

/// Signs calls to one service for one endpoint and identity. Debug is deliberately not derived:
/// it holds the secret access key and a signing key.
pub struct Signer {
    access_key_id: String,
    secret_access_key: String,
    region: String,
    service: Service,
    endpoint: Endpoint,
    host: HeaderValue,
    clock: Mutex<Option<Arc<Second>>>,
}

impl Signer {
    pub fn new(
        endpoint: Endpoint,
        region: String,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Self {
        // An authority parsed from a URI is always a valid header value; fall back defensively.
        let host = HeaderValue::from_str(&endpoint.authority)
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            region,
            service: Service::SecretsManager,
            endpoint,
            host,
            clock: Mutex::new(None),
        }
    }

    /// The same identity, signing for `service` (Secrets Manager unless changed).
    pub fn with_service(mut self, service: Service) -> Self {
        self.service = service;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `POST /` with `X-Amz-Target: <service prefix>.<operation>`, signed now.
    pub fn call(&self, operation: &str, body: Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
        self.call_at(operation, body, SystemTime::now())
    }

    fn call_at(
        &self,
        operation: &str,
        body: Bytes,
        time: SystemTime,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let prefix = self.service.target_prefix();
        let mut target = String::with_capacity(prefix.len() + 1 + operation.len());
        target.push_str(prefix);
        target.push('.');
        target.push_str(operation);
        let (amz_date, authorization) = self.sign(&target, &body, time)?;

        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_static("/");
        let h = request.headers_mut();
        h.insert(header::HOST, self.host.clone());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        );
        h.insert(
            X_AMZ_TARGET,
            HeaderValue::from_maybe_shared(Bytes::from(target)).context("operation name")?,
        );
        h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        h.insert(X_AMZ_DATE, amz_date);
        h.insert(header::AUTHORIZATION, authorization);
        Ok(request)
    }

    /// Returns `(x-amz-date, Authorization)` for `POST /` with our signed headers and `body`.
    fn sign(
        &self,
        target: &str,
        body: &[u8],
        time: SystemTime,
    ) -> anyhow::Result<(HeaderValue, HeaderValue)> {
        let second = self.second(time)?;
        let payload_hash = hex_sha256(digest::digest(&digest::SHA256, body).as_ref());
        let mut creq = digest::Context::new(&digest::SHA256);
        for part in [
            b"POST\n/\n\ncontent-type:".as_slice(),
            JSON_CONTENT_TYPE.as_bytes(),
            b"\nhost:",
            self.endpoint.authority.as_bytes(),
            b"\nx-amz-date:",
            second.amz_date.as_bytes(),
            b"\nx-amz-target:",
            target.as_bytes(),
            b"\n\n",
            SIGNED_HEADERS.as_bytes(),
            b"\n",
            &payload_hash,
        ] {
            creq.update(part);
        }
        let mut string_to_sign = Vec::with_capacity(second.sts_prefix.len() + 64);
        string_to_sign.extend_from_slice(second.sts_prefix.as_bytes());
        string_to_sign.extend_from_slice(&hex_sha256(creq.finish().as_ref()));
        let signature = v4::calculate_signature(&second.signing_key, &string_to_sign);
        let mut authorization = String::with_capacity(second.auth_prefix.len() + signature.len());
        authorization.push_str(&second.auth_prefix);
        authorization.push_str(&signature);
        let authorization =
            HeaderValue::from_maybe_shared(Bytes::from(authorization)).context("authorization")?;
        Ok((second.amz_date_header.clone(), authorization))
    }

    /// The per-second signing state for `time`, computed once per second (and the key once a day).
    fn second(&self, time: SystemTime) -> anyhow::Result<Arc<Second>> {
        let unix_secs = time
            .duration_since(UNIX_EPOCH)
            .context("clock before 1970")?
            .as_secs();
        let mut current = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = current.as_ref()
            && c.unix_secs == unix_secs
        {
            return Ok(Arc::clone(c));
        }
        let amz_date = format_amz_date(unix_secs);
        let day = &amz_date[..8];
        let same_day = current
            .as_ref()
            .filter(|c| c.amz_date.starts_with(day))
            .map(|c| (c.scope.clone(), c.signing_key.clone()));
        let signing_name = self.service.signing_name();
        let (scope, signing_key) = match same_day {
            Some(kept) => kept,
            None => (
                format!("{day}/{}/{signing_name}/aws4_request", self.region),
                v4::generate_signing_key(&self.secret_access_key, time, &self.region, signing_name)
                    .as_ref()
                    .to_vec(),
            ),
        };
        let second = Arc::new(Second {
            unix_secs,
            amz_date_header: HeaderValue::from_str(&amz_date).context("x-amz-date")?,
            sts_prefix: format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"),
            auth_prefix: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature=",
                self.access_key_id
            ),
            amz_date,
            scope,
            signing_key,
        });
        *current = Some(Arc::clone(&second));
        Ok(second)
    }

    /// `GET /health`, unsigned: the server's plain HTTP ceiling.
    pub fn health(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = Uri::from_static("/health");
        let h = request.headers_mut();
        h.insert(header::HOST, self.host.clone());
        h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        Ok(request)
    }
}

/// Lowercase hex of a SHA-256 digest, on the stack.
fn hex_sha256(digest: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // 32 bytes always fill exactly 64 digits.
    let _ = hex::encode_to_slice(digest, &mut out);
    out
}

/// Unix seconds as `yyyymmddThhmmssZ` (proleptic Gregorian, UTC).
fn format_amz_date(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), on the shifted era starting 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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

    /// The SDK's full request signer, as this tool used it before: the reference.
    fn sdk_authorization(s: &Signer, target: &str, body: &[u8], time: SystemTime) -> String {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_smithy_runtime_api::client::identity::Identity;
        let identity: Identity =
            Credentials::new(&s.access_key_id, &s.secret_access_key, None, None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&s.region)
            .name(s.service.signing_name())
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("host", s.endpoint.authority.as_str()),
            ("content-type", JSON_CONTENT_TYPE),
            ("x-amz-target", target),
        ];
        let uri = format!("http://{}/", s.endpoint.authority);
        let signable = SignableRequest::new(
            "POST",
            &uri,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut req = http::Request::builder().uri("/").body(()).unwrap();
        instructions.apply_to_request_http1x(&mut req);
        req.headers()["authorization"].to_str().unwrap().to_owned()
    }

    #[test]
    fn signature_is_byte_identical_to_the_sdk_signer() {
        use std::time::Duration;
        let s = signer();
        // Ascending, with repeats of a second and of a day, and a day change: every cache path.
        for t in [
            951_782_400u64, // 2000-02-29
            1_440_938_160,
            1_440_938_160,
            1_440_938_161,
            1_764_201_599, // the last second of a day ...
            1_764_201_600, // ... and the first of the next
        ] {
            let time = UNIX_EPOCH + Duration::from_secs(t);
            for body in [&b"{\"SecretId\":\"x\"}"[..], b"", b"{\"b\":2}"] {
                let req = s
                    .call_at("GetSecretValue", Bytes::copy_from_slice(body), time)
                    .unwrap();
                let expected = sdk_authorization(&s, "secretsmanager.GetSecretValue", body, time);
                assert_eq!(
                    req.headers()[header::AUTHORIZATION],
                    expected.as_str(),
                    "{t}"
                );
            }
        }
    }

    #[test]
    fn ssm_calls_use_the_ssm_target_and_signing_name() {
        let s = signer().with_service(Service::Ssm);
        let time = UNIX_EPOCH + std::time::Duration::from_secs(1_764_201_600);
        let body = b"{\"Name\":\"/a\",\"WithDecryption\":true}";
        let req = s
            .call_at("GetParameter", Bytes::copy_from_slice(body), time)
            .unwrap();
        assert_eq!(req.headers()["x-amz-target"], "AmazonSSM.GetParameter");
        let expected = sdk_authorization(&s, "AmazonSSM.GetParameter", body, time);
        assert!(
            expected.contains("/us-east-1/ssm/aws4_request"),
            "{expected}"
        );
        assert_eq!(req.headers()[header::AUTHORIZATION], expected.as_str());
    }

    #[test]
    fn amz_dates() {
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(format_amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(format_amz_date(1_764_201_599), "20251126T235959Z");
        assert_eq!(format_amz_date(4_102_444_800), "21000101T000000Z");
    }

    #[test]
    fn health_is_unsigned() {
        let req = signer().health().unwrap();
        assert_eq!(req.uri(), "/health");
        assert!(!req.headers().contains_key(header::AUTHORIZATION));
    }
}
