//! The errors KMS models (HTTP 400 except `KMSInternalException`), plus the framework errors a
//! JSON 1.1 service answers. Messages follow KMS's wording and never contain plaintext.

use coffer_store::StoreError;

use crate::{KeyError, KeyState};

macro_rules! errors {
    ($($variant:ident => $code:literal),* $(,)?) => {
        #[derive(Debug, thiserror::Error)]
        pub enum KmsError {
            $(#[error("{0}")] $variant(String),)*
            /// A model constraint (length, range, pattern, enum) or a documented rule was violated.
            #[error("{0}")]
            Validation(String),
            /// Decoding (`SerializationException`) or dispatch (`UnknownOperationException`).
            #[error("{message}")]
            Wire { code: &'static str, message: String },
            /// A store check failed; retried internally and never returned by the service.
            #[error("concurrent modification")]
            Conflict,
        }

        impl coffer_core::ServiceError for KmsError {
            fn code(&self) -> &'static str {
                match self {
                    $(KmsError::$variant(_) => $code,)*
                    KmsError::Validation(_) => "ValidationException",
                    KmsError::Wire { code, .. } => code,
                    KmsError::Conflict => "ConflictException",
                }
            }

            fn status(&self) -> u16 {
                match self {
                    KmsError::Internal(_) => 500,
                    _ => 400,
                }
            }
        }
    };
}

errors! {
    AccessDenied => "AccessDeniedException",
    AlreadyExists => "AlreadyExistsException",
    Disabled => "DisabledException",
    DryRun => "DryRunOperationException",
    ExpiredImportToken => "ExpiredImportTokenException",
    IncorrectKeyMaterial => "IncorrectKeyMaterialException",
    IncorrectKey => "IncorrectKeyException",
    Internal => "KMSInternalException",
    InvalidAliasName => "InvalidAliasNameException",
    InvalidArn => "InvalidArnException",
    InvalidCiphertext => "InvalidCiphertextException",
    InvalidGrantId => "InvalidGrantIdException",
    InvalidGrantToken => "InvalidGrantTokenException",
    InvalidImportToken => "InvalidImportTokenException",
    InvalidKeyUsage => "InvalidKeyUsageException",
    InvalidMarker => "InvalidMarkerException",
    InvalidState => "KMSInvalidStateException",
    LimitExceeded => "LimitExceededException",
    MalformedPolicyDocument => "MalformedPolicyDocumentException",
    NotFound => "NotFoundException",
    Tag => "TagException",
    UnsupportedOperation => "UnsupportedOperationException",
}

impl KmsError {
    /// `1 validation error detected: Value at 'member' failed to satisfy constraint: ...`; KMS
    /// names members in camelCase. Values are left out so nothing sensitive is echoed.
    pub(crate) fn validation(member: &str, constraint: &str) -> Self {
        KmsError::Validation(coffer_wire::json::validation_message(&[
            coffer_wire::json::violation(None, member, constraint),
        ]))
    }

    pub(crate) fn not_null(member: &str) -> Self {
        Self::validation(member, "Member must not be null")
    }

    pub(crate) fn internal() -> Self {
        KmsError::Internal("An internal error occurred on the server side.".into())
    }

    pub(crate) fn dry_run() -> Self {
        KmsError::DryRun("The request would have succeeded, but the DryRun option is set.".into())
    }

    /// A key state that forbids the operation, in KMS's words.
    pub(crate) fn state(arn: &str, state: KeyState) -> Self {
        let message = format!("{arn} is {}.", state.describe());
        match state {
            KeyState::Disabled => KmsError::Disabled(message),
            _ => KmsError::InvalidState(message),
        }
    }

    /// The key service's answer for an AWS managed key it may not change: AWS's key policies for
    /// them allow no management, so the caller is denied.
    pub(crate) fn managed_key(caller: &str, action: &str, arn: &str) -> Self {
        KmsError::AccessDenied(format!(
            "User: {caller} is not authorized to perform: {action} on resource: {arn} because \
             no resource-based policy allows the {action} action"
        ))
    }
}

/// A key reference that names nothing here, in KMS's words (`display` is the reference as an
/// ARN when it was not one already).
pub(crate) fn not_found(display: &str) -> KmsError {
    if display.contains(":alias/") {
        KmsError::NotFound(format!("Alias {display} is not found."))
    } else {
        KmsError::NotFound(format!("Key '{display}' does not exist"))
    }
}

impl coffer_service::opctx::RunError for KmsError {
    fn unknown_operation() -> Self {
        KmsError::Wire {
            code: "UnknownOperationException",
            message: coffer_service::opctx::UNKNOWN_OPERATION.into(),
        }
    }
    fn undecided() -> Self {
        KmsError::internal()
    }
}

impl From<coffer_core::authz::AccessDenied> for KmsError {
    fn from(e: coffer_core::authz::AccessDenied) -> Self {
        KmsError::AccessDenied(e.message)
    }
}

impl From<coffer_wire::WireError> for KmsError {
    fn from(e: coffer_wire::WireError) -> Self {
        KmsError::Wire {
            code: "SerializationException",
            message: e.to_string(),
        }
    }
}

impl From<coffer_service::token::InvalidToken> for KmsError {
    fn from(_: coffer_service::token::InvalidToken) -> Self {
        KmsError::InvalidMarker("Invalid marker.".into())
    }
}

impl From<StoreError> for KmsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => KmsError::Conflict,
            other => {
                tracing::error!(error = %other, "kms store failure");
                KmsError::internal()
            }
        }
    }
}

impl From<KeyError> for KmsError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => s.into(),
            KeyError::NotFound(k) => not_found(&k),
            KeyError::InvalidState { arn, state } => KmsError::state(&arn, state),
            KeyError::InvalidCiphertext => KmsError::InvalidCiphertext(String::new()),
        }
    }
}

impl From<crate::KeyUseError> for KmsError {
    fn from(e: crate::KeyUseError) -> Self {
        match e {
            crate::KeyUseError::Key(k) => k.into(),
            crate::KeyUseError::Denied(d) => d.into(),
        }
    }
}
