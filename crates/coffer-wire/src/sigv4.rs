//! AWS Signature Version 4 verification (`AWS4-HMAC-SHA256`), header and presigned-query forms.
//!
//! Canonicalisation follows AWS's rules for non-S3 services: the received (already
//! percent-encoded) path is dot-segment normalised and encoded once more, query parameters are
//! decoded, re-encoded strictly and sorted, header values are trimmed with inner runs of spaces
//! collapsed and repeated headers joined with `,`. A client that signed the path without
//! normalisation is also accepted (the unnormalised path is tried when the normalised one fails).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_lc_rs::{digest, hmac};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};
use zeroize::Zeroizing;

use crate::error::{ErrorEnvelope, SIGNATURE_MISMATCH_MESSAGE};

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Allowed clock difference between client and server.
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// Largest `X-Amz-Expires` AWS accepts (one week).
pub const MAX_PRESIGN_EXPIRES_SECS: i64 = 604_800;
/// Derived signing keys kept; the cache is emptied when it fills (keys rotate daily anyway).
pub const KEY_CACHE_CAPACITY: usize = 4096;

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
// Looked up on every request: as constants they need no parsing per lookup.
const X_AMZ_DATE: http::HeaderName = http::HeaderName::from_static("x-amz-date");
const X_AMZ_CONTENT_SHA256: http::HeaderName =
    http::HeaderName::from_static("x-amz-content-sha256");
const X_AMZ_TARGET: http::HeaderName = http::HeaderName::from_static("x-amz-target");
const X_AMZ_SECURITY_TOKEN: http::HeaderName =
    http::HeaderName::from_static("x-amz-security-token");
const TERMINATOR: &str = "aws4_request";

/// RFC 3986 unreserved characters stay; everything else is `%XX`.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
const STRICT_PATH: &AsciiSet = &STRICT.remove(b'/');

/// The parts of a received request that SigV4 covers.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// HTTP method as received, e.g. `POST`.
    pub method: &'a str,
    /// Raw path, percent-encoded as received (`uri.path()`).
    pub path: &'a str,
    /// Raw query string without `?` (`uri.query().unwrap_or("")`).
    pub query: &'a str,
    /// Request headers. Must contain `host`; for HTTP/2 the caller copies `:authority` into it.
    pub headers: &'a HeaderMap,
}

/// A secret access key, prepared for SigV4 key derivation. Zeroised on drop; never printed.
pub struct SigningSecret {
    /// `"AWS4" + secret`, the HMAC key of the first derivation step.
    prefixed: Zeroizing<Vec<u8>>,
    /// Identifies the secret in the derived-key cache, so a rotated secret is never served a stale key.
    fingerprint: [u8; 32],
}

