//! AssumeRoleWithWebIdentity: a role session for whoever presents an OpenID Connect ID token
//! (a CI job's, a Kubernetes service account's) from an identity provider the role's account
//! registered, when the role's trust policy names that provider (`Federated`) and its
//! conditions on the token's claims (`HOST/PATH:sub`, `HOST/PATH:aud`) hold.
//!
//! The token is verified here: its issuer must be a registered provider, its signature must
//! check against one of the issuer's published keys (fetched by an [`IssuerKeys`] the server
//! supplies: discovery document, then JWKS, over HTTPS), its audience must be one of the
//! provider's client ids, and it must not be expired on the service clock. Signature checking
//! and JWK handling are `jsonwebtoken`'s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use coffer_core::RequestContext;
use coffer_policy::{CompiledPolicy, Decision, PolicyKind, ResourceMode, Values};
use coffer_wire::query::{QueryParams, XmlWriter};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::input::{self, Input, Pattern};
use crate::oidc::{issuer_id, provider_arn};
use crate::sts::{
    RoleSession, SESSION_NAME, SESSION_POLICY, policy_arns, write_assumed_role_user,
    write_credentials,
};
use crate::{Iam, IamError};

const TOKEN: input::Str = input::s(4, 20_000, Pattern::None);
const PROVIDER_ID: input::Str = input::s(4, 2048, Pattern::None);
/// Signature algorithms accepted (what OIDC providers sign ID tokens with).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
];
/// Clock skew tolerated on `nbf` and `iat` (seconds).
const LEEWAY_SECS: i64 = 60;

/// The published signing keys of OIDC issuers. `refresh` asks past any cache: the token names
/// a key the cached set does not have (the issuer rotated its keys).
pub trait IssuerKeys: Send + Sync + 'static {
    fn keys<'a>(
        &'a self,
        issuer: &'a str,
        refresh: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<JwkSet>, String>> + Send + 'a>>;
}

/// What a token claims, read before it is verified: who it says it is, for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The issuer's `host/path`.
    pub provider: String,
    pub audience: String,
    pub subject: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn all(&self) -> Vec<&str> {
        match self {
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

fn invalid(msg: &str) -> IamError {
    IamError::InvalidIdentityToken(msg.to_string())
}

/// The payload of a compact JWS, not verified.
fn unverified_claims(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Who `token` says it is (unverified), for recording the call: `None` when it is no JWT.
pub fn claimed(token: &str) -> Option<Claimed> {
    let c = unverified_claims(token)?;
    Some(Claimed {
        provider: issuer_id(&c.iss).unwrap_or(&c.iss).to_string(),
        audience: c
            .aud
            .as_ref()
            .and_then(|a| a.all().first().map(|s| s.to_string()))
            .unwrap_or_default(),
        subject: c.sub.unwrap_or_default(),
    })
}

/// The account of a role ARN (`arn:PARTITION:iam::ACCOUNT:role/...`).
pub fn role_account(role_arn: &str) -> Option<&str> {
    let rest = role_arn.strip_prefix("arn:")?;
    let (_, rest) = rest.split_once(':')?;
    let (account, resource) = rest.strip_prefix("iam::")?.split_once(':')?;
    (resource.starts_with("role/")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit()))
    .then_some(account)
}

/// The trust policy's view of the request: the token's claims under the provider's prefix.
struct TokenKeys<'a> {
    prefix: String,
    audience: &'a str,
    subject: &'a str,
    session_name: &'a str,
}

impl coffer_policy::Context for TokenKeys<'_> {
    fn get(&self, key: &str) -> Option<Values<'_>> {
        let v = match key.strip_prefix(&self.prefix) {
            Some(":aud") => self.audience,
            Some(":sub") => self.subject,
            _ if key == "sts:rolesessionname" => self.session_name,
            _ => return None,
        };
        Some(Values::One(v.into()))
    }
}

impl Iam {
    /// The keys the server fetches issuers' JWKS with (without one, every web identity token
    /// is refused as unverifiable).
    pub fn with_issuer_keys(mut self, keys: Arc<dyn IssuerKeys>) -> Self {
        self.issuer_keys = Some(keys);
        self
    }

