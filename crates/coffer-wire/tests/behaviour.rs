//! Verifier behaviour beyond the published vectors: clock skew, unknown keys, scope checks,
//! session tokens, malformed authentication data and the AWS error envelopes they map to.

mod common;

use std::sync::Arc;

use coffer_wire::sigv4::{AuthError, SigningSecret, Verified, Verifier};
use common::{AKID, Received, SECRET, Spec, T0, sign_request};
use http::HeaderValue;

fn verify_at(v: &Verifier, r: &Received, now: i64, secret: &str) -> Result<Verified, AuthError> {
    let s = Arc::new(SigningSecret::new(secret));
    v.verify(&r.parts(), &r.body, now, |akid| {
        (akid == AKID).then(|| s.clone())
    })
}

fn verify(r: &Received, now: i64) -> Result<Verified, AuthError> {
    verify_at(&Verifier::new(), r, now, SECRET)
}

fn set(r: &mut Received, name: &'static str, value: &str) {
    r.headers
        .insert(name, HeaderValue::from_str(value).expect("header value"));
}

#[test]
fn header_signed_request_verifies() {
    let r = sign_request(&Spec::default());
    let v = verify(&r, T0 + 5).expect("verifies");
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "secretsmanager");
    assert_eq!(v.date, "20150830");
    assert_eq!(v.session_token, None);
}

#[test]
fn wrong_secret_is_bad_signature() {
    let r = sign_request(&Spec::default());
    let e = verify_at(&Verifier::new(), &r, T0, "another-secret").expect_err("must fail");
    assert_eq!(e, AuthError::BadSignature);
    let env = e.envelope();
    assert_eq!(env.code, "InvalidSignatureException");
    assert_eq!(env.status, 400);
    assert_eq!(
        env.message,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
}

#[test]
fn clock_skew_in_the_past() {
    let r = sign_request(&Spec::default());
    assert!(
        verify(&r, T0 + 15 * 60).is_ok(),
        "exactly 15 minutes is still fine"
    );
    let e = verify(&r, T0 + 15 * 60 + 1).expect_err("expired");
    assert!(matches!(e, AuthError::Expired { .. }), "{e:?}");
    let env = e.envelope();
    assert_eq!(env.code, "InvalidSignatureException");
    assert_eq!(
        env.message,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T125101Z - 15 min.)"
    );
}

#[test]
fn clock_skew_in_the_future() {
    let r = sign_request(&Spec::default());
    assert!(verify(&r, T0 - 15 * 60).is_ok());
    let e = verify(&r, T0 - 15 * 60 - 1).expect_err("not yet current");
    assert_eq!(e.envelope().code, "InvalidSignatureException");
    assert_eq!(
        e.to_string(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T122059Z + 15 min.)"
    );
}

#[test]
fn unknown_key() {
    let r = sign_request(&Spec {
        akid: "AKIDUNKNOWN".into(),
        ..Spec::default()
    });
    let e = verify(&r, T0).expect_err("unknown");
    assert_eq!(e, AuthError::UnknownKey);
    let env = e.envelope();
    assert_eq!(env.code, "UnrecognizedClientException");
    assert_eq!(env.status, 400);
    assert_eq!(
        env.message,
        "The security token included in the request is invalid."
    );
}

#[test]
fn scope_date_must_match_request_date() {
    let mut r = sign_request(&Spec::default());
    let auth = r.headers["authorization"]
        .to_str()
        .expect("ascii")
        .to_owned();
    set(
        &mut r,
        "authorization",
        &auth.replace("/20150830/", "/20150831/"),
    );
    let e = verify(&r, T0).expect_err("mismatch");
    assert_eq!(
        e.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150831' != '20150830', from 'X-Amz-Date'."
    );
    assert_eq!(e.envelope().code, "InvalidSignatureException");
}