impl SigningSecret {
    /// Wraps a secret access key.
    pub fn new(secret_access_key: &str) -> Self {
        let mut prefixed = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
        prefixed.extend_from_slice(b"AWS4");
        prefixed.extend_from_slice(secret_access_key.as_bytes());
        let d = digest::digest(&digest::SHA256, &prefixed);
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(d.as_ref());
        Self {
            prefixed,
            fingerprint,
        }
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

/// Who signed a request, from its credential scope.
#[derive(Clone, PartialEq, Eq)]
pub struct Verified {
    /// Access key id from the credential scope.
    pub access_key_id: String,
    /// Region from the credential scope.
    pub region: String,
    /// Service name from the credential scope (the caller checks it is the expected one).
    pub service: String,
    /// Scope date, `yyyymmdd`.
    pub date: String,
    /// `X-Amz-Security-Token` (header or presigned query), for temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("date", &self.date)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why a request failed authentication. Display is the AWS message; none contains secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Missing Authentication Token")]
    Missing,
    /// Authentication data present but malformed.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not known.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The signature does not match.
    #[error("{}", SIGNATURE_MISMATCH_MESSAGE)]
    BadSignature,
    /// The signing time is too far in the past (or a presigned URL has expired).
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {window}.)")]
    Expired {
        /// Signing time, `yyyymmddThhmmssZ`.
        signed: String,
        /// Earliest acceptable signing time.
        earliest: String,
        /// Server time.
        now: String,
        /// Allowed age, e.g. `15 min`.
        window: String,
    },
    /// The signing time is too far in the future.
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 15 min.)")]
    NotYetCurrent {
        /// Signing time.
        signed: String,
        /// Latest acceptable signing time.
        latest: String,
        /// Server time.
        now: String,
    },
    /// The credential scope's date is not the request date's day.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope}' != '{request}', from '{from_header}'."
    )]
    ScopeDateMismatch {
        /// Date in the credential scope.
        scope: String,
        /// `yyyymmdd` of the request date.
        request: String,
        /// Where the request date came from (`X-Amz-Date` or `Date`).
        from_header: &'static str,
    },
    /// `x-amz-content-sha256` is not the hash of the received body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// `x-amz-content-sha256` is `UNSIGNED-PAYLOAD` on a header-signed request, or a streaming mode.
    #[error(
        "The x-amz-content-sha256 value is not supported for this request; sign the payload's SHA-256."
    )]
    UnsupportedContentSha256,
    /// For callers: the scope's region is not served here.
    #[error("Credential should be scoped to a valid region.")]
    WrongRegion,
    /// For callers: the scope's service is not this endpoint's.
    #[error("Credential should be scoped to correct service: '{expected}'.")]
    WrongService {
        /// The service this endpoint serves.
        expected: String,
    },
}

impl AuthError {
    /// The AWS error this maps to.
    pub fn envelope(&self) -> ErrorEnvelope {
        match self {
            AuthError::Missing => ErrorEnvelope::missing_authentication_token(),
            AuthError::UnknownKey => ErrorEnvelope::unrecognized_client(),
            AuthError::Incomplete(_) | AuthError::UnsupportedContentSha256 => {
                ErrorEnvelope::incomplete_signature(self.to_string())
            }
            AuthError::BadSignature
            | AuthError::Expired { .. }
            | AuthError::NotYetCurrent { .. }
            | AuthError::ScopeDateMismatch { .. }
            | AuthError::ContentSha256Mismatch
            | AuthError::WrongRegion
            | AuthError::WrongService { .. } => ErrorEnvelope::invalid_signature(self.to_string()),
        }
    }
}

fn incomplete(msg: impl Into<String>) -> AuthError {
    AuthError::Incomplete(msg.into())
}

struct CachedKey {
    fingerprint: [u8; 32],
    key: Arc<hmac::Key>,
}

/// Derived keys by "akid/yyyymmdd/region/service" (one per scope), plus a reusable buffer the
/// lookup key is assembled in, so a hit allocates nothing.
#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, CachedKey>,
    scratch: String,
}

/// Verifies SigV4 requests; keeps a bounded cache of derived signing keys.
pub struct Verifier {
    cache: Mutex<KeyCache>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier")
    }
}

/// Everything pulled out of the authentication data before the key is looked up.
struct Parsed {
    presigned: bool,
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    /// Lowercased, trimmed names joined with `;`: the canonical request's signed-headers line.
    signed_headers: String,
    signature: [u8; 32],
    /// Signing time as it appears in the string to sign (`yyyymmddThhmmssZ`).
    amz_date: String,
    timestamp: i64,
    expires: Option<i64>,
    session_token: Option<String>,
    params: Vec<(String, String)>,
    payload_hash: String,
}

impl Verifier {
    /// An empty verifier.
    pub fn new() -> Self {
        Self {
            cache: Mutex::new(KeyCache::default()),
        }
    }

