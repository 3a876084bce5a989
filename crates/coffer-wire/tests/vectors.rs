//! AWS's published SigV4 test suite (copied into tests/vectors/v4 from the aws-sigv4 crate).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_wire::sigv4::{self, AuthError, RequestParts, SigningSecret, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};

struct Req {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
        }
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v4")
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// Parses the suite's raw HTTP text. Folded header lines are joined with a space, as RFC 9112
/// tells recipients to do.
fn parse_request(text: &str) -> Req {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b),
        None => (text, ""),
    };
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let request_line = request_line.strip_suffix(" HTTP/1.1").expect("HTTP/1.1");
    let (method, target) = request_line.split_once(' ').expect("method");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));

    let mut raw: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = raw.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line);
            continue;
        }
        let (name, value) = line.split_once(':').expect("header line");
        raw.push((name.to_owned(), value.to_owned()));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in raw {
        headers.append(
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).expect("name"),
            HeaderValue::from_str(&value).expect("value"),
        );
    }
    Req {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

struct Context {
    akid: String,
    secret: String,
    now: i64,
    normalize: bool,
    omit_session_token: bool,
}

fn context(dir: &Path) -> Option<Context> {
    let v: serde_json::Value = serde_json::from_str(&read(dir, "context.json")?).expect("context");
    let ts = v["timestamp"].as_str().expect("timestamp");
    let now = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339")
        .unix_timestamp();
    Some(Context {
        akid: v["credentials"]["access_key_id"].as_str()?.to_owned(),
        secret: v["credentials"]["secret_access_key"].as_str()?.to_owned(),
        now,
        normalize: v["normalize"].as_bool().unwrap_or(true),
        omit_session_token: v["omit_session_token"].as_bool().unwrap_or(false),
    })
}

fn verify(ctx: &Context, req: &Req) -> Result<sigv4::Verified, AuthError> {
    let secret = Arc::new(SigningSecret::new(&ctx.secret));
    Verifier::new().verify(&req.parts(), &req.body, ctx.now, |akid| {
        (akid == ctx.akid).then(|| secret.clone())
    })
}

/// Replaces the signature in a signed request with a different valid-looking one.
fn corrupt_signature(req: &mut Req) {
    let flip = |sig: &str| {
        let mut b = sig.as_bytes().to_vec();
        b[0] = if b[0] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).expect("ascii")
    };
    if let Some(auth) = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        let (head, sig) = auth.rsplit_once("Signature=").expect("signature");
        let new = format!("{head}Signature={}", flip(sig));
        req.headers
            .insert("authorization", HeaderValue::from_str(&new).expect("value"));
    } else {
        let (head, sig) = req
            .query
            .rsplit_once("X-Amz-Signature=")
            .expect("signature");
        req.query = format!("{head}X-Amz-Signature={}", flip(sig));
    }
}

fn with_body(mut signed: Req, original: &Req) -> Req {
    signed.body = original.body.clone();
    signed
}

#[test]
fn every_v4_vector_verifies() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("vectors dir")
        .map(|e| e.expect("entry").path())
        .collect();
    dirs.sort();
    let mut checked = 0;
    for dir in &dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let Some(ctx) = context(dir) else {
            continue; // the double-encoding fixtures are checked separately
        };
        let original = parse_request(&read(dir, "request.txt").expect("request.txt"));

        let forms = [
            (
                "header",
                "header-signed-request.txt",
                "header-canonical-request.txt",
            ),
            (
                "query",
                "query-signed-request.txt",
                "query-canonical-request.txt",
            ),
        ];
        for (form, signed_file, canonical_file) in forms {
            // With omit_session_token the token is added to the query after signing, a
            // client quirk no AWS service accepts for presigned URLs.
            if form == "query" && ctx.omit_session_token {
                continue;
            }
            let Some(text) = read(dir, signed_file) else {
                continue;
            };
            let req = with_body(parse_request(&text), &original);

            let verified = verify(&ctx, &req).unwrap_or_else(|e| panic!("{name} ({form}): {e}"));
            assert_eq!(verified.access_key_id, ctx.akid, "{name}");
            assert_eq!(verified.region, "us-east-1", "{name}");
            assert_eq!(verified.service, "service", "{name}");
            assert_eq!(verified.date, "20150830", "{name}");

            if ctx.normalize {
                let expected = read(dir, canonical_file).expect("canonical");
                let got = sigv4::canonical_request(&req.parts(), &req.body).expect("canonical");
                assert_eq!(got, expected, "{name} ({form}) canonical request");
            }

            let mut bad = with_body(parse_request(&text), &original);
            corrupt_signature(&mut bad);
            assert_eq!(
                verify(&ctx, &bad),
                Err(AuthError::BadSignature),
                "{name} ({form})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 70, "only {checked} vector forms checked");
}

#[test]
fn session_token_vectors_propagate_token() {
    let dir = vectors_dir().join("get-vanilla-with-session-token");
    let ctx = context(&dir).expect("context");
    for file in ["header-signed-request.txt", "query-signed-request.txt"] {
        let req = parse_request(&read(&dir, file).expect("signed"));
        let v = verify(&ctx, &req).expect("verifies");
        assert_eq!(
            v.session_token.as_deref(),
            Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
            "{file}"
        );
    }
}

/// The double-encoding fixtures only give a request and its canonical form.
#[test]
fn double_encoding_fixtures_canonicalise() {
    for name in ["double-encode-path", "double-url-encode"] {
        let dir = vectors_dir().join(name);
        let expected = read(&dir, "header-canonical-request.txt").expect("canonical");
        let mut req = parse_request(&read(&dir, "request.txt").expect("request"));
        let amz_date = expected
            .lines()
            .find_map(|l| l.strip_prefix("x-amz-date:"))
            .expect("date line");
        req.headers
            .insert("x-amz-date", HeaderValue::from_str(amz_date).expect("date"));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            &amz_date[..8],
            "0".repeat(64)
        );
        req.headers
            .insert("authorization", HeaderValue::from_str(&auth).expect("auth"));
        let got = sigv4::canonical_request(&req.parts(), &req.body).expect("canonical");
        assert_eq!(got, expected, "{name}");
    }
}