#[test]
fn region_and_service_come_from_the_scope() {
    let r = sign_request(&Spec {
        region: "eu-west-3".into(),
        service: "kms".into(),
        ..Spec::default()
    });
    let v = verify(&r, T0).expect("verifies");
    assert_eq!(
        (v.region.as_str(), v.service.as_str()),
        ("eu-west-3", "kms")
    );
}

#[test]
fn session_token_is_propagated() {
    let token = "FwoGZXIvYXdzEXAMPLETOKEN//with+slash=";
    for presign in [None, Some(300)] {
        let r = sign_request(&Spec {
            token: Some(token.into()),
            presign,
            ..Spec::default()
        });
        let v = verify(&r, T0).expect("verifies");
        assert_eq!(
            v.session_token.as_deref(),
            Some(token),
            "presign {presign:?}"
        );
    }
}

#[test]
fn no_authentication_at_all() {
    let mut r = sign_request(&Spec::default());
    r.headers.remove("authorization");
    let e = verify(&r, T0).expect_err("missing");
    assert_eq!(e, AuthError::Missing);
    let env = e.envelope();
    assert_eq!(env.code, "MissingAuthenticationTokenException");
    assert_eq!(env.message, "Missing Authentication Token");
}

#[test]
fn malformed_authorization_headers() {
    let base = sign_request(&Spec::default());
    let cases: &[(&str, &str)] = &[
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws4_request",
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            "Bearer abc.def",
            "Authorization header requires 'Credential' parameter.",
        ),
        ("AWS4-HMAC-SHA256 Credential", "not a valid key=value pair"),
        (
            "AWS4-ECDSA-P256-SHA256 Credential=a/b/c/d/e",
            "Unsupported AWS 'algorithm'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            "Credential must have the form",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws5_request, SignedHeaders=host;x-amz-date, Signature=00",
            "valid terminator",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "'Host' or ':authority' must be a 'SignedHeader'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015-8-30/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00",
            "yyyyMMdd",
        ),
    ];
    for (header, expected) in cases {
        let mut r = base.clone();
        set(&mut r, "authorization", header);
        let e = verify(&r, T0).expect_err(header);
        let env = e.envelope();
        assert_eq!(env.code, "IncompleteSignatureException", "{header}: {e:?}");
        assert_eq!(env.status, 400);
        assert!(env.message.contains(expected), "{header}: {}", env.message);
        assert!(
            !env.message.contains("AKIDEXAMPLE"),
            "echoes input: {}",
            env.message
        );
    }

    let mut r = base.clone();
    r.headers.remove("x-amz-date");
    let e = verify(&r, T0).expect_err("no date");
    assert!(
        e.to_string().contains("'X-Amz-Date' or a 'Date' header"),
        "{e}"
    );

    let mut r = base.clone();
    set(&mut r, "x-amz-date", "2015-08-30T12:36:00Z");
    assert!(matches!(verify(&r, T0), Err(AuthError::Incomplete(_))));
}

#[test]
fn both_header_and_query_auth_is_rejected() {
    let mut r = sign_request(&Spec {
        presign: Some(300),
        ..Spec::default()
    });
    let header = sign_request(&Spec::default());
    r.headers
        .insert("authorization", header.headers["authorization"].clone());
    let e = verify(&r, T0).expect_err("ambiguous");
    assert!(matches!(e, AuthError::Incomplete(_)), "{e:?}");
}

#[test]
fn presigned_expiry() {
    let r = sign_request(&Spec {
        presign: Some(60),
        ..Spec::default()
    });
    assert!(verify(&r, T0 + 60).is_ok());
    let e = verify(&r, T0 + 61).expect_err("expired");
    assert_eq!(
        e.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T123701Z - 1 min.)"
    );
    let e = verify(&r, T0 - 15 * 60 - 1).expect_err("future");
    assert!(matches!(e, AuthError::NotYetCurrent { .. }), "{e:?}");

    let long = sign_request(&Spec {
        presign: Some(604_800),
        ..Spec::default()
    });
    assert!(verify(&long, T0 + 604_800).is_ok());
    let mut too_long = long.clone();
    too_long.query = too_long
        .query
        .replace("X-Amz-Expires=604800", "X-Amz-Expires=604801");
    let e = verify(&too_long, T0).expect_err("too long");
    assert!(e.to_string().contains("less than a week"), "{e}");

    let mut missing = long;
    missing.query = missing
        .query
        .split('&')
        .filter(|p| !p.starts_with("X-Amz-Credential="))
        .collect::<Vec<_>>()
        .join("&");
    let e = verify(&missing, T0).expect_err("incomplete");
    assert_eq!(
        e.to_string(),
        "AWS query-string parameters must include 'X-Amz-Credential'."
    );
}

