//! Authentication: SigV4 (one verifier, in the wire room) plus the table of known access keys.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_core::Caller;
use coffer_wire::error::ErrorEnvelope;
use coffer_wire::sigv4::{RequestParts, SigningSecret, Verified, Verifier};

use crate::bootstrap::AccessKey;

/// Access key id → secret and principal. Root keys today; IAM users and STS sessions later.
pub(crate) struct Credentials {
    verifier: Verifier,
    keys: RwLock<HashMap<String, (Arc<SigningSecret>, Caller)>>,
}

impl Credentials {
    pub fn new(keys: &[AccessKey]) -> Self {
        let map = keys
            .iter()
            .map(|k| {
                (
                    k.access_key_id.clone(),
                    (k.secret.clone(), k.caller.clone()),
                )
            })
            .collect();
        Self {
            verifier: Verifier::new(),
            keys: RwLock::new(map),
        }
    }

    /// Adds (or replaces) a key at run time.
    pub fn add(&self, access_key_id: &str, secret_access_key: &str, caller: Caller) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.insert(
            access_key_id.to_owned(),
            (Arc::new(SigningSecret::new(secret_access_key)), caller),
        );
    }

    /// Verifies the request's signature and returns who made it and the signed scope.
    pub fn authenticate(
        &self,
        req: &RequestParts<'_>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(Caller, Verified), ErrorEnvelope> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let mut caller = None;
        let verified = self
            .verifier
            .verify(req, body, now_secs, |akid| {
                let (secret, who) = keys.get(akid)?;
                caller = Some(who.clone());
                Some(secret.clone())
            })
            .map_err(|e| e.envelope())?;
        let caller = caller
            .ok_or_else(|| ErrorEnvelope::internal_failure("authenticated without a caller"))?;
        // Every key today is long-term; a session token only belongs with temporary credentials
        // (STS), so a request carrying one is refused as AWS refuses an unknown token.
        if verified.session_token.is_some() {
            return Err(ErrorEnvelope::unrecognized_client());
        }
        Ok((caller, verified))
    }
}
