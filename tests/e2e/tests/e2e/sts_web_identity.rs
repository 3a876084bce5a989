//! OpenID Connect providers through aws-sdk-iam, and the web identities they vouch for.

use aws_sdk_iam::error::ProvideErrorMetadata as _;

use crate::harness::TestServer;
use crate::iam_util::{ACCOUNT, err_code, iam, tag};

#[tokio::test]
async fn oidc_providers_are_created_listed_changed_and_deleted() {
    let s = TestServer::dev().await;
    let iam = iam(&s);
    let created = iam
        .create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com")
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list("6938fd4d98bab03faadb97b34396831e3780aea1")
        .tags(tag("ci", "github"))
        .send()
        .await
        .unwrap();
    let arn = created.open_id_connect_provider_arn().unwrap().to_string();
    assert_eq!(
        arn,
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com")
    );
    let dup = iam
        .create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&dup), "EntityAlreadyExists");
    let bad = iam
        .create_open_id_connect_provider()
        .url("http://plain.example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&bad), "InvalidInput");
    let bad = iam
        .create_open_id_connect_provider()
        .url("https://x.example.com")
        .thumbprint_list("too-short")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&bad), "ValidationError");

    iam.add_client_id_to_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("my-app")
        .send()
        .await
        .unwrap();
    iam.update_open_id_connect_provider_thumbprint()
        .open_id_connect_provider_arn(&arn)
        .thumbprint_list("1111111111111111111111111111111111111111")
        .send()
        .await
        .unwrap();
    let got = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.url(), Some("token.actions.githubusercontent.com"));
    assert_eq!(got.client_id_list(), ["sts.amazonaws.com", "my-app"]);
    assert_eq!(
        got.thumbprint_list(),
        ["1111111111111111111111111111111111111111"]
    );
    assert_eq!(got.tags()[0].key(), "ci");
    iam.remove_client_id_from_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("sts.amazonaws.com")
        .send()
        .await
        .unwrap();
    iam.untag_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .tag_keys("ci")
        .send()
        .await
        .unwrap();
    let got = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.client_id_list(), ["my-app"]);
    assert!(got.tags().is_empty());

    let listed = iam.list_open_id_connect_providers().send().await.unwrap();
    let arns: Vec<&str> = listed
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn())
        .collect();
    assert_eq!(arns, [arn.as_str()]);
    iam.delete_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap();
    let e = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchEntity");
    assert_eq!(
        e.message(),
        Some(format!("OpenIDConnect Provider not found for arn {arn}").as_str())
    );
}

/// An OpenID Connect issuer on `https://localhost:PORT` (certificate from a CA only the server
/// under test is told to trust): discovery document and key set, signing ES256 ID tokens.
struct Issuer {
    url: String,
    /// The CA certificate (PEM) the server trusts for it.
    ca_pem: String,
    jwks: std::sync::Arc<std::sync::Mutex<String>>,
    jwks_fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

struct SigningKey {
    kid: String,
    pair: aws_lc_rs::signature::EcdsaKeyPair,
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    fn new(kid: &str) -> Self {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        Self {
            kid: kid.into(),
            pair,
        }
    }

    fn jwk(&self) -> serde_json::Value {
        use aws_lc_rs::signature::KeyPair as _;
        let point = self.pair.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": self.kid, "x": b64url(&point[1..33]), "y": b64url(&point[33..65])})
    }

    /// A compact JWS of `claims`, signed ES256.
    fn sign(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64url(sig.as_ref()))
    }
}

