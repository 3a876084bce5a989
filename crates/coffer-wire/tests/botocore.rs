//! Requests signed by botocore's own signer (what boto3 and the aws CLI send) verify, and the same
//! requests with one byte changed do not. Fixtures come from tests/vectors/botocore/generate.py.

use std::sync::Arc;

use coffer_wire::sigv4::{RequestParts, SigningSecret, Verified, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};

struct Fixture {
    name: String,
    json: serde_json::Value,
}

fn fixtures() -> Vec<Fixture> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/botocore");
    let mut out: Vec<Fixture> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| Fixture {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            json: serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(out.len() >= 3, "botocore fixtures missing");
    out
}

fn verify(f: &Fixture, headers: &HeaderMap, body: &[u8]) -> Result<Verified, String> {
    let j = &f.json;
    let parts = RequestParts {
        method: j["method"].as_str().unwrap(),
        path: j["path"].as_str().unwrap(),
        query: "",
        headers,
    };
    let secret = Arc::new(SigningSecret::new(j["secret_access_key"].as_str().unwrap()));
    Verifier::new()
        .verify(&parts, body, j["now_unix_secs"].as_i64().unwrap(), |_| {
            Some(secret)
        })
        .map_err(|e| e.to_string())
}

fn headers(f: &Fixture) -> HeaderMap {
    let mut h = HeaderMap::new();
    for pair in f.json["headers"].as_array().unwrap() {
        let (k, v) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn body(f: &Fixture) -> Vec<u8> {
    hex::decode(f.json["body_hex"].as_str().unwrap()).unwrap()
}

#[test]
fn botocore_signed_requests_verify() {
    for f in fixtures() {
        let v = verify(&f, &headers(&f), &body(&f)).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let expect = &f.json["expect"];
        assert_eq!(
            v.access_key_id,
            expect["access_key_id"].as_str().unwrap(),
            "{}",
            f.name
        );
        assert_eq!(v.region, expect["region"].as_str().unwrap(), "{}", f.name);
        assert_eq!(v.service, expect["service"].as_str().unwrap(), "{}", f.name);
        assert_eq!(
            v.session_token.as_deref(),
            expect["session_token"].as_str(),
            "{}",
            f.name
        );
    }
}

#[test]
fn botocore_signed_requests_fail_when_altered() {
    for f in fixtures() {
        let mut b = body(&f);
        b[0] ^= 1;
        assert!(
            verify(&f, &headers(&f), &b).is_err(),
            "{}: altered body verified",
            f.name
        );

        let mut h = headers(&f);
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("secretsmanager.DeleteSecret"),
        );
        assert!(
            verify(&f, &h, &body(&f)).is_err(),
            "{}: altered target verified",
            f.name
        );
    }
}