    /// Verifies `req` (header or presigned-query form).
    ///
    /// `lookup(access_key_id)` returns the secret, or `None` for an unknown key
    /// ([`AuthError::UnknownKey`]). `now_unix_secs` is the server clock. `body` is the raw payload.
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        body: &[u8],
        now_unix_secs: i64,
        lookup: impl FnOnce(&str) -> Option<Arc<SigningSecret>>,
    ) -> Result<Verified, AuthError> {
        let parsed = parse(req, body)?;
        check_time(&parsed, now_unix_secs)?;
        let secret = lookup(&parsed.access_key_id).ok_or(AuthError::UnknownKey)?;
        let key = self.signing_key(&parsed, &secret);

        let tail = canonical_tail(req, &parsed);
        let scope = [
            parsed.date.as_str(),
            parsed.region.as_str(),
            parsed.service.as_str(),
            TERMINATOR,
        ];
        let matches = |uri: &str| {
            let sts = string_to_sign(&parsed.amz_date, &scope, req.method, uri, &tail);
            hmac::verify(&key, &sts, &parsed.signature).is_ok()
        };
        let matched = match plain_path(req.path) {
            // Both candidates are the path itself: nothing to normalise or encode.
            Some(path) => matches(path),
            None => canonical_uris(req.path).iter().any(|uri| matches(uri)),
        };
        if !matched {
            return Err(AuthError::BadSignature);
        }
        Ok(Verified {
            access_key_id: parsed.access_key_id,
            region: parsed.region,
            service: parsed.service,
            date: parsed.date,
            session_token: parsed.session_token,
        })
    }

    fn signing_key(&self, p: &Parsed, secret: &SigningSecret) -> Arc<hmac::Key> {
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let cache = &mut *guard;
        cache.scratch.clear();
        for (i, part) in [&p.access_key_id, &p.date, &p.region, &p.service]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                cache.scratch.push('/');
            }
            cache.scratch.push_str(part);
        }
        if let Some(hit) = cache.keys.get(cache.scratch.as_str())
            && hit.fingerprint == secret.fingerprint
        {
            return Arc::clone(&hit.key);
        }
        let key = Arc::new(derive_signing_key(secret, &p.date, &p.region, &p.service));
        if cache.keys.len() >= KEY_CACHE_CAPACITY {
            cache.keys.clear();
        }
        cache.keys.insert(
            cache.scratch.clone(),
            CachedKey {
                fingerprint: secret.fingerprint,
                key: Arc::clone(&key),
            },
        );
        key
    }
}

fn derive_signing_key(
    secret: &SigningSecret,
    date: &str,
    region: &str,
    service: &str,
) -> hmac::Key {
    let step = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
    };
    let k_date = step(&secret.prefixed, date);
    let k_region = step(k_date.as_ref(), region);
    let k_service = step(k_region.as_ref(), service);
    let k_signing = step(k_service.as_ref(), TERMINATOR);
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// Canonical request of the normalised-path candidate, for diagnostics and tests. It contains
/// every signed header value (including any session token): never log it in production.
#[doc(hidden)]
pub fn canonical_request(req: &RequestParts<'_>, body: &[u8]) -> Result<String, AuthError> {
    let parsed = parse(req, body)?;
    let tail = canonical_tail(req, &parsed);
    let uri = canonical_uris(req.path)
        .into_iter()
        .next()
        .unwrap_or_default();
    let mut out = Vec::new();
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(uri.as_bytes());
    out.extend_from_slice(&tail);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `ALGORITHM \n amz_date \n scope \n hex(SHA-256(canonical request))`; `scope` is given as its
/// `/`-separated parts.
fn string_to_sign(
    amz_date: &str,
    scope: &[&str; 4],
    method: &str,
    uri: &str,
    tail: &[u8],
) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(method.as_bytes());
    ctx.update(b"\n");
    ctx.update(uri.as_bytes());
    ctx.update(tail);
    let creq_hash = hex_sha256(ctx.finish().as_ref());
    let scope_len: usize = scope.iter().map(|p| p.len() + 1).sum();
    let mut out =
        Vec::with_capacity(ALGORITHM.len() + amz_date.len() + scope_len + creq_hash.len() + 3);
    out.extend_from_slice(ALGORITHM.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(amz_date.as_bytes());
    out.push(b'\n');
    for (i, part) in scope.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&creq_hash);
    out
}

