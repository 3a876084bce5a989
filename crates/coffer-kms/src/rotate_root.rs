//! Root-key rotation support: rewrapping a stored key record's material (see the server's
//! `root_wrapped` list, which calls this for every `kms/key/` record).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_crypto::AeadKey;

use crate::{KeyError, corrupt, crypto_internal, material_aad};

/// The key record `value` with every material version unwrapped under `old` and wrapped under
/// `new` (same AAD: key ARN and version). Other members pass through untouched.
pub fn rewrap_key_record(value: &[u8], old: &AeadKey, new: &AeadKey) -> Result<Vec<u8>, KeyError> {
    let mut rec: serde_json::Value =
        serde_json::from_slice(value).map_err(|_| corrupt("key record"))?;
    let arn = rec["arn"]
        .as_str()
        .ok_or_else(|| corrupt("key record arn"))?
        .to_owned();
    let materials = rec["materials"]
        .as_array_mut()
        .ok_or_else(|| corrupt("key record materials"))?;
    for m in materials {
        let version = m["version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| corrupt("material version"))?;
        let wrapped = B64
            .decode(m["wrapped"].as_str().ok_or_else(|| corrupt("material"))?)
            .map_err(|_| corrupt("key material encoding"))?;
        let aad = material_aad(&arn, version);
        let raw = old
            .open(&wrapped, &aad)
            .map_err(|_| corrupt("key material does not unwrap under the root key"))?;
        let rewrapped = new.seal(&raw, &aad).map_err(crypto_internal)?;
        m["wrapped"] = serde_json::Value::String(B64.encode(rewrapped));
    }
    serde_json::to_vec(&rec).map_err(|_| corrupt("serialization"))
}