    pub(crate) async fn assume_role_with_web_identity(
        &self,
        _ctx: &RequestContext,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let mut i = Input::new(q);
        let role_arn = i.req("RoleArn", input::ARN);
        let session_name = i.req("RoleSessionName", SESSION_NAME);
        let token = i.req("WebIdentityToken", TOKEN);
        i.opt("ProviderId", PROVIDER_ID);
        let duration = i.int("DurationSeconds", 900, 43200).unwrap_or(3600);
        let policy = i.opt("Policy", SESSION_POLICY);
        i.finish()?;
        let arns = policy_arns(q)?;
        let denied = || {
            IamError::AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity".into())
        };
        let account = role_account(&role_arn).ok_or_else(denied)?;

        // Which provider issued it, and is it one the account registered?
        let header = jsonwebtoken::decode_header(&token)
            .map_err(|_| invalid("The ID Token provided is not a valid JWT."))?;
        let claims = unverified_claims(&token)
            .ok_or_else(|| invalid("The ID Token provided is not a valid JWT."))?;
        let id = issuer_id(&claims.iss)
            .ok_or_else(|| invalid("The issuer of the ID Token must be an https:// URL."))?;
        let provider_arn = provider_arn(account, id);
        let (provider, _) =
            self.load_provider(account, &provider_arn)
                .await
                .map_err(|e| match e {
                    IamError::NoSuchEntity(_) => invalid(&format!(
                        "No OpenIDConnect provider found in your account for {}",
                        claims.iss
                    )),
                    other => other,
                })?;

        // The signature, with the key the token names.
        if !ALGORITHMS.contains(&header.alg) {
            return Err(invalid(
                "The ID Token is signed with an unsupported algorithm.",
            ));
        }
        let issuer = format!("https://{id}");
        let source = self.issuer_keys.as_ref().ok_or_else(|| {
            IamError::IdpCommunication(
                "No identity provider keys can be fetched by this server.".into(),
            )
        })?;
        let unreachable = |e: String| {
            tracing::info!(issuer = %issuer, error = %e, "fetching an issuer's keys failed");
            IamError::IdpCommunication(
                "Couldn't retrieve verification key from your identity provider, please \
                 reference AssumeRoleWithWebIdentity documentation for requirements"
                    .into(),
            )
        };
        let pick = |set: &JwkSet| match &header.kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let mut jwk = pick(&*source.keys(&issuer, false).await.map_err(unreachable)?);
        if jwk.is_none() {
            jwk = pick(&*source.keys(&issuer, true).await.map_err(unreachable)?);
        }
        let jwk =
            jwk.ok_or_else(|| invalid("The ID Token names a key its issuer does not publish."))?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|_| invalid("The issuer publishes a key that cannot verify tokens."))?;
        let mut validation = Validation::new(header.alg);
        // Times are checked below against the service clock; the audience against the
        // provider's client ids.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        // From here on, only what the signature covers: the claims as verified.
        let claims = jsonwebtoken::decode::<Claims>(&token, &key, &validation)
            .map_err(|_| invalid("The ID Token's signature does not verify."))?
            .claims;

        // The claims.
        let now = self.clock.now_secs();
        let exp = claims
            .exp
            .ok_or_else(|| invalid("The ID Token has no expiration time."))?;
        if now >= exp {
            return Err(IamError::ExpiredToken(format!(
                "Token expired: current date/time {now} must be before the expiration date/time {exp}"
            )));
        }
        if claims.nbf.is_some_and(|t| t > now + LEEWAY_SECS)
            || claims.iat.is_some_and(|t| t > now + LEEWAY_SECS)
        {
            return Err(invalid("The ID Token is not valid yet."));
        }
        let subject = claims
            .sub
            .as_deref()
            .ok_or_else(|| invalid("The ID Token has no subject."))?;
        let audience = claims
            .aud
            .as_ref()
            .and_then(|a| {
                a.all()
                    .into_iter()
                    .find(|x| provider.client_ids.iter().any(|c| c == x))
            })
            .ok_or_else(|| invalid("Incorrect token audience"))?
            .to_string();

        // The role's trust policy, for this provider and these claims.
        let role = self
            .role_by_arn(account, &role_arn)
            .await?
            .ok_or_else(denied)?;
        let trust = role
            .trust_policy
            .as_deref()
            .and_then(|doc| CompiledPolicy::parse(doc, PolicyKind::Trust).ok())
            .ok_or_else(denied)?;
        let trusted = {
            let keys = TokenKeys {
                prefix: id.to_ascii_lowercase(),
                audience: &audience,
                subject,
                session_name: &session_name,
            };
            let request = coffer_policy::Request {
                action: "sts:AssumeRoleWithWebIdentity",
                resource: &role_arn,
                principal: coffer_policy::RequestPrincipal::federated(&provider_arn),
                context: &keys,
            };
            coffer_policy::decide(
                std::iter::empty(),
                ResourceMode::KeyPolicy(&trust),
                &request,
            ) == Decision::Allow
        };
        if !trusted {
            return Err(denied());
        }
        let (session, sealed, packed) = self
            .role_session(
                account,
                &role,
                RoleSession {
                    name: session_name,
                    tags: &[],
                    duration,
                    policy,
                    policy_arns: &arns,
                },
            )
            .await?;
        let mut w = XmlWriter::new();
        write_credentials(&mut w, &session, &sealed);
        w.text("SubjectFromWebIdentityToken", subject);
        write_assumed_role_user(&mut w, &session);
        w.text("Provider", &claims.iss).text("Audience", &audience);
        if session.session_policy.is_some() || !session.session_policy_arns.is_empty() {
            w.text("PackedPolicySize", &packed.to_string());
        }
        Ok(w.into_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_accounts_and_claims() {
        assert_eq!(
            role_account("arn:aws:iam::123456789012:role/ci/deploy"),
            Some("123456789012")
        );
        assert_eq!(role_account("arn:aws:iam::123456789012:user/x"), None);
        assert_eq!(role_account("arn:aws:iam::12:role/x"), None);
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256"}"#),
            b64(r#"{"iss":"https://token.example.com/","aud":["a","b"],"sub":"repo:x"}"#)
        );
        assert_eq!(
            claimed(&token),
            Some(Claimed {
                provider: "token.example.com".into(),
                audience: "a".into(),
                subject: "repo:x".into(),
            })
        );
        assert_eq!(claimed("not-a-jwt"), None);
    }
}
