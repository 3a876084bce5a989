//! Imported key material (bring your own key): a key created with `Origin: EXTERNAL` has no
//! material (`PendingImport`) until ImportKeyMaterial brings 256 bits of it, wrapped with the
//! RSA public key GetParametersForImport handed out (RSAES-OAEP with SHA-1 or SHA-256). The
//! key is then `Enabled` and works like any other; DeleteImportedKeyMaterial takes the material
//! away again (`PendingImport`, its ciphertexts unreadable) until the same material is imported
//! again, which a fingerprint of it checks.
//!
//! The RSA private key lives only in the import token: sealed (AES-256-GCM under a key derived
//! from the root key, bound to the KMS key's ARN) with its expiry, 24 hours after issue. Material
//! is imported without expiry (`KEY_MATERIAL_DOES_NOT_EXPIRE`); expiring material is refused
//! rather than kept past its date.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    PrivateDecryptingKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_service::opctx::OpCtx;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use super::{KmsError, KmsService, Obj, input, required};
use crate::KeyState;

/// How long GetParametersForImport's token and public key may be used.
const PARAMETERS_TTL_MS: i64 = 24 * 3600 * 1000;
const WRAPPING_ALGORITHMS: &[&str] = &[
    "RSAES_PKCS1_V1_5",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
    "SM2PKE",
];
const WRAPPING_KEY_SPECS: &[&str] = &["RSA_2048", "RSA_3072", "RSA_4096", "SM2"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParametersIn {
    key_id: Option<String>,
    wrapping_algorithm: Option<String>,
    wrapping_key_spec: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportIn {
    key_id: Option<String>,
    #[serde(default, with = "coffer_wire::json::option_base64_blob")]
    import_token: Option<Vec<u8>>,
    #[serde(default, with = "coffer_wire::json::option_base64_blob")]
    encrypted_key_material: Option<Vec<u8>>,
    expiration_model: Option<String>,
    valid_to: Option<serde_json::Value>,
    #[allow(dead_code)]
    import_type: Option<String>,
    #[allow(dead_code)]
    key_material_description: Option<String>,
    #[allow(dead_code)]
    key_material_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteIn {
    key_id: Option<String>,
    #[allow(dead_code)]
    key_material_id: Option<String>,
}

/// What an import token carries (sealed; never shown).
#[derive(Serialize, Deserialize)]
struct TokenClaims {
    key_arn: String,
    algorithm: String,
    /// PKCS#8 of the RSA private key, base64.
    private_key: String,
    valid_to_ms: i64,
}

fn oaep(algorithm: &str) -> Option<&'static OaepAlgorithm> {
    match algorithm {
        "RSAES_OAEP_SHA_1" => Some(&OAEP_SHA1_MGF1SHA1),
        "RSAES_OAEP_SHA_256" => Some(&OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

fn token_aad(key_arn: &str) -> Vec<u8> {
    format!("coffer:kms-import-token:{key_arn}").into_bytes()
}

/// A fingerprint of imported material: a re-import must match it.
fn fingerprint(key_arn: &str, material: &[u8]) -> String {
    hex::encode(coffer_crypto::sha256(&[
        b"coffer-kms-import\0",
        key_arn.as_bytes(),
        b"\0",
        material,
    ]))
}

/// ImportKeyMaterial's and DeleteImportedKeyMaterial's answer: the key and its (one) material.
fn material_out(key_arn: &str) -> Obj {
    let mut out = Obj::new();
    out.insert("KeyId".into(), json!(key_arn));
    out.insert(
        "KeyMaterialId".into(),
        json!(crate::material_id(key_arn, 1)),
    );
    out
}

fn external_only(rec: &crate::KeyRecord) -> Result<(), KmsError> {
    if rec.origin.as_deref() != Some("EXTERNAL") {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} origin is AWS_KMS which is not valid for this operation.",
            rec.arn
        )));
    }
    super::keys::not_pending(rec)
}

impl KmsService {
    fn import_key(&self) -> coffer_crypto::AeadKey {
        coffer_crypto::AeadKey::new(&self.keys.derive_key("kms/import-token"))
    }

    pub(crate) async fn get_parameters_for_import(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: ParametersIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let algorithm = required("wrappingAlgorithm", i.wrapping_algorithm.as_deref())?;
        let spec = required("wrappingKeySpec", i.wrapping_key_spec.as_deref())?;
        super::validate::one_of("wrappingAlgorithm", algorithm, WRAPPING_ALGORITHMS)?;
        super::validate::one_of("wrappingKeySpec", spec, WRAPPING_KEY_SPECS)?;
        let (rec, _) = self.load(ctx, key).await?;
        external_only(&rec)?;
        let size = match spec {
            "RSA_2048" => KeySize::Rsa2048,
            "RSA_3072" => KeySize::Rsa3072,
            "RSA_4096" => KeySize::Rsa4096,
            _ => {
                return Err(KmsError::UnsupportedOperation(
                    "Coffer wraps imported key material with RSA keys only.".into(),
                ));
            }
        };
        if oaep(algorithm).is_none() {
            return Err(KmsError::UnsupportedOperation(
                "Coffer accepts key material wrapped with RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256."
                    .into(),
            ));
        }
        let private = PrivateDecryptingKey::generate(size).map_err(|_| KmsError::internal())?;
        let public = private
            .public_key()
            .as_der()
            .map_err(|_| KmsError::internal())?;
        let pkcs8 = private.as_der().map_err(|_| KmsError::internal())?;
        let valid_to_ms = self.now_ms() + PARAMETERS_TTL_MS;
        let claims = Zeroizing::new(
            serde_json::to_vec(&TokenClaims {
                key_arn: rec.arn.clone(),
                algorithm: algorithm.to_string(),
                private_key: B64.encode(pkcs8.as_ref()),
                valid_to_ms,
            })
            .map_err(|_| KmsError::internal())?,
        );
        let token = self
            .import_key()
            .seal(&claims, &token_aad(&rec.arn))
            .map_err(|_| KmsError::internal())?;
        let mut out = Obj::new();
        out.insert("KeyId".into(), json!(rec.arn));
        out.insert("ImportToken".into(), json!(B64.encode(token)));
        out.insert("PublicKey".into(), json!(B64.encode(public.as_ref())));
        out.insert(
            "ParametersValidTo".into(),
            json!(valid_to_ms as f64 / 1000.0),
        );
        Ok(out)
    }

    pub(crate) async fn import_key_material(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: ImportIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let token = required("importToken", i.import_token.as_deref())?;
        let wrapped = required("encryptedKeyMaterial", i.encrypted_key_material.as_deref())?;
        if let Some(m) = &i.expiration_model {
            super::validate::one_of(
                "expirationModel",
                m,
                &["KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"],
            )?;
        }
        if i.expiration_model.as_deref() == Some("KEY_MATERIAL_EXPIRES") || i.valid_to.is_some() {
            return Err(KmsError::UnsupportedOperation(
                "Coffer imports key material that does not expire: pass ExpirationModel \
                 KEY_MATERIAL_DOES_NOT_EXPIRE and no ValidTo."
                    .into(),
            ));
        }
        let (rec, _) = self.load(ctx, key).await?;
        external_only(&rec)?;
        let invalid_token =
            || KmsError::InvalidImportToken("The import token is invalid for this key.".into());
        let claims = self
            .import_key()
            .open(token, &token_aad(&rec.arn))
            .map_err(|_| invalid_token())?;
        let claims: TokenClaims =
            serde_json::from_slice(&Zeroizing::new(claims)).map_err(|_| invalid_token())?;
        if claims.key_arn != rec.arn {
            return Err(invalid_token());
        }
        if self.now_ms() > claims.valid_to_ms {
            return Err(KmsError::ExpiredImportToken(
                "The import token has expired; get new parameters for import.".into(),
            ));
        }
        let pkcs8 = Zeroizing::new(
            B64.decode(&claims.private_key)
                .map_err(|_| invalid_token())?,
        );
        let algorithm = oaep(&claims.algorithm).ok_or_else(invalid_token)?;
        let private = PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| invalid_token())?;
        let oaep_key = OaepPrivateDecryptingKey::new(private).map_err(|_| KmsError::internal())?;
        let mut out = Zeroizing::new(vec![0u8; oaep_key.min_output_size()]);
        let material = oaep_key
            .decrypt(algorithm, wrapped, &mut out, None)
            .map_err(|_| {
                KmsError::InvalidCiphertext(
                    "The key material could not be decrypted with the import parameters.".into(),
                )
            })?;
        let material: Zeroizing<[u8; 32]> = Zeroizing::new(material.try_into().map_err(|_| {
            KmsError::IncorrectKeyMaterial(
                "The key material must be 256 bits (32 bytes) for a symmetric key.".into(),
            )
        })?);
        let print = fingerprint(&rec.arn, material.as_ref());
        let (rec, ()) = self
            .mutate(ctx, key, |rec, _| {
                external_only(rec)?;
                if rec.import_fingerprint.as_ref().is_some_and(|f| *f != print) {
                    return Err(KmsError::IncorrectKeyMaterial(
                        "The key material does not match the key material previously imported \
                         into this KMS key."
                            .into(),
                    ));
                }
                rec.materials = vec![self.keys.material(&rec.arn, 1, &material)?];
                rec.current_version = 1;
                rec.import_fingerprint = Some(print.clone());
                if rec.key_state == KeyState::PendingImport {
                    rec.key_state = KeyState::Enabled;
                }
                Ok(())
            })
            .await?;
        Ok(material_out(&rec.arn))
    }

    pub(crate) async fn delete_imported_key_material(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, KmsError> {
        let i: DeleteIn = input(body)?;
        let key = required("keyId", i.key_id.as_deref())?;
        let (rec, ()) = self
            .mutate(ctx, key, |rec, _| {
                external_only(rec)?;
                rec.materials.clear();
                rec.key_state = KeyState::PendingImport;
                Ok(())
            })
            .await?;
        Ok(material_out(&rec.arn))
    }
}
