//! The errors Secrets Manager models, plus the framework errors a JSON 1.1 service answers.
//! Messages follow AWS's wording where clients match on it and never contain a secret value.

use coffer_kms::KeyError;
use coffer_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    ResourceExists(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    EncryptionFailure(String),
    #[error("{0}")]
    DecryptionFailure(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    PublicPolicy(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    InternalServiceError(String),
    /// A model constraint (length, range, pattern, enum) was violated.
    #[error("{0}")]
    Validation(String),
    /// The caller's policies do not allow the operation (AWS's message).
    #[error("{0}")]
    AccessDenied(String),
    /// An error raised while decoding the request (e.g. `SerializationException`) or dispatching
    /// it (`UnknownOperationException`).
    #[error("{message}")]
    Wire { code: &'static str, message: String },
    /// A store check failed; retried internally and never returned by [`crate::SecretsService`].
    #[error("concurrent modification")]
    Conflict,
}

impl coffer_core::ServiceError for SecretsError {
    fn code(&self) -> &'static str {
        match self {
            SecretsError::ResourceNotFound(_) => "ResourceNotFoundException",
            SecretsError::InvalidParameter(_) => "InvalidParameterException",
            SecretsError::InvalidRequest(_) => "InvalidRequestException",
            SecretsError::ResourceExists(_) => "ResourceExistsException",
            SecretsError::LimitExceeded(_) => "LimitExceededException",
            SecretsError::EncryptionFailure(_) => "EncryptionFailure",
            SecretsError::DecryptionFailure(_) => "DecryptionFailure",
            SecretsError::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            SecretsError::PublicPolicy(_) => "PublicPolicyException",
            SecretsError::InvalidNextToken(_) => "InvalidNextTokenException",
            SecretsError::InternalServiceError(_) | SecretsError::Conflict => {
                "InternalServiceError"
            }
            SecretsError::Validation(_) => "ValidationException",
            SecretsError::AccessDenied(_) => "AccessDeniedException",
            SecretsError::Wire { code, .. } => code,
        }
    }

    fn status(&self) -> u16 {
        match self {
            SecretsError::InternalServiceError(_) | SecretsError::Conflict => 500,
            SecretsError::Wire { code, .. } if *code == "InternalFailure" => 500,
            _ => 400,
        }
    }
}

impl coffer_service::opctx::RunError for SecretsError {
    fn unknown_operation() -> Self {
        SecretsError::Wire {
            code: "UnknownOperationException",
            message: coffer_service::opctx::UNKNOWN_OPERATION.into(),
        }
    }
    fn undecided() -> Self {
        SecretsError::InternalServiceError("An error occurred on the server side.".into())
    }
}

impl From<coffer_core::authz::AccessDenied> for SecretsError {
    fn from(e: coffer_core::authz::AccessDenied) -> Self {
        SecretsError::AccessDenied(e.message)
    }
}

impl SecretsError {
    pub(crate) fn secret_not_found() -> Self {
        SecretsError::ResourceNotFound("Secrets Manager can't find the specified secret.".into())
    }

    pub(crate) fn marked_for_deletion() -> Self {
        SecretsError::InvalidRequest(
            "You can't perform this operation on the secret because it was marked for deletion."
                .into(),
        )
    }

    pub(crate) fn replica_read_only() -> Self {
        SecretsError::InvalidRequest(
            "Operation is not permitted on a replica secret. Call must be made in primary secret's region."
                .into(),
        )
    }

    /// `1 validation error detected: Value at 'member' failed to satisfy constraint: ...` — the
    /// value itself is left out so nothing sensitive can be echoed.
    pub(crate) fn validation(member: &str, constraint: &str) -> Self {
        SecretsError::Validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: {constraint}"
        ))
    }
}

impl From<coffer_service::token::InvalidToken> for SecretsError {
    fn from(e: coffer_service::token::InvalidToken) -> Self {
        SecretsError::InvalidNextToken(e.to_string())
    }
}

impl From<StoreError> for SecretsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => SecretsError::Conflict,
            other => {
                tracing::error!(error = %other, "secrets store failure");
                SecretsError::InternalServiceError("An error occurred on the server side.".into())
            }
        }
    }
}

/// Key errors while encrypting a value.
pub(crate) fn encryption_error(e: KeyError) -> SecretsError {
    match e {
        KeyError::Store(s) => s.into(),
        KeyError::NotFound(_) | KeyError::InvalidCiphertext => SecretsError::EncryptionFailure(
            "Secrets Manager can't encrypt the protected secret text using the provided KMS key."
                .into(),
        ),
        e @ KeyError::InvalidState { .. } => SecretsError::EncryptionFailure(format!(
            "Secrets Manager can't encrypt the protected secret text using the provided KMS key: {e}"
        )),
    }
}

/// Key errors while decrypting a stored value.
pub(crate) fn decryption_error(e: KeyError) -> SecretsError {
    match e {
        KeyError::Store(s) => s.into(),
        // A disabled or pending-deletion key: KMS's reason is passed on, as AWS does.
        e @ KeyError::InvalidState { .. } => SecretsError::DecryptionFailure(format!(
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key: {e}"
        )),
        _ => SecretsError::DecryptionFailure(
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key."
                .into(),
        ),
    }
}
