//! The errors Parameter Store models (all HTTP 400 except InternalServerError), plus the
//! framework errors a JSON 1.1 service answers. Messages follow AWS's wording where clients match
//! on it and never contain a parameter value.

use coffer_kms::KeyError;
use coffer_store::StoreError;

macro_rules! errors {
    ($($variant:ident => $code:literal),* $(,)?) => {
        #[derive(Debug, thiserror::Error)]
        pub enum ParametersError {
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

        impl coffer_core::ServiceError for ParametersError {
            fn code(&self) -> &'static str {
                match self {
                    $(ParametersError::$variant(_) => $code,)*
                    ParametersError::Validation(_) => "ValidationException",
                    ParametersError::Wire { code, .. } => code,
                    ParametersError::Conflict => "TooManyUpdates",
                }
            }

            fn status(&self) -> u16 {
                match self {
                    ParametersError::InternalServerError(_) => 500,
                    _ => 400,
                }
            }
        }
    };
}

errors! {
    InternalServerError => "InternalServerError",
    AccessDenied => "AccessDeniedException",
    InvalidKeyId => "InvalidKeyId",
    ParameterLimitExceeded => "ParameterLimitExceeded",
    TooManyUpdates => "TooManyUpdates",
    ParameterAlreadyExists => "ParameterAlreadyExists",
    HierarchyLevelLimitExceeded => "HierarchyLevelLimitExceededException",
    HierarchyTypeMismatch => "HierarchyTypeMismatchException",
    InvalidAllowedPattern => "InvalidAllowedPatternException",
    ParameterMaxVersionLimitExceeded => "ParameterMaxVersionLimitExceeded",
    ParameterPatternMismatch => "ParameterPatternMismatchException",
    UnsupportedParameterType => "UnsupportedParameterType",
    PoliciesLimitExceeded => "PoliciesLimitExceededException",
    InvalidPolicyType => "InvalidPolicyTypeException",
    InvalidPolicyAttribute => "InvalidPolicyAttributeException",
    IncompatiblePolicy => "IncompatiblePolicyException",
    ParameterNotFound => "ParameterNotFound",
    ParameterVersionNotFound => "ParameterVersionNotFound",
    ParameterVersionLabelLimitExceeded => "ParameterVersionLabelLimitExceeded",
    InvalidFilterKey => "InvalidFilterKey",
    InvalidFilterOption => "InvalidFilterOption",
    InvalidFilterValue => "InvalidFilterValue",
    InvalidNextToken => "InvalidNextToken",
    InvalidResourceType => "InvalidResourceType",
    InvalidResourceId => "InvalidResourceId",
    TooManyTagsError => "TooManyTagsError",
    ResourcePolicyInvalidParameter => "ResourcePolicyInvalidParameterException",
    ResourcePolicyLimitExceeded => "ResourcePolicyLimitExceededException",
    ResourcePolicyConflict => "ResourcePolicyConflictException",
    ResourceNotFound => "ResourceNotFoundException",
    MalformedResourcePolicyDocument => "MalformedResourcePolicyDocumentException",
    ResourcePolicyNotFound => "ResourcePolicyNotFoundException",
    ServiceSettingNotFound => "ServiceSettingNotFound",
}

impl coffer_service::opctx::RunError for ParametersError {
    fn unknown_operation() -> Self {
        ParametersError::Wire {
            code: "UnknownOperationException",
            message: coffer_service::opctx::UNKNOWN_OPERATION.into(),
        }
    }
    fn undecided() -> Self {
        ParametersError::InternalServerError("An error occurred on the server side.".into())
    }
}

impl From<coffer_core::authz::AccessDenied> for ParametersError {
    fn from(e: coffer_core::authz::AccessDenied) -> Self {
        ParametersError::AccessDenied(e.message)
    }
}

impl ParametersError {
    /// `1 validation error detected: Value at 'member' failed to satisfy constraint: ...` — the
    /// value itself is left out so nothing sensitive can be echoed.
    pub(crate) fn validation(member: &str, constraint: &str) -> Self {
        ParametersError::Validation(coffer_wire::json::validation_message(&[
            coffer_wire::json::violation(None, member, constraint),
        ]))
    }

    pub(crate) fn not_null(member: &str) -> Self {
        Self::validation(member, "Member must not be null")
    }

    pub(crate) fn not_found(name: &str) -> Self {
        ParametersError::ParameterNotFound(format!("Parameter {name} not found."))
    }

    pub(crate) fn internal() -> Self {
        ParametersError::InternalServerError("An error occurred on the server side.".into())
    }
}

impl From<coffer_wire::WireError> for ParametersError {
    fn from(e: coffer_wire::WireError) -> Self {
        ParametersError::Wire {
            code: "SerializationException",
            message: e.to_string(),
        }
    }
}

impl From<coffer_service::token::InvalidToken> for ParametersError {
    fn from(e: coffer_service::token::InvalidToken) -> Self {
        ParametersError::InvalidNextToken(e.to_string())
    }
}

impl From<StoreError> for ParametersError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ParametersError::Conflict,
            other => {
                tracing::error!(error = %other, "parameters store failure");
                ParametersError::internal()
            }
        }
    }
}

/// Key errors while encrypting or decrypting a SecureString value.
pub(crate) fn key_error(e: KeyError, key_id: &str) -> ParametersError {
    match e {
        KeyError::Store(s) => s.into(),
        KeyError::NotFound(_) => {
            ParametersError::InvalidKeyId(format!("{key_id} is not a valid KMS key."))
        }
        // What Parameter Store passes on from KMS: `ARN is disabled.` / `... pending deletion.`
        e @ KeyError::InvalidState { .. } => ParametersError::InvalidKeyId(e.to_string()),
        KeyError::InvalidCiphertext => {
            tracing::error!("a stored SecureString value failed to decrypt");
            ParametersError::internal()
        }
    }
}