impl Issuer {
    async fn start(keys: &[&SigningKey]) -> Self {
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = ca.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(ca.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let jwks = Arc::new(std::sync::Mutex::new(String::new()));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let issuer = Self {
            url: url.clone(),
            ca_pem: ca.cert.pem(),
            jwks: jwks.clone(),
            jwks_fetches: fetches.clone(),
        };
        issuer.publish(keys);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&got);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let body = match path.as_str() {
                    "/.well-known/openid-configuration" => serde_json::json!({
                        "issuer": url, "jwks_uri": format!("{url}/keys")})
                    .to_string(),
                    "/keys" => {
                        fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        jwks.lock().unwrap().clone()
                    }
                    _ => String::new(),
                };
                let status = if body.is_empty() {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        issuer
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let set = serde_json::json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
        *self.jwks.lock().unwrap() = set.to_string();
    }

    fn host(&self) -> &str {
        self.url.strip_prefix("https://").unwrap()
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn unsigned_sts(s: &TestServer) -> aws_sdk_sts::Client {
    // No credentials at all: AssumeRoleWithWebIdentity is sent unsigned.
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(s.endpoint())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

#[tokio::test]
async fn a_web_identity_token_becomes_a_role_session() {
    use aws_sdk_sts::error::ProvideErrorMetadata as _;
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &issuer.ca_pem).unwrap();
    let ca_path = ca.path().to_path_buf();
    let s = TestServer::with_config(|c| c.oidc_ca_file = Some(ca_path)).await;
    let iam = iam(&s);
    let provider_arn = iam
        .create_open_id_connect_provider()
        .url(&issuer.url)
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .unwrap()
        .open_id_connect_provider_arn()
        .unwrap()
        .to_string();
    let host = issuer.host();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{provider_arn}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{host}:aud":"sts.amazonaws.com"}},"StringLike":{{"{host}:sub":"repo:acme/app:*"}}}}}}]}}"#
    );
    iam.create_role()
        .role_name("deploy")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("deploy")
        .policy_name("read")
        .policy_document(crate::iam_util::policy(&[
            r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#,
        ]))
        .send()
        .await
        .unwrap();
    s.sm()
        .create_secret()
        .name("deploy/token")
        .secret_string("s3cr3t")
        .send()
        .await
        .unwrap();

    let now = crate::secrets_util::now_secs(&s);
    let claims = |sub: &str, aud: &str, exp: i64| serde_json::json!({"iss": issuer.url, "sub": sub, "aud": aud, "iat": now, "exp": exp});
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/deploy");
    let sts = unsigned_sts(&s);
    let assume = |token: String| {
        sts.assume_role_with_web_identity()
            .role_arn(&role_arn)
            .role_session_name("ci-run-7")
            .web_identity_token(token)
            .send()
    };

    let good = key.sign(&claims(
        "repo:acme/app:ref:refs/heads/main",
        "sts.amazonaws.com",
        now + 300,
    ));
    let out = assume(good).await.unwrap();
    assert_eq!(
        out.subject_from_web_identity_token(),
        Some("repo:acme/app:ref:refs/heads/main")
    );
    assert_eq!(out.audience(), Some("sts.amazonaws.com"));
    assert_eq!(out.provider(), Some(issuer.url.as_str()));
    assert_eq!(
        out.assumed_role_user().unwrap().arn(),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci-run-7")
    );
    // The session acts as the role.
    let c = out.credentials().unwrap();
    let sm = s.sm_session(c);
    let got = sm
        .get_secret_value()
        .secret_id("deploy/token")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("s3cr3t"));
    let denied = sm
        .create_secret()
        .name("x")
        .secret_string("y")
        .send()
        .await
        .unwrap_err();
    assert_eq!(crate::harness::code(&denied), "AccessDeniedException");

    // A subject the trust policy does not name, another audience, an expired token, a token
    // signed by a key the issuer does not publish, an issuer the account does not know.
    let e = assume(key.sign(&claims(
        "repo:evil/app:ref:x",
        "sts.amazonaws.com",
        now + 300,
    )))
    .await
    .unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"));
    let e = assume(key.sign(&claims("repo:acme/app:x", "other-app", now + 300)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidIdentityToken"));
    let e = assume(key.sign(&claims("repo:acme/app:x", "sts.amazonaws.com", now - 1)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ExpiredTokenException"));
    let forged =
        SigningKey::new("k1").sign(&claims("repo:acme/app:x", "sts.amazonaws.com", now + 300));
    let e = assume(forged).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidIdentityToken"));
    let mut stranger = claims("repo:acme/app:x", "sts.amazonaws.com", now + 300);
    stranger["iss"] = serde_json::json!("https://unknown.example.com");
    let e = assume(key.sign(&stranger)).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidIdentityToken"));
    let e = assume("not.a.jwt".into()).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidIdentityToken"));

    // The issuer rotates its keys: a token naming the new key fetches the set again, once, but
    // not sooner than a minute after the last fetch (tokens cannot make the server hammer it).
    let fetched = issuer.fetches();
    let next = SigningKey::new("k2");
    issuer.publish(&[&key, &next]);
    let e = assume(next.sign(&claims("repo:acme/app:x", "sts.amazonaws.com", now + 300)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidIdentityToken"));
    assert_eq!(issuer.fetches(), fetched);
    s.clock.advance(std::time::Duration::from_secs(61));
    assume(next.sign(&claims("repo:acme/app:x", "sts.amazonaws.com", now + 300)))
        .await
        .unwrap();
    assert_eq!(issuer.fetches(), fetched + 1);
    assume(next.sign(&claims("repo:acme/app:y", "sts.amazonaws.com", now + 300)))
        .await
        .unwrap();
    assert_eq!(issuer.fetches(), fetched + 1, "the key set is kept");

    // The trail records who presented which token (never the token itself).
    let trail = s.server.audit().read_trail().await.unwrap();
    let trail: Vec<&serde_json::Value> = trail
        .entries
        .iter()
        .map(|(_, e)| &e.record)
        .filter(|r| r["eventName"] == "AssumeRoleWithWebIdentity")
        .collect();
    let first = trail[0];
    assert_eq!(first["userIdentity"]["type"], "WebIdentityUser");
    assert_eq!(
        first["userIdentity"]["userName"],
        "repo:acme/app:ref:refs/heads/main"
    );
    assert_eq!(first["userIdentity"]["identityProvider"], host);
    assert_eq!(first["recipientAccountId"], ACCOUNT);
    assert!(!first.to_string().contains("eyJ"), "{first}");
}
