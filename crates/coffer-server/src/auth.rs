//! Authentication: SigV4 (one verifier, in the wire room) against the keys IAM resolves — the
//! root principal's and IAM users' long-term keys, and STS session credentials.

use std::sync::Arc;

use coffer_core::Caller;
use coffer_iam::Iam;
use coffer_iam::credentials::{AuthFailure, Resolved};
use coffer_wire::error::ErrorEnvelope;
use coffer_wire::sigv4::{AuthError, RequestParts, Verified, Verifier};

pub(crate) struct Credentials {
    verifier: Verifier,
    iam: Arc<Iam>,
    account_id: String,
}

fn failure(f: AuthFailure) -> ErrorEnvelope {
    match f {
        AuthFailure::Unknown => ErrorEnvelope::unrecognized_client(),
        AuthFailure::Expired => ErrorEnvelope::expired_token(),
        AuthFailure::Internal => {
            ErrorEnvelope::internal_failure("authentication failed on an internal error")
        }
    }
}

/// `X-Amz-Security-Token` from the headers or (presigned) the query string.
fn session_token(req: &RequestParts<'_>) -> Option<String> {
    if let Some(v) = req.headers.get("x-amz-security-token") {
        return v.to_str().ok().map(str::to_owned);
    }
    req.query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "X-Amz-Security-Token").then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

impl Credentials {
    pub fn new(iam: Arc<Iam>, account_id: String) -> Self {
        Self {
            verifier: Verifier::new(),
            iam,
            account_id,
        }
    }

    /// Verifies the request's signature and returns who made it and the signed scope. The
    /// signature is checked before anything about the key is revealed (expiry included).
    pub async fn authenticate(
        &self,
        req: &RequestParts<'_>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(Caller, Verified), ErrorEnvelope> {
        self.iam.refresh_if_stale(&self.account_id).await;
        let token = session_token(req);
        let token = token.as_deref();
        // Fast path: the key is cached. The closure also tells us which key id was asked for.
        let mut asked = None;
        let mut hit: Option<Arc<Resolved>> = None;
        let first = self.verifier.verify(req, body, now_secs, |akid| {
            asked = Some(akid.to_owned());
            let r = self.iam.cached(akid, token)?;
            let secret = r.secret.clone();
            hit = Some(r);
            Some(secret)
        });
        let (resolved, verified) = match (first, hit) {
            (Ok(v), Some(r)) => (r, v),
            (Err(AuthError::UnknownKey), _) => {
                let akid = asked.ok_or_else(ErrorEnvelope::unrecognized_client)?;
                let r = self
                    .iam
                    .resolve(&self.account_id, &akid, token)
                    .await
                    .map_err(failure)?;
                let v = self
                    .verifier
                    .verify(req, body, now_secs, |_| Some(r.secret.clone()))
                    .map_err(|e| e.envelope())?;
                (r, v)
            }
            (Err(e), _) => return Err(e.envelope()),
            (Ok(_), None) => {
                return Err(ErrorEnvelope::internal_failure(
                    "authenticated without a caller",
                ));
            }
        };
        self.iam
            .admit(&resolved, &verified.service, &verified.region)
            .map_err(failure)?;
        Ok((resolved.caller.clone(), verified))
    }
}
