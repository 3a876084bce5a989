//! Cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
//! GenerateRandom. Ciphertexts are the keyring's self-describing blobs: they name their key and
//! material version and are bound to the encryption context, so Decrypt needs no KeyId and a
//! rotated key still decrypts what it encrypted before.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_service::opctx::OpCtx;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::validate;
use super::{KmsError, KmsService, Obj, input, required};
use crate::key_arn;

const MAX_PLAINTEXT: usize = 4096;
const MAX_CIPHERTEXT: usize = 6144;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptIn {
    key_id: Option<String>,
    #[serde(default, with = "coffer_wire::json::option_base64_blob")]
    plaintext: Option<Vec<u8>>,
    encryption_context: Option<BTreeMap<String, String>>,
    grant_tokens: Option<Vec<String>>,
    encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptIn {
    #[serde(default, with = "coffer_wire::json::option_base64_blob")]
    ciphertext_blob: Option<Vec<u8>>,
    encryption_context: Option<BTreeMap<String, String>>,
    grant_tokens: Option<Vec<String>>,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
    recipient: Option<serde_json::Value>,
    dry_run: Option<bool>,
    #[allow(dead_code)]
    dry_run_modifiers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptIn {
    #[serde(default, with = "coffer_wire::json::option_base64_blob")]
    ciphertext_blob: Option<Vec<u8>>,
    source_encryption_context: Option<BTreeMap<String, String>>,
    source_key_id: Option<String>,
    destination_key_id: Option<String>,
    destination_encryption_context: Option<BTreeMap<String, String>>,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
    #[allow(dead_code)]
    dry_run_modifiers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyIn {
    key_id: Option<String>,
    encryption_context: Option<BTreeMap<String, String>>,
    number_of_bytes: Option<i64>,
    key_spec: Option<String>,
    grant_tokens: Option<Vec<String>>,
    recipient: Option<serde_json::Value>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RandomIn {
    number_of_bytes: Option<i64>,
    custom_key_store_id: Option<String>,
    recipient: Option<serde_json::Value>,
}

/// Adds `member`: the `KeyMaterialId` of the material that encrypted `blob` under the key `arn`.
fn put_material_id(out: &mut Obj, member: &str, arn: &str, blob: &[u8]) {
    if let Some(v) = crate::ciphertext_version(blob) {
        out.insert(member.into(), json!(crate::material_id(arn, v)));
    }
}

fn no_recipient(r: &Option<serde_json::Value>) -> Result<(), KmsError> {
    if r.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by this key service.".into(),
        ));
    }
    Ok(())
}

impl KmsService {
    /// Encrypts `plaintext` under `key` and returns (blob, key ARN).
    async fn seal(
        &self,
        ctx: &OpCtx<'_>,
        key: &str,
        plaintext: &[u8],
        context: &Option<BTreeMap<String, String>>,
    ) -> Result<(Vec<u8>, String), KmsError> {
        let pairs = validate::context(context);
        self.authorize_ref(ctx, key, &pairs).await?;
        let blob = self
            .keys
            .encrypt(ctx.account_id(), &ctx.region, key, plaintext, &pairs)
            .await
            .map_err(|e| Self::key_err(ctx, key, e))?;
        let id = crate::ciphertext_key_id(&blob).ok_or_else(KmsError::internal)?;
        let arn = key_arn(ctx.partition(), &ctx.region, ctx.account_id(), &id);
        Ok((blob, arn))
    }

    /// Decrypts a blob; when `expected` names a key, the blob must be under that key.
    async fn open(
        &self,
        ctx: &OpCtx<'_>,
        blob: &[u8],
        context: &Option<BTreeMap<String, String>>,
        expected: Option<&str>,
    ) -> Result<(Zeroizing<Vec<u8>>, String), KmsError> {
        validate::blob("ciphertextBlob", blob, MAX_CIPHERTEXT)?;
        let id = crate::ciphertext_key_id(blob)
            .ok_or_else(|| KmsError::InvalidCiphertext(String::new()))?;
        let pairs = validate::context(context);
        // Authorized on the key the blob names; a blob naming no key here cannot decrypt.
        match self.authorize_ref(ctx, &id, &pairs).await {
            Err(KmsError::NotFound(_)) => return Err(KmsError::InvalidCiphertext(String::new())),
            r => r?,
        }
        if let Some(k) = expected {
            validate::key_id("keyId", k)?;
            let named = self
                .keys
                .resolve(ctx.account_id(), &ctx.region, k)
                .await
                .map_err(|e| Self::key_err(ctx, k, e))?;
            if named.key_id != id {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a KMS key that can perform \
                     this operation."
                        .into(),
                ));
            }
        }
        let plain = self
            .keys
            .decrypt(ctx.account_id(), &ctx.region, blob, &pairs)
            .await?;
        Ok((
            plain,
            key_arn(ctx.partition(), &ctx.region, ctx.account_id(), &id),
        ))
    }

    pub(crate) async fn encrypt(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let mut i: EncryptIn = input(body)?;
        let plaintext = Zeroizing::new(
            i.plaintext
                .take()
                .ok_or_else(|| KmsError::not_null("plaintext"))?,
        );
        let key = required("keyId", i.key_id.as_deref())?;
        validate::key_id("keyId", key)?;
        validate::blob("plaintext", &plaintext, MAX_PLAINTEXT)?;
        validate::grant_tokens(i.grant_tokens.as_ref())?;
        validate::algorithm("encryptionAlgorithm", i.encryption_algorithm.as_deref())?;
        if i.dry_run == Some(true) {
            self.load(ctx, key).await?.0.check_usable()?;
            return Err(KmsError::dry_run());
        }
        let (blob, arn) = self
            .seal(ctx, key, &plaintext, &i.encryption_context)
            .await?;
        let mut out = Obj::new();
        out.insert("CiphertextBlob".into(), json!(B64.encode(blob)));
        out.insert("KeyId".into(), json!(arn));
        out.insert("EncryptionAlgorithm".into(), json!("SYMMETRIC_DEFAULT"));
        Ok(out)
    }

    pub(crate) async fn decrypt(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: DecryptIn = input(body)?;
        let blob = required("ciphertextBlob", i.ciphertext_blob.as_ref())?;
        validate::grant_tokens(i.grant_tokens.as_ref())?;
        validate::algorithm("encryptionAlgorithm", i.encryption_algorithm.as_deref())?;
        no_recipient(&i.recipient)?;
        let (plain, arn) = self
            .open(ctx, blob, &i.encryption_context, i.key_id.as_deref())
            .await?;
        if i.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let mut out = Obj::new();
        out.insert("KeyId".into(), json!(arn));
        out.insert("Plaintext".into(), json!(B64.encode(&*plain)));
        out.insert("EncryptionAlgorithm".into(), json!("SYMMETRIC_DEFAULT"));
        put_material_id(&mut out, "KeyMaterialId", &arn, blob);
        Ok(out)
    }

    pub(crate) async fn re_encrypt(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: ReEncryptIn = input(body)?;
        let blob = required("ciphertextBlob", i.ciphertext_blob.as_ref())?;
        let dest = required("destinationKeyId", i.destination_key_id.as_deref())?;
        validate::key_id("destinationKeyId", dest)?;
        validate::grant_tokens(i.grant_tokens.as_ref())?;
        validate::algorithm(
            "sourceEncryptionAlgorithm",
            i.source_encryption_algorithm.as_deref(),
        )?;
        validate::algorithm(
            "destinationEncryptionAlgorithm",
            i.destination_encryption_algorithm.as_deref(),
        )?;
        let (plain, source_arn) = self
            .open(
                ctx,
                blob,
                &i.source_encryption_context,
                i.source_key_id.as_deref(),
            )
            .await?;
        // The source was authorized as kms:ReEncryptFrom (the table's action); the destination
        // takes kms:ReEncryptTo.
        let to = ctx.with_action("kms:ReEncryptTo");
        if i.dry_run == Some(true) {
            self.load(&to, dest).await?.0.check_usable()?;
            return Err(KmsError::dry_run());
        }
        let (new_blob, arn) = self
            .seal(&to, dest, &plain, &i.destination_encryption_context)
            .await?;
        let mut out = Obj::new();
        put_material_id(&mut out, "SourceKeyMaterialId", &source_arn, blob);
        put_material_id(&mut out, "DestinationKeyMaterialId", &arn, &new_blob);
        out.insert("CiphertextBlob".into(), json!(B64.encode(new_blob)));
        out.insert("SourceKeyId".into(), json!(source_arn));
        out.insert("KeyId".into(), json!(arn));
        out.insert(
            "SourceEncryptionAlgorithm".into(),
            json!("SYMMETRIC_DEFAULT"),
        );
        out.insert(
            "DestinationEncryptionAlgorithm".into(),
            json!("SYMMETRIC_DEFAULT"),
        );
        Ok(out)
    }

    pub(crate) async fn generate_data_key(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
        with_plaintext: bool,
    ) -> Result<Obj, KmsError> {
        let i: DataKeyIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        validate::key_id("keyId", key)?;
        if let Some(s) = &i.key_spec {
            validate::one_of("keySpec", s, &["AES_256", "AES_128"])?;
        }
        if let Some(n) = i.number_of_bytes {
            validate::range("numberOfBytes", n, 1, 1024)?;
        }
        validate::grant_tokens(i.grant_tokens.as_ref())?;
        no_recipient(&i.recipient)?;
        let len = match (i.key_spec.as_deref(), i.number_of_bytes) {
            (Some(_), Some(_)) => {
                return Err(KmsError::Validation(
                    "Please specify either number of bytes or key spec, not both.".into(),
                ));
            }
            (None, None) => {
                return Err(KmsError::Validation(
                    "Please specify either number of bytes or key spec.".into(),
                ));
            }
            (Some("AES_128"), None) => 16,
            (Some(_), None) => 32,
            (None, Some(n)) => n as usize,
        };
        if i.dry_run == Some(true) {
            self.load(ctx, key).await?.0.check_usable()?;
            return Err(KmsError::dry_run());
        }
        let mut data_key = Zeroizing::new(vec![0u8; len]);
        coffer_crypto::fill_random(&mut data_key);
        let (blob, arn) = self
            .seal(ctx, key, &data_key, &i.encryption_context)
            .await?;
        let mut out = Obj::new();
        put_material_id(&mut out, "KeyMaterialId", &arn, &blob);
        out.insert("CiphertextBlob".into(), json!(B64.encode(blob)));
        if with_plaintext {
            out.insert("Plaintext".into(), json!(B64.encode(&*data_key)));
        }
        out.insert("KeyId".into(), json!(arn));
        Ok(out)
    }

    pub(crate) fn generate_random(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, KmsError> {
        let i: RandomIn = input(body)?;
        ctx.check_any()?;
        if let Some(c) = &i.custom_key_store_id {
            validate::length("customKeyStoreId", c, 1, 64)?;
            return Err(KmsError::UnsupportedOperation(
                "Custom key stores are not supported by this key service.".into(),
            ));
        }
        no_recipient(&i.recipient)?;
        let n = required("numberOfBytes", i.number_of_bytes.as_ref())?;
        validate::range("numberOfBytes", *n, 1, 1024)?;
        let mut bytes = Zeroizing::new(vec![0u8; *n as usize]);
        coffer_crypto::fill_random(&mut bytes);
        let mut out = Obj::new();
        out.insert("Plaintext".into(), json!(B64.encode(&*bytes)));
        Ok(out)
    }
}