#[test]
fn payload_hash_header() {
    let r = sign_request(&Spec {
        content_sha256_header: true,
        ..Spec::default()
    });
    assert!(verify(&r, T0).is_ok());

    let mut tampered = r.clone();
    tampered.body = br#"{"SecretId":"prod/dc"}"#.to_vec();
    assert_eq!(verify(&tampered, T0), Err(AuthError::ContentSha256Mismatch));

    let mut unsigned = r.clone();
    set(&mut unsigned, "x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    assert_eq!(
        verify(&unsigned, T0),
        Err(AuthError::UnsupportedContentSha256)
    );
}

#[test]
fn unsigned_payload_only_for_presigned() {
    // Presigned, S3-style: the signer used UNSIGNED-PAYLOAD and the client declares it.
    let mut r = sign_request(&Spec {
        presign: Some(300),
        unsigned_payload: true,
        ..Spec::default()
    });
    assert_eq!(verify(&r, T0), Err(AuthError::BadSignature), "undeclared");
    let declared = sign_request(&Spec {
        presign: Some(300),
        unsigned_payload: true,
        path_and_query: "/?X-Amz-Content-Sha256=UNSIGNED-PAYLOAD".into(),
        ..Spec::default()
    });
    assert!(verify(&declared, T0).is_ok());
    set(&mut r, "x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    r.body = b"anything".to_vec();
    assert!(verify(&r, T0).is_ok());

    // Header-signed requests must cover the body.
    let h = sign_request(&Spec {
        unsigned_payload: true,
        content_sha256_header: true,
        ..Spec::default()
    });
    assert_eq!(h.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    let e = verify(&h, T0).expect_err("unsigned payload");
    assert_eq!(e, AuthError::UnsupportedContentSha256);
    assert_eq!(e.envelope().code, "IncompleteSignatureException");
}

#[test]
fn date_header_instead_of_x_amz_date() {
    let mut r = sign_request(&Spec {
        exclude: vec!["x-amz-date"],
        ..Spec::default()
    });
    r.headers.remove("x-amz-date");
    set(&mut r, "date", "Sun, 30 Aug 2015 12:36:00 GMT");
    let v = verify(&r, T0).expect("Date header accepted");
    assert_eq!(v.date, "20150830");
}

#[test]
fn rotated_secret_is_not_served_from_cache() {
    let verifier = Verifier::new();
    let old = sign_request(&Spec::default());
    let new = sign_request(&Spec {
        secret: "rotated-secret-key".into(),
        ..Spec::default()
    });
    assert!(verify_at(&verifier, &old, T0, SECRET).is_ok());
    assert!(verify_at(&verifier, &new, T0, "rotated-secret-key").is_ok());
    assert_eq!(
        verify_at(&verifier, &old, T0, "rotated-secret-key"),
        Err(AuthError::BadSignature)
    );
    assert!(verify_at(&verifier, &old, T0, SECRET).is_ok());
}

#[test]
fn caller_scope_errors_are_aws_shaped() {
    let e = AuthError::WrongService {
        expected: "secretsmanager".into(),
    };
    assert_eq!(e.envelope().code, "InvalidSignatureException");
    assert_eq!(
        e.envelope().message,
        "Credential should be scoped to correct service: 'secretsmanager'."
    );
    assert_eq!(
        AuthError::WrongRegion.envelope().message,
        "Credential should be scoped to a valid region."
    );
}