/// Lowercase hex of a SHA-256 digest, without allocating.
fn hex_sha256(digest: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // A 32-byte digest always fills exactly 64 hex digits; anything else leaves zeros, which
    // can never match a signature or a declared hash.
    let _ = hex::encode_to_slice(digest, &mut out);
    out
}

/// The path itself when it is already canonical in both candidate forms: absolute, no dot or
/// empty segments to normalise, and only characters that encoding leaves alone.
fn plain_path(raw_path: &str) -> Option<&str> {
    let plain = raw_path.starts_with('/')
        && !raw_path.contains("//")
        && raw_path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'~'));
    plain.then_some(raw_path)
}

fn parse(req: &RequestParts<'_>, body: &[u8]) -> Result<Parsed, AuthError> {
    let params = parse_query(req.query);
    let has_query_auth = params.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    let auth_header = req.headers.get(http::header::AUTHORIZATION);
    match (auth_header, has_query_auth) {
        (Some(_), true) => Err(incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        )),
        (None, false) => Err(AuthError::Missing),
        (Some(h), false) => parse_header_form(req, h, params, body),
        (None, true) => parse_query_form(req, params, body),
    }
}

fn parse_header_form(
    req: &RequestParts<'_>,
    header: &http::HeaderValue,
    params: Vec<(String, String)>,
    body: &[u8],
) -> Result<Parsed, AuthError> {
    let value = header
        .to_str()
        .map_err(|_| incomplete("Authorization header contains characters that are not allowed."))?
        .trim();
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));

    let date = header_date(req.headers)?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if algorithm == ALGORITHM {
        for part in rest.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((k, v)) = part.split_once('=') else {
                return Err(incomplete(
                    "A component of the Authorization header is not a valid key=value pair (missing equal-sign).",
                ));
            };
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed_headers = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
    } else if algorithm.starts_with("AWS4-") {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': only '{ALGORITHM}' is accepted."
        )));
    }

    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if date.is_none() {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    }
    let (
        Some(credential),
        Some(signed_headers),
        Some(signature),
        Some((amz_date, timestamp, from_header)),
    ) = (credential, signed_headers, signature, date)
    else {
        return Err(incomplete(missing.join(" ")));
    };

    let scope = parse_credential(credential)?;
    check_scope_date(&scope.date, &amz_date, from_header)?;
    let session_token = req
        .headers
        .get(X_AMZ_SECURITY_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned());
    let payload_hash = payload_hash(req.headers, None, body, false)?;

    Ok(Parsed {
        presigned: false,
        access_key_id: scope.access_key_id,
        date: scope.date,
        region: scope.region,
        service: scope.service,
        signed_headers: parse_signed_headers(signed_headers)?,
        signature: parse_signature(signature)?,
        amz_date,
        timestamp,
        expires: None,
        session_token,
        params,
        payload_hash,
    })
}

fn parse_query_form(
    req: &RequestParts<'_>,
    params: Vec<(String, String)>,
    body: &[u8],
) -> Result<Parsed, AuthError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': only '{ALGORITHM}' is accepted."
        )));
    }
    let required = [
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
    ];
    let missing: Vec<String> = required
        .iter()
        .filter(|n| get(n).is_none())
        .map(|n| format!("AWS query-string parameters must include '{n}'."))
        .collect();
    if !missing.is_empty() {
        return Err(incomplete(missing.join(" ")));
    }
    let field = |n: &str| get(n).unwrap_or_default();

    let amz_date = field("X-Amz-Date").to_owned();
    let timestamp = parse_amz_date(&amz_date).ok_or_else(bad_date)?;
    let scope = parse_credential(field("X-Amz-Credential"))?;
    check_scope_date(&scope.date, &amz_date, "X-Amz-Date")?;
    let expires = match get("X-Amz-Expires") {
        None => None,
        Some(v) => {
            let secs = v
                .parse::<i64>()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(|| incomplete("X-Amz-Expires should be a number of seconds."))?;
            if secs > MAX_PRESIGN_EXPIRES_SECS {
                return Err(incomplete(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES_SECS}"
                )));
            }
            Some(secs)
        }
    };
    let signed_headers = parse_signed_headers(field("X-Amz-SignedHeaders"))?;
    let signature = parse_signature(field("X-Amz-Signature"))?;
    let session_token = get("X-Amz-Security-Token").map(str::to_owned);
    let payload_hash = payload_hash(req.headers, get("X-Amz-Content-Sha256"), body, true)?;

    Ok(Parsed {
        presigned: true,
        access_key_id: scope.access_key_id,
        date: scope.date,
        region: scope.region,
        service: scope.service,
        signed_headers,
        signature,
        amz_date,
        timestamp,
        expires,
        session_token,
        params,
        payload_hash,
    })
}

