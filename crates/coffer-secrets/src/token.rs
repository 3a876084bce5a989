//! Opaque, tamper-checked NextTokens: base64url(payload JSON) + "." + base64url(HMAC-SHA256).
//! The payload binds the listing it belongs to (operation, account, region, query digest), so a
//! token cannot be replayed against another listing.
//!
//! The MAC key is derived from the root key, so tokens survive restarts and work on every node.

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::SecretsError;

pub(crate) struct TokenKey(hmac::Key);

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Which listing: operation, account, region and a digest of its query.
    scope: String,
    /// Where the previous page ended (the last item's sort key).
    pos: serde_json::Value,
}

impl TokenKey {
    pub fn new(key: &[u8; 32]) -> Self {
        TokenKey(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    #[cfg(test)]
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        aws_lc_rs::rand::fill(&mut k).expect("system RNG");
        Self::new(&k)
    }

    pub fn issue<T: Serialize>(&self, scope: &str, pos: &T) -> String {
        let payload = serde_json::to_vec(&Payload {
            scope: scope.to_owned(),
            pos: serde_json::to_value(pos).unwrap_or_default(),
        })
        .unwrap_or_default();
        let tag = hmac::sign(&self.0, &payload);
        format!("{}.{}", B64.encode(&payload), B64.encode(tag.as_ref()))
    }

    /// Returns the position a token points at, if it was issued by us for `scope`.
    pub fn open<T: DeserializeOwned>(&self, scope: &str, token: &str) -> Result<T, SecretsError> {
        let bad = || SecretsError::InvalidNextToken("The NextToken value is invalid.".into());
        let (p, t) = token.split_once('.').ok_or_else(bad)?;
        let payload = B64.decode(p).map_err(|_| bad())?;
        let tag = B64.decode(t).map_err(|_| bad())?;
        hmac::verify(&self.0, &payload, &tag).map_err(|_| bad())?;
        let payload: Payload = serde_json::from_slice(&payload).map_err(|_| bad())?;
        if payload.scope != scope {
            return Err(bad());
        }
        serde_json::from_value(payload.pos).map_err(|_| bad())
    }
}

/// A short digest naming a query, for token scopes.
pub(crate) fn scope(parts: &[&str]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p.as_bytes());
    }
    B64.encode(&ctx.finish().as_ref()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_tamper() {
        let k = TokenKey::random();
        let s = scope(&["ListSecrets", "1", "us-east-1"]);
        let t = k.issue(&s, &42u64);
        assert_eq!(k.open::<u64>(&s, &t).unwrap(), 42);
        assert!(k.open::<String>(&s, &t).is_err());
        assert!(k.open::<u64>(&scope(&["other"]), &t).is_err());
        let mut tampered = t.clone().into_bytes();
        tampered[2] ^= 1;
        assert!(
            k.open::<u64>(&s, &String::from_utf8_lossy(&tampered))
                .is_err()
        );
        assert!(k.open::<u64>(&s, "garbage").is_err());
        assert!(TokenKey::random().open::<u64>(&s, &t).is_err());
    }
}
