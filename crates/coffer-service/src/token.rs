//! Opaque, tamper-checked NextTokens: base64url(payload JSON) + "." + base64url(HMAC-SHA256).
//! The payload binds the listing it belongs to (a scope naming operation, account, region and a
//! digest of the query), so a token cannot be replayed against another listing.
//!
//! Services derive the MAC key from the root key (`Keyring::derive_key`, one purpose per
//! service), so tokens survive restarts and work on every node.

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A token that was not issued by this key for this scope (or is not a token at all). Services
/// map it to their `InvalidNextToken` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

impl std::fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("The NextToken value is invalid.")
    }
}

impl std::error::Error for InvalidToken {}

pub struct TokenKey(hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(**redacted**)")
    }
}

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

    pub fn issue<T: Serialize>(&self, scope: &str, pos: &T) -> String {
        // The bytes `Payload`'s serialisation gives, written without an owned copy of the scope
        // or a `Value` tree of the position (a listing page issues one token per call).
        let mut payload = Vec::with_capacity(64 + scope.len());
        payload.extend_from_slice(b"{\"scope\":");
        crate::jsonout::write_str(&mut payload, &[scope]);
        payload.extend_from_slice(b",\"pos\":");
        let at = payload.len();
        if serde_json::to_writer(&mut payload, pos).is_err() {
            // As `to_value(..).unwrap_or_default()` did: an unserialisable position is null.
            payload.truncate(at);
            payload.extend_from_slice(b"null");
        }
        payload.push(b'}');
        let tag = hmac::sign(&self.0, &payload);
        let mut out = String::with_capacity((payload.len() + 32) * 4 / 3 + 4);
        B64.encode_string(&payload, &mut out);
        out.push('.');
        B64.encode_string(tag.as_ref(), &mut out);
        out
    }

    /// Returns the position a token points at, if it was issued by us for `scope`.
    pub fn open<T: DeserializeOwned>(&self, scope: &str, token: &str) -> Result<T, InvalidToken> {
        let (p, t) = token.split_once('.').ok_or(InvalidToken)?;
        let payload = B64.decode(p).map_err(|_| InvalidToken)?;
        let tag = B64.decode(t).map_err(|_| InvalidToken)?;
        hmac::verify(&self.0, &payload, &tag).map_err(|_| InvalidToken)?;
        let payload: Payload = serde_json::from_slice(&payload).map_err(|_| InvalidToken)?;
        if payload.scope != scope {
            return Err(InvalidToken);
        }
        serde_json::from_value(payload.pos).map_err(|_| InvalidToken)
    }
}

/// A short digest naming a query, for token scopes.
pub fn scope(parts: &[&str]) -> String {
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

    fn random() -> TokenKey {
        let mut k = [0u8; 32];
        aws_lc_rs::rand::fill(&mut k).expect("system RNG");
        TokenKey::new(&k)
    }

    #[test]
    fn roundtrip_and_tamper() {
        let k = random();
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
        assert!(random().open::<u64>(&s, &t).is_err());
        // Same payload bytes as the serialised struct, so older tokens still open.
        let p = Payload {
            scope: s.clone(),
            pos: serde_json::json!(["k\u{0}ey", 7]),
        };
        let json = serde_json::to_vec(&p).unwrap();
        let tag = hmac::sign(&k.0, &json);
        let old = format!("{}.{}", B64.encode(&json), B64.encode(tag.as_ref()));
        assert_eq!(k.issue(&s, &("k\u{0}ey", 7)), old);
        // Scope parts are length-prefixed: moving a boundary changes the scope.
        assert_ne!(scope(&["ab", "c"]), scope(&["a", "bc"]));
    }
}