fn bad_date() -> AuthError {
    incomplete("X-Amz-Date must be in ISO-8601 basic format (yyyyMMdd'T'HHmmss'Z').")
}

/// The request time for header-signed requests: `X-Amz-Date`, else an HTTP `Date` header.
fn header_date(headers: &HeaderMap) -> Result<Option<(String, i64, &'static str)>, AuthError> {
    if let Some(v) = headers.get(X_AMZ_DATE) {
        let s = v.to_str().map_err(|_| bad_date())?.trim();
        let ts = parse_amz_date(s).ok_or_else(bad_date)?;
        return Ok(Some((s.to_owned(), ts, "X-Amz-Date")));
    }
    if let Some(v) = headers.get(http::header::DATE) {
        let bad = || incomplete("Date header must be an RFC 1123 date.");
        let s = v.to_str().map_err(|_| bad())?.trim();
        let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822)
            .map_err(|_| bad())?;
        let ts = t.unix_timestamp();
        return Ok(Some((format_amz_date(ts), ts, "Date")));
    }
    Ok(None)
}

struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

fn parse_credential(credential: &str) -> Result<Scope, AuthError> {
    let mut parts = credential.split('/');
    let (Some(akid), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(incomplete(
            "Credential must have the form <access key id>/<yyyymmdd>/<region>/<service>/aws4_request.",
        ));
    };
    if akid.is_empty() {
        return Err(incomplete("Credential must include an access key id."));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(
            "Credential scope date must be in yyyyMMdd format.",
        ));
    }
    if region.is_empty() {
        return Err(AuthError::WrongRegion);
    }
    if service.is_empty() {
        return Err(incomplete(
            "Credential should be scoped to correct service.",
        ));
    }
    if terminator != TERMINATOR {
        return Err(incomplete(
            "Credential should be scoped with a valid terminator: 'aws4_request'.",
        ));
    }
    Ok(Scope {
        access_key_id: akid.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

fn check_scope_date(
    scope_date: &str,
    amz_date: &str,
    from_header: &'static str,
) -> Result<(), AuthError> {
    let request_day = amz_date.get(..8).unwrap_or(amz_date);
    if scope_date == request_day {
        Ok(())
    } else {
        Err(AuthError::ScopeDateMismatch {
            scope: scope_date.to_owned(),
            request: request_day.to_owned(),
            from_header,
        })
    }
}

/// The names, trimmed and lowercased, joined with `;` (names cannot contain `;`).
fn parse_signed_headers(raw: &str) -> Result<String, AuthError> {
    let mut joined = String::with_capacity(raw.len());
    let mut has_host = false;
    for (i, name) in raw.split(';').map(str::trim).enumerate() {
        if name.is_empty() {
            return Err(incomplete(
                "SignedHeaders must be a ';'-separated list of header names.",
            ));
        }
        has_host |= name.eq_ignore_ascii_case("host");
        if i > 0 {
            joined.push(';');
        }
        let start = joined.len();
        joined.push_str(name);
        joined[start..].make_ascii_lowercase();
    }
    if !has_host {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok(joined)
}

fn parse_signature(raw: &str) -> Result<[u8; 32], AuthError> {
    // A signature that is not 32 hex bytes can never match; report it as a mismatch.
    let mut out = [0u8; 32];
    hex::decode_to_slice(raw, &mut out).map_err(|_| AuthError::BadSignature)?;
    Ok(out)
}

/// The payload line of the canonical request. The body's real hash is used unless the client
/// declared `UNSIGNED-PAYLOAD`, which only presigned requests may do.
fn payload_hash(
    headers: &HeaderMap,
    query_value: Option<&str>,
    body: &[u8],
    presigned: bool,
) -> Result<String, AuthError> {
    let body_hash = hex_sha256(digest::digest(&digest::SHA256, body).as_ref());
    // Hex digits are ASCII.
    let body_hash = std::str::from_utf8(&body_hash).unwrap_or_default();
    let declared = match headers.get(X_AMZ_CONTENT_SHA256) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| AuthError::UnsupportedContentSha256)?
                .trim(),
        ),
        None => query_value,
    };
    match declared {
        None => Ok(body_hash.to_owned()),
        Some(UNSIGNED_PAYLOAD) if presigned => Ok(UNSIGNED_PAYLOAD.to_owned()),
        Some(d) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if d.eq_ignore_ascii_case(body_hash) {
                Ok(d.to_owned())
            } else {
                Err(AuthError::ContentSha256Mismatch)
            }
        }
        Some(_) => Err(AuthError::UnsupportedContentSha256),
    }
}

