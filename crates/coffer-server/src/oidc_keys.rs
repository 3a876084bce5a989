//! OpenID Connect issuers' signing keys, for AssumeRoleWithWebIdentity: the issuer's discovery
//! document (`{issuer}/.well-known/openid-configuration`), then the key set at its `jwks_uri`,
//! both over HTTPS verified against the system's roots plus the certificates of
//! `--oidc-ca-file` (a private issuer: a Kubernetes API server, an in-house IdP). Kept per
//! issuer for an hour; a token naming a key the kept set lacks fetches again, at most once a
//! minute per issuer (tokens cannot make the server hammer an issuer).

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_core::SharedClock;

use coffer_iam::web_identity::IssuerKeys;
use jsonwebtoken::jwk::JwkSet;

use crate::outbound::Endpoint;

/// How long a fetched key set is used, and how soon a token naming an unknown key may fetch
/// again (milliseconds of the service clock).
const KEEP_MS: i64 = 3_600_000;
const MIN_REFRESH_MS: i64 = 60_000;
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document or key set read.
const MAX_BODY: usize = 1 << 20;

pub(crate) struct OidcKeys {
    roots: rustls::RootCertStore,
    clock: SharedClock,
    /// Per issuer: when its set was fetched (service clock, ms) and the set.
    kept: Mutex<HashMap<String, (i64, Arc<JwkSet>)>>,
}

impl OidcKeys {
    /// Trusts the system's roots and the PEM certificates in `extra_ca` (if given).
    pub(crate) fn new(extra_ca: Option<&Path>, clock: SharedClock) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading the OIDC CA file {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("the OIDC CA file: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the OIDC CA file: {e}"))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!(
                    "the OIDC CA file {} holds no PEM certificate",
                    path.display()
                ));
            }
        }
        Ok(Self {
            roots,
            clock,
            kept: Mutex::default(),
        })
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<serde_json::Value, String> {
        if !url.starts_with("https://") {
            return Err(format!("{what} must be an https:// URL"));
        }
        let endpoint = Endpoint::parse(url, what, || Ok(self.roots.clone()))?;
        let (status, body) = tokio::time::timeout(
            TIMEOUT,
            endpoint.request(http::Method::GET, None, Vec::new(), "coffer-sts", MAX_BODY),
        )
        .await
        .map_err(|_| format!("{what} did not answer in time"))??;
        if !status.is_success() {
            return Err(format!("{what} answered HTTP {}", status.as_u16()));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{what} is not JSON: {e}"))
    }

    async fn fetch(&self, issuer: &str) -> Result<Arc<JwkSet>, String> {
        let discovery = self
            .get_json(
                &format!("{issuer}/.well-known/openid-configuration"),
                "the issuer's discovery document",
            )
            .await?;
        if discovery["issuer"]
            .as_str()
            .map(|i| i.trim_end_matches('/'))
            != Some(issuer)
        {
            return Err("the discovery document names another issuer".into());
        }
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or("the discovery document has no jwks_uri")?;
        let set = self.get_json(jwks_uri, "the issuer's jwks_uri").await?;
        let set: JwkSet =
            serde_json::from_value(set).map_err(|e| format!("the key set does not parse: {e}"))?;
        Ok(Arc::new(set))
    }
}

impl IssuerKeys for OidcKeys {
    fn keys<'a>(
        &'a self,
        issuer: &'a str,
        refresh: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<JwkSet>, String>> + Send + 'a>> {
        Box::pin(async move {
            let kept = self
                .kept
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(issuer)
                .cloned();
            let now = self.clock.now_millis();
            if let Some((at, set)) = &kept {
                let age = now - at;
                if age < KEEP_MS && (!refresh || age < MIN_REFRESH_MS) {
                    return Ok(set.clone());
                }
            }
            let set = self.fetch(issuer).await?;
            self.kept
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(issuer.to_string(), (now, set.clone()));
            Ok(set)
        })
    }
}
