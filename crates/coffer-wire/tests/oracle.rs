//! Random requests signed by the `aws-sigv4` crate (the AWS SDK's signer) must verify, and any
//! change to a signed part must not.

mod common;

use std::sync::Arc;

use coffer_wire::sigv4::{AuthError, SigningSecret, Verified, Verifier};
use common::{AKID, Received, SECRET, Spec, T0, sign_request};
use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;

const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn verify(v: &Verifier, r: &Received, now: i64) -> Result<Verified, AuthError> {
    let s = Arc::new(SigningSecret::new(SECRET));
    v.verify(&r.parts(), &r.body, now, |akid| {
        (akid == AKID).then(|| s.clone())
    })
}

fn header_value() -> impl Strategy<Value = String> {
    // Visible ASCII with runs of spaces, including leading and trailing ones.
    "[ -~]{0,24}".prop_filter("non-empty after trim", |s| !s.trim().is_empty())
}

prop_compose! {
    fn request()(
        segments in prop::collection::vec("[a-zA-Z0-9 ._~:@!$&'()*+,;=%\u{e9}\u{1234}-]{1,8}", 0..4),
        trailing_slash in any::<bool>(),
        query in prop::collection::vec(("[a-zA-Z0-9 +/=&%_.~-]{0,6}", "[a-zA-Z0-9 +/=&%_.~\u{e9}-]{0,8}"), 0..4),
        headers in prop::collection::vec((0usize..3, header_value()), 0..5),
        body in prop::collection::vec(any::<u8>(), 0..128),
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        token in prop::option::of("[A-Za-z0-9+/=]{16,64}"),
        presign in prop::option::of(1u64..=604_800),
        content_sha256_header in any::<bool>(),
        skew in -900i64..=900,
    ) -> (Spec, i64) {
        let mut path: String = segments
            .iter()
            .map(|s| format!("/{}", utf8_percent_encode(s, STRICT)))
            .collect();
        if path.is_empty() || trailing_slash {
            path.push('/');
        }
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, STRICT), utf8_percent_encode(v, STRICT)))
            .collect();
        let path_and_query = if q.is_empty() { path } else { format!("{path}?{}", q.join("&")) };
        let names = ["x-custom-a", "x-custom-b", "content-type"];
        let headers = headers.into_iter().map(|(i, v)| (names[i].to_owned(), v)).collect();
        let presign_ok = presign.map(|p| p as i64 >= skew.max(0));
        let spec = Spec {
            method: method.to_owned(),
            path_and_query,
            headers,
            body,
            token,
            presign: if presign_ok == Some(true) { presign } else { None },
            content_sha256_header,
            ..Spec::default()
        };
        (spec, T0 + skew)
    }
}

fn flip_char(s: &str, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = at % b.len();
    b[i] = match b[i] {
        b'0' => b'1',
        b'a' => b'b',
        b'A' => b'B',
        b' ' => b'_',
        c if c.is_ascii_alphanumeric() => b'0',
        _ => b'x',
    };
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn oracle_signed_requests_verify((spec, now) in request(), at in any::<usize>()) {
        let verifier = Verifier::new();
        let r = sign_request(&spec);
        let v = verify(&verifier, &r, now);
        prop_assert!(v.is_ok(), "{:?} for {:?}", v, r);
        let v = v.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(v.session_token.as_deref(), spec.token.as_deref());
        prop_assert_eq!(v.service.as_str(), "secretsmanager");

        // Any body change.
        let mut b = r.clone();
        if b.body.is_empty() {
            b.body.push(0);
        } else {
            let i = at % b.body.len();
            b.body[i] ^= 1 << (at % 8);
        }
        let res = verify(&verifier, &b, now);
        prop_assert!(
            matches!(res, Err(AuthError::BadSignature | AuthError::ContentSha256Mismatch)),
            "body change accepted: {:?}", res
        );

        // Any change to a signed header other than the signature carriers.
        let signed: Vec<String> = if let Some(auth) = r.headers.get("authorization") {
            let auth = auth.to_str().unwrap_or_default();
            auth.split("SignedHeaders=").nth(1).unwrap_or_default()
                .split(',').next().unwrap_or_default()
                .split(';').map(str::to_owned).collect()
        } else {
            vec!["host".to_owned()]
        };
        let name = &signed[at % signed.len()];
        let mut h = r.clone();
        let old = h.headers.get(name.as_str()).and_then(|v| v.to_str().ok()).unwrap_or("x").to_owned();
        let new = flip_char(&old, at / 7);
        if new.trim() != old.trim() {
            let hn = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            h.headers.insert(hn, HeaderValue::from_str(&new).map_err(|e| TestCaseError::fail(e.to_string()))?);
            let res = verify(&verifier, &h, now);
            prop_assert!(res.is_err(), "header {} change accepted", name);
        }

        // Any change to the signature.
        let mut s = r.clone();
        if let Some(auth) = s.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned) {
            let (head, sig) = auth.rsplit_once("Signature=").unwrap_or((&auth, ""));
            let changed = format!("{head}Signature={}", flip_char(sig, at));
            s.headers.insert("authorization", HeaderValue::from_str(&changed).map_err(|e| TestCaseError::fail(e.to_string()))?);
        } else {
            let (head, sig) = s.query.rsplit_once("X-Amz-Signature=").unwrap_or((&r.query, ""));
            s.query = format!("{head}X-Amz-Signature={}", flip_char(sig, at));
        }
        prop_assert_eq!(verify(&verifier, &s, now), Err(AuthError::BadSignature));

        // A different path.
        let mut p = r.clone();
        p.path.push('x');
        prop_assert_eq!(verify(&verifier, &p, now), Err(AuthError::BadSignature));
    }
}

#[test]
fn cold_and_warm_cache_agree() {
    let verifier = Verifier::new();
    let r = sign_request(&Spec::default());
    for _ in 0..3 {
        assert!(verify(&verifier, &r, T0).is_ok());
    }
    let other_day = sign_request(&Spec {
        time: T0 + 86_400,
        ..Spec::default()
    });
    assert!(verify(&verifier, &other_day, T0 + 86_400).is_ok());
    assert!(verify(&verifier, &r, T0).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Hostile authentication data is rejected with an error, never a panic or a pass.
    #[test]
    fn arbitrary_input_is_rejected_without_panic(
        auth in prop::option::of(prop_oneof![
            "AWS4-HMAC-SHA256 [ -~]{0,200}",
            "AWS4-HMAC-SHA256 Credential=[ -~]{0,60}, SignedHeaders=[ -~]{0,30}, Signature=[0-9a-f]{0,70}",
            "[ -~]{0,80}",
        ]),
        query in prop_oneof![
            "[ -~]{0,120}",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[ -~]{0,40}&X-Amz-Date=[0-9TZ]{0,17}&X-Amz-Expires=[0-9-]{0,8}&X-Amz-SignedHeaders=host&X-Amz-Signature=[0-9a-f]{0,64}",
        ],
        path in "[ -~\u{e9}]{0,40}",
        date in "[0-9TZ: ,A-Za-z-]{0,20}",
        body in prop::collection::vec(any::<u8>(), 0..32),
        now in any::<i64>(),
    ) {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        if let Some(a) = auth.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
            headers.insert("authorization", a);
        }
        if let Ok(d) = HeaderValue::from_str(&date) {
            headers.insert("x-amz-date", d);
        }
        let r = Received { method: "POST".into(), path, query, headers, body };
        prop_assert!(verify(&Verifier::new(), &r, now).is_err());
    }
}