fn check_time(p: &Parsed, now: i64) -> Result<(), AuthError> {
    let latest = now.saturating_add(MAX_SKEW_SECS);
    if p.timestamp > latest {
        return Err(AuthError::NotYetCurrent {
            signed: p.amz_date.clone(),
            latest: format_amz_date(latest),
            now: format_amz_date(now),
        });
    }
    // Non-S3 services bound a header-signed request's age by the skew window; a presigned one
    // lives for its X-Amz-Expires (15 minutes when absent).
    let window = if p.presigned {
        p.expires.unwrap_or(MAX_SKEW_SECS)
    } else {
        MAX_SKEW_SECS
    };
    let earliest = now.saturating_sub(window);
    if p.timestamp < earliest {
        let window = if window % 60 == 0 {
            format!("{} min", window / 60)
        } else {
            format!("{window} sec")
        };
        return Err(AuthError::Expired {
            signed: p.amz_date.clone(),
            earliest: format_amz_date(earliest),
            now: format_amz_date(now),
            window,
        });
    }
    Ok(())
}

/// Parses `yyyymmddThhmmssZ` into Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(r)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits.iter().try_fold(0u32, |acc, d| {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Formats Unix seconds as `yyyymmddThhmmssZ`.
fn format_amz_date(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "invalid-date".to_owned(),
    }
}

/// Splits a raw query into decoded pairs the way `application/x-www-form-urlencoded` does
/// (`+` is a space), which is how AWS SDK signers read it.
fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let replaced: Vec<u8> = s
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    String::from_utf8_lossy(&percent_decode(&replaced).collect::<Vec<u8>>()).into_owned()
}

/// Everything of the canonical request after the URI line: query, headers, signed headers, payload.
fn canonical_tail(req: &RequestParts<'_>, p: &Parsed) -> Vec<u8> {
    let mut pairs: Vec<(String, String)> = p
        .params
        .iter()
        .filter(|(k, _)| !(p.presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| {
            (
                utf8_percent_encode(k, STRICT).to_string(),
                utf8_percent_encode(v, STRICT).to_string(),
            )
        })
        .collect();
    pairs.sort();

    let mut out = Vec::with_capacity(512);
    out.push(b'\n');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'\n');
    for name in p.signed_headers.split(';') {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        // The headers every SDK signs, by constant (a `&str` name is parsed on each lookup).
        let values = match name {
            "host" => req.headers.get_all(http::header::HOST),
            "content-type" => req.headers.get_all(http::header::CONTENT_TYPE),
            "x-amz-date" => req.headers.get_all(X_AMZ_DATE),
            "x-amz-target" => req.headers.get_all(X_AMZ_TARGET),
            _ => req.headers.get_all(name),
        };
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(&mut out, v.as_bytes());
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(p.signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(p.payload_hash.as_bytes());
    out
}

/// Appends `value` without leading/trailing spaces and with runs of spaces collapsed to one.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut prev_space = false;
    let start = out.len();
    for &b in value {
        if b == b' ' {
            if !prev_space && out.len() > start {
                out.push(b' ');
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
    if out.len() > start && out.last() == Some(&b' ') {
        out.pop();
    }
}

/// Candidate canonical URIs: the normalised path, then (if different) the path as received.
fn canonical_uris(raw_path: &str) -> Vec<String> {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let normalized = utf8_percent_encode(&normalize_path(path), STRICT_PATH).to_string();
    let as_is = utf8_percent_encode(path, STRICT_PATH).to_string();
    if normalized == as_is {
        vec![normalized]
    } else {
        vec![normalized, as_is]
    }
}

/// RFC 3986 remove-dot-segments, also merging empty segments, as AWS signers normalise.
fn normalize_path(path: &str) -> String {
    if !(path.contains('.') || path.contains("//")) && path.starts_with('/') {
        return path.to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    let trailing = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|s| path.ends_with(s));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_roundtrip() {
        let ts = parse_amz_date("20150830T123600Z").expect("valid");
        assert_eq!(ts, 1_440_938_160);
        assert_eq!(format_amz_date(ts), "20150830T123600Z");
        for bad in [
            "20150830T123600",
            "2015083aT123600Z",
            "20151330T123600Z",
            "20150830T246000Z",
            "",
            "20150830X123600Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn trim_all() {
        let mut out = Vec::new();
        push_trimmed(&mut out, b"  a   b  c  ");
        assert_eq!(out, b"a b c");
        out.clear();
        push_trimmed(&mut out, b"   ");
        assert_eq!(out, b"");
    }

    #[test]
    fn path_normalisation() {
        assert_eq!(normalize_path("/a/b/../c/./d"), "/a/c/d");
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(normalize_path("/example1/example2/../.."), "/");
        assert_eq!(normalize_path("/../x"), "/x");
        assert_eq!(normalize_path("/a/."), "/a/");
        assert_eq!(canonical_uris(""), vec!["/".to_owned()]);
        assert_eq!(canonical_uris("/a%3Db"), vec!["/a%253Db".to_owned()]);
    }

    #[test]
    fn plain_paths_are_their_own_canonical_form() {
        for path in ["/", "/a", "/a/b-c_d~e/", "/A9/z"] {
            assert_eq!(plain_path(path), Some(path));
            assert_eq!(canonical_uris(path), vec![path.to_owned()]);
        }
        for path in [
            "", "a", "//", "/a//b", "/.", "/a/../b", "/a%3Db", "/a b", "/é", "/a.b",
        ] {
            assert_eq!(plain_path(path), None, "{path:?}");
        }
    }

    #[test]
    fn signed_headers_are_trimmed_lowercased_and_joined() {
        assert_eq!(
            parse_signed_headers(" Host ;X-Amz-Date; content-type").unwrap(),
            "host;x-amz-date;content-type"
        );
        assert!(parse_signed_headers("host;;x").is_err());
        assert!(parse_signed_headers("x-amz-date").is_err());
    }

    #[test]
    fn query_canonicalisation() {
        let p = parse_query("b=2&a=x+y&a=%41&c&=v&&d=%E1%88%B4");
        assert_eq!(
            p,
            vec![
                ("b".into(), "2".into()),
                ("a".into(), "x y".into()),
                ("a".into(), "A".into()),
                ("c".into(), "".into()),
                ("".into(), "v".into()),
                ("d".into(), "\u{1234}".into()),
            ]
        );
    }

    #[test]
    fn secrets_never_in_debug() {
        let s = SigningSecret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert!(!format!("{s:?}").contains("wJalr"));
        let v = Verified {
            access_key_id: "AKID".into(),
            region: "r".into(),
            service: "s".into(),
            date: "20150830".into(),
            session_token: Some("tok3n-value".into()),
        };
        assert!(!format!("{v:?}").contains("tok3n"));
    }
}
